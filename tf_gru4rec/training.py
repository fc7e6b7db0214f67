"""Training with Keras: the callbacks GRU4Rec adds, and `train`, which wires a run together.

`train` is the short path (parameters in, trained model out); everything it does is plain
Keras: `GRU4Rec.compile` + `model.fit` on `SessionParallelBatcher.dataset()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tf_gru4rec import distribute as distribute_module
from tf_gru4rec import memory
from tf_gru4rec.data import SessionData
from tf_gru4rec.evaluation import EvaluationCallback
from tf_gru4rec.files import MODEL_FILE, atomic_directory, model_dir_problem, remove_leftovers
from tf_gru4rec.params import GRU4RecParams, ParamError, parse_params
from tf_gru4rec.warm_start import WarmStart


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


class DivergenceError(ValueError):
    """Training produced a non-finite loss; the message names the settings to check."""


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training with a `DivergenceError` as soon as a block's loss is NaN or infinite.

    A diverged model scores every item NaN, and a NaN run must never be mistaken for a
    result. `train` always adds it; with plain `model.fit`, add it yourself (Keras'
    `TerminateOnNaN` stops as quietly as a finished run).
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not np.isfinite(loss):
            optimizer = self.model.optimizer
            lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            raise DivergenceError(
                f"training diverged: the loss became {loss} in block {batch + 1} of the epoch; "
                f"check learning_rate ({lr:g}) and momentum ({getattr(optimizer, 'momentum', 0):g}), "
                "the loss parameters and the data"
            )


CHECKPOINT_WEIGHTS = "checkpoint.weights.h5"
CHECKPOINT_PROGRESS = "progress.json"


class CheckpointError(ValueError):
    """A checkpoint folder that does not belong to this run; the message says why."""


def _fingerprint(data: SessionData, params: GRU4RecParams, replicas: int = 1) -> dict:
    """What a checkpoint must match to be continued: the parameters and the data."""
    digest = hashlib.sha1(data.items.tobytes())
    digest.update(data.offsets.tobytes())
    digest.update(data.item_map.tobytes())  # the same layout of other item ids differs
    return {"params": params.to_string(), "data_sha1": digest.hexdigest(),
            "n_items": len(data.item_map), "replicas": replicas}


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves, after every epoch, all that `restore_checkpoint` needs to continue the run as
    if it had never stopped: weights and optimizer slots, the dropout seed, the negative
    sampler's position and the epoch count. Replaced atomically (`atomic_directory`), so
    a kill at any moment leaves the last complete epoch's checkpoint."""

    def __init__(self, directory, batcher, fingerprint):
        super().__init__()
        self.directory, self.batcher, self.fingerprint = os.fspath(directory), batcher, fingerprint

    def on_epoch_end(self, epoch, logs=None):
        remove_leftovers(self.directory)
        with atomic_directory(self.directory, replace=True) as tmp:
            self.model.save_weights(os.path.join(tmp, CHECKPOINT_WEIGHTS))
            sampler = self.batcher.sampler
            progress = {**self.fingerprint, "epochs_done": epoch + 1,
                        "dropout_seed": self.model.seed_generator.state.numpy().tolist(),
                        "sampler": sampler.get_state() if sampler else None}
            with open(os.path.join(tmp, CHECKPOINT_PROGRESS), "w", encoding="utf-8") as f:
                json.dump(progress, f)


