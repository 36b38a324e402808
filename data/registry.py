"""The datasets: one registry whose entries (``data.spec.DatasetSpec``, one module per dataset)
know how to prepare, read and describe their data."""
from utils.flags import registry_key

from . import cars196, cub200, demo_spec, folder, sop

# The demo's entry, not its generator: ``python3 -m data.demo`` must not run an imported module.
DATASETS = {spec.name: spec for spec in (cars196.SPEC, cub200.SPEC, sop.SPEC, demo_spec.SPEC, folder.SPEC)}


def resolve_dataset(name):
    """Look up a dataset by name or alias (case-insensitive, ``-`` = ``_``).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid names.
    """
    wanted = registry_key(name)
    for spec in DATASETS.values():
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    valid = []
    for spec in DATASETS.values():
        valid.append(spec.name + (" (aliases: {})".format(", ".join(spec.aliases)) if spec.aliases else ""))
    raise ValueError("unknown dataset {!r}; valid names: {}".format(name, "; ".join(valid)))
