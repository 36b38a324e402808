"""Everything that trains a network (``inference`` uses a trained one).

- ``options``: main.py's flags and their checks (the losses' own are ``loss.flags``);
- ``setup``: main.py's steps before training (devices, host, data checked; the run folder opened);
- ``parts``: what the loop trains with (``TrainingParts``) and its builder (kvstore, initialisation
  or resume, trainer, schedule); ``state``: the loop's position (``TrainingState``), what a
  checkpoint stores;
- ``loop``: the training loop (epochs, evaluations, checkpoints, stopping where the state is whole);
- ``step``: one update (forward, loss of the whole batch, backward, update) and its options;
- ``evaluation``: the test-split metrics during training;
- ``optimizer``: the trainer, its kvstore and optimiser states; ``ordered_sum``: the distributed
  sum in a fixed order; ``schedules``: the learning-rate schedules; ``regularization``: the Symm
  release's L2 term and gradient multiplier.
"""
