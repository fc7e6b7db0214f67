"""Stage 4, optimizers: AdagradM, the reference's Adagrad with momentum on touched rows only."""

from tf_gru4rec.optimizers.adagradm import AdagradM

__all__ = ["AdagradM"]
