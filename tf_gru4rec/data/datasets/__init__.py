"""TensorFlow Datasets builders; importing this package registers them with ``tfds``."""

from tf_gru4rec.data.datasets.gru4rec_sessions import Gru4recSessions

__all__ = ["Gru4recSessions"]
