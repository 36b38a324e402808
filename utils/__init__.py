"""The ground floor: what every other package may use, and which uses none of them.

Nothing here imports ``data``, ``model``, ``loss``, ``train`` or ``inference``. Its rooms:

- ``utils.run``: a run folder and its life (``folder``: the file names and args.json, results.json;
  ``checkpoint``; ``storage``: writes that never leave a half file; ``interrupts``: signals that stop
  a run only where its state is whole; ``faults``: the faults the tests inject).
- ``utils.summary``: what a run shows in TensorBoard (``tensorboard``: scalars, summary.csv;
  ``settings``: the flags as text and hparams; ``grid``: retrieval grids; ``projector``;
  ``described``: images with a description card).
- ``utils.metrics``: retrieval and clustering metrics as pure functions of NumPy arrays
  (``knn_search``, ``retrieval``, ``clustering``, ``embeddings``, ``evaluation``, ``names``).
- single files: ``flags`` (argparse types, range checks and the registries' name normaliser of
  every entry point), ``errors`` (one-line errors, the parser that gives them), ``logs``,
  ``devices`` (--gpu_idx to contexts), ``host`` (cores, shared memory), ``environment`` (NumPy,
  MXNet and OpenMP before MXNet loads; the recursion limit), ``precision`` (bfloat16 / float16
  AMP), ``imagenet`` (the backbones' input statistics), ``loopback_job`` (a distributed job on
  this machine).
"""
