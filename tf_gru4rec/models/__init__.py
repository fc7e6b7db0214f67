"""Stage 6, models: `GRU4Rec`, the layers composed with the K-step training loop."""

from tf_gru4rec.models.gru4rec import GRU4Rec

__all__ = ["GRU4Rec"]
