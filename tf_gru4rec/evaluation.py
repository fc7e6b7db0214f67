"""Next-item evaluation as the GRU4Rec papers do it: full catalogue, Recall@k and MRR@k.

For each event of a test session except its last, the model predicts the following item
from the items so far (the hidden state starts at zero for every test session); ALL
training items are scored, no sampling. Test events with items unknown to the model are
dropped before sessions are formed (the session continues across the gap) and sessions
left with fewer than 2 events contribute nothing; both are counted.

Rank of the target with ties:
    standard     = 1 + #(score > target)
    conservative = #(score >= target)                  (the default: ties rank it last)
    median       = 1 + #(>) + (#(==) - 1) / 2
Recall@k = share of events with rank <= k; MRR@k = mean of 1/rank (0 beyond k), micro
averaged over events.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tf_gru4rec import memory
from tf_gru4rec.data import SessionData, session_parallel_schedule

TIE_MODES = ("standard", "conservative", "median")


def target_ranks(scores, targets, mode="conservative"):
    """Rank of each row's target among all columns: scores [b, N], targets [b] -> float32 [b].

    Non-finite scores never make a hit: a NaN or infinite target score ranks +inf (a
    miss at every cutoff), and a NaN score of another item counts as above the target.
    """
    if mode not in TIE_MODES:
        raise ValueError(f"Unknown tie mode {mode!r}. Expected one of {TIE_MODES}.")
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
    """Hits and reciprocal-rank sums per cutoff over the valid rows: two float64 [C]
    (summed in float64 so that results do not depend on how rows are batched)."""
    valid = tf.cast(valid, tf.float64)
    ranks = tf.cast(ranks, tf.float64)
    hits, rr = [], []
    for k in cutoffs:
        hit = tf.cast(ranks <= k, tf.float64) * valid
        hits.append(tf.reduce_sum(hit))
        rr.append(tf.reduce_sum(hit / ranks))
    return tf.stack(hits), tf.stack(rr)


def summarize(hits, rr, n_events, cutoffs, extra=None) -> dict:
    """Turns accumulated sums into {'recall@k', 'mrr@k', 'n_events', ...}."""
    out = {}
    for i, k in enumerate(cutoffs):
        out[f"recall@{k}"] = float(hits[i] / max(n_events, 1))
        out[f"mrr@{k}"] = float(rr[i] / max(n_events, 1))
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
        cutoffs: the k of Recall@k / MRR@k.
        mode: tie handling, one of TIE_MODES.
        batch_size: session slots evaluated in parallel, each scored against all items;
            None: as many as fit 1 GiB of scores (256 for up to ~350k items, fewer beyond;
            see `memory.eval_batch_size`).
        block_steps: steps per compiled call.
    """

    def __init__(self, test, item_map, cutoffs=(1, 5, 10, 20), mode="conservative",
                 batch_size=None, block_steps=64):
        if mode not in TIE_MODES:
            raise ValueError(f"Unknown tie mode {mode!r}. Expected one of {TIE_MODES}.")
        if batch_size is None:
            batch_size = memory.eval_batch_size(len(item_map))
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` should be a positive int. Received: `batch_size` = {batch_size!r}.")
        self.data = as_session_data(test, item_map)
        self.cutoffs = tuple(int(k) for k in cutoffs)
        self.mode = mode
        self.batch_size = batch_size
        self.block_steps = block_steps
        sched = session_parallel_schedule(self.data.offsets, batch_size, min_active=1)
        items = self.data.items
        valid = sched.valid
        pos = np.maximum(sched.position, 0)
        self._inputs = np.where(valid, items[pos], 0).astype(np.int32)
        self._targets = np.where(valid, items[np.minimum(pos + 1, len(items) - 1)], 0).astype(np.int32)
        self._reset = sched.reset
        self._valid = valid
        self._fn = None
        self._model = None

    def _compile(self, model):
        cutoffs, mode = self.cutoffs, self.mode

        @tf.function(jit_compile=True, autograph=False)  # explicit while_loop: nothing to convert
        def block(inputs, targets, reset, valid, n_steps, state):
            def body(t, state, hits, rr):
                state = tf.where(reset[t][:, None], 0.0, state)
                state, h = model.step(inputs[t], state)
                ranks = target_ranks(model.score_all(h), targets[t], mode)
                dh, dr = metric_sums(ranks, valid[t], cutoffs)
                return t + 1, state, hits + dh, rr + dr

            zeros = tf.zeros([len(cutoffs)], tf.float64)
            _, state, hits, rr = tf.while_loop(
                lambda t, *_: t < n_steps, body, (tf.constant(0), state, zeros, zeros)
            )
            return state, hits, rr

        return block

    def __call__(self, model, progress=None) -> dict:
        """Recall@k / MRR@k of `model`, plus n_events, skipped counts and seconds.

        `progress`, if given, is called as `progress(done, total)` in predictions before
        the first compiled block and after every block (e.g. to draw a progress bar).
        """
        if self._fn is None or self._model is not model:
            self._fn, self._model = self._compile(model), model
        start = time.perf_counter()
        K, B = self.block_steps, self.batch_size
        T = self._inputs.shape[0]
        state = model.initial_state(B)
        hits = np.zeros(len(self.cutoffs))
        rr = np.zeros(len(self.cutoffs))
        pad = (-T) % K

        def padded(a):
            return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)])

        inputs, targets = padded(self._inputs), padded(self._targets)
        reset, valid = padded(self._reset), padded(self._valid)
        n_events = int(self._valid.sum())
        done = np.cumsum(self._valid.sum(axis=1))  # predictions up to each step
        if progress is not None:
            progress(0, n_events)
        for s in range(0, T, K):
            state, dh, dr = self._fn(
                inputs[s : s + K], targets[s : s + K], reset[s : s + K], valid[s : s + K],
                tf.constant(min(K, T - s)), state,
            )
            hits += dh.numpy()
            rr += dr.numpy()
            if progress is not None:
                progress(int(done[min(s + K, T) - 1]), n_events)
        return summarize(
            hits, rr, n_events, self.cutoffs,
            {
                "skipped_unknown": self.data.skipped_unknown,
                "skipped_sessions": self.data.skipped_sessions,
                "eval_seconds": time.perf_counter() - start,
            },
        )


def evaluate(model, test, cutoffs=(1, 5, 10, 20), mode="conservative", batch_size=None,
             progress=None) -> dict:
    """Recall@k and MRR@k of `model` on `test` (see the module docstring).

    `progress`: optional `progress(done, total)` callback, see `Evaluator.__call__`.
    """
    return Evaluator(test, model.item_map, cutoffs, mode, batch_size)(model, progress)


class EvaluationCallback(keras.callbacks.Callback):
    """Evaluates a validation set after each epoch and adds `val_recall@k` / `val_mrr@k` logs.

    Put it before TensorBoard / EarlyStopping / ModelCheckpoint in the callback list so they
    see the metrics, e.g. `EarlyStopping(monitor="val_recall@20", mode="max")`.
    """

    def __init__(self, test, cutoffs=(1, 5, 10, 20), mode="conservative", prefix="val_",
                 batch_size=None):
        super().__init__()
        self.test, self.cutoffs, self.mode = test, cutoffs, mode
        self.prefix, self.batch_size = prefix, batch_size
        self._evaluator = None

    def on_epoch_end(self, epoch, logs=None):
        if self._evaluator is None:
            self._evaluator = Evaluator(
                self.test, self.model.item_map, self.cutoffs, self.mode, self.batch_size
            )
        result = self._evaluator(self.model)
        if logs is not None:
            for k in self.cutoffs:
                logs[f"{self.prefix}recall@{k}"] = result[f"recall@{k}"]
                logs[f"{self.prefix}mrr@{k}"] = result[f"mrr@{k}"]
