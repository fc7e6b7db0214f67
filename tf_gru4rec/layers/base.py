"""What the package's layers share: GRU4Rec's initialiser, row gathers, dropout, loading."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def rows(table, indices):
    """Gathers rows of a Keras variable without reading the whole table first (ResourceGather).

    Reading the table would also force XLA to copy it before the optimizer's in-place row
    updates in the same compiled step.
    """
    return tf.gather(table.value, indices)


def uniform(fan_in, fan_out, seed=None):
    """GRU4Rec's init: uniform in +-sqrt(6 / (fan_in + fan_out))."""
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


def dropout(x, rate, noise):
    """Inverted dropout with given uniform numbers `noise` (shape of x): kept where noise >= rate."""
    return x if not rate else tf.where(noise >= rate, x / (1.0 - rate), 0.0)


class Layer(keras.layers.Layer):
    """A layer whose weights its model may restore itself, from an older file layout.

    Release 0.1.0 kept the item tables on the model and the GRU cells in a list of its own
    (see `models.gru4rec`); loading such a file finds nothing at this layer's path, which
    is then expected rather than an error.
    """

    restored_by_model = False

    def load_own_variables(self, store):
        if self.restored_by_model and not len(store.keys()):
            self.restored_by_model = False
            return
        super().load_own_variables(store)
