"""Next-item evaluation as the GRU4Rec papers do it: full catalogue, Recall@k, MRR@k, NDCG@k.

The model reads each test session click by click (the hidden state starts at zero for every
test session) and after each click predicts the following item; ALL training items are
scored, no sampling. Test events with items unknown to the model are dropped before sessions
are formed (the session continues across the gap) and sessions left with fewer than 2
events contribute nothing; both are counted. Which predictions are scored (`PROTOCOLS`):
    next  every event except the session's last predicts the one after it (L - 1 per
          session of L known events): the papers' protocol, the default;
    last  only the session's last known event is the target, predicted after all the
          clicks before it (leave-one-out, as RecBole and session-rec's "last" evaluation;
          an unknown last click is dropped like any other, so its target is the last
          KNOWN click, and a session needs 2 known clicks, else it is skipped and counted).

Rank of the target with ties (`TIE_MODES`):
    standard     = 1 + #(score > target)
    conservative = #(score >= target)                  (the default: ties rank it last)
    median       = 1 + #(>) + (#(==) - 1) / 2          (x.5 for an even number of ties)
Per scored event, with that rank r (one relevant item, so the ideal DCG is 1):
    Recall@k = [r <= k],  MRR@k = [r <= k] / r,  NDCG@k = [r <= k] / log2(r + 1)
all micro averaged over events. A median rank of x.5 enters MRR and NDCG as it is (the same
formula at a fractional rank, not an average over orderings of the tied items).

Beyond accuracy (optional: they need the top-k lists, computed in the same compiled loop):
    Coverage@k   = #(distinct items in any top-k list) / N
    Popularity@k = mean over events of the mean popularity of the k items recommended,
                   popularity = training clicks / the most clicked item's (session-rec's)
The top-k list is what `GRU4Rec.recommend` returns: `tf.math.top_k` of all N scores, ties
broken by the smaller item index; it does not depend on the tie mode.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tf_gru4rec.system import memory
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.data.schedule import session_parallel_schedule

TIE_MODES = ("standard", "conservative", "median")
PROTOCOLS = ("next", "last")
#: The rank metrics, in the order of the rows of `metric_sums`.
RANK_METRICS = ("recall", "mrr", "ndcg")
_NO_POSITION = np.iinfo(np.int32).max  # an item not recommended yet (see `recommended_positions`)


def check_options(mode="conservative", protocol="next") -> None:
    """Raises a one-line ValueError for an unknown tie mode or protocol."""
    if mode not in TIE_MODES:
        raise ValueError(f"Unknown tie mode {mode!r}. Expected one of {TIE_MODES}.")
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol!r}. Expected one of {PROTOCOLS}.")


def scored_inputs(offsets, protocol="next") -> np.ndarray:
    """Which events' predictions are scored: bool [n_events], True at the INPUT event (its
    target is the event after it) for sessions `items[offsets[s]:offsets[s+1]]` of >= 2
    events. next: all but each session's last event; last: only its second-to-last."""
    check_options(protocol=protocol)
    offsets = np.asarray(offsets, dtype=np.int64)
    scored = np.full(offsets[-1], protocol == "next")
    scored[offsets[1:] - (1 if protocol == "next" else 2)] = protocol == "last"
    return scored


def target_ranks(scores, targets, mode="conservative"):
    """Rank of each row's target among all columns: scores [b, N], targets [b] -> float32 [b].

    Non-finite scores never make a hit: a NaN or infinite target score ranks +inf (a
    miss at every cutoff), and a NaN score of another item counts as above the target.
    """
    check_options(mode)
    target = tf.gather(scores, targets, batch_dims=1)[:, None]

    def count(mask):
        return tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)

    # Comparisons written as "not below" so that a NaN score counts as above the target.
    if mode == "conservative":  # one pass over the scores: the target counts itself
        ranks = count(~(scores < target))
    else:
        greater = count(~(scores <= target))
        ranks = 1.0 + greater if mode == "standard" else (
            1.0 + greater + (count(scores == target) - 1.0) / 2.0)
    return tf.where(tf.math.is_finite(target[:, 0]), ranks, np.inf)


