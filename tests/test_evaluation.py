import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_gru4rec.data import DataError, ItemMap
from tf_gru4rec.evaluation import Evaluator, evaluate, metric_sums, target_ranks

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


def brute_force(df, mode, cutoffs, prefix_scores):
    """Recall / MRR by a plain loop over test sessions. `prefix_scores(items)` yields the
    scores of all items after each prefix of one session (known items, in click order)."""
    hits, rr, n = np.zeros(len(cutoffs)), np.zeros(len(cutoffs)), 0
    df = df.sort_values(["SessionId", "Time"], kind="stable")
    for _, g in df.groupby("SessionId", sort=False):
        items = [int(i) // 10 for i in g["ItemId"] if i != 9999]  # unknown: skipped, session goes on
        for s, b in zip(prefix_scores(items[:-1]), items[1:]):
            gt, eq = (s > s[b]).sum(), (s == s[b]).sum()
            rank = {"standard": 1 + gt, "conservative": gt + eq, "median": 1 + gt + (eq - 1) / 2}[mode]
            n += 1
            for i, k in enumerate(cutoffs):
                if rank <= k:
                    hits[i] += 1
                    rr[i] += 1 / rank
    return hits / n, rr / n, n


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


@pytest.mark.parametrize("mode", ["standard", "conservative", "median"])
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_evaluator_equals_brute_force(mode, batch_size):
    model = TableModel()
    df = random_test_frame(1)
    cutoffs = (1, 2, 5, 10)
    res = Evaluator(df, model.item_map, cutoffs, mode, batch_size=batch_size, block_steps=4)(model)
    recall, mrr, n = brute_force(df, mode, cutoffs, table_scores(model))
    assert res["n_events"] == n
    for i, k in enumerate(cutoffs):
        assert res[f"recall@{k}"] == pytest.approx(recall[i], abs=1e-6)
        assert res[f"mrr@{k}"] == pytest.approx(mrr[i], abs=1e-6)
    assert res["skipped_unknown"] == int((df["ItemId"] == 9999).sum())
    assert res["skipped_sessions"] > 0


def test_tie_modes_on_a_tiny_example():
    scores = tf.constant([[1.0, 3.0, 3.0, 3.0, 0.0]])
    t = tf.constant([1])
    assert target_ranks(scores, t, "standard").numpy()[0] == 1
    assert target_ranks(scores, t, "conservative").numpy()[0] == 3
    assert target_ranks(scores, t, "median").numpy()[0] == 2
    with pytest.raises(ValueError, match="tie mode"):
        target_ranks(scores, t, "optimistic")


def test_test_data_sharing_no_item_is_a_clear_error():
    model = TableModel()
    df = pd.DataFrame({"SessionId": [1, 1], "ItemId": [5, 7], "Time": [0, 1]})
    with pytest.raises(DataError, match="no item is known to the model"):
        evaluate(model, df)


def test_callback_puts_validation_metrics_in_logs(synthetic_split):
    from tf_gru4rec.training import train

    train_df, test_df = synthetic_split
    stop = keras.callbacks.EarlyStopping(monitor="val_recall@20", mode="max", patience=0)
    result = train(train_df, "layers=16,batch_size=16,n_sample=16,n_epochs=6,learning_rate=1e-12,seed=1,block_steps=50",
                   validation=test_df, callbacks=[stop], verbose=0)
    hist = result.history.history
    assert {"val_recall@20", "val_mrr@20", "val_recall@1"} <= set(hist)
    assert len(hist["loss"]) == 2  # nothing learnt at lr 1e-12: stops after the patience
    final = evaluate(result.model, test_df)
    assert hist["val_recall@20"][-1] == pytest.approx(final["recall@20"], abs=1e-6)


def stateful_model(seed=0):
    """A real two-layer GRU4Rec whose weights are scaled up, so its scores depend strongly
    on the whole session so far, not just on the last item."""
    from tf_gru4rec.model import GRU4Rec

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


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_evaluator_with_state_equals_per_session_loop(batch_size):
    """Session-parallel evaluation of a stateful model equals every session run alone from
    zero: a state not reset between test sessions (or reset a click late) fails this."""
    model = stateful_model()
    df = random_test_frame(2)
    cutoffs = (1, 2, 3, 5)
    res = Evaluator(df, model.item_map, cutoffs, "conservative", batch_size=batch_size,
                    block_steps=4)(model)
    recall, mrr, n = brute_force(df, "conservative", cutoffs, stateful_scores(model))
    assert res["n_events"] == n
    for i, k in enumerate(cutoffs):  # float64 sums: the batching cannot move the result
        assert res[f"recall@{k}"] == pytest.approx(recall[i], abs=1e-12), k
        assert res[f"mrr@{k}"] == pytest.approx(mrr[i], abs=1e-12), k


@pytest.mark.parametrize("mode", ["standard", "conservative", "median"])
def test_non_finite_scores_are_never_hits(mode):
    nan, inf = np.nan, np.inf
    scores = tf.constant([[nan, nan, nan], [1.0, inf, 0.0], [0.5, nan, 2.0], [1.0, 3.0, -inf]])
    ranks = target_ranks(scores, tf.constant([0, 1, 0, 0]), mode).numpy()
    assert np.isinf(ranks[0]) and np.isinf(ranks[1])  # NaN / inf target: a miss
    assert ranks[2] == {"standard": 3, "conservative": 3, "median": 3}[mode]  # a NaN item ranks above
    assert ranks[3] == 2
    hits, rr = metric_sums(tf.constant(ranks), tf.ones(4, tf.bool), (1, 20))
    assert np.isfinite(rr.numpy()).all() and hits.numpy().tolist() == [0, 2]


def test_a_diverged_model_scores_zero_not_perfect():
    model = stateful_model()
    model.wy.assign(tf.fill(model.wy.shape, np.nan))
    res = evaluate(model, random_test_frame(2), cutoffs=(1, 20))
    assert res["recall@20"] == 0.0 and res["mrr@20"] == 0.0


def test_default_batch_size_bounds_the_evaluation_chunk():
    from tf_gru4rec.memory import eval_batch_size

    assert Evaluator(random_test_frame(2), ItemMap(np.arange(N) * 10)).batch_size == 256
    assert eval_batch_size(10_000_000) == 8 and eval_batch_size(1_000_000) == 89
    with pytest.raises(ValueError, match="batch_size"):
        Evaluator(random_test_frame(2), ItemMap(np.arange(N) * 10), batch_size=0)
