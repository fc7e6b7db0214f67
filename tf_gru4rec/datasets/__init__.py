"""TensorFlow Datasets builders; importing this package registers them with ``tfds``."""

from tf_gru4rec.datasets.gru4rec_sessions import Gru4recSessions

__all__ = ["Gru4recSessions"]
