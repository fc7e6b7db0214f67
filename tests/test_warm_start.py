"""Tests of `tf_gru4rec.training.warm_start` (train(..., init_from=...), train --init-from).

Old data: the first half of some synthetic sessions, without the items NEW; new data: the
second half, with NEW and without ABSENT. Tiny models (8 units, one epoch), seeded.
"""

import contextlib
import io
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_gru4rec.cli.train import train_main
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import DataError
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.data.synthetic import synthetic_sessions
from tf_gru4rec.training.model_dir import load_model_dir
from tf_gru4rec.training.params import parse_params
from tf_gru4rec.training.trainer import train
from tf_gru4rec.training.warm_start import (
    ArchitectureError,
    WarmStart,
    grown_item_map,
    item_tables,
    reindex,
)

TINY = "layers=8,batch_size=8,n_sample=8,learning_rate=0.1,momentum=0.3,n_epochs=1,seed=3,block_steps=20"
NEW = [1000 + 7 * i for i in range(50, 60)]
ABSENT = 1000 + 7 * 3  # a popular item: the old model trains its rows


@pytest.fixture(scope="module")
def frames():
    df = synthetic_sessions(n_sessions=600, n_items=60, seed=5)
    old = df[(df["SessionId"] < 300) & ~df["ItemId"].isin(NEW)]
    new = df[(df["SessionId"] >= 300) & (df["ItemId"] != ABSENT)]
    assert new["ItemId"].isin(NEW).sum() > 50 and (old["ItemId"] == ABSENT).sum() > 20
    return old.reset_index(drop=True), new.reset_index(drop=True)


def params_for(embedding):
    extra = {"shared": "", "none": ",constrained_embedding=False", "separate": ",embedding=4"}
    return parse_params(TINY + extra[embedding])


def numpy(v):
    return keras.ops.convert_to_numpy(v).copy()


class Snapshot(keras.callbacks.Callback):
    """The model's weights, slots and scores when training begins (after the warm start)."""

    def __init__(self, items):
        super().__init__()
        self.items = items

    def on_train_begin(self, logs=None):
        self.weights = [numpy(v) for v in self.model.trainable_variables]
        self.slots = [{k: numpy(s) for k, s in self.model.optimizer.slots(v).items()}
                      for v in self.model.trainable_variables]
        self.scores = session_scores(self.model, self.items)


def session_scores(model, sessions):
    """All-item scores after each click of `sessions` (original ids, equal lengths)."""
    idx = model.item_map.lookup(np.asarray(sessions).ravel()).reshape(np.shape(sessions))
    state, out = model.initial_state(len(sessions)), []
    for t in range(idx.shape[1]):
        state, h = model.step(tf.constant(idx[:, t], tf.int32), state)
        out.append(model.score_all(h).numpy())
    return np.stack(out, 1)


def test_grown_item_map_keeps_old_indices_then_new_ids_in_first_appearance_order():
    old = ItemMap([50, 10, 30, 20])
    rows = pd.DataFrame({"SessionId": [1, 1, 1, 2, 2, 3], "ItemId": [77, 10, 55, 30, 77, 99],
                         "Time": [0, 1, 2, 3, 4, 5]})  # session 3 (item 99) has one click
    data = SessionData.from_frame(rows)
    grown = grown_item_map(old, data)
    np.testing.assert_array_equal(grown.ids, [50, 10, 30, 20, 77, 55, 99])  # as a fresh model: 77, 55, 99
    mapped = reindex(data, grown)
    np.testing.assert_array_equal(grown.ids[mapped.items], data.item_map.ids[data.items])
    assert grown_item_map(old, mapped) == grown and reindex(mapped, grown) is mapped  # idempotent
    dropped = grown_item_map(old, data, drop_absent=True)  # 50 and 20 are absent
    np.testing.assert_array_equal(dropped.ids, [10, 30, 77, 55, 99])
    assert grown_item_map(old, reindex(data, dropped), drop_absent=True) == dropped
    with pytest.raises(DataError, match="the model's item ids are integers, the new data's are strings"):
        grown_item_map(old, SessionData.from_frame(rows.assign(ItemId=["a", "b", "c", "d", "e", "f"])))


