"""GRU4Rec's losses on the sampled score matrix.

Every loss takes the score matrix of one step, `y_pred` [B, B + S]: row i scores the
targets of all B rows (in-batch negatives) then the S extra negatives; the positive of
row i is on the diagonal, column i. `y_true` describes the columns and rows:

    {"row_mask": [B] (row active), "column_mask": [B + S] (column usable: the targets of
     inactive rows are no one's negatives), "log_q": [B + S] (log sampling probability,
     used by the logQ correction of `CrossEntropy`; optional)}

The per-row losses of inactive rows are 0 and the reduction divides the sum by the
configured batch size B (not by the number of active rows), as the reference does, and by
the number of replicas under a tf.distribute strategy; no other reduction is offered.
Accidental hits (a negative equal to the positive) are kept, as in the reference.
All losses are finite, with finite gradients, for any finite scores.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Keras' "sum_over_batch_size" divides the sum of the [B] row losses by B and scales it by
# 1 / replicas: the spec's step loss. "sum" would silently drop both.
_REDUCTION = "sum_over_batch_size"


def masked_logsumexp(x, mask):
    """log sum_j exp(x_j) over mask per row; -inf-free (rows with no column give -1e30)."""
    m = tf.reduce_max(tf.where(mask, x, tf.float32.min), axis=1, keepdims=True)
    m = tf.stop_gradient(m)
    s = tf.reduce_sum(tf.where(mask, tf.exp(tf.where(mask, x - m, 0.0)), 0.0), axis=1)
    return tf.where(s > 0, tf.math.log(tf.maximum(s, 1e-30)) + m[:, 0], -1e30)


def masked_softmax(x, mask):
    """Softmax over the masked columns of each row; zeros elsewhere (and on empty rows)."""
    m = tf.stop_gradient(tf.reduce_max(tf.where(mask, x, tf.float32.min), axis=1, keepdims=True))
    e = tf.where(mask, tf.exp(tf.where(mask, x - m, 0.0)), 0.0)
    return e / tf.maximum(tf.reduce_sum(e, axis=1, keepdims=True), 1e-30)


class GRU4RecLoss(keras.losses.Loss):
    """Base of the GRU4Rec losses: masking, the diagonal positives and the reduction.

    Subclasses implement `row_loss(scores, positives, negative_mask, column_mask, log_q)`
    returning the loss of every row, [B].
    """

    def __init__(self, name=None, reduction=_REDUCTION, dtype=None):
        if reduction != _REDUCTION:
            raise ValueError(
                f"`reduction`={reduction!r}: GRU4Rec losses reduce only as the spec does, the "
                f"sum over the active rows / B (and / replicas under a strategy), {_REDUCTION!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        scores = tf.convert_to_tensor(y_pred)
        n_rows = tf.shape(scores)[0]
        row_mask = tf.cast(y_true["row_mask"], tf.bool)
        column_mask = tf.cast(y_true["column_mask"], tf.bool)
        log_q = y_true.get("log_q")
        log_q = tf.zeros_like(scores[0]) if log_q is None else tf.cast(log_q, scores.dtype)
        diagonal = tf.eye(n_rows, tf.shape(scores)[1], dtype=tf.bool)
        column_mask = tf.broadcast_to(column_mask[None, :], tf.shape(scores))
        negative_mask = column_mask & ~diagonal
        positives = tf.linalg.diag_part(scores)
        per_row = self.row_loss(scores, positives, negative_mask, column_mask, log_q)
        return tf.where(row_mask, per_row, 0.0)

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        raise NotImplementedError


