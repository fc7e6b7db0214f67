"""Item tables: the output table that scores (and, shared, embeds) items; a separate input table.

Either may add an item's feature part (`ItemFeatureEmbedding`) to its id part. Notation:
N = items, d = units of the last GRU layer, U = rows a training step touches.
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

    With `features` an item's vector is Wy[i] + its pooled feature vector, and its bias
    by[i] + its pooled feature bias, on both sides.

    Args:
        n_items: N.
        units: d.
        seed: seed of Wy's initialisation (by starts at zero).
        features: an `ItemFeatureEmbedding` of width d with biases, or None.
    """

    def __init__(self, n_items, units, seed=None, features=None, **kwargs):
        kwargs.setdefault("name", "item_table")
        super().__init__(**kwargs)
        self.n_items, self.units, self.seed = int(n_items), int(units), seed
        self.features = _checked_features(features, self.n_items, self.units, bias=True)
        N, d = self.n_items, self.units
        self.wy = self.add_weight(shape=(N, d), initializer=uniform(N, d, seed), name="wy")
        self.by = self.add_weight(shape=(N,), initializer="zeros", name="by")
        self.built = True

    def embed(self, items):
        """Item indices [b] -> their vectors [b, d] (the shared input embedding)."""
        return self.gather(items)[0]

    def gather(self, items):
        """Vectors [U, d] and biases [U] of item indices [U] (-1: padding, reads row 0)."""
        (vectors, biases), features = self.gather_parts(items)
        return (vectors, biases) if features is None else (vectors + features[0], biases + features[1])

    def gather_parts(self, items):
        """The id part (vectors [U, d], biases [U]) and the feature part (the same, or None)
        of item indices [U], each table gathered once per step so that its gradient reaches
        the optimizer as one slice per row (per item and value for the feature tables)."""
        ids = tf.maximum(items, 0)
        return (rows(self.wy, ids), rows(self.by, ids)), None if self.features is None else self.features(items)

    def call(self, h):
        """Scores of all N items for outputs h [b, d] -> [b, N]."""
        scores = tf.matmul(h, self.wy, transpose_b=True) + self.by
        return scores if self.features is None else scores + self.features.score_all(h)

    def score_items(self, h, items):
        """Scores of given item indices [b, C] for h [b, d] -> [b, C]: reads only those rows
        (re-ranking, not a catalogue pass), with the formula of `call`."""
        if self.features is None:
            return tf.einsum("bd,bcd->bc", h, tf.gather(self.wy, items)) + tf.gather(self.by, items)
        vectors, biases = self.gather(tf.reshape(items, [-1]))
        vectors = tf.reshape(vectors, tf.concat([tf.shape(items), [self.units]], 0))
        return tf.einsum("bd,bcd->bc", h, vectors) + tf.reshape(biases, tf.shape(items))

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "units": self.units, "seed": self.seed,
                "features": keras.saving.serialize_keras_object(self.features)}


@keras.saving.register_keras_serializable("tf_gru4rec")
class ItemEmbedding(Layer):
    """A separate input embedding E [N, dim]: item indices [b] -> rows [b, dim].

    Unlike `keras.layers.Embedding` it gathers without reading the whole table (`rows`).
    With `features` (an `ItemFeatureEmbedding` of width dim) an item's input is E[i] plus
    its pooled feature vector.
    """

    def __init__(self, n_items, dim, seed=None, features=None, **kwargs):
        kwargs.setdefault("name", "item_embedding")
        super().__init__(**kwargs)
        self.n_items, self.dim, self.seed = int(n_items), int(dim), seed
        self.features = _checked_features(features, self.n_items, self.dim, bias=False)
        self.e = self.add_weight(shape=(self.n_items, self.dim),
                                 initializer=uniform(self.n_items, self.dim, seed), name="e")
        self.built = True

    def call(self, items):
        vectors = rows(self.e, items)
        return vectors if self.features is None else vectors + self.features(items)[0]

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "dim": self.dim, "seed": self.seed,
                "features": keras.saving.serialize_keras_object(self.features)}


def _checked_features(features, n_items, dim, bias):
    """The feature part of a table: None, or an `ItemFeatureEmbedding` (or its config) that
    fits N, the table's width and whether the table scores (biases)."""
    if features is None:
        return None
    if isinstance(features, dict):
        features = keras.saving.deserialize_keras_object(features)
    if (features.n_items, features.dim, features.bias) != (n_items, dim, bias):
        raise ValueError(f"item features for {features.n_items} items of width {features.dim} (bias "
                         f"{features.bias}) do not fit a table of {n_items} items of width {dim} "
                         f"(bias {bias})")
    return features
