"""Next-item evaluation as the GRU4Rec papers do it: full catalogue, Recall@k, MRR@k, NDCG@k.

The model reads each test session click by click (the hidden state starts at zero for every
test session) and after each click predicts the following item; ALL training items are
scored, no sampling. Which predictions count: `protocols`; ranks and metrics: `metrics`.
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
from tf_gru4rec.evaluation.metrics import Accumulator
from tf_gru4rec.evaluation.protocols import check_options, scored_inputs


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