def trained_like(params, item_ids, seed=0, features=None):
    """A compiled model whose weights and AdagradM slots hold random values (as if trained):
    a stand-in for a trained model where only copying is tested (no XLA compilation). With
    `features`, its item features (aligned to `item_ids`: cold items follow)."""
    aligned = None if features is None else features.align(ItemMap(item_ids)).features
    model = params.build_model(ItemMap(item_ids if aligned is None else aligned.ids), aligned)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32))
        for slot in model.optimizer.slots(v).values():
            slot.assign(rng.random(v.shape).astype(np.float32))
    return model


def warm_started(init_from, new_df, params):
    """The warm-started model before training, built as `train` builds it."""
    warm = WarmStart.of(init_from)
    data = warm.prepare(SessionData.from_frame(new_df), params)
    model = params.build_model(data.item_map)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    warm.apply(model)
    return model


def state(model):
    weights = [numpy(v) for v in model.trainable_variables]
    slots = [{k: numpy(s) for k, s in model.optimizer.slots(v).items()} for v in model.trainable_variables]
    return weights, slots


SESSIONS = [[1000, 1007, 1014], [1021, 1070, 1000], [1035, 1035, 1091]]


def check_warm_state(old, warm, weights, slots, scores, params):
    """Before training: old ids first, then the new ids as a fresh model orders them; known
    items' scores exactly the old ones; known rows, GRU weights and slots copied; new rows
    as a fresh model's (in the init bound) with zero slots."""
    n_old = old.n_items
    np.testing.assert_array_equal(warm.item_map.ids[:n_old], old.item_map.ids)
    assert set(warm.item_map.ids[n_old:]) == set(NEW)
    np.testing.assert_array_equal(scores[..., :n_old], session_scores(old, SESSIONS))
    fresh = params.build_model(warm.item_map)
    tables = {id(v) for v in item_tables(fresh)}
    old_weights, old_slots = state(old)
    for before, old_w, before_s, old_s, v in zip(weights, old_weights, slots, old_slots,
                                                  fresh.trainable_variables):
        assert set(before_s) == {"accumulator", "velocity"}
        if id(v) not in tables:
            np.testing.assert_array_equal(before, old_w)
            for name in before_s:
                np.testing.assert_array_equal(before_s[name], old_s[name])
            continue
        np.testing.assert_array_equal(before[:n_old], old_w)
        np.testing.assert_array_equal(before[n_old:], numpy(v)[n_old:])
        if before.ndim == 2:  # Wy, E, one-hot Wx: uniform +-sqrt(6 / (N + width of a gate))
            bound = np.sqrt(6.0 / (warm.n_items + before.shape[1] // (3 if v is fresh.gru.cells[0].wx else 1)))
            assert 0.5 * bound < np.abs(before[n_old:]).max() <= bound
        else:  # By
            assert not before[n_old:].any()
        for name in before_s:
            np.testing.assert_array_equal(before_s[name][:n_old], old_s[name])
            assert not before_s[name][n_old:].any()


@pytest.mark.parametrize("embedding", ["shared", "none", "separate"])
def test_warm_start_keeps_known_scores_and_inits_new_rows_as_a_fresh_model(frames, embedding):
    old_df, new_df = frames
    params = params_for(embedding)
    old = trained_like(params, SessionData.from_frame(old_df).item_map.ids)
    warm = warm_started(old, new_df, params)
    check_warm_state(old, warm, *state(warm), session_scores(warm, SESSIONS), params)
    fresh_order = SessionData.from_frame(new_df).item_map.ids
    np.testing.assert_array_equal(warm.item_map.ids[old.n_items:],
                                  [i for i in fresh_order if i not in set(old.item_map.ids)])


def test_train_init_from_warm_starts_then_trains_the_new_items(frames):
    old_df, new_df = frames
    params = params_for("shared")
    old = train(old_df, params, verbose=0).model
    snap = Snapshot(SESSIONS)
    warm = train(new_df, params, verbose=0, init_from=old, callbacks=[snap]).model
    check_warm_state(old, warm, snap.weights, snap.slots, snap.scores, params)
    # After training: the new items' rows have moved; the absent item's rows did not.
    absent = int(warm.item_map.lookup([ABSENT])[0])
    new_rows = np.arange(old.n_items, warm.n_items)
    for before, after in zip(snap.weights, state(warm)[0]):
        if before.shape[0] == warm.n_items:
            assert (np.abs(after[new_rows] - before[new_rows]).reshape(len(new_rows), -1).max(1) > 0).all()
            np.testing.assert_array_equal(after[absent], before[absent])


def test_reset_optimizer_state_and_drop_absent(frames):
    old_df, new_df = frames
    params = parse_params(TINY)
    old = trained_like(params, SessionData.from_frame(old_df).item_map.ids)
    warm = warm_started(WarmStart(old, "reset", drop_absent=True), new_df, params)
    assert all(not s.any() for slots in state(warm)[1] for s in slots.values())
    kept = [i for i in old.item_map.ids if i != ABSENT]
    np.testing.assert_array_equal(warm.item_map.ids[: len(kept)], kept)  # indices after ABSENT shift
    assert ABSENT not in set(warm.item_map.ids) and warm.n_items == old.n_items - 1 + len(NEW)
    np.testing.assert_array_equal(numpy(warm.item_table.wy)[: len(kept)], numpy(old.item_table.wy)[old.item_map.lookup(kept)])


def test_architecture_mismatch_is_one_line_naming_the_difference(frames):
    old_df, new_df = frames
    old = trained_like(parse_params(TINY), SessionData.from_frame(old_df).item_map.ids)
    for spec, message in [
        ("layers=8/8", "the model has layers=8, the parameters give layers=8/8"),
        ("layers=16", "the model has layers=8, the parameters give layers=16"),
        ("embedding=4", "the model's input embedding is shared (embedding=0, constrained_embedding=True), "
                        "the parameters give separate of size 4 (embedding=4)"),
        ("constrained_embedding=False", "the parameters give one-hot"),
    ]:
        with pytest.raises(ArchitectureError, match=r"^cannot warm start: ") as e:
            train(new_df, f"{TINY},{spec}", verbose=0, init_from=old)
        assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="optimizer_state"):
        WarmStart(old, "keep")
    # Training settings may change; no velocity before momentum: zeros.
    no_momentum = trained_like(parse_params("layers=8,batch_size=8,n_sample=8"), old.item_map.ids)
    changed = parse_params("layers=8,batch_size=4,n_sample=4,learning_rate=0.02,momentum=0.5,loss=bpr-max")
    warm = warm_started(no_momentum, new_df, changed)
    assert warm.n_items == old.n_items + len(NEW) and not numpy(warm.optimizer.slots(warm.item_table.wy)["velocity"]).any()
    np.testing.assert_array_equal(numpy(warm.optimizer.slots(warm.item_table.wy)["accumulator"])[: old.n_items],
                                  numpy(no_momentum.optimizer.slots(no_momentum.item_table.wy)["accumulator"]))


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = train_main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_cli_init_from_round_trip(frames, tmp_path):
    old_df, new_df = frames
    old_df.to_csv(tmp_path / "old.tsv", sep="\t", index=False)
    new_df[new_df["SessionId"] < 550].to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    new_df[new_df["SessionId"] >= 550].to_csv(tmp_path / "test.tsv", sep="\t", index=False)
    status, _, err = run_cli([tmp_path / "old.tsv", "--params", TINY, "--save", tmp_path / "m1", "-q"])
    assert status == 0, err
    # No --params: the saved model's parameters; the test file is mapped to the grown item map.
    status, out, err = run_cli([tmp_path / "new.tsv", "--init-from", tmp_path / "m1", "--save",
                                tmp_path / "m2", "--test", tmp_path / "test.tsv", "--json", "-q"])
    assert status == 0, err
    assert "warm start from" in err and f"+{len(NEW)} new" in err
    m1, p1 = load_model_dir(tmp_path / "m1")
    m2, p2 = load_model_dir(tmp_path / "m2")
    assert p2 == p1
    np.testing.assert_array_equal(m2.item_map.ids[: m1.n_items], m1.item_map.ids)
    assert set(m2.item_map.ids[m1.n_items:]) == set(NEW)
    test_df = new_df[new_df["SessionId"] >= 550]
    assert json.loads(out.splitlines()[-1])["skipped_unknown"] == int((~test_df["ItemId"].isin(m2.item_map.ids)).sum())
    # Another architecture: one line, exit 2 (a setting); not a model directory: exit 1.
    status, out, err = run_cli([tmp_path / "new.tsv", "--init-from", tmp_path / "m1", "--params", "layers=16"])
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "cannot warm start: the model has layers=8, the parameters give layers=16" in err
    status, out, err = run_cli([tmp_path / "new.tsv", "--init-from", tmp_path])
    assert status == 1 and "not a model directory" in err and len(err.strip().splitlines()) == 1
    status, out, err = run_cli([tmp_path / "new.tsv", "--drop-absent-items"])
    assert status == 2 and "--warm-optimizer and --drop-absent-items need --init-from" in err


def test_parsers_offer_the_optimizer_states():
    """The choices are repeated in the parsers so that building them imports no TensorFlow."""
    from tf_gru4rec.cli.daily import daily_parser
    from tf_gru4rec.cli.train import train_parser
    from tf_gru4rec.training.warm_start import OPTIMIZER_STATES

    for parser in (train_parser(), daily_parser()):
        action = next(a for a in parser._actions if a.dest == "warm_optimizer")
        assert tuple(action.choices) == OPTIMIZER_STATES and action.default == OPTIMIZER_STATES[0]


# ----- issue 17, item 9: a warm start from a model that knows none of the new items ---------------
def test_a_model_sharing_no_item_with_the_new_data_is_warned_about(frames, tmp_path):
    import warnings

    from tf_gru4rec.training.model_dir import save_model_dir
    from tf_gru4rec.training.warm_start import NoSharedItemsWarning

    old_df, new_df = frames
    params = parse_params(TINY)
    old = trained_like(params, np.asarray([5, 6, 7]))  # ids the new data does not have
    with pytest.warns(NoSharedItemsWarning, match="shares no item with the new data \\(3 model items"):
        WarmStart(old).prepare(SessionData.from_frame(new_df), params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # items in common: no warning
        WarmStart(old).prepare(SessionData.from_frame(pd.concat([new_df, new_df.head(2).assign(ItemId=5)])), params)
    save_model_dir(old, tmp_path / "m", params)
    new_df.to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    status, _, err = run_cli([tmp_path / "new.tsv", "--init-from", tmp_path / "m", "--save", tmp_path / "m2", "-q"])
    assert status == 0, err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: the model to warm start shares no item with the new data (3 model items, "
        f"{new_df['ItemId'].nunique()} in the data): only the GRU weights carry over; check the item "
        "ids (or train from scratch)"]
    assert f"of its 3 items kept, +{new_df['ItemId'].nunique()} new" in err


# ----- issue 19: a warm start with item features ----------------------------------------------
def feature_tables_of(frames):
    """Old table: the old items (brand by item, tags), plus cold item 1;
    new table: the same rows, the NEW items and cold item 2, with a new brand 'b0' (sorted
    first: it must not renumber the old brands) and a new tag (it shifts the offsets of no
    later column, tags being last; brand's growth shifts tags' offset)."""
    old_df, new_df = frames
    old_items = sorted(old_df["ItemId"].unique().tolist())
    brand = lambda i: f"b{1 + i % 3}"  # noqa: E731
    tags = lambda i: "t1|t2" if i % 2 else "t2"  # noqa: E731
    old = pd.DataFrame({"ItemId": old_items + [1], "brand": [brand(i) for i in old_items] + ["b1"],
                        "tags": [tags(i) for i in old_items] + ["t1"]})
    added = pd.DataFrame({"ItemId": NEW + [2], "brand": ["b0"] * len(NEW) + ["b2"],
                          "tags": ["t3"] * len(NEW) + ["t1|t3"]})
    return old, pd.concat([old, added], ignore_index=True)


@pytest.mark.parametrize("embedding", ["shared", "separate"])
def test_warm_start_with_features_copies_values_by_name_and_scores_a_new_item_by_them(frames, tmp_path, embedding):
    from tf_gru4rec.data.item_features import read_item_features

    old_df, new_df = frames
    old_table, new_table = feature_tables_of(frames)
    old_table.to_csv(tmp_path / "old.csv", index=False)
    new_table.to_csv(tmp_path / "new.csv", index=False)
    params = params_for(embedding)
    old = trained_like(params, SessionData.from_frame(old_df).item_map.ids,
                       features=read_item_features(tmp_path / "old.csv"))
    assert old.item_map.ids[-1] == 1  # the old cold item
    features = read_item_features(tmp_path / "new.csv", encoder=old.feature_encoder)
    assert features.encoder.vocabularies == {"brand": ("b1", "b2", "b3", "b0"), "tags": ("t1", "t2", "t3")}
    warm = WarmStart(old)
    data = warm.prepare(SessionData.from_frame(new_df), params, features)
    aligned = features.align(data.item_map).features
    model = params.build_model(ItemMap(aligned.ids), aligned)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    warm.apply(model)
    n_old = old.n_items
    np.testing.assert_array_equal(model.item_map.ids[:n_old], old.item_map.ids)
    assert model.item_map.ids[-1] == 2 and set(model.item_map.ids[n_old:-1]) == set(NEW)
    # Values by name: old brands b1..b3 keep rows 0..2, b0 is row 3 (zero); tags move by one.
    rows = [0, 1, 2, 4, 5]
    layers = [(old.item_table.features, model.item_table.features)]
    if embedding == "separate":
        layers.append((old.item_embedding.features, model.item_embedding.features))
    for before, after in layers:
        for w_old, w_new in zip(before.trainable_weights, after.trainable_weights, strict=True):
            np.testing.assert_array_equal(numpy(w_new)[rows], numpy(w_old))
            assert not numpy(w_new)[[3, 6]].any()
            for name, slot in model.optimizer.slots(w_new).items():
                np.testing.assert_array_equal(numpy(slot)[rows], numpy(old.optimizer.slots(w_old)[name]))
                assert not numpy(slot)[[3, 6]].any()
    # Known items keep their scores (their features are unchanged); the new cold item 2
    # scores its fresh id part plus its trained features (brand b2, tags t1 and t3).
    scores = session_scores(model, SESSIONS)
    np.testing.assert_allclose(scores[..., :n_old], session_scores(old, SESSIONS), rtol=1e-5, atol=1e-5)
    v, b = numpy(model.item_table.features.v), numpy(model.item_table.features.b)
    item = model.n_items - 1
    wy, by = numpy(model.item_table.wy)[item], numpy(model.item_table.by)[item]
    fresh = params.build_model(ItemMap(aligned.ids), aligned)
    np.testing.assert_array_equal(wy, numpy(fresh.item_table.wy)[item])
    assert not by
    state = model.initial_state(1)
    state, h = model.step(tf.constant([0], tf.int32), state)
    values = [1, 4, 6]  # b2, t1, t3: mean-pooled
    assert np.abs(v[values[:2]]).min() > 0  # trained values: the part is not the zeros of a fresh model
    expected = h.numpy()[0] @ (wy + v[values].mean(0)) + b[values].mean()
    np.testing.assert_allclose(model.score_all(h).numpy()[0, item], expected, rtol=1e-5)


def test_warm_start_feature_refusals_are_one_line(frames, tmp_path):
    from tf_gru4rec.data.item_features import read_item_features

    old_df, new_df = frames
    old_table, new_table = feature_tables_of(frames)
    old_table.to_csv(tmp_path / "old.csv", index=False)
    new_table.to_csv(tmp_path / "new.csv", index=False)
    params = params_for("shared")
    old = trained_like(params, SessionData.from_frame(old_df).item_map.ids,
                       features=read_item_features(tmp_path / "old.csv"))
    data = SessionData.from_frame(new_df)
    cases = [
        (None, "the model has item features; give the new item features table (--item-features), "
               "read with the model's encoder"),
        # Fitted afresh: b0 sorts first and renumbers the model's brands.
        (read_item_features(tmp_path / "new.csv"), "(column 'brand' numbers its values otherwise than the model)"),
        (read_item_features(tmp_path / "new.csv", ["tags", "brand"]),
         "(columns ['tags', 'brand'], the model's are ['brand', 'tags'])"),
        (read_item_features(tmp_path / "new.csv", encodings={"tags": "categorical"}),
         "(column 'tags' is categorical, the model's is multi)"),
    ]
    for features, message in cases:
        with pytest.raises(ArchitectureError, match=r"^cannot warm start: ") as e:
            WarmStart(old).prepare(data, params, features)
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(DataError, match=r"new.csv: give an encoder or columns and encodings, not both"):
        read_item_features(tmp_path / "new.csv", ["brand"], encoder=old.feature_encoder)
    new_table.drop(columns="tags").to_csv(tmp_path / "no_tags.csv", index=False)
    with pytest.raises(DataError, match=r"no_tags.csv: unknown column\(s\) \['tags'\] in the encoder "
                                        r"\(the model's feature columns\); available: \['brand'\]$"):
        read_item_features(tmp_path / "no_tags.csv", encoder=old.feature_encoder)


def test_a_never_clicked_item_is_recommended_after_a_warm_start(hot_clicks, tmp_path):
    """The model is trained with features; the warm start's table adds item 97 ('hot', never
    clicked) and 96 (a new value): after 0, 97 ranks among the hot items by the trained
    feature part alone, far above 96 (an untrained id part and a zero new value)."""
    from tf_gru4rec.data.item_features import read_item_features
    from tf_gru4rec.serving.recommender import Recommender

    kinds = {0: "start", 1: "hot", 2: "hot", 3: "hot", 4: "start", 5: "other"}
    pd.DataFrame({"ItemId": list(kinds), "kind": list(kinds.values())}).to_csv(tmp_path / "old.csv", index=False)
    kinds.update({97: "hot", 96: "brand-new"})
    pd.DataFrame({"ItemId": list(kinds), "kind": list(kinds.values())}).to_csv(tmp_path / "new.csv", index=False)
    spec = "layers=16,batch_size=8,n_sample=4,n_epochs=3,learning_rate=0.2,seed=1"
    old = train(hot_clicks, spec, verbose=0, item_features=read_item_features(tmp_path / "old.csv")).model
    features = read_item_features(tmp_path / "new.csv", encoder=old.feature_encoder)
    warm = train(hot_clicks[hot_clicks["SessionId"] < 40], spec.replace("n_epochs=3", "n_epochs=1"),
                 verbose=0, init_from=old, item_features=features).model
    assert warm.item_map.ids[old.n_items:].tolist() == [97, 96]
    ids, scores, _ = Recommender(warm).recommend([[0]], k=8)
    after_0, score = ids[0].tolist(), dict(zip(ids[0].tolist(), scores[0].tolist()))
    assert set(after_0[:4]) == {1, 2, 3, 97}, after_0
    hot = [score[i] for i in (1, 2, 3)]
    assert score[97] - score[96] > 0.5 * (min(hot) - score[96]), score


def test_cli_warm_start_with_item_features(hot_clicks, tmp_path):
    hot_clicks.to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    pd.DataFrame({"ItemId": [0, 1, 2, 3, 4, 5], "kind": ["s", "h", "h", "h", "s", "o"]}).to_csv(
        tmp_path / "old.csv", index=False)
    pd.DataFrame({"ItemId": [0, 1, 2, 3, 4, 5, 97], "kind": ["s", "h", "h", "h", "s", "o", "h"]}).to_csv(
        tmp_path / "new.csv", index=False)
    spec = "layers=8,batch_size=8,n_sample=4,n_epochs=1,seed=1"
    status, _, err = run_cli([tmp_path / "train.tsv", "--params", spec, "--item-features", tmp_path / "old.csv",
                              "--save", tmp_path / "m1", "-q"])
    assert status == 0, err
    status, _, err = run_cli([tmp_path / "train.tsv", "--init-from", tmp_path / "m1", "--item-features",
                              tmp_path / "new.csv", "--save", tmp_path / "m2", "-q"])
    assert status == 0, err
    m1, m2 = load_model_dir(tmp_path / "m1")[0], load_model_dir(tmp_path / "m2")[0]
    assert m2.item_map.ids.tolist() == m1.item_map.ids.tolist() + [97]
    assert m2.feature_encoder == m1.feature_encoder  # no new value: the same encoding, saved
    for argv, message in [
        (["--item-features", tmp_path / "new.csv", "--feature-columns", "kind"],
         "--feature-columns and --feature-encodings do not apply with --init-from"),
        ([], "cannot warm start: the model has item features; give the new item features table"),
    ]:
        status, out, err = run_cli([tmp_path / "train.tsv", "--init-from", tmp_path / "m1", *argv])
        assert status == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err
