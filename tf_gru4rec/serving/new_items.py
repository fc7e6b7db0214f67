"""New items in an exported model: spare catalogue rows that `add_items` fills at serving time.

A model with item features scores an item by its id part plus its features' part. An item
added after training has no trained id part: in the export it takes a spare row whose id
part is zero, so it is scored by its features alone (what id dropout trains). Its features
arrive as text tokens, `column=value` (`brand=acme`, one token per value of a multi-valued
column) or `column=number` for a numeric column, and are encoded in the graph exactly as
`FeatureEncoder.encode` encodes them (vocabularies, bucket edges), so a client needs
neither Python nor this package.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.training.warm_start import item_tables

#: A number as `tf.strings.to_number` reads it (no spaces, no inf or nan).
NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def with_spare_rows(model: GRU4Rec, spare: int) -> GRU4Rec:
    """A copy of `model` (with item features) with `spare` more item rows after its N:
    their id part (Wy, By, a separate E) zero and no feature values, every other weight
    the model's. Scores of the first N items are unchanged."""
    n = model.n_items
    grown = GRU4Rec(n_items=n + spare, layers=model.layer_sizes, embedding=model.embedding,
                    batch_size=model.batch_size, seed=model.seed, item_features=dict(model.item_features),
                    name=model.name)
    tables = {id(v) for v in item_tables(grown)}
    sources = {v.path: v for v in model.trainable_weights}
    for target in grown.trainable_weights:
        value = sources[target.path].numpy()
        if id(target) in tables:
            value = np.concatenate([value, np.zeros((spare, *value.shape[1:]), value.dtype)])
        target.assign(value)
    for source, target in zip(model.feature_layers, grown.feature_layers, strict=True):
        values = source.item_values.numpy()
        target.item_values.assign(np.concatenate([values, np.full((spare, values.shape[1]), -1, values.dtype)]))
    return grown


class FeatureTokens(tf.Module):
    """`column=value` tokens -> global feature-value indices, in the graph (the encoder's
    vocabularies for categorical and multi columns, its bucket edges for numeric ones).
    Unknown tokens, and values unseen in training, map to -1; "" is padding."""

    def __init__(self, encoder):
        super().__init__(name="feature_tokens")
        offsets = encoder.column_offsets
        keys, values = [], []
        self.numeric = []  # (column prefix, offset, edges)
        for c in encoder.columns:
            if c in encoder.edges:
                self.numeric.append((f"{c}=", offsets[c], [float(e) for e in encoder.edges[c]]))
                continue
            for j, v in enumerate(encoder.vocabularies[c]):
                keys.append(f"{c}={v}")
                values.append(offsets[c] + j)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys or [""], tf.string),
                                                tf.constant(values or [-1], tf.int64)), default_value=-1)

    def __call__(self, tokens):
        """tokens string [n, T] -> value indices int64 [n, T], -1 where none."""
        index = self.table.lookup(tokens)
        for prefix, offset, edges in self.numeric:
            # A token of the column that is no finite number is an unknown value.
            is_column = tf.strings.regex_full_match(tokens, re.escape(prefix) + NUMBER)
            text = tf.where(is_column, tf.strings.regex_replace(tokens, "^" + re.escape(prefix), ""), "0")
            # Bucket k holds edges[k-1] <= x < edges[k], as np.searchsorted(..., side="right").
            bucket = tf.raw_ops.Bucketize(input=tf.strings.to_number(text, tf.float64), boundaries=edges)
            index = tf.where(is_column, tf.cast(bucket, tf.int64) + offset, index)
        return index
