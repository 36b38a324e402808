"""What a run shows in TensorBoard and writes to summary.csv: scalars and the csv (``tensorboard``),
the run's flags as text and hparams (``settings``), retrieval grids (``grid``), the embedding
projector (``projector``) and images with a description card (``described``)."""
from .tensorboard import TrainingSummary

__all__ = ["TrainingSummary"]
