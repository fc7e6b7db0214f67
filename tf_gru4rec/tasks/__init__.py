"""Stage 5, tasks: the objective of a training step (`NextItemTask`), between losses and model."""

from tf_gru4rec.tasks.next_item import NextItemTask

__all__ = ["NextItemTask"]