def metric_sums(ranks, valid, cutoffs):
    """Sums over the valid rows per cutoff: float64 [3, C], rows `RANK_METRICS` (hits,
    reciprocal ranks, DCG). Summed in float64 so that results do not depend on how rows
    are batched; an infinite rank adds 0 everywhere."""
    valid = tf.cast(valid, tf.float64)
    ranks = tf.cast(ranks, tf.float64)
    gain = tf.stack([tf.ones_like(ranks), 1.0 / ranks, 1.0 / (tf.math.log(ranks + 1.0) / np.log(2.0))])
    return tf.stack([tf.reduce_sum(gain * tf.cast(ranks <= k, tf.float64) * valid, axis=1)
                     for k in cutoffs], axis=1)


def top_lists(scores, cutoffs):
    """The top-max(cutoffs) item indices of every row, best first: int32 [b, min(max k, N)]
    (`tf.math.top_k`: ties broken by the smaller index, as `GRU4Rec.recommend`)."""
    return tf.math.top_k(scores, k=min(max(cutoffs), scores.shape[1])).indices


def popularity_sums(top, valid, popularity, cutoffs):
    """Sum over the valid rows of each top-k list's mean popularity: float64 [C].

    `popularity`: float64 [N], normalised (`normalised_popularity`); a list holds
    min(k, N) items."""
    cumulative = tf.cumsum(tf.gather(popularity, top), axis=1)  # [b, L]
    valid = tf.cast(valid, tf.float64)
    width = top.shape[1]
    return tf.stack([tf.reduce_sum(cumulative[:, min(k, width) - 1] * valid) / min(k, width)
                     for k in cutoffs])


def recommended_positions(best, top, valid):
    """Updates `best` (int32 [N]): the best 0-based list position at which each item has
    been recommended to a valid row so far (`_NO_POSITION` if never). Coverage@k is then
    mean(best < k): one [N] vector serves every cutoff, and no list is kept."""
    positions = tf.where(valid[:, None], tf.range(tf.shape(top)[1])[None, :], _NO_POSITION)
    return tf.tensor_scatter_nd_min(best, tf.reshape(top, [-1, 1]), tf.reshape(positions, [-1]))


def normalised_popularity(popularity, n_items):
    """Training clicks per item index [N] -> float64 [N] divided by their maximum."""
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.shape != (n_items,) or not np.isfinite(pop).all() or (pop < 0).any() or not pop.max() > 0:
        raise ValueError(f"`popularity` should be the training clicks of the {n_items} items "
                         f"(finite, >= 0, not all 0). Received: an array of shape {pop.shape}.")
    return pop / pop.max()


class Accumulator:
    """Adds up the metrics of batches of scored events; `result` turns them into the dict.

    Args:
        cutoffs, mode: as in `evaluate`.
        n_items: N, the number of scored items.
        coverage: also Coverage@k.
        popularity: training clicks per item index [N], or None (no Popularity@k).
    """

    def __init__(self, cutoffs, mode, n_items, coverage=False, popularity=None):
        check_options(mode)
        self.cutoffs = tuple(int(k) for k in cutoffs)
        if not self.cutoffs or min(self.cutoffs) < 1:
            raise ValueError(f"`cutoffs` should be positive ints. Received: `cutoffs` = {cutoffs!r}.")
        self.mode, self.n_items, self.coverage = mode, n_items, bool(coverage)
        self.popularity = None if popularity is None else tf.constant(
            normalised_popularity(popularity, n_items))

    def initial(self):
        """The zero sums: (float64 [M, C], int32 [N] positions, or [0] without coverage)."""
        rows = len(RANK_METRICS) + (self.popularity is not None)
        best = tf.fill([self.n_items if self.coverage else 0], _NO_POSITION)
        return tf.zeros([rows, len(self.cutoffs)], tf.float64), best

    def add(self, sums, best, scores, targets, valid):
        """The sums after one batch: scores [b, N], targets [b], valid bool [b]."""
        new = [metric_sums(target_ranks(scores, targets, self.mode), valid, self.cutoffs)]
        if self.coverage or self.popularity is not None:
            top = top_lists(scores, self.cutoffs)
            if self.popularity is not None:
                new.append(popularity_sums(top, valid, self.popularity, self.cutoffs)[None])
            if self.coverage:
                best = recommended_positions(best, top, valid)
        return sums + tf.concat(new, axis=0), best

    def result(self, sums, best, n_events, extra=None) -> dict:
        """{'recall@k', 'mrr@k', 'ndcg@k', ['coverage@k'], ['popularity@k'] per k, 'n_events', ...}."""
        sums, best = np.asarray(sums), np.asarray(best)
        out = {}
        for i, k in enumerate(self.cutoffs):
            for row, name in enumerate(RANK_METRICS):
                out[f"{name}@{k}"] = float(sums[row, i] / max(n_events, 1))
            if self.coverage:
                out[f"coverage@{k}"] = float(np.count_nonzero(best < k) / self.n_items)
            if self.popularity is not None:
                out[f"popularity@{k}"] = float(sums[-1, i] / max(n_events, 1))
        out["n_events"] = int(n_events)
        out.update(extra or {})
        return out


