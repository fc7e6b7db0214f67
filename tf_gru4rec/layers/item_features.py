"""Item features as a part of an item's vector: learned embeddings of its feature values, pooled.

An item's vector is its id part plus the mean of its feature values' embeddings, so that an
item with features and no clicks still has a vector (and a score). Notation: N = items,
M = feature values (all columns, `data.item_features`), L = most values of one item,
dim = width of the vectors, U = items a training step touches.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_gru4rec.layers.base import Layer, rows


def value_matrix(values, offsets, width=None) -> np.ndarray:
    """CSR feature values (`ItemFeatures.values`, `.offsets`) -> [N, L] int32, each item's
    values then -1 (L: the most values of an item, or `width`, at least 1)."""
    counts = np.diff(np.asarray(offsets, np.int64))
    width = max(int(counts.max(initial=0)), 1) if width is None else int(width)
    if counts.max(initial=0) > width:
        raise ValueError(f"an item has {counts.max()} feature values, more than width={width}")
    out = np.full((len(counts), width), -1, np.int32)
    row = np.repeat(np.arange(len(counts)), counts)
    out[row, np.arange(len(row)) - np.repeat(offsets[:-1], counts)] = values
    return out


@keras.saving.register_keras_serializable("tf_gru4rec")
class ItemFeatureEmbedding(Layer):
    """Feature-value embeddings V [M, dim] (and biases b [M]) pooled per item: item i ->
    (mean of V[v] over i's values v, mean of b[v]); an item without values -> zeros.

    Both tables start at zero, so a model with features starts as the model without them.
    The item -> values table `item_values` [N, L] (-1 padded) is a non-trainable weight:
    it is saved with the model.

    Args:
        n_items: N.
        n_values: M.
        max_values: L.
        dim: width of the pooled vectors.
        bias: whether values also carry a learned bias (the output side's score bias).
        item_values: [N, L] int32 (`value_matrix`); zeros-shaped placeholder when omitted
            (weights are then loaded).
    """

    def __init__(self, n_items, n_values, max_values, dim, bias=False, item_values=None, **kwargs):
        kwargs.setdefault("name", "item_features")
        super().__init__(**kwargs)
        self.n_items, self.n_values = int(n_items), int(n_values)
        self.max_values, self.dim, self.bias = int(max_values), int(dim), bool(bias)
        shape = (self.n_items, self.max_values)
        if item_values is not None and tuple(np.shape(item_values)) != shape:
            raise ValueError(f"item_values has shape {np.shape(item_values)}; expected {shape}")
        init = "zeros" if item_values is None else keras.initializers.Constant(np.asarray(item_values))
        self.item_values = self.add_weight(shape=shape, initializer=init, dtype="int32",
                                           trainable=False, name="item_values")
        self.v = self.add_weight(shape=(self.n_values, self.dim), initializer="zeros", name="v")
        self.b = self.add_weight(shape=(self.n_values,), initializer="zeros", name="b") if bias else None
        self.built = True

    def value_indices(self, items):
        """Items [...] (-1: none) -> their value indices [..., L], -1 where none."""
        found = tf.gather(self.item_values.value, tf.maximum(items, 0))
        return tf.where(tf.expand_dims(items >= 0, -1), found, -1)

    def distinct_values(self, indices):
        """Value indices [U, L] (-1: none) -> (the distinct values, sorted, -1 padded in
        front [W = U * L], the position of each entry in them [U * L]).

        Counted over the M values instead of sorted (a sort is slow inside XLA on CPU), so
        that a table gathered at them yields a gradient AdagradM needs not sort; static shapes."""
        flat = tf.reshape(indices, [-1])
        width, present = tf.size(flat), flat >= 0
        at = tf.where(present, flat, 0)[:, None]
        touched = tf.tensor_scatter_nd_max(tf.zeros([self.n_values], tf.int32), at, tf.cast(present, tf.int32)) > 0
        rank = tf.cumsum(tf.cast(touched, tf.int32)) - 1  # [M] a value's place among the touched
        slot = width - tf.reduce_sum(tf.cast(touched, tf.int32)) + rank
        # Untouched values are written to an extra last slot, then dropped.
        distinct = tf.tensor_scatter_nd_update(tf.fill([width + 1], -1), tf.where(touched, slot, width)[:, None],
                                               tf.range(self.n_values))[:width]
        return distinct, tf.where(present, tf.gather(slot, tf.maximum(flat, 0)), width - 1)

    def pool(self, indices):
        """Value indices [U, L] -> (pooled vectors [U, dim], pooled biases [U] or None).

        Each table is gathered once, at the step's distinct values (`distinct_values`; row 0
        for padding), so its gradient is one slice per value that `padding_marks` can mark."""
        present = tf.cast(indices >= 0, self.v.dtype)
        weights = present / tf.maximum(tf.reduce_sum(present, -1, keepdims=True), 1.0)  # [U, L]
        distinct, position = self.distinct_values(indices)
        read = tf.maximum(distinct, 0)
        vectors = tf.reshape(tf.gather(rows(self.v, read), position), [-1, self.max_values, self.dim])
        pooled = tf.einsum("ul,uld->ud", weights, vectors)
        if self.b is None:
            return pooled, None
        biases = tf.reshape(tf.gather(rows(self.b, read), position), tf.shape(weights))
        return pooled, tf.reduce_sum(weights * biases, -1)

    def call(self, items):
        """Items [b] -> (pooled vectors [b, dim], pooled biases [b] or None)."""
        return self.pool(self.value_indices(items))

    def score_all(self, h):
        """h [b, dim] -> every item's feature score [b, N]: h . pooled V + pooled b, as the
        per-value scores h V^T + b [b, M] pooled per item one value slot at a time (static
        shapes for XLA, [b, N] at a time, never an [N, dim] table)."""
        indices = self.item_values.value  # [N, L]
        present = tf.cast(indices >= 0, h.dtype)
        weights = present / tf.maximum(tf.reduce_sum(present, 1, keepdims=True), 1.0)  # [N, L]
        per_value = tf.matmul(h, self.v.value, transpose_b=True)  # [b, M]
        if self.b is not None:
            per_value += self.b.value
        scores = 0.0
        for slot in range(self.max_values):
            scores += tf.gather(per_value, tf.maximum(indices[:, slot], 0), axis=1) * weights[:, slot]
        return scores

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "n_values": self.n_values,
                "max_values": self.max_values, "dim": self.dim, "bias": self.bias}
