"""Experiments: the papers' tables as data (``tables/*.json``, read by ``table``), the runs they ask
for under a protocol (``plan``: the release's test-selected one, a validation split, k folds), running
them resumably here (``runner``), and the report beside the paper's figures (``report``,
``concatenated``). The command is ``python3 -m tools.experiments``."""
