"""Training with Keras: the callbacks GRU4Rec adds, and `train`, which wires a run together.

`train` is the short path (parameters in, trained model out); everything it does is plain
Keras: `GRU4Rec.compile` + `model.fit` on `SessionParallelBatcher.dataset()`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import keras
import pandas as pd

from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.evaluation.evaluator import EvaluationCallback
from tf_gru4rec.system import memory
from tf_gru4rec.training import distribute as distribute_module
from tf_gru4rec.training.callbacks import EventsPerSecond, StopOnDivergence
from tf_gru4rec.training.checkpoints import EpochCheckpoint, restore_checkpoint, run_fingerprint
from tf_gru4rec.training.params import GRU4RecParams, ParamError, parse_params
from tf_gru4rec.training.warm_start import WarmStart, reindex


def check_session_slots(n_sessions: int, batch_size: int, replicas: int) -> None:
    """Refuses more session slots (replicas x batch_size) than training sessions: the extra
    slots would never hold a session, and each replica's shard would be a few sessions run
    in short parallel bursts (measured: 4,096 slots for 3,000 sessions, Recall@20 0.08
    instead of 0.28).

    Raises:
        ParamError: naming the numbers and what to lower.
    """
    slots = batch_size * replicas
    if slots > n_sessions:
        raise ParamError(f"batch_size={batch_size} x {replicas} replica(s) = {slots:,} session slots "
                         f"for {n_sessions:,} training sessions: lower batch_size or the replicas "
                         "(at most one slot per session)")


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


def check_memory(params: GRU4RecParams, strategy=None, n_items: int = 0, n_rows: int = 0,
                 id_length: float | None = None, evaluate: bool = False, features=None) -> int:
    """Refuses a run that clearly cannot fit (`memory.MemoryEstimateError`), counting every
    part of `memory` for this process's replicas: before the data is read (n_items =
    n_rows = 0: what the parameters alone need), and again once its size is known.
    `features`: (feature values, most values of an item) of item features."""
    replicas = len(strategy.extended.worker_devices) if strategy else 1
    eval_rows = memory.eval_batch_size(n_items) if evaluate else 0
    parts = {**memory.training_bytes(n_items, params, eval_rows, replicas, features),
             **memory.data_bytes(n_rows, n_items, replicas, id_length)}
    return memory.check_fits(parts, replicas=replicas)


def fit_verbosity(verbose="auto"):
    """`model.fit`'s verbose for `verbose`: "auto" is Keras' bar (1) on a terminal or in a
    notebook, else one plain line per epoch (2). Keras' own "auto" always draws the bar,
    with backspaces and colour codes, into files and pipes too."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2