def restore_checkpoint(directory, model, batchers, fingerprint) -> int:
    """Loads an `EpochCheckpoint` into a compiled model and its batchers (one per replica);
    returns the number of epochs it completed (0 when `directory` holds none yet).

    Raises:
        CheckpointError: the checkpoint is of other parameters or other data.
    """
    path = os.path.join(os.fspath(directory), CHECKPOINT_PROGRESS)
    if not os.path.isfile(path):
        if os.path.isdir(directory) and os.listdir(directory):
            raise CheckpointError(f"{directory}: not empty and holds no training checkpoint")
        return 0
    with open(path, encoding="utf-8") as f:
        progress = json.load(f)
    for key, value in fingerprint.items():
        if progress.get(key) != value:
            raise CheckpointError(f"{directory}: the checkpoint is of another run ({key} differs); "
                                  "give another --checkpoint-dir or the same data and parameters")
    model.load_weights(os.path.join(os.fspath(directory), CHECKPOINT_WEIGHTS))
    model.seed_generator.state.assign(np.array(progress["dropout_seed"], model.seed_generator.state.dtype))
    if progress["sampler"] is not None:
        for batcher in batchers:
            batcher.sampler.set_state(progress["sampler"])
    return int(progress["epochs_done"])


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
                 id_length: float | None = None, evaluate: bool = False) -> int:
    """Refuses a run that clearly cannot fit (`memory.MemoryEstimateError`), counting every
    part of `memory` for this process's replicas: before the data is read (n_items =
    n_rows = 0: what the parameters alone need), and again once its size is known."""
    replicas = len(strategy.extended.worker_devices) if strategy else 1
    eval_rows = memory.eval_batch_size(n_items) if evaluate else 0
    parts = {**memory.training_bytes(n_items, params, eval_rows, replicas),
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
          distribute=None, replicas=None, protocol="next") -> TrainResult:
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
            known items' rows, GRU weights and AdagradM slots are copied.
        distribute: None (one device), 'mirrored' (the GPUs of this machine), 'multi-worker'
            (one replica per worker of the `TF_CONFIG` cluster) or a `tf.distribute.Strategy`:
            synchronous data-parallel training, `batch_size` slots per replica (see
            `tf_gru4rec.distribute`).
        replicas: with 'mirrored', how many devices (CPU only: logical devices).

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
    warm = None if init_from is None else WarmStart.of(init_from)
    if warm is not None:
        data = warm.prepare(data, params)
    if strategy:
        check_session_slots(data.n_sessions, params.batch_size, strategy.num_replicas_in_sync)
    check_memory(params, strategy, len(data.item_map), data.n_events, data.item_map.id_length,
                 evaluate=validation is not None)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = params.build_model(data.item_map)
        model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
        if warm is not None:
            warm.apply(model)
    if strategy:
        batchers = distribute_module.replica_batchers(
            data, strategy, params.batch_size, n_sample=params.n_sample,
            sample_alpha=params.sample_alpha, sample_cache_size=params.sample_cache_size,
            inputs_in_rows=params.embedding_mode == "shared", seed=params.seed)
        dataset = distribute_module.distributed_dataset(strategy, batchers)
    else:
        batchers = [params.build_batcher(data)]
        dataset = batchers[0].dataset()
    all_callbacks = [StopOnDivergence(), EventsPerSecond()]
    initial_epoch = 0
    if checkpoint_dir is not None:
        fingerprint = _fingerprint(data, params, strategy.num_replicas_in_sync if strategy else 1)
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


PARAMS_FILE = "params.json"
MODEL_FILES = {MODEL_FILE, PARAMS_FILE}


class ModelDirError(ValueError):
    """A path that cannot receive a model directory, or a damaged one; the message says why."""


