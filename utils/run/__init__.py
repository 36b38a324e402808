"""A run folder and its life: one owner for its files (``folder``), checkpoints (``checkpoint``),
writes that leave no half file behind (``storage``), signals (``interrupts``) and the faults the
tests inject (``faults``)."""
