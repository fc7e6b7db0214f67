import functools

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import DataError
from tf_gru4rec.evaluation.evaluator import Accumulator, Evaluator, evaluate, scored_inputs
from tf_gru4rec.evaluation.metrics import metric_sums, target_ranks

N = 12


class TableModel:
    """Scores depend on the last item only, from an integer table (so ties are common)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.table = tf.constant(rng.integers(0, 4, size=(N, N)).astype(np.float32))
        self.item_map = ItemMap(np.arange(N) * 10)
        self.state_size = 1

    def initial_state(self, b):
        return tf.zeros([b, 1])

    def step(self, items, state):
        h = tf.cast(items, tf.float32)[:, None]
        return h, h

    def score_all(self, h):
        return tf.gather(self.table, tf.cast(h[:, 0], tf.int32))


def rank_of(s, b, mode):
    gt, eq = (s > s[b]).sum(), (s == s[b]).sum()
    return {"standard": 1 + gt, "conservative": gt + eq, "median": 1 + gt + (eq - 1) / 2}[mode]


def brute_force(df, mode, cutoffs, prefix_scores, protocol="next", popularity=None):
    """All metrics by a plain loop over test sessions, as the dict `evaluate` returns.
    `prefix_scores(items)` yields the scores of all items after each prefix of one session
    (known items, in click order); with protocol "last" only the last prefix is scored.
    Top-k lists by a stable argsort (ties: smaller index first); `popularity`: training
    clicks per item, for Coverage@k and Popularity@k (None: neither)."""
    m = {f"{name}@{k}": 0.0 for k in cutoffs for name in ("recall", "mrr", "ndcg", "popularity")}
    covered = {k: set() for k in cutoffs}
    n = 0
    df = df.sort_values(["SessionId", "Time"], kind="stable")
    for _, g in df.groupby("SessionId", sort=False):
        items = [int(i) // 10 for i in g["ItemId"] if i != 9999]  # unknown: skipped, session goes on
        scored = list(zip(prefix_scores(items[:-1]), items[1:]))  # the state runs through all clicks
        for s, b in scored[-1:] if protocol == "last" else scored:
            rank = rank_of(s, b, mode)
            top = np.argsort(-s, kind="stable")
            n += 1
            for k in cutoffs:
                if rank <= k:
                    m[f"recall@{k}"] += 1
                    m[f"mrr@{k}"] += 1 / rank
                    m[f"ndcg@{k}"] += 1 / np.log2(rank + 1)
                covered[k].update(top[:k].tolist())
                if popularity is not None:
                    m[f"popularity@{k}"] += np.mean(popularity[top[:k]] / popularity.max())
    out = {key: v / n for key, v in m.items()}
    for k in cutoffs:
        out[f"coverage@{k}"] = len(covered[k]) / len(s)
    out["n_events"] = n
    return out


def assert_same_metrics(got, want, cutoffs, names=("recall", "mrr", "ndcg"), abs=1e-6):
    assert got["n_events"] == want["n_events"]
    for k in cutoffs:
        for name in names:
            assert got[f"{name}@{k}"] == pytest.approx(want[f"{name}@{k}"], abs=abs), (name, k)


def table_scores(model):
    """TableModel's scores after each prefix: its last item's row."""
    return lambda items: (model.table.numpy()[a] for a in items)


def random_test_frame(seed):
    rng = np.random.default_rng(seed)
    rows, t = [], 0
    for s in range(80):
        for _ in range(rng.integers(1, 7)):  # one-click sessions included
            item = int(rng.integers(0, N)) * 10 if rng.random() > 0.1 else 9999  # unknown items
            rows.append((s, item, t))
            t += 1
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


BEYOND = ("recall", "mrr", "ndcg", "coverage", "popularity")


@pytest.mark.parametrize("protocol", ["next", "last"])
@pytest.mark.parametrize("mode", ["standard", "conservative", "median"])
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_evaluator_equals_brute_force(mode, batch_size, protocol):
    """Every metric of both protocols in every tie mode, on integer scores full of ties;
    20 > N: the lists hold all N items."""
    model = TableModel()
    df = random_test_frame(1)
    cutoffs = (1, 2, 5, 10, 20)
    clicks = np.random.default_rng(5).integers(0, 50, N).astype(float)
    res = Evaluator(df, model.item_map, cutoffs, mode, batch_size=batch_size, block_steps=4,
                    protocol=protocol, coverage=True, popularity=clicks)(model)
    want = brute_force(df, mode, cutoffs, table_scores(model), protocol, clicks)
    assert_same_metrics(res, want, cutoffs, BEYOND)
    assert res["skipped_unknown"] == int((df["ItemId"] == 9999).sum())
    assert res["skipped_sessions"] > 0
    assert 0 < res["coverage@1"] < res["coverage@20"] == 1


def test_tie_modes_on_a_tiny_example():
    scores = tf.constant([[1.0, 3.0, 3.0, 3.0, 0.0]])
    t = tf.constant([1])
    assert target_ranks(scores, t, "standard").numpy()[0] == 1
    assert target_ranks(scores, t, "conservative").numpy()[0] == 3
    assert target_ranks(scores, t, "median").numpy()[0] == 2
    with pytest.raises(ValueError, match="tie mode"):
        target_ranks(scores, t, "optimistic")


def test_ndcg_and_mrr_in_each_tie_mode_on_a_tiny_example():
    """NDCG@k = 1 / log2(rank + 1) within k, at the tie mode's rank; a median rank of x.5
    enters as it is (and 1.5 is not within k = 1)."""
    scores = tf.constant([[1.0, 3.0, 3.0, 3.0, 0.0], [3.0, 3.0, 0.0, 0.0, 0.0]])
    t = tf.constant([1, 0])
    want_ranks = {"standard": [1, 1], "conservative": [3, 2], "median": [2, 1.5]}
    for mode, ranks in want_ranks.items():
        sums = Accumulator((1, 2, 5), mode, 5).add(*Accumulator((1, 2, 5), mode, 5).initial(),
                                                  scores, t, tf.constant([True, True]))[0].numpy()
        for i, k in enumerate((1, 2, 5)):
            within = [r for r in ranks if r <= k]
            assert sums[:, i].tolist() == pytest.approx(
                [len(within), sum(1 / r for r in within), sum(1 / np.log2(r + 1) for r in within)],
                abs=1e-12), (mode, k)
    ndcg = metric_sums(tf.constant([1.5, 3.0, 1.0]), tf.constant([True, True, False]), (2,)).numpy()[2]
    assert ndcg == pytest.approx([1 / np.log2(2.5)], abs=1e-15)  # the invalid row adds nothing


def test_coverage_and_popularity_on_a_tiny_example():
    """Lists by score, ties to the smaller index: row 0 -> [2, 0, 1, 3], row 1 -> [1, 3, 0, 2];
    row 2 is not valid. Popularity = clicks / max clicks = [1, 0.5, 0.25, 0]."""
    scores = tf.constant([[2.0, 1.0, 5.0, 1.0], [0.0, 9.0, 0.0, 4.0], [7.0, 0.0, 0.0, 0.0]])
    metrics = Accumulator((1, 2, 3), "standard", 4, coverage=True, popularity=[8, 4, 2, 0])
    sums, best = metrics.add(*metrics.initial(), scores, tf.constant([0, 1, 0]),
                             tf.constant([True, True, False]))
    assert best.numpy().tolist() == [1, 0, 0, 1]  # item 0 first at position 1 (row 2 does not count)
    res = metrics.result(sums, best, 2)
    assert [res[f"coverage@{k}"] for k in (1, 2, 3)] == [0.5, 1.0, 1.0]
    assert res["popularity@1"] == pytest.approx((0.25 + 0.5) / 2, abs=1e-15)
    assert res["popularity@2"] == pytest.approx(((0.25 + 1) / 2 + (0.5 + 0) / 2) / 2, abs=1e-15)
    assert res["popularity@3"] == pytest.approx(((0.25 + 1 + 0.5) / 3 + (0.5 + 0 + 1) / 3) / 2, abs=1e-15)
    assert list(res)[:5] == ["recall@1", "mrr@1", "ndcg@1", "coverage@1", "popularity@1"]


def test_last_click_protocol_scores_the_last_known_click_once_per_session():
    """Sessions a b c | d e ? | f | ? g (? unknown): 'last' scores c after a b, and e after d
    (the unknown last click is dropped like any other); the last two sessions have one
    known click and are skipped and counted, under both protocols."""
    assert scored_inputs([0, 3, 5], "last").tolist() == [False, True, False, True, False]
    assert scored_inputs([0, 3, 5], "next").tolist() == [True, True, False, True, False]
    rows = [(1, 0, 0), (1, 10, 1), (1, 20, 2), (2, 30, 3), (2, 40, 4), (2, 9999, 5), (3, 50, 6),
            (4, 9999, 7), (4, 60, 8)]
    df = pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])
    model = TableModel()
    table = model.table.numpy()
    for protocol, events in [("last", [(1, 2), (3, 4)]), ("next", [(0, 1), (1, 2), (3, 4)])]:
        for batch_size in (1, 5):
            res = evaluate(model, df, (1, 3), "median", batch_size, protocol=protocol)
            assert (res["n_events"], res["skipped_unknown"], res["skipped_sessions"]) == (len(events), 2, 2)
            ranks = [rank_of(table[a], b, "median") for a, b in events]
            assert res["mrr@3"] == pytest.approx(np.mean([1 / r if r <= 3 else 0 for r in ranks]), abs=1e-12)


def test_bad_options_are_one_line_errors():
    df, item_map = random_test_frame(2), ItemMap(np.arange(N) * 10)
    with pytest.raises(ValueError, match=r"^Unknown protocol 'first'. Expected one of \('next', 'last'\).$"):
        Evaluator(df, item_map, protocol="first")
    with pytest.raises(ValueError, match="^Unknown tie mode 'optimistic'"):
        Evaluator(df, item_map, mode="optimistic")
    with pytest.raises(ValueError, match=r"training clicks of the 12 items .* shape \(3,\)"):
        Evaluator(df, item_map, popularity=[1, 2, 3])
    with pytest.raises(ValueError, match="not all 0"):
        Evaluator(df, item_map, popularity=np.zeros(N))
    with pytest.raises(ValueError, match="`cutoffs` should be positive ints"):
        Evaluator(df, item_map, cutoffs=(0, 5))


def test_test_data_sharing_no_item_is_a_clear_error():
    model = TableModel()
    df = pd.DataFrame({"SessionId": [1, 1], "ItemId": [5, 7], "Time": [0, 1]})
    with pytest.raises(DataError, match="no item is known to the model"):
        evaluate(model, df)


def test_callback_puts_validation_metrics_in_logs(synthetic_split):
    from tf_gru4rec.training.trainer import train

    train_df, test_df = synthetic_split
    stop = keras.callbacks.EarlyStopping(monitor="val_recall@20", mode="max", patience=0)
    result = train(train_df, "layers=16,batch_size=16,n_sample=16,n_epochs=6,learning_rate=1e-12,seed=1,block_steps=50",
                   validation=test_df, callbacks=[stop], verbose=0)
    hist = result.history.history
    assert {"val_recall@20", "val_mrr@20", "val_ndcg@20", "val_recall@1"} <= set(hist)
    assert len(hist["loss"]) == 2  # nothing learnt at lr 1e-12: stops after the patience
    final = evaluate(result.model, test_df)
    assert hist["val_recall@20"][-1] == pytest.approx(final["recall@20"], abs=1e-6)
    assert hist["val_ndcg@20"][-1] == pytest.approx(final["ndcg@20"], abs=1e-6)


def test_callback_passes_protocol_and_beyond_accuracy_options():
    from tf_gru4rec.evaluation.evaluator import EvaluationCallback

    model, df, clicks = TableModel(), random_test_frame(1), np.arange(N) + 1.0
    callback = EvaluationCallback(df, (1, 5), "median", protocol="last", coverage=True, popularity=clicks)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    want = evaluate(model, df, (1, 5), "median", protocol="last", coverage=True, popularity=clicks)
    assert logs == {f"val_{k}": v for k, v in want.items() if "@" in k}
    assert len(logs) == 10
    with pytest.raises(ValueError, match="Unknown protocol"):
        EvaluationCallback(df, protocol="loo")


def stateful_model(seed=0):
    """A real two-layer GRU4Rec whose weights are scaled up, so its scores depend strongly
    on the whole session so far, not just on the last item."""
    from tf_gru4rec.models.gru4rec import GRU4Rec

    model = GRU4Rec(item_ids=np.arange(N) * 10, layers=[6, 5], batch_size=4, seed=seed)
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(rng.normal(scale=1.5, size=w.shape).astype(np.float32))
    return model


def stateful_scores(model):
    """Each test session alone from a zero state, through an independent float64 forward."""
    from gru4rec_reference import forward, full_scores, weights_of

    p = {k: tf.constant(v) for k, v in weights_of(model).items()}
    config = {"layers": model.layer_sizes, "embedding": "shared"}

    def scores(items):
        state = tf.zeros([1, model.state_size], tf.float64)
        for a in items:
            state, h = forward(p, config, tf.constant([a]), state)
            yield full_scores(p, h).numpy()[0]

    return scores


STATEFUL_CUTOFFS, STATEFUL_CLICKS = (1, 2, 3, 5), np.arange(N, dtype=float) ** 2


@functools.cache
def stateful_reference(protocol):
    """`brute_force` of `stateful_model()` on `random_test_frame(2)`, once per protocol."""
    return brute_force(random_test_frame(2), "conservative", STATEFUL_CUTOFFS,
                       stateful_scores(stateful_model()), protocol, STATEFUL_CLICKS)


@pytest.mark.parametrize("protocol", ["next", "last"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_evaluator_with_state_equals_per_session_loop(batch_size, protocol):
    """Session-parallel evaluation of a stateful model equals every session run alone from
    zero: a state not reset between test sessions (or reset a click late) fails this. With
    the last-click protocol the state still runs through every earlier click."""
    model, df, cutoffs, clicks = stateful_model(), random_test_frame(2), STATEFUL_CUTOFFS, STATEFUL_CLICKS
    res = Evaluator(df, model.item_map, cutoffs, "conservative", batch_size=batch_size,
                    block_steps=4, protocol=protocol, coverage=True, popularity=clicks)(model)
    want = stateful_reference(protocol)
    # float64 sums: the batching cannot move the result
    assert_same_metrics(res, want, cutoffs, BEYOND, abs=1e-12)
    assert res["n_events"] == (80 - res["skipped_sessions"] if protocol == "last" else want["n_events"])


@pytest.mark.parametrize("mode", ["standard", "conservative", "median"])
def test_non_finite_scores_are_never_hits(mode):
    nan, inf = np.nan, np.inf
    scores = tf.constant([[nan, nan, nan], [1.0, inf, 0.0], [0.5, nan, 2.0], [1.0, 3.0, -inf]])
    ranks = target_ranks(scores, tf.constant([0, 1, 0, 0]), mode).numpy()
    assert np.isinf(ranks[0]) and np.isinf(ranks[1])  # NaN / inf target: a miss
    assert ranks[2] == {"standard": 3, "conservative": 3, "median": 3}[mode]  # a NaN item ranks above
    assert ranks[3] == 2
    sums = metric_sums(tf.constant(ranks), tf.ones(4, tf.bool), (1, 20)).numpy()
    assert np.isfinite(sums).all() and sums[0].tolist() == [0, 2]


def test_a_diverged_model_scores_zero_not_perfect():
    model = stateful_model()
    model.item_table.wy.assign(tf.fill(model.item_table.wy.shape, np.nan))
    res = evaluate(model, random_test_frame(2), cutoffs=(1, 20))
    assert res["recall@20"] == 0.0 and res["mrr@20"] == 0.0


def test_default_batch_size_bounds_the_evaluation_chunk():
    from tf_gru4rec.system.memory import eval_batch_size

    assert Evaluator(random_test_frame(2), ItemMap(np.arange(N) * 10)).batch_size == 256
    assert eval_batch_size(10_000_000) == 8 and eval_batch_size(1_000_000) == 89
    with pytest.raises(ValueError, match="batch_size"):
        Evaluator(random_test_frame(2), ItemMap(np.arange(N) * 10), batch_size=0)


# ----- issue 17, item 9: progress at every tenth --------------------------------------------------
def test_block_ends_add_each_tenth_without_longer_blocks():
    from tf_gru4rec.evaluation.evaluator import block_ends

    done = np.arange(1, 51)  # one prediction per step, 50 steps
    assert block_ends(done, 64) == [50]
    assert block_ends(done, 64, tenths=True) == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert block_ends(done, 20, tenths=True) == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert block_ends(np.arange(1, 200), 64) == [64, 128, 192, 199]
    assert block_ends(np.zeros(3, int), 64, tenths=True) == [3] and block_ends(np.zeros(0, int), 64) == []


def test_progress_reaches_every_tenth_and_leaves_the_results_unchanged():
    from tf_gru4rec.data.synthetic import synthetic_sessions

    df = synthetic_sessions(n_sessions=60, n_items=N, seed=4)
    df["ItemId"] = (df["ItemId"] - 1000) // 7 * 10  # the model's ids
    model = stateful_model()
    calls = []
    with_progress = evaluate(model, df, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    without = evaluate(model, df, batch_size=2)
    total = calls[0][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert {int(10 * done / total) for done, _ in calls} == set(range(11))
    for key in without:
        if key != "eval_seconds":
            assert with_progress[key] == without[key], key
