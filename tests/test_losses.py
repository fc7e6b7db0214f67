import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_gru4rec import losses

B, S = 5, 4


def sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def softmax(x, mask):
    z = np.where(mask, x, -np.inf)
    z = z - z.max()
    e = np.where(mask, np.exp(z), 0)
    return e / e.sum()


def logsumexp(x, mask):
    m = x[mask].max()
    return m + np.log(np.exp(x[mask] - m).sum())


def reference(name, scores, valid, log_q, logq=0.0, bpreg=1.0, elu_param=0.0):
    """The spec's formulas, row by row in float64."""
    col = np.r_[valid, np.ones(S, bool)]
    total = 0.0
    for i in np.flatnonzero(valid):
        r = scores[i].astype(np.float64)
        neg = col.copy()
        neg[i] = False
        if name == "cross-entropy":
            r = r - logq * log_q
            total += logsumexp(r, col) - r[i]
        elif name == "bpr-max":
            if elu_param:
                r = np.where(r > 0, r, elu_param * np.expm1(np.minimum(r, 0)))
            s = softmax(r, neg)
            total += -np.log((s * sigmoid(r[i] - r))[neg].sum() + 1e-24) + bpreg * (s * r**2)[neg].sum()
        elif name == "top1-max":
            s = softmax(r, neg)
            total += (s * (sigmoid(r - r[i]) + sigmoid(r**2)))[neg].sum()
        elif name == "bpr":
            total += np.mean(np.logaddexp(0, r[col] - r[i]))  # -log sigmoid(r_pos - r_j)
        elif name == "top1":
            n = col.sum()
            total += (sigmoid(r[col] - r[i]) + sigmoid(r[col] ** 2)).sum() / n - sigmoid(r[i] ** 2) / n
    return total / B


def numeric_grad(f, x, h):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


CASES = [
    ("cross-entropy", {"logq": 0.0}),
    ("cross-entropy", {"logq": 1.0}),
    ("bpr-max", {"bpreg": 1.5, "elu_param": 0.0}),
    ("bpr-max", {"bpreg": 0.5, "elu_param": 1.0}),
    ("top1-max", {}),
    ("bpr", {}),
    ("top1", {}),
]


def make_loss(name, kw):
    if name == "cross-entropy":
        return losses.CrossEntropy(**kw)
    if name == "bpr-max":
        return losses.BPRMax(**kw)
    return losses.get(name)


@pytest.mark.parametrize("name, kw", CASES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("masked", [False, True])
def test_loss_value_and_gradient_match_numpy(name, kw, scale, masked):
    rng = np.random.default_rng(zlib.crc32(f"{name}{kw}{scale}{masked}".encode()))  # not hash(): salted per run
    if scale == 1.0:
        scores = rng.normal(size=(B, B + S))
    else:  # extreme scores, exactly representable in float32
        scores = rng.choice([-1.0, -0.5, 0.25, 1.0], size=(B, B + S)) * scale
    valid = np.array([True, False, True, True, False]) if masked else np.ones(B, bool)
    log_q = rng.uniform(0, 5, size=B + S)
    loss = make_loss(name, kw)
    y_true = {"row_mask": valid, "column_mask": np.r_[valid, np.ones(S, bool)], "log_q": log_q}
    x = tf.Variable(scores.astype(np.float32))
    with tf.GradientTape() as tape:
        value = loss(y_true, x)
    grad = tape.gradient(value, x).numpy()
    ref = reference(name, scores, valid, log_q, **kw)
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad))
    # At |score| = 1e4 one float32 ulp of an intermediate is ~1e-3: that bounds the value's error.
    np.testing.assert_allclose(value.numpy(), ref, rtol=1e-5, atol=max(2e-3, 1e-5 * abs(ref)) if scale > 1 else 1e-6)
    ref_grad = numeric_grad(lambda s: reference(name, s, valid, log_q, **kw), scores, 1e-4 if scale == 1 else 1e-2)
    np.testing.assert_allclose(grad, ref_grad, atol=2e-4, rtol=2e-3)
    if masked:  # inactive rows and their target columns take no gradient
        assert np.all(grad[~valid] == 0) and np.all(grad[:, :B][:, ~valid] == 0)


def test_sum_over_active_rows_divided_by_configured_batch():
    scores = np.zeros((B, B + S), np.float32)
    valid = np.array([True, True, False, False, False])
    y = {"row_mask": valid, "column_mask": np.r_[valid, np.ones(S, bool)]}
    # Each active row: log(M + S) with M = 2 usable in-batch columns.
    assert np.isclose(losses.CrossEntropy()(y, scores).numpy(), 2 * np.log(2 + S) / B)


def test_accidental_hits_are_kept():
    scores = np.zeros((B, B + S), np.float32)
    scores[0, B] = 3.0  # extra sample equal to row 0's target would still count as negative
    y = {"row_mask": np.ones(B, bool), "column_mask": np.ones(B + S, bool)}
    value = losses.TOP1Max()(y, scores).numpy()
    ref = reference("top1-max", scores.astype(np.float64), np.ones(B, bool), np.zeros(B + S))
    assert np.isclose(value, ref, rtol=1e-6)


@pytest.mark.parametrize("name, kw", CASES)
def test_config_round_trip(name, kw):
    loss = make_loss(name, kw)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="bpreg"):
        losses.BPRMax(bpreg=-1)
    with pytest.raises(ValueError, match="logq"):
        losses.CrossEntropy(logq=-0.5)
    with pytest.raises(ValueError, match="Unknown loss 'xe'"):
        losses.get("xe")


@pytest.mark.parametrize("name, kw", CASES)
@pytest.mark.parametrize("scale", [1e8, 1e19, 1e20, 1e30])
def test_losses_are_finite_with_finite_gradients_for_huge_scores(name, kw, scale):
    """Spec section 4: no NaN or inf for any finite scores (BPR-max was NaN from ~1e19 on:
    softmax * r^2 became 0 * inf)."""
    rng = np.random.default_rng(zlib.crc32(f"{name}{kw}{scale}".encode()))
    scores = rng.choice([-1.0, -0.5, 0.25, 1.0], size=(B, B + S)) * scale
    valid = np.array([True, False, True, True, True])
    y_true = {"row_mask": valid, "column_mask": np.r_[valid, np.ones(S, bool)],
              "log_q": rng.uniform(0, 5, size=B + S)}
    x = tf.Variable(scores.astype(np.float32))
    with tf.GradientTape() as tape:
        value = make_loss(name, kw)(y_true, x)
    grad = tape.gradient(value, x).numpy()
    assert np.isfinite(value.numpy()) and value.numpy() >= 0, value.numpy()
    assert np.all(np.isfinite(grad)), grad
    if scale == 1e8:  # still representable: the value is the spec's, not a cap
        ref = reference(name, scores, valid, y_true["log_q"], **kw)
        np.testing.assert_allclose(value.numpy(), ref, rtol=1e-4)


@pytest.mark.parametrize("reduction", ["sum", "mean_with_sample_weight", "none", None])
def test_only_the_spec_reduction_is_accepted(reduction):
    """The step loss is the sum over active rows / B (and 1 / replicas under a strategy);
    Keras' "sum" would silently drop both."""
    with pytest.raises(ValueError, match=f"^`reduction`={reduction!r}: .*sum over the active rows / B"):
        losses.CrossEntropy(reduction=reduction)
