"""Epoch checkpoints of a `train` run: resume where an interrupted run stopped, bit for bit."""

from __future__ import annotations

import hashlib
import json
import os

import keras
import numpy as np

from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.system.files import (
    atomic_directory,
    remove_leftovers,
)
from tf_gru4rec.training.params import GRU4RecParams


CHECKPOINT_WEIGHTS = "checkpoint.weights.h5"
CHECKPOINT_PROGRESS = "progress.json"


class CheckpointError(ValueError):
    """A checkpoint folder that does not belong to this run; the message says why."""


def run_fingerprint(data: SessionData, params: GRU4RecParams, replicas: int = 1) -> dict:
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