def check_model_dir(path, overwrite=False) -> None:
    """Checks, before any training, that `save_model_dir(..., path, overwrite)` will succeed.

    `path` may be absent (its parent is created), an empty folder, or, with `overwrite`,
    a model directory (only `model.keras` and `params.json`). Anything else, a folder of
    the user's files above all, is refused: nothing of the user's is ever deleted.

    Raises:
        ModelDirError: with the reason, in one line.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        if not os.path.isdir(path):
            raise ModelDirError(f"{path}: exists and is not a folder")
        entries = set(os.listdir(path))
        if entries and (MODEL_FILE not in entries or not entries <= MODEL_FILES):
            raise ModelDirError(f"{path}: a folder that is not empty and holds no model directory "
                                f"({len(entries)} entries); give a new or empty folder")
        if entries and not overwrite:
            raise ModelDirError(f"{path}: holds a model already; pass overwrite=True "
                                "(--overwrite) to replace it")
        parent = path
    else:
        parent = os.path.dirname(path)
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise ModelDirError(f"{path}: cannot be created, {parent} is not a folder")
    try:  # a real write: os.access says yes to root even where nothing can be created
        os.rmdir(tempfile.mkdtemp(prefix=".check-", dir=parent))
    except OSError as e:
        raise ModelDirError(f"{path}: cannot write in {parent} ({e.strerror})") from None


def save_model_dir(model, path, params: GRU4RecParams | None = None, overwrite=False) -> str:
    """Writes a model directory: `model.keras` (weights, optimizer state, item map) and
    `params.json` (the training parameters, `k=v` form under "params").

    `path` is checked first (`check_model_dir`): an existing model directory is replaced
    only with `overwrite`. Written to a temporary sibling folder, then swapped in
    atomically (`files.atomic_directory`): a reader, or a kill at any moment, finds the
    old model or the new one, complete. Leftovers of an earlier killed save are removed.
    """
    remove_leftovers(path)  # first: it may restore the directory an interrupted save left missing
    check_model_dir(path, overwrite)
    with atomic_directory(path, replace=True) as tmp:
        model.save(os.path.join(tmp, MODEL_FILE))
        info = {"params": params.to_string() if params else None,
                "item_id_dtype": "int64" if model.item_map.is_integer else "string",
                "n_items": model.n_items}
        with open(os.path.join(tmp, PARAMS_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    return path


def load_model_dir(path):
    """Loads the `GRU4Rec` of a model directory written by `save_model_dir`.

    Returns (model, params) where params is a `GRU4RecParams` or None.
    """
    path = os.fspath(path)
    model_file = os.path.join(path, MODEL_FILE)
    problem = model_dir_problem(path)
    if problem:
        raise (ModelDirError if os.path.isfile(model_file) else FileNotFoundError)(problem)
    model = keras.models.load_model(model_file)
    params = None
    params_file = os.path.join(path, PARAMS_FILE)
    if os.path.isfile(params_file):
        with open(params_file, encoding="utf-8") as f:
            spec = json.load(f).get("params")
        params = parse_params(spec) if spec else None
    return model, params


# ----- TensorBoard projector ---------------------------------------------------------------
PROJECTOR_METADATA = "metadata.tsv"


def write_item_embeddings(model, log_dir, support=None) -> str:
    """Writes the item tables of `model` for TensorBoard's projector into `log_dir`.

    Files: a TF checkpoint of the output item table `wy` [N, d] (named `item_embeddings`;
    with a separate input embedding also `input_item_embeddings` [N, e]),
    `metadata.tsv` (one row per item in index order: the original item id, plus its
    training clicks when `support` is given) and `projector_config.pbtxt`.

    TensorBoard's projector looks for these in a run folder (a folder with event files)
    or in the `--logdir` root; `ItemEmbeddingProjector` writes them into the `train` run
    of a `keras.callbacks.TensorBoard` log dir, next to the training scalars.

    Args:
        model: a `GRU4Rec`.
        log_dir: the folder to write into (created if missing).
        support: optional float [N], training clicks per item index (`SessionData.support()`).

    Returns:
        The path of `projector_config.pbtxt`.

    Example:
        >>> write_item_embeddings(model, "runs/tb/train", support=train_data.support())
    """
    from tensorboard.plugins import projector  # only needed here

    ids = [str(i).replace("\t", " ").replace("\n", " ") for i in model.item_map.ids]
    if support is not None:
        support = np.asarray(support)
        if support.shape != (len(ids),):
            raise ValueError(
                f"`support` should have one value per item, shape ({len(ids)},). "
                f"Received: shape {support.shape}."
            )
    log_dir = os.fspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, PROJECTOR_METADATA), "w", encoding="utf-8") as f:
        if support is None:  # one column: no header row (the projector's convention)
            f.writelines(f"{i}\n" for i in ids)
        else:
            f.write("ItemId\tSupport\n")
            f.writelines(f"{i}\t{s:g}\n" for i, s in zip(ids, support))
    tables = {"item_embeddings": model.wy}
    if model.item_embedding is not None:
        tables["input_item_embeddings"] = model.item_embedding
    copies = {name: tf.Variable(keras.ops.convert_to_numpy(table), name=name)
              for name, table in tables.items()}
    # A new Checkpoint object numbers its save 1 and updates the `checkpoint` state file,
    # which the projector reads to find the latest checkpoint of the folder.
    tf.train.Checkpoint(**copies).save(os.path.join(log_dir, "item_embeddings.ckpt"))
    config = projector.ProjectorConfig()
    for name in copies:
        embedding = config.embeddings.add()
        embedding.tensor_name = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        embedding.metadata_path = PROJECTOR_METADATA
    projector.visualize_embeddings(log_dir, config)
    return os.path.join(log_dir, "projector_config.pbtxt")


class ItemEmbeddingProjector(keras.callbacks.Callback):
    """Writes the item embeddings for TensorBoard's projector when training ends.

    Pass the `log_dir` of the run's `keras.callbacks.TensorBoard`: the files go into its
    `train` run folder (see `write_item_embeddings`), so `tensorboard --logdir LOG_DIR`
    (or any parent folder) shows them in the PROJECTOR tab, labelled by original item id.

    Args:
        log_dir: the TensorBoard log dir.
        support: optional training clicks per item index, shown as a metadata column.
        subdir: the run folder inside `log_dir` ("train", Keras' training run).
    """

    def __init__(self, log_dir, support=None, subdir="train"):
        super().__init__()
        self.log_dir, self.support, self.subdir = log_dir, support, subdir

    def on_train_end(self, logs=None):
        run_dir = os.path.join(os.fspath(self.log_dir), self.subdir)
        write_item_embeddings(self.model, run_dir, self.support)