def as_session_data(test, item_map, source="test data") -> SessionData:
    """Test rows (DataFrame or SessionData) mapped with the model's item map."""
    if isinstance(test, SessionData):
        if test.item_map is item_map or test.item_map == item_map:
            return test
        raise ValueError("test SessionData was built with a different item map than the model's")
    if not isinstance(test, pd.DataFrame):
        raise TypeError(f"test data must be a pandas DataFrame or SessionData, got {type(test).__name__}")
    return SessionData.from_frame(test, item_map=item_map, source=source)


class Evaluator:
    """Evaluates a `GRU4Rec` model on one test set; compiled once, reusable every epoch.

    Args:
        test: test rows (DataFrame with SessionId, ItemId, Time) or SessionData.
        item_map: the model's item map (used when `test` is a DataFrame).
        cutoffs: the k of the metrics.
        mode: tie handling, one of TIE_MODES.
        batch_size: session slots evaluated in parallel, each scored against all items;
            None: as many as fit 1 GiB of scores (256 for up to ~350k items, fewer beyond;
            see `memory.eval_batch_size`).
        block_steps: steps per compiled call.
        protocol: which predictions are scored, one of PROTOCOLS (see the module docstring).
            Every session is run through all its clicks either way, so the results do not
            depend on `batch_size`.
        coverage: also Coverage@k of the top-k lists.
        popularity: training clicks per item index (e.g. `SessionData.support()` of the
            training data), for Popularity@k; None: not computed.
    """

    def __init__(self, test, item_map, cutoffs=(1, 5, 10, 20), mode="conservative",
                 batch_size=None, block_steps=64, protocol="next", coverage=False, popularity=None):
        check_options(mode, protocol)
        if batch_size is None:
            batch_size = memory.eval_batch_size(len(item_map))
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` should be a positive int. Received: `batch_size` = {batch_size!r}.")
        self.data = as_session_data(test, item_map)
        self.accumulator = Accumulator(cutoffs, mode, len(self.data.item_map), coverage, popularity)
        self.cutoffs, self.mode, self.protocol = self.accumulator.cutoffs, mode, protocol
        self.batch_size = batch_size
        self.block_steps = block_steps
        sched = session_parallel_schedule(self.data.offsets, batch_size, min_active=1)
        items = self.data.items
        pos = np.maximum(sched.position, 0)
        self._inputs = np.where(sched.valid, items[pos], 0).astype(np.int32)
        self._targets = np.where(sched.valid, items[np.minimum(pos + 1, len(items) - 1)], 0).astype(np.int32)
        self._reset = sched.reset
        # The state runs through every click; only the protocol's predictions are scored.
        self._valid = sched.valid & scored_inputs(self.data.offsets, protocol)[pos]
        self._fn = None
        self._model = None

    def _compile(self, model):
        accumulator = self.accumulator

        @tf.function(jit_compile=True, autograph=False)  # explicit while_loop: nothing to convert
        def block(inputs, targets, reset, valid, n_steps, state, sums, best):
            def body(t, state, sums, best):
                state = tf.where(reset[t][:, None], 0.0, state)
                state, h = model.step(inputs[t], state)
                sums, best = accumulator.add(sums, best, model.score_all(h), targets[t], valid[t])
                return t + 1, state, sums, best

            _, state, sums, best = tf.while_loop(
                lambda t, *_: t < n_steps, body, (tf.constant(0), state, sums, best)
            )
            return state, sums, best

        return block

    def __call__(self, model, progress=None) -> dict:
        """The metrics of `model` (see `Accumulator.result`), plus skipped counts and seconds.

        `progress`, if given, is called as `progress(done, total)` in predictions before
        the first compiled block, after every block and at least at every tenth of the
        predictions (e.g. to draw a progress bar).
        """
        if self._fn is None or self._model is not model:
            self._fn, self._model = self._compile(model), model
        start = time.perf_counter()
        K, B = self.block_steps, self.batch_size
        T = self._inputs.shape[0]
        state = model.initial_state(B)
        sums, best = self.accumulator.initial()
        pad = K  # a block of K steps may start at any step (see `block_ends`)

        def padded(a):
            return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])

        inputs, targets = padded(self._inputs), padded(self._targets)
        reset, valid = padded(self._reset), padded(self._valid)
        n_events = int(self._valid.sum())
        done = np.cumsum(self._valid.sum(axis=1))  # predictions up to each step
        ends = block_ends(done, K, tenths=progress is not None)
        if progress is not None:
            progress(0, n_events)
        for s, e in zip([0, *ends[:-1]], ends):
            state, sums, best = self._fn(
                inputs[s : s + K], targets[s : s + K], reset[s : s + K], valid[s : s + K],
                tf.constant(e - s), state, sums, best,
            )
            if progress is not None:
                progress(int(done[e - 1]), n_events)
        return self.accumulator.result(
            sums, best, n_events,
            {
                "skipped_unknown": self.data.skipped_unknown,
                "skipped_sessions": self.data.skipped_sessions,
                "eval_seconds": time.perf_counter() - start,
            },
        )


def block_ends(done, block_steps: int, tenths: bool = False) -> list[int]:
    """Where the compiled blocks of an evaluation end: every `block_steps` steps and at the
    end; with `tenths` also at the first step that completes each tenth of the predictions
    (`done`: the running count per step), so that progress can be shown every tenth.
    Blocks are never longer than `block_steps`; the results do not depend on the cuts."""
    T = len(done)
    ends = set(range(block_steps, T, block_steps)) | {T}
    if tenths and T and done[-1] > 0:
        ends |= set(np.searchsorted(done, done[-1] * np.arange(1, 10) / 10).astype(int) + 1)
    return sorted(int(e) for e in ends if 0 < e <= T)


def evaluate(model, test, cutoffs=(1, 5, 10, 20), mode="conservative", batch_size=None,
             progress=None, protocol="next", coverage=False, popularity=None) -> dict:
    """Recall@k, MRR@k and NDCG@k of `model` on `test` (see the module docstring), and
    Coverage@k / Popularity@k when asked; the options are those of `Evaluator`.

    `progress`: optional `progress(done, total)` callback, see `Evaluator.__call__`.
    """
    return Evaluator(test, model.item_map, cutoffs, mode, batch_size, protocol=protocol,
                     coverage=coverage, popularity=popularity)(model, progress)


class EvaluationCallback(keras.callbacks.Callback):
    """Evaluates a validation set after each epoch and adds its metrics to the logs:
    `val_recall@k`, `val_mrr@k`, `val_ndcg@k` (and `val_coverage@k`, `val_popularity@k`
    when asked; the options are those of `Evaluator`).

    Put it before TensorBoard / EarlyStopping / ModelCheckpoint in the callback list so they
    see the metrics, e.g. `EarlyStopping(monitor="val_recall@20", mode="max")`.
    """

    def __init__(self, test, cutoffs=(1, 5, 10, 20), mode="conservative", prefix="val_",
                 batch_size=None, protocol="next", coverage=False, popularity=None):
        super().__init__()
        check_options(mode, protocol)
        self.test, self.cutoffs, self.mode = test, cutoffs, mode
        self.prefix, self.batch_size = prefix, batch_size
        self.options = {"protocol": protocol, "coverage": coverage, "popularity": popularity}
        self._evaluator = None

    def on_epoch_end(self, epoch, logs=None):
        if self._evaluator is None:
            self._evaluator = Evaluator(self.test, self.model.item_map, self.cutoffs, self.mode,
                                        self.batch_size, **self.options)
        result = self._evaluator(self.model)
        if logs is not None:
            logs.update({f"{self.prefix}{k}": v for k, v in result.items() if "@" in k})
