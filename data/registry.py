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


def describe_datasets():
    """The datasets for a flag's help, in registry order, each dataset without a prepare command
    with what the user arranges (its description): ``cars196, cub200, sop, demo, or folder (your
    own images: ...)``. Aliases are left to :func:`resolve_dataset`'s error."""
    items = [spec.name + ("" if spec.prepare_command else " (%s)" % spec.description)
             for spec in DATASETS.values()]
    return ", ".join(items[:-1]) + ", or " + items[-1] if len(items) > 1 else items[0]


def describe_default_dirs():
    """The datasets' default directories for ``--data_dir``'s help, in registry order, and the
    datasets that have none: ``./data/CARS_196, ...; required for folder``."""
    dirs = [spec.default_data_dir for spec in DATASETS.values() if spec.default_data_dir]
    required = [spec.name for spec in DATASETS.values() if not spec.default_data_dir]
    return ", ".join(dirs) + ("; required for %s" % ", ".join(required) if required else "")
