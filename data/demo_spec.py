"""The demo dataset's entry in the registry (``data.registry``): where it lives and the command
that generates it.

It lives apart from the generator (``data.demo``) because the package imports every registry
entry: were the entry in ``data/demo.py``, ``python3 -m data.demo`` would run a module the package
had already imported, and runpy warns that this "may result in unpredictable behaviour".
"""
from .spec import DatasetSpec

SPEC = DatasetSpec(
    name="demo",
    default_data_dir="./data/demo",
    prepare_command="python3 -m data.demo --out {data_dir}",
    description="synthetic glyphs, generated offline (python3 -m data.demo)",
)
