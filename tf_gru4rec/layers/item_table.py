"""Item tables: the output table that scores (and, shared, embeds) items; a separate input table.

Notation: N = items, d = units of the last GRU layer, U = rows a training step touches.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gru4rec.layers.base import Layer, rows, uniform


@keras.saving.register_keras_serializable("tf_gru4rec")
class ItemTable(Layer):
    """The output item table: weights Wy [N, d] and biases by [N]; score(h, i) = h . Wy[i] + by[i].

    With GRU4Rec's shared ("constrained") embedding the same rows are also the input
    embedding (`embed`).

    Args:
        n_items: N.
        units: d.
        seed: seed of Wy's initialisation (by starts at zero).
    """

    def __init__(self, n_items, units, seed=None, **kwargs):
        kwargs.setdefault("name", "item_table")
        super().__init__(**kwargs)
        self.n_items, self.units, self.seed = int(n_items), int(units), seed
        N, d = self.n_items, self.units
        self.wy = self.add_weight(shape=(N, d), initializer=uniform(N, d, seed), name="wy")
        self.by = self.add_weight(shape=(N,), initializer="zeros", name="by")
        self.built = True

    def embed(self, items):
        """Item indices [b] -> their rows of Wy [b, d] (the shared input embedding)."""
        return rows(self.wy, items)

    def gather(self, items):
        """Rows of Wy [U, d] and by [U] for item indices [U], gathered once per step so that
        each table's gradient reaches the optimizer as one slice per row."""
        return rows(self.wy, items), rows(self.by, items)

    def call(self, h):
        """Scores of all N items for outputs h [b, d] -> [b, N]."""
        return tf.matmul(h, self.wy, transpose_b=True) + self.by

    def score_items(self, h, items):
        """Scores of given item indices [b, C] for h [b, d] -> [b, C]: reads only those rows
        (re-ranking, not a catalogue pass), with the formula of `call`."""
        return tf.einsum("bd,bcd->bc", h, tf.gather(self.wy, items)) + tf.gather(self.by, items)

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "units": self.units, "seed": self.seed}


@keras.saving.register_keras_serializable("tf_gru4rec")
class ItemEmbedding(Layer):
    """A separate input embedding E [N, dim]: item indices [b] -> rows [b, dim].

    Unlike `keras.layers.Embedding` it gathers without reading the whole table (`rows`).
    """

    def __init__(self, n_items, dim, seed=None, **kwargs):
        kwargs.setdefault("name", "item_embedding")
        super().__init__(**kwargs)
        self.n_items, self.dim, self.seed = int(n_items), int(dim), seed
        self.e = self.add_weight(shape=(self.n_items, self.dim),
                                 initializer=uniform(self.n_items, self.dim, seed), name="e")
        self.built = True

    def call(self, items):
        return rows(self.e, items)

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "dim": self.dim, "seed": self.seed}
