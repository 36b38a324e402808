"""A dataset's entry in the registry (``data.registry``): where it lives, how to prepare it, how to
read its splits, and how to describe it. Each dataset module (``data.cars196``, ``data.cub200``,
``data.sop``, ``data.folder``; the demo's in ``data.demo_spec``) defines its ``SPEC``."""
from dataclasses import dataclass, field

from utils.metrics.names import DEFAULT_RECALLK

PREPARE_COMMAND = "python3 -m data.prepare {name} --data_dir {{data_dir}}"


def prepare_command(name):
    """The command of ``data.prepare`` that creates dataset ``name`` (``{data_dir}`` left open)."""
    return PREPARE_COMMAND.format(name=name)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives, how to create its split files and how to read them.

    Parameters
    ----------
    name : str
        Canonical name.
    default_data_dir : str or None
        Data directory used when none is given (None: ``--data_dir`` is required).
    prepare_command : str or None
        Command that creates the data; ``{data_dir}`` is replaced by the directory. None for
        data the user arranges (then ``layout_hint`` says how).
    train_split, test_split : str
        Split file names inside the data directory.
    aliases : tuple of str
        Other accepted names.
    default_recallk : tuple of int
        Ranks K of Recall@K reported when the user gives none (the papers' choice).
    layout_hint : str
        For datasets without a prepare command: how to arrange the files (``{data_dir}``).
    read_split : callable or None
        ``read_split(data_dir, which) -> (paths, labels)`` for datasets without split files
        (``which`` is 'train' or 'test'); None reads ``train_split`` / ``test_split``.
    class_names : callable or None
        ``class_names(data_dir, which) -> list of str``: the class of each label of a split (label
        ``k`` is entry ``k``), for datasets that number each split's classes themselves (the
        folder dataset: its folder names). None: the labels are the split files' class ids, one id
        naming one class in both splits. What ``data.seen_classes`` compares across the splits.
    prepare : callable or None
        ``prepare(data_dir, download=True) -> dict`` writes the split files (a subcommand of
        ``python3 -m data.prepare``); None when another command (or the user) makes the data.
    description : str
        One line for ``python3 -m data.prepare --help``.
    """

    name: str
    default_data_dir: str
    prepare_command: str
    train_split: str = "train.txt"
    test_split: str = "test.txt"
    aliases: tuple = field(default_factory=tuple)
    default_recallk: tuple = DEFAULT_RECALLK
    layout_hint: str = ""
    read_split: object = None
    class_names: object = None
    prepare: object = None
    description: str = ""

    def prepare_hint(self, data_dir=None):
        """The command that creates the data in ``data_dir`` (default directory if None)."""
        data_dir = data_dir or self.default_data_dir or "DIR"
        if self.prepare_command is None:
            return self.layout_hint.format(data_dir=data_dir)
        return self.prepare_command.format(data_dir=data_dir)

    def fix_hint(self, data_dir=None):
        """What to do when the data is missing: 'create it with: <command>' or the layout."""
        if self.prepare_command is None:
            return self.prepare_hint(data_dir)
        return "create it with: {}".format(self.prepare_hint(data_dir))
