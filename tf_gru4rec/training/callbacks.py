"""Keras callbacks GRU4Rec training adds: speed, divergence, the item-embedding projector."""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf



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
    tables = {"item_embeddings": model.item_table.wy}
    if model.item_embedding is not None:
        tables["input_item_embeddings"] = model.item_embedding.e
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
