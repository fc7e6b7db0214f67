import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from gru4rec_reference import reference_name

from tf_gru4rec.data.batcher import SessionParallelBatcher
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.schedule import session_parallel_schedule
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.layers.gru import GRUCell
from tf_gru4rec.losses import CrossEntropy
from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.optimizers import AdagradM
from tf_gru4rec.serving.recommender import Recommender


def small_model(embedding="shared", layers=(8, 6), n_items=15, **kw):
    return GRU4Rec(n_items=n_items, layers=list(layers), embedding=embedding, batch_size=4, seed=3, **kw)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_gru_cell_equations():
    cell = GRUCell(3, 2, seed=0)
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    cell.b.assign(rng.normal(size=9).astype(np.float32))
    wx, wh, b = cell.wx.numpy(), cell.wh.numpy(), cell.b.numpy()
    xp = x @ wx + b
    r = sigmoid(xp[:, :3] + h @ wh[:, :3])
    z = sigmoid(xp[:, 3:6] + h @ wh[:, 3:6])
    c = np.tanh(xp[:, 6:] + (r * h) @ wh[:, 6:])
    np.testing.assert_allclose(cell(x, h).numpy(), (1 - z) * h + z * c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("embedding, shapes", [
    ("shared", {"wy": (15, 6), "by": (15,), "gru_0/wx": (6, 24)}),
    ("none", {"wy": (15, 6), "gru_0/wx": (15, 24)}),
    (5, {"wy": (15, 6), "e": (15, 5), "gru_0/wx": (5, 24)}),
])
def test_embedding_modes_and_config_round_trip(embedding, shapes):
    model = small_model(embedding)
    weights = {reference_name(w.path): tuple(w.shape) for w in model.weights}
    for name, shape in shapes.items():
        assert weights[name] == shape, weights
    assert weights["gru_1/wx"] == (8, 18)
    assert model.state_size == 14
    again = GRU4Rec.from_config(model.get_config())
    assert again.get_config() == model.get_config()


@pytest.mark.parametrize("embedding", ["shared", "none", 40])
def test_init_is_per_gate_with_the_spec_bound(embedding):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) per gate sub-matrix ([in, d], not the whole
    [in, 3d] matrix, whose bound would be about 30% smaller here); biases and By zero."""
    n_items, d0, d1 = 300, 64, 48
    model = GRU4Rec(n_items=n_items, layers=[d0, d1], embedding=embedding, batch_size=2, seed=4)
    w = {reference_name(v.path): v.numpy() for v in model.weights}
    layer0_in = {"shared": d1, "none": n_items, 40: 40}[embedding]
    matrices = {"wy": (n_items, d1)}
    if embedding == 40:
        matrices["e"] = (n_items, 40)
    for name, fan_in, d in [("gru_0", layer0_in, d0), ("gru_1", d0, d1)]:
        for gate in range(3):
            matrices[f"{name}/wx[{gate}]"] = (fan_in, d)
            matrices[f"{name}/wh[{gate}]"] = (d, d)
        assert not w[f"{name}/b"].any()
    assert not w["by"].any()
    for key, (fan_in, fan_out) in matrices.items():
        name, _, gate = key.partition("[")
        values = w[name] if not gate else w[name][:, int(gate[0]) * fan_out:(int(gate[0]) + 1) * fan_out]
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        assert values.shape == (fan_in, fan_out), key
        assert np.abs(values).max() <= bound, key
        assert np.abs(values).max() > 0.97 * bound, key  # uses the whole range
        assert np.std(values) == pytest.approx(bound / np.sqrt(3), rel=0.06), key  # uniform


def run_session_alone(model, items):
    state = model.initial_state(1)
    outs = []
    for it in items:
        state, h = model.step(tf.constant([it]), state)
        outs.append(model.score_all(h).numpy()[0])
    return np.array(outs)


@pytest.mark.parametrize("embedding", ["shared", "none", 4])
def test_scores_do_not_depend_on_slot_or_predecessor(embedding):
    """Session-parallel inference (any batch size, any neighbours) equals each session alone."""
    model = small_model(embedding)
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 6, size=9)
    items = rng.integers(0, 15, size=lengths.sum()).astype(np.int32)
    offsets = np.r_[0, np.cumsum(lengths)]
    alone = {s: run_session_alone(model, items[offsets[s]:offsets[s + 1] - 1]) for s in range(9)}
    for batch_size in (1, 3, 5):
        sched = session_parallel_schedule(offsets, batch_size)
        state = model.initial_state(batch_size)
        for t in range(sched.n_steps):
            pos = sched.position[t]
            state = tf.where(sched.reset[t][:, None], 0.0, state)
            state, h = model.step(tf.constant(items[np.maximum(pos, 0)]), state)
            scores = model.score_all(h).numpy()
            for slot in np.flatnonzero(pos >= 0):
                s = int(np.searchsorted(offsets, pos[slot], side="right") - 1)
                np.testing.assert_allclose(scores[slot], alone[s][pos[slot] - offsets[s]], rtol=1e-5, atol=1e-6)


def toy_data(n_sessions=12, n_items=10, seed=0):
    rng = np.random.default_rng(seed)
    rows, t = [], 0
    for s in range(n_sessions):
        for _ in range(rng.integers(2, 6)):
            rows.append((s, 100 + int(rng.integers(n_items)), t))
            t += 1
    return SessionData.from_frame(pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"]))


@pytest.mark.parametrize("embedding", ["shared", 4, "none"])
def test_training_resets_state_at_session_start(embedding):
    """After a block, each slot's carried state equals its current session run alone from
    zero (learning rate ~0 so the weights stay put): the reset happens on time."""
    data = toy_data()
    model = GRU4Rec(item_ids=data.item_map.ids, layers=[5], embedding=embedding, batch_size=3, seed=1)
    model.compile(optimizer=AdagradM(1e-30), loss=CrossEntropy())
    batcher = SessionParallelBatcher(data, 3, n_sample=2, block_steps=7, inputs_in_rows=embedding == "shared")
    block = next(batcher.blocks())
    model.train_step({k: tf.constant(v) for k, v in block.items()})
    sched = batcher.schedule
    last = 6
    for slot in range(3):
        pos = sched.position[last, slot]
        s = int(np.searchsorted(data.offsets, pos, side="right") - 1)
        state = model.initial_state(1)
        for p in range(data.offsets[s], pos + 1):
            state, _ = model.step(tf.constant([data.items[p]]), state)
        np.testing.assert_allclose(model.train_state.numpy()[slot], state.numpy()[0], atol=1e-6)


def test_sampled_scores_equal_gathered_full_scores():
    data = toy_data()
    model = GRU4Rec(item_ids=data.item_map.ids, layers=[6], batch_size=3, seed=2)
    batcher = SessionParallelBatcher(data, 3, n_sample=4, block_steps=2, seed=0)
    block = next(batcher.blocks())
    batch = {k: tf.constant(v[0]) for k, v in block.items() if k != "n_steps"}
    state = model.initial_state(3)
    scores, new_state = model._sampled_scores(batch, state)
    ref_state, h = model.step(tf.constant(block["inputs"][0]), state)
    full = model.score_all(h).numpy()
    cols = np.r_[block["targets"][0], block["negatives"][0]]
    np.testing.assert_allclose(scores.numpy(), full[:, cols], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.numpy(), ref_state.numpy(), atol=1e-6)


@pytest.mark.parametrize("embedding", ["shared", "none"])
def test_training_touches_only_the_step_rows_of_the_item_tables(embedding):
    """Only the targets and samples are scored (never all N items), and one-hot input is a
    row lookup: the item tables' gradients are row slices of the step's rows, not dense."""
    data = toy_data()
    model = GRU4Rec(item_ids=data.item_map.ids, layers=[6], embedding=embedding, batch_size=3, seed=2)
    batcher = SessionParallelBatcher(data, 3, n_sample=4, block_steps=2, seed=0,
                                     inputs_in_rows=embedding == "shared")
    batch = {k: tf.constant(v[0]) for k, v in next(batcher.blocks()).items() if k != "n_steps"}
    tables = [model.item_table.wy, model.item_table.by] + ([model.gru.cells[0].wx] if embedding == "none" else [])
    with tf.GradientTape() as tape:
        scores, _ = model._sampled_scores(batch, model.initial_state(3))
        loss = tf.reduce_sum(scores)
    for table, grad in zip(tables, tape.gradient(loss, tables)):
        assert isinstance(grad, tf.IndexedSlices), table.path
        assert grad.values.shape[0] <= batcher.width, table.path


def test_output_of_state_and_score_items_match_step_and_score_all():
    model = small_model(layers=(8, 6))
    state, h = model.step(tf.constant([1, 4, 0]), model.initial_state(3))
    state, h = model.step(tf.constant([2, 2, 9]), state)
    np.testing.assert_array_equal(model.output_of(state).numpy(), h.numpy())
    items = np.array([[0, 14, 3], [5, 5, 1], [7, 2, 11]])
    full = model.score_all(h).numpy()
    np.testing.assert_allclose(model.score_items(h, tf.constant(items)).numpy(),
                               np.take_along_axis(full, items, axis=1), rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training_and_rate_is_drop_probability():
    model = small_model(dropout_p_hidden=0.75, layers=(2000,), n_items=3)
    u = tf.random.uniform([1, model._noise_width], seed=1)
    state, h = model._advance(model.embed(tf.constant([0])), model.initial_state(1), u)
    dropped = float(np.mean(h.numpy() == 0))
    assert 0.70 < dropped < 0.80  # rate 0.75 drops 75%, not keeps 75%
    s1, _ = model.step(tf.constant([0]), model.initial_state(1))
    s2, _ = model.step(tf.constant([0]), model.initial_state(1))
    np.testing.assert_array_equal(s1.numpy(), s2.numpy())
    assert float(np.mean(s1.numpy() == 0)) < 0.01


@pytest.mark.parametrize("ids", [np.arange(100, 115), np.array([f"item-{i}" for i in range(15)])])
def test_save_and_load_gives_identical_scores_and_item_map(tmp_path, ids):
    model = GRU4Rec(item_ids=ids, layers=[7], batch_size=4, seed=5, embedding=3)
    model.compile(optimizer=AdagradM(0.1, momentum=0.2), loss=CrossEntropy(logq=1.0))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.item_map.ids, ids)
    sessions = [list(ids[[1, 4, 2]]), list(ids[[9]])]
    a, b = Recommender(model).recommend(sessions, k=5), Recommender(loaded).recommend(sessions, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert isinstance(loaded.loss, CrossEntropy) and loaded.loss.logq == 1.0
    assert isinstance(loaded.optimizer, AdagradM) and loaded.optimizer.momentum == 0.2


def test_recommend_maps_ids_skips_unknown_and_excludes_seen():
    ids = np.arange(500, 515)
    model = GRU4Rec(item_ids=ids, layers=[6], batch_size=2, seed=7)
    (top, scores, report) = Recommender(model).recommend([[503, 999, 507], [12345], []], k=4)
    assert report["unknown"] == [[999], [12345], []] and report["empty"] == [1, 2]
    state = model.initial_state(1)
    for i in (3, 7):
        state, h = model.step(tf.constant([i]), state)
    full = model.score_all(h).numpy()[0]
    order = np.argsort(-full)[:4]
    np.testing.assert_array_equal(top[0], ids[order])
    np.testing.assert_allclose(scores[0], full[order], rtol=1e-6)
    np.testing.assert_allclose(scores[1], np.sort(model.item_table.by.numpy())[::-1][:4])
    top_x, _, _ = Recommender(model).recommend([[503, 507]], k=15, exclude_seen=True)
    assert 503 not in top_x[0][:13] and 507 not in top_x[0][:13]


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="embedding"):
        GRU4Rec(n_items=5, embedding="big")
    with pytest.raises(ValueError, match="dropout_p_hidden"):
        GRU4Rec(n_items=5, dropout_p_hidden=1.0)
    with pytest.raises(ValueError, match="GRU4RecLoss"):
        GRU4Rec(n_items=5).compile(loss=keras.losses.MeanSquaredError())
    with pytest.raises(ValueError, match="Unknown loss 'mse'"):
        GRU4Rec(n_items=5).compile(loss="mse")


# ----- one training step against an independent reference ------------------------------------
def reference_data():
    """Six sessions laid out in B=4 slots over 3 steps: all slots start at step 0; slots 1
    and 2 switch sessions at step 1 (resets mid-block); slots 2 and 3 are inactive at step 2.
    Few items, so the same item is input, target and sample within a step."""
    from gru4rec_reference import session_data

    return session_data([4, 2, 2, 3, 3, 2])


REFERENCE_CASES = {
    "xe-logq": dict(loss="cross-entropy", logq=1.0),
    "bprmax-elu": dict(loss="bpr-max", bpreg=0.7, elu_param=0.5),
    "bprmax-linear": dict(loss="bpr-max", bpreg=1.3, elu_param=0.0),
    "top1max": dict(loss="top1-max"),
    "bpr": dict(loss="bpr"),
    "top1": dict(loss="top1"),
}


def reference_features(item_map):
    """Features of the reference items: one item without any, one with three values, and a
    cold-start item (features, no clicks) after the known ones -> (ItemFeatures in model
    order, dense item x value weights A [N, M])."""
    import pandas as pd

    from tf_gru4rec.data.item_features import FeatureEncoder

    frame = pd.DataFrame({"ItemId": [*item_map.ids[1:], 99],
                          "brand": ["a", "b", "a", "c", "b", "c"][: len(item_map)],
                          "tags": ["x|y", "y", "", "x", "z|x", "y|z"][: len(item_map)]})
    encoder = FeatureEncoder.fit({c: [v or None for v in frame[c]] for c in ("brand", "tags")},
                                 {"brand": "categorical", "tags": "multi"}, "reference")
    features = encoder.encode(frame).align(item_map).features
    A = np.zeros((len(features), features.n_values))
    for i in range(len(features)):
        values = features.item_values(i)
        A[i, values] = 1.0 / max(len(values), 1)
    return features, A


@pytest.mark.parametrize("case, embedding, momentum, features", [
    *[(case, "shared", 0.3, False) for case in REFERENCE_CASES],
    ("xe-logq", 3, 0.3, False), ("xe-logq", "none", 0.3, False),
    ("xe-logq", "shared", 0.0, False),
    ("xe-logq", "shared", 0.3, True), ("bprmax-elu", "shared", 0.0, True), ("xe-logq", 3, 0.3, True),
    ("xe-logq", "shared", 0.3, 0.5), ("xe-logq", 3, 0.3, 0.5),  # features, id_dropout=0.5
    ("xe-logq", "none", 0.3, True), ("xe-logq", "none", 0.3, 0.5),  # one-hot input: output features
])
def test_training_equals_independent_reference(case, embedding, momentum, features):
    """`model.fit` (XLA-compiled `train_step`, blocks of 2 + 1 steps) leaves every weight,
    optimizer slot and the carried state where a plain dense re-computation of the spec puts
    them: full score matrix -> target and sample columns, masks, loss / B, dense gradients,
    AdagradM on touched item rows only. Both dropouts on, fed the same noise. With item
    features (random feature tables, a cold-start item) the vectors are id + pooled
    features on both sides, and only the touched items' values move; with id dropout (a
    float `features`) the dropped rows are features alone, their id rows untouched."""
    from gru4rec_reference import ReferenceTrainer, reference_name, weights_of

    from tf_gru4rec import losses
    from tf_gru4rec.training.warm_start import reindex

    data = reference_data()
    item_features, A = reference_features(data.item_map) if features else (None, None)
    if features:
        data = reindex(data, ItemMap(item_features.ids))
    loss_args = {k: v for k, v in REFERENCE_CASES[case].items() if k != "loss"}
    config = dict(layers=[5, 4], embedding=embedding, batch_size=4, dropout_p_embed=0.25,
                  dropout_p_hidden=0.3, learning_rate=0.2, momentum=momentum, sample_alpha=0.5,
                  loss=REFERENCE_CASES[case]["loss"], **loss_args)
    model = GRU4Rec(item_ids=data.item_map.ids, layers=config["layers"], embedding=embedding,
                    batch_size=4, dropout_p_embed=0.25, dropout_p_hidden=0.3, seed=11,
                    item_features=item_features, id_dropout=0.0 if features is True else features)
    model.compile(optimizer=AdagradM(0.2, momentum=momentum),
                  loss=losses.get(config["loss"], **loss_args))
    if features:  # off zero, so that the first step's scores already read them
        config["features"] = A
        rng = np.random.default_rng(8)
        for w in model.trainable_weights:
            if "features" in w.path:
                w.assign(rng.uniform(-0.5, 0.5, w.shape).astype(np.float32))
    batcher = SessionParallelBatcher(data, 4, n_sample=3, block_steps=2, seed=5,
                                     inputs_in_rows=embedding == "shared")
    blocks = list(batcher.blocks())
    assert [b["n_steps"] for b in blocks] == [2, 1]
    assert blocks[0]["reset"][1].tolist() == [False, True, True, False]
    assert blocks[1]["valid"][0].tolist() == [True, True, False, False]
    if features is not True and features:  # the rows each step drops, drawn by the model's own XLA code
        kept_of = tf.function(model._kept_ids, jit_compile=True)  # (XLA draws other numbers than eager)
        config["id_dropped"] = {}
        for t, r in enumerate(r for b in blocks for r in b["rows"][: b["n_steps"]]):
            model.optimizer.iterations.assign(t)
            keep = kept_of({"rows": tf.constant(r)}).numpy()
            by_item = {int(i): set(keep[r == i].tolist()) for i in set(r.tolist()) - {-1}}
            assert all(len(k) == 1 for k in by_item.values()), by_item  # a row's repeats share its draw
            config["id_dropped"][t] = {i for i, k in by_item.items() if k == {0.0}}
        model.optimizer.iterations.assign(0)
        n_dropped = sum(map(len, config["id_dropped"].values()))
        assert 0 < n_dropped < sum(len(set(r) - {-1}) for b in blocks for r in b["rows"][: b["n_steps"]])
    noise = np.random.default_rng(3).random((len(blocks), 2, 4, model._noise_width)).astype(np.float32)
    block_index = tf.Variable(0)
    # The compiled step asks for noise once per block: hand it the next block's.
    model._dropout_noise = lambda *shape: tf.gather(noise, block_index.assign_add(1) - 1)
    reference = ReferenceTrainer(weights_of(model), config, data.support())

    stacked = {k: np.stack([b[k] for b in blocks]) for k in blocks[0]}
    history = model.fit(tf.data.Dataset.from_tensor_slices(stacked), epochs=1, verbose=0)
    for block, block_noise in zip(blocks, noise):
        reference.run_block(block, block_noise)
    assert int(block_index.numpy()) == len(blocks)

    got = weights_of(model)
    assert sorted(got) == sorted(reference.weights())
    for name, expected in reference.weights().items():
        np.testing.assert_allclose(got[name], expected, rtol=1e-4, atol=1e-5, err_msg=name)
    opt = model.optimizer
    for w in model.trainable_weights:
        name = reference_name(w.path)
        i = opt._get_variable_index(w)
        np.testing.assert_allclose(opt._accumulators[i].numpy(), reference.acc[name],
                                   rtol=1e-4, atol=1e-5, err_msg=f"{name} accumulator")
        if momentum:
            np.testing.assert_allclose(opt._velocities[i].numpy(), reference.vel[name],
                                       rtol=1e-4, atol=1e-5, err_msg=f"{name} velocity")
        else:
            assert opt._velocities is None
    active = blocks[-1]["valid"][0]  # an inactive slot's state is never read again
    np.testing.assert_allclose(model.train_state.numpy()[active], reference.state[active],
                               rtol=1e-4, atol=1e-5, err_msg="carried state")
    np.testing.assert_allclose(history.history["loss"][0], np.mean(reference.step_losses), rtol=1e-4)


@pytest.mark.parametrize("embedding, inputs_in_rows, batch_size, message", [
    ("shared", False, 3, r"without the inputs among their rows .* build the batcher with inputs_in_rows=True"),
    (4, True, 3, r"with the inputs among their rows .* build the batcher with inputs_in_rows=False"),
    ("none", True, 3, r"with the inputs among their rows .* build the batcher with inputs_in_rows=False"),
    ("shared", True, 2, r"blocks of batch size 2 .* batch_size=3"),
])
def test_model_refuses_blocks_of_another_layout(embedding, inputs_in_rows, batch_size, message):
    """A shared-embedding model fed blocks without its inputs among the rows trained on row
    0 as every input; a separate or one-hot model fed blocks with them put its inputs into
    the output table's rows. Both `fit` (before the first step) and `train_step` refuse."""
    data = toy_data()
    model = GRU4Rec(item_ids=data.item_map.ids, layers=[5], embedding=embedding, batch_size=3, seed=1)
    model.compile(optimizer=AdagradM(0.1, momentum=0.5), loss=CrossEntropy())
    batcher = SessionParallelBatcher(data, batch_size, n_sample=2, block_steps=4,
                                     inputs_in_rows=inputs_in_rows)
    with pytest.raises(ValueError, match=message) as fit_error:
        model.fit(batcher.dataset(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message) as step_error:
        model.train_step({k: tf.constant(v) for k, v in next(batcher.blocks()).items()})
    assert "\n" not in str(fit_error.value) and str(step_error.value) == str(fit_error.value)
    assert int(model.optimizer.iterations.numpy()) == 0


def test_model_refuses_blocks_whose_rows_do_not_fit():
    data = toy_data()
    model = GRU4Rec(item_ids=data.item_map.ids, layers=[5], batch_size=3, seed=1)
    model.compile(optimizer=AdagradM(0.1), loss=CrossEntropy())
    block = next(SessionParallelBatcher(data, 3, n_sample=2, block_steps=4).blocks())
    block["rows"] = block["rows"][:, :-1]
    with pytest.raises(ValueError, match=r"blocks of 7 rows per step: .* needs 2B \+ S = 8"):
        model.train_step({k: tf.constant(v) for k, v in block.items()})


@pytest.mark.parametrize("embedding", ["shared", 4, "none"])
def test_padding_steps_change_nothing_on_one_device(embedding):
    """An epoch padded with steps of inactive rows (a raised `n_steps`, as data-parallel
    replicas' epochs are) ends where the unpadded one ends: every weight and optimizer slot
    bit-identical (momentum 0.5; no extra negatives, so a padding step touches no item)."""
    data = toy_data()

    def trained(extra_steps):
        model = GRU4Rec(item_ids=data.item_map.ids, layers=[5], embedding=embedding, batch_size=3, seed=1)
        model.compile(optimizer=AdagradM(0.1, momentum=0.5), loss=CrossEntropy())
        batcher = SessionParallelBatcher(data, 3, n_sample=0, block_steps=4,
                                         inputs_in_rows=embedding == "shared")
        batcher.n_steps += extra_steps
        model.fit(batcher.dataset(), epochs=1, verbose=0)
        return model

    plain, padded = trained(0), trained(6)
    for a, b in zip(plain.trainable_weights, padded.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
        for (kind, x), y in zip(plain.optimizer.slots(a).items(), padded.optimizer.slots(b).values()):
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"{a.path} {kind}")


# ----- item features ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def featured_model():
    """A shared-embedding model with item features, trained two epochs, cold item last."""
    from gru4rec_reference import session_data

    from tf_gru4rec.training.warm_start import reindex

    data = session_data([5, 3, 4, 6, 2, 3, 4, 5] * 4, n_items=6)
    features, _ = reference_features(data.item_map)
    data = reindex(data, ItemMap(features.ids))
    model = GRU4Rec(item_features=features, layers=[8], batch_size=4, seed=3)
    model.compile(optimizer=AdagradM(0.1), loss="cross-entropy")
    model.fit(SessionParallelBatcher(data, 4, n_sample=3, seed=2).dataset(), epochs=2, verbose=0)
    return model, features


def test_features_score_every_item_alike_and_a_cold_item_scores(featured_model):
    """The catalogue pass (sparse item x value product), the re-ranking gather and the
    vectors built by hand give the same scores; the cold-start item's feature part has
    learned (its values belong to clicked items) and gives it a score of its own."""
    model, features = featured_model
    assert model.n_items == 7 and model.item_map.ids[-1] == 99
    _, h = model.step(tf.constant([1, 2]), model.initial_state(2))
    table = model.item_table
    A = np.zeros((7, features.n_values), np.float32)
    for i in range(7):
        A[i, features.item_values(i)] = 1.0 / max(len(features.item_values(i)), 1)
    vectors = table.wy.numpy() + A @ table.features.v.numpy()
    biases = table.by.numpy() + A @ table.features.b.numpy()
    expected = h.numpy() @ vectors.T + biases
    np.testing.assert_allclose(model.score_all(h).numpy(), expected, rtol=1e-5, atol=1e-6)
    items = tf.constant([[6, 0, 3], [2, 6, 6]])
    np.testing.assert_allclose(model.score_items(h, items).numpy(),
                               np.take_along_axis(expected, items.numpy(), 1), rtol=1e-5, atol=1e-6)
    assert np.abs(A[6] @ table.features.v.numpy()).sum() > 0.01  # the cold item's part moved
    assert not np.any(table.features.v.numpy()[features.n_values:])  # (no extra rows)


def test_features_round_trip_through_keras_file(featured_model, tmp_path):
    model, _ = featured_model
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["item_features"] == model.get_config()["item_features"]
    assert loaded.feature_encoder == model.feature_encoder and loaded.feature_encoder is not None
    again = GRU4Rec.from_config({**model.get_config(), "id_dropout": 0.25})
    assert again.id_dropout == 0.25 and again.get_config()["id_dropout"] == 0.25
    np.testing.assert_array_equal(loaded.item_table.features.item_values.numpy(),
                                  model.item_table.features.item_values.numpy())
    out = lambda m: m({"items": tf.constant([0, 6])})["scores"].numpy()  # noqa: E731
    np.testing.assert_array_equal(out(loaded), out(model))
    assert list(loaded.item_map.ids) == list(model.item_map.ids)


def test_a_steps_feature_values_are_gathered_once_each_sorted():
    """`distinct_values`: the step's distinct values ascending, -1 padding in front (so the
    feature tables' gradient rows are sorted: AdagradM skips its sort), and each entry's
    position among them (absent entries: the last slot, weighed 0 by `pool`)."""
    from tf_gru4rec.layers import ItemFeatureEmbedding

    layer = ItemFeatureEmbedding(n_items=3, n_values=7, max_values=3, dim=2)
    distinct, position = layer.distinct_values(tf.constant([[3, 1, -1], [1, -1, -1], [5, 3, 1]]))
    assert distinct.numpy().tolist() == [-1] * 6 + [1, 3, 5]
    assert position.numpy().tolist() == [7, 6, 8, 6, 8, 8, 8, 7, 6]
    layer.v.assign(np.arange(14, dtype=np.float32).reshape(7, 2))
    pooled, _ = layer.pool(tf.constant([[3, 1, -1], [1, -1, -1], [5, 3, 1]]))
    np.testing.assert_allclose(pooled.numpy(), [[4, 5], [2, 3], [6, 7]])  # means of V rows


def test_one_hot_input_takes_features_on_the_output_side_only(featured_model):
    """embedding='none': the input stays the one-hot id (GRU layer 0's rows), the output
    table adds the features: the cold item scores h . pooled V + pooled b."""
    _, features = featured_model
    model = GRU4Rec(item_features=features, embedding="none", layers=[8], batch_size=4, seed=3)
    assert model.item_embedding is None and model.item_table.features is not None
    table = model.item_table.features
    table.v.assign(np.random.default_rng(0).normal(size=table.v.shape).astype(np.float32))
    _, h = model.step(tf.constant([0, 1]), model.initial_state(2))
    values = features.item_values(6)
    expected = h.numpy() @ (model.item_table.wy.numpy()[6] + table.v.numpy()[values].mean(0))
    np.testing.assert_allclose(model.score_all(h).numpy()[:, 6], expected, rtol=1e-5)


def test_features_need_the_model_order(featured_model):
    _, features = featured_model
    with pytest.raises(ValueError, match="should list the model's 6 items in index order"):
        GRU4Rec(item_ids=np.arange(6), item_features=features)
    with pytest.raises(ValueError, match=r"^id_dropout=0.5: a drop probability in \[0, 1\], and it needs item features"):
        GRU4Rec(n_items=6, id_dropout=0.5)
    with pytest.raises(ValueError, match=r"^id_dropout=1.5: a drop probability"):
        GRU4Rec(item_features=features, id_dropout=1.5)
    from tf_gru4rec.training.params import ParamError
    from tf_gru4rec.training.trainer import train

    with pytest.raises(ParamError, match=r"^id_dropout=0.3 needs item features \(item_features=, --item-features\)"):
        train(pd.DataFrame({"SessionId": [1, 1], "ItemId": [1, 2], "Time": [0, 1]}), "id_dropout=0.3", verbose=0)
