"""The five GRU4Rec losses on one base (`GRU4RecLoss`, see `losses.base` for the contract):
cross-entropy with logQ, BPR-max and TOP1-max (CIKM 2018), BPR and TOP1 (ICLR 2016)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gru4rec.losses.base import GRU4RecLoss, masked_logsumexp, masked_softmax

_LOG_EPS = -55.262042231857095  # log(1e-24), the reference's epsilon inside BPR-max's log
# BPR-max's regulariser bpreg * sum_j s_j r_j^2 passes float32's range from |r| ~ 1e19 on:
# it is computed in float64 and capped here, far enough below float32's maximum (3.4e38) that
# the row losses' sum and gradients stay finite too.
_MAX_REGULARISER = 1e30


@keras.saving.register_keras_serializable("tf_gru4rec")
class CrossEntropy(GRU4RecLoss):
    """Softmax cross-entropy of the positive, in log-sum-exp form.

    loss = logsumexp_j(r_j) - r_pos over the usable columns, with the logQ correction
    r_j = score_j - logq * log q_j when `logq` > 0 (training only; q from the sampler).
    Exact for any finite scores (no +1e-24 cap).
    """

    def __init__(self, logq: float = 0.0, **kwargs):
        if logq < 0:
            raise ValueError(f"`logq` should be >= 0. Received: `logq` = {logq}.")
        super().__init__(**kwargs)
        self.logq = float(logq)

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        if self.logq:
            scores = scores - self.logq * log_q[None, :]
            positives = tf.linalg.diag_part(scores)
        return masked_logsumexp(scores, column_mask) - positives

    def get_config(self):
        return {**super().get_config(), "logq": self.logq}


def _apply_elu(scores, elu_param):
    """ELU with parameter `elu_param` (0 = identity), GRU4Rec's final activation for BPR-max."""
    if not elu_param:
        return scores
    return tf.where(scores > 0, scores, elu_param * tf.math.expm1(tf.minimum(scores, 0.0)))


@keras.saving.register_keras_serializable("tf_gru4rec")
class BPRMax(GRU4RecLoss):
    """BPR-max: -log(sum_j s_j sigmoid(r_pos - r_j) + 1e-24) + bpreg * sum_j s_j r_j^2.

    s_j = softmax over the negative scores only (the positive excluded). Scores first go
    through ELU(`elu_param`) (0 = linear). The log is evaluated in log space, which has the
    same value and keeps gradients for extreme scores; the regulariser in float64, capped
    at 1e30 per row (reached only by |scores| beyond ~1e15: a diverged model).
    """

    def __init__(self, bpreg: float = 1.0, elu_param: float = 0.5, **kwargs):
        if bpreg < 0 or elu_param < 0:
            raise ValueError(
                f"`bpreg` and `elu_param` should be >= 0. Received: `bpreg` = {bpreg}, "
                f"`elu_param` = {elu_param}."
            )
        super().__init__(**kwargs)
        self.bpreg = float(bpreg)
        self.elu_param = float(elu_param)

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        scores = _apply_elu(scores, self.elu_param)
        positives = tf.linalg.diag_part(scores)
        log_softmax = scores - masked_logsumexp(scores, negative_mask)[:, None]
        log_terms = log_softmax - tf.nn.softplus(scores - positives[:, None])  # log s_j sigma()
        log_sum = masked_logsumexp(log_terms, negative_mask)
        log_sum = tf.reduce_logsumexp(tf.stack([log_sum, tf.fill(tf.shape(log_sum), _LOG_EPS)]), 0)
        return -log_sum + _regulariser(scores, negative_mask, self.bpreg)

    def get_config(self):
        return {**super().get_config(), "bpreg": self.bpreg, "elu_param": self.elu_param}


def _regulariser(scores, negative_mask, bpreg):
    """bpreg * sum_j s_j r_j^2 per row, s = softmax over the negatives: in float64 (r^2 of
    any float32 is finite there), capped at `_MAX_REGULARISER` before returning to float32."""
    wide = tf.cast(scores, tf.float64)
    reg = tf.reduce_sum(masked_softmax(wide, negative_mask) * tf.square(wide), axis=1)
    return tf.cast(tf.minimum(bpreg * reg, _MAX_REGULARISER), scores.dtype)


@keras.saving.register_keras_serializable("tf_gru4rec")
class TOP1Max(GRU4RecLoss):
    """TOP1-max: sum_j s_j (sigmoid(r_j - r_pos) + sigmoid(r_j^2)), s = softmax over negatives."""

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        softmax = masked_softmax(scores, negative_mask)
        terms = tf.sigmoid(scores - positives[:, None]) + tf.sigmoid(tf.square(scores))
        return tf.reduce_sum(softmax * terms, axis=1)


@keras.saving.register_keras_serializable("tf_gru4rec")
class BPR(GRU4RecLoss):
    """BPR as in the 2016 paper's eq. (5): mean_j -log sigmoid(r_pos - r_j).

    The mean runs over all usable columns of the row (M + S), the positive's own column
    included (it adds the constant log 2 / (M + S)). The Theano code sums instead of
    averaging, which only rescales the learning rate.
    """

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        terms = tf.nn.softplus(scores - positives[:, None])
        n = tf.reduce_sum(tf.cast(column_mask, scores.dtype), axis=1)
        return tf.reduce_sum(tf.where(column_mask, terms, 0.0), axis=1) / tf.maximum(n, 1.0)


@keras.saving.register_keras_serializable("tf_gru4rec")
class TOP1(GRU4RecLoss):
    """TOP1: mean_j (sigmoid(r_j - r_pos) + sigmoid(r_j^2)) - sigmoid(r_pos^2) / (M + S).

    The mean runs over all usable columns; the positive's own regulariser is taken back out.
    """

    def row_loss(self, scores, positives, negative_mask, column_mask, log_q):
        terms = tf.sigmoid(scores - positives[:, None]) + tf.sigmoid(tf.square(scores))
        n = tf.maximum(tf.reduce_sum(tf.cast(column_mask, scores.dtype), axis=1), 1.0)
        total = tf.reduce_sum(tf.where(column_mask, terms, 0.0), axis=1)
        return (total - tf.sigmoid(tf.square(positives))) / n


LOSSES = {
    "cross-entropy": CrossEntropy,
    "bpr-max": BPRMax,
    "top1-max": TOP1Max,
    "bpr": BPR,
    "top1": TOP1,
}


def get(name: str, **params) -> GRU4RecLoss:
    """A loss by its reference name ('cross-entropy', 'bpr-max', 'top1-max', 'bpr', 'top1')."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}. Expected one of {sorted(LOSSES)}.")
    return LOSSES[name](**params)
