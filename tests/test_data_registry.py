"""data.registry: one entry per dataset module, knowing how to prepare, read and describe it."""
import pytest

from data import DATASETS, cars196, cub200, demo_spec, folder, prepare, sop


def test_one_module_per_dataset():
    # The demo's entry is data/demo_spec.py: data/demo.py is the generator that -m runs.
    modules = {"cars196": cars196, "cub200": cub200, "sop": sop, "demo": demo_spec, "folder": folder}
    assert sorted(DATASETS) == sorted(modules), "registry %s" % sorted(DATASETS)
    for name, module in modules.items():
        assert DATASETS[name] is module.SPEC, "%s's entry is the SPEC of %s" % (name, module.__file__)
        assert DATASETS[name].description, "%s describes itself" % name


def test_prepare_subcommands_are_the_registry_entries_that_prepare(capsys):
    assert [spec.name for spec in prepare.PREPARED] == ["cars196", "cub200", "sop"], prepare.PREPARED
    with pytest.raises(SystemExit):
        prepare.main(["--help"])
    out = capsys.readouterr().out
    for spec in prepare.PREPARED:
        assert spec.name in out, "python3 -m data.prepare lists %s: %s" % (spec.name, out)
        assert spec.prepare_hint("X") == "python3 -m data.prepare %s --data_dir X" % spec.name, spec