def train(train_data, params=None, validation=None, callbacks=(), cutoffs=(1, 5, 10, 20),
          mode="conservative", verbose="auto", checkpoint_dir=None, init_from=None,
          distribute=None, replicas=None, protocol="next", item_features=None) -> TrainResult:
    """Trains GRU4Rec.

    Args:
        train_data: training rows (DataFrame with SessionId, ItemId, Time) or SessionData.
        params: `GRU4RecParams`, a dict or a `k=v,...` string of the reference names.
        validation: optional rows evaluated after every epoch (`val_recall@k` logs).
        callbacks: more Keras callbacks (TensorBoard, ModelCheckpoint, ...).
        cutoffs, mode, protocol: of the validation metrics (see `evaluation`).
        verbose: passed to `model.fit`; "auto": its bar on a terminal, else a line per
            epoch (`fit_verbosity`).
        checkpoint_dir: a folder for a checkpoint after every epoch (`EpochCheckpoint`); a
            run given the folder of a killed run with the same data and parameters
            continues after its last completed epoch and ends exactly as an uninterrupted
            run would (history and `n_examples` cover the epochs run in this call); unless
            `verbose` is 0 it says so on stderr ("DIR: resuming from epoch N of M").
        init_from: warm start from a trained `GRU4Rec`, a model directory or a
            `warm_start.WarmStart` (which says how): the item map grows by the new items,
            known items' rows, GRU weights and AdagradM slots are copied. A model with item
            features needs `item_features` read with its encoder (`warm_start`).
        distribute: None (one device), 'mirrored' (the GPUs of this machine), 'multi-worker'
            (one replica per worker of the `TF_CONFIG` cluster) or a `tf.distribute.Strategy`:
            synchronous data-parallel training, `batch_size` slots per replica (see
            `tf_gru4rec.distribute`).
        replicas: with 'mirrored', how many devices (CPU only: logical devices).
        item_features: an `ItemFeatures` table (`read_item_features`): the model's items
            become the training items then the table's never-clicked items (cold-start,
            recommendable by their features), and every item's vector adds its features'.

    Raises:
        DivergenceError: the loss became NaN or infinite (see `StopOnDivergence`).
        MemoryEstimateError: the run clearly needs more memory than the machine has.
        ParamError: more session slots (replicas x batch_size) than training sessions.
        ArchitectureError: `params` change the architecture of the `init_from` model.
    """
    params = params if isinstance(params, GRU4RecParams) else parse_params(params)
    # A multi-worker strategy must exist before TensorFlow does any other work.
    strategy = (distribute_module.make_strategy(distribute, replicas) if isinstance(distribute, str)
                else distribute)
    if params.seed is not None:
        keras.utils.set_random_seed(params.seed)
    data = train_data if isinstance(train_data, SessionData) else SessionData.from_frame(
        pd.DataFrame(train_data), source="training data"
    )
    if params.id_dropout and item_features is None:
        raise ParamError(f"id_dropout={params.id_dropout} needs item features (item_features=, "
                         "--item-features): without them an item is its id only")
    warm = None if init_from is None else WarmStart.of(init_from)
    if warm is not None:
        data = warm.prepare(data, params, item_features)
    if item_features is not None:
        item_features = item_features.align(data.item_map).features
        data = reindex(data, ItemMap(item_features.ids))
    if strategy:
        check_session_slots(data.n_sessions, params.batch_size, strategy.num_replicas_in_sync)
    check_memory(params, strategy, len(data.item_map), data.n_events, data.item_map.id_length,
                 evaluate=validation is not None, features=None if item_features is None else item_features.shape)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = params.build_model(data.item_map, item_features)
        model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
        if warm is not None:
            warm.apply(model)
    if strategy:
        batchers = distribute_module.replica_batchers(
            data, strategy, params.batch_size, n_sample=params.n_sample,
            sample_alpha=params.sample_alpha, sample_cache_size=params.sample_cache_size,
            inputs_in_rows=params.embedding_mode == "shared", seed=params.seed,
            block_steps=params.block_steps)
        dataset = distribute_module.distributed_dataset(strategy, batchers)
    else:
        batchers = [params.build_batcher(data)]
        dataset = batchers[0].dataset()
    all_callbacks = [StopOnDivergence(), EventsPerSecond()]
    initial_epoch = 0
    if checkpoint_dir is not None:
        fingerprint = run_fingerprint(data, params, strategy.num_replicas_in_sync if strategy else 1)
        initial_epoch = restore_checkpoint(checkpoint_dir, model, batchers, fingerprint)
        if initial_epoch and verbose != 0:
            print(f"{os.fspath(checkpoint_dir)}: resuming from epoch {initial_epoch + 1} of {params.n_epochs} "
                  f"({initial_epoch} completed)", file=sys.stderr, flush=True)
        for batcher in batchers:  # the epoch count seeds data-parallel dropout masks
            batcher.epoch = initial_epoch
        if distribute_module.is_chief(strategy):  # the other workers only read it
            # Replicas' samplers share a seed and stay in step: replica 0's state is everyone's.
            all_callbacks.append(EpochCheckpoint(checkpoint_dir, batchers[0], fingerprint))
    if validation is not None:
        all_callbacks.append(EvaluationCallback(validation, cutoffs, mode, protocol=protocol))
    all_callbacks.extend(callbacks)
    start = time.perf_counter()
    history = model.fit(dataset, epochs=params.n_epochs, callbacks=all_callbacks,
                        initial_epoch=initial_epoch, verbose=fit_verbosity(verbose))
    seconds = time.perf_counter() - start
    epochs = len(history.epoch)
    return TrainResult(model, history, seconds, sum(b.n_examples for b in batchers) * epochs)


