"""Model directories: a trained model (`model.keras`, item map inside) with its parameters (`params.json`)."""

from __future__ import annotations

import json
import os
import tempfile

import keras

from tf_gru4rec.system.files import (
    MODEL_FILE,
    atomic_directory,
    model_dir_problem,
    remove_leftovers,
)
from tf_gru4rec.training.params import GRU4RecParams, parse_params


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
