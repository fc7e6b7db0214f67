"""Training with Keras: the callbacks GRU4Rec adds, and `train`, which wires a run together.

`train` is the short path (parameters in, trained model out); everything it does is plain
Keras: `GRU4Rec.compile` + `model.fit` on `SessionParallelBatcher.dataset()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import pandas as pd

from tf_gru4rec.data import SessionData
from tf_gru4rec.evaluation import EvaluationCallback
from tf_gru4rec.params import GRU4RecParams, parse_params


class EventsPerSecond(keras.callbacks.Callback):
    """Adds `events_per_second` (training examples / epoch wall time) and `learning_rate`
    to the epoch logs, so the progress bar and TensorBoard show them."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = time.perf_counter() - self._start
        if "events" in logs:
            logs["events_per_second"] = float(logs["events"]) / max(seconds, 1e-9)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


@dataclass
class TrainResult:
    """What `train` returns."""

    model: keras.Model
    history: keras.callbacks.History
    train_seconds: float  # wall time of model.fit over all epochs, compilation included
    n_examples: int  # training examples over all epochs

    @property
    def events_per_second(self) -> float:
        return self.n_examples / max(self.train_seconds, 1e-9)


def train(train_data, params=None, validation=None, callbacks=(), cutoffs=(1, 5, 10, 20),
          mode="conservative", verbose="auto") -> TrainResult:
    """Trains GRU4Rec.

    Args:
        train_data: training rows (DataFrame with SessionId, ItemId, Time) or SessionData.
        params: `GRU4RecParams`, a dict or a `k=v,...` string of the reference names.
        validation: optional rows evaluated after every epoch (`val_recall@k` logs).
        callbacks: more Keras callbacks (TensorBoard, ModelCheckpoint, ...).
        cutoffs, mode: of the validation metrics.
        verbose: passed to `model.fit`.
    """
    params = params if isinstance(params, GRU4RecParams) else parse_params(params)
    if params.seed is not None:
        keras.utils.set_random_seed(params.seed)
    data = train_data if isinstance(train_data, SessionData) else SessionData.from_frame(
        pd.DataFrame(train_data), source="training data"
    )
    batcher = params.build_batcher(data)
    model = params.build_model(data.item_map)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    all_callbacks = [EventsPerSecond()]
    if validation is not None:
        all_callbacks.append(EvaluationCallback(validation, cutoffs, mode))
    all_callbacks.extend(callbacks)
    start = time.perf_counter()
    history = model.fit(batcher.dataset(), epochs=params.n_epochs, callbacks=all_callbacks,
                        verbose=verbose)
    seconds = time.perf_counter() - start
    epochs = len(history.epoch)
    return TrainResult(model, history, seconds, batcher.n_examples * epochs)
