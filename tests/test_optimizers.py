import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_gru4rec.optimizers import AdagradM

LR, EPS = 0.1, 1e-6


def reference_sparse(state, rows, g, momentum):
    """The official PyTorch port's rule: sum the slices of a row, then update it once."""
    p, acc, vel = (x.copy() for x in state)
    uniq, inv = np.unique(rows, return_inverse=True)
    G = np.zeros((len(uniq),) + g.shape[1:])
    np.add.at(G, inv, g)
    p[uniq], acc[uniq], vel[uniq] = reference_dense(p[uniq], acc[uniq], vel[uniq], G, momentum)
    return p, acc, vel


def reference_dense(p, acc, vel, g, momentum):
    acc = acc + g * g
    step = LR * g / np.sqrt(acc + EPS)
    if momentum:
        vel = momentum * vel - step
        return p + vel, acc, vel
    return p - step, acc, vel


@pytest.mark.parametrize("momentum", [0.0, 0.3])
@pytest.mark.parametrize("jit", [False, True])
def test_matches_numpy_over_steps_with_repeated_rows(momentum, jit):
    rng = np.random.default_rng(0)
    table0 = rng.normal(size=(12, 3)).astype(np.float32)
    dense0 = rng.normal(size=(2, 3)).astype(np.float32)
    table, dense = keras.Variable(table0), keras.Variable(dense0)
    opt = AdagradM(learning_rate=LR, momentum=momentum)
    opt.build([table, dense])

    def apply(rows, g_rows, g_dense):
        opt.apply([tf.IndexedSlices(g_rows, rows, tf.constant([12, 3])), g_dense], [table, dense])

    apply_fn = tf.function(apply, jit_compile=True) if jit else apply
    ref = [table0.astype(np.float64), np.zeros((12, 3)), np.zeros((12, 3))]
    ref_d = [dense0.astype(np.float64), np.zeros((2, 3)), np.zeros((2, 3))]
    touched = set()
    for _ in range(5):
        rows = rng.choice([1, 1, 4, 7, 7, 7, 9], size=6).astype(np.int32)  # repeats, unsorted
        touched |= set(rows.tolist())
        g = rng.normal(size=(6, 3)).astype(np.float32)
        gd = rng.normal(size=(2, 3)).astype(np.float32)
        apply_fn(tf.constant(rows), tf.constant(g), tf.constant(gd))
        ref = reference_sparse(ref, rows, g.astype(np.float64), momentum)
        ref_d = reference_dense(*ref_d, gd.astype(np.float64), momentum)
    np.testing.assert_allclose(table.numpy(), ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense.numpy(), ref_d[0], rtol=1e-5, atol=1e-6)
    untouched = sorted(set(range(12)) - touched)
    assert untouched
    np.testing.assert_array_equal(table.numpy()[untouched], table0[untouched])  # bit-identical
    i = opt._get_variable_index(table)
    np.testing.assert_array_equal(opt._accumulators[i].numpy()[untouched], 0.0)
    if momentum:
        np.testing.assert_array_equal(opt._velocities[i].numpy()[untouched], 0.0)


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_zero_gradient_repeats_of_a_row_change_nothing(momentum):
    """The model pads each step's sorted, deduplicated rows by repeating the last row with
    zero gradient; the result must equal the update on the distinct rows alone."""
    rng = np.random.default_rng(1)
    t0 = rng.normal(size=(6, 2)).astype(np.float32)
    a, b = keras.Variable(t0), keras.Variable(t0)
    opt_a, opt_b = AdagradM(LR, momentum=momentum), AdagradM(LR, momentum=momentum)
    opt_a.build([a])
    opt_b.build([b])
    for _ in range(3):
        g = rng.normal(size=(3, 2)).astype(np.float32)
        opt_a.apply([tf.IndexedSlices(g, tf.constant([0, 2, 4]))], [a])
        padded = np.concatenate([g, np.zeros((3, 2), np.float32)])
        opt_b.apply([tf.IndexedSlices(padded, tf.constant([0, 2, 4, 4, 4, 4]))], [b])
    # Equal up to the last bit of float32: TensorFlow 2.21's vectorised rsqrt rounds an element
    # differently by its lane, and the padded update has more elements (seen: 1 ulp).
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-7, atol=0)


def test_config_and_validation():
    opt = AdagradM(learning_rate=0.2, momentum=0.4)
    again = AdagradM.from_config(opt.get_config())
    assert again.momentum == 0.4 and np.isclose(float(again.learning_rate), 0.2)
    with pytest.raises(ValueError, match="momentum"):
        AdagradM(momentum=1.0)


@pytest.mark.parametrize("jit", [False, True])
def test_slices_at_row_minus_one_are_padding_and_touch_nothing(jit):
    """The model marks padding slices (inactive rows, steps that touch no item) as row -1:
    they change no row's value, accumulator or velocity, wherever they sit among the slices
    and whatever their values; the real slices update as without them."""
    rng = np.random.default_rng(2)
    t0 = rng.normal(size=(5, 2)).astype(np.float32)
    a, b = keras.Variable(t0), keras.Variable(t0)
    opt_a, opt_b = AdagradM(LR, momentum=0.5), AdagradM(LR, momentum=0.5)
    opt_a.build([a])
    opt_b.build([b])
    apply_a = tf.function(lambda g, r: opt_a.apply([tf.IndexedSlices(g, r)], [a]), jit_compile=jit)
    apply_b = tf.function(lambda g, r: opt_b.apply([tf.IndexedSlices(g, r)], [b]), jit_compile=jit)
    g0 = rng.normal(size=(5, 2)).astype(np.float32)
    for apply in (apply_a, apply_b):  # every row gets a velocity that momentum would move
        apply(tf.constant(g0), tf.constant(np.arange(5, dtype=np.int32)))
    g = rng.normal(size=(2, 2)).astype(np.float32)
    apply_a(tf.constant(g), tf.constant([3, 1], np.int32))
    noise = rng.normal(size=(3, 2)).astype(np.float32)
    apply_b(tf.constant(np.r_[noise[:1], g[:1], noise[1:2], g[1:], noise[2:]]),
            tf.constant([-1, 3, -1, 1, -1], np.int32))
    slots = lambda opt, v: [x.numpy() for x in opt.slots(v).values()]  # noqa: E731
    for x, y in zip([a.numpy(), *slots(opt_a, a)], [b.numpy(), *slots(opt_b, b)]):
        np.testing.assert_array_equal(x, y)
    before = [b.numpy(), *slots(opt_b, b)]
    apply_b(tf.constant(noise), tf.constant([-1, -1, -1], np.int32))  # a step of padding only
    for x, y in zip(before, [b.numpy(), *slots(opt_b, b)]):
        np.testing.assert_array_equal(x, y)
