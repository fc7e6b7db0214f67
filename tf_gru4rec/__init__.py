"""tf_gru4rec: GRU4Rec session-based recommendations in TensorFlow/Keras.

The package reads as the algorithm: `data` (rows -> item map -> session-parallel blocks)
-> `sampling` (extra negatives) -> `model` (GRU4Rec) -> `losses` -> `optimizers` (AdagradM)
-> `training` (Keras fit glue) -> `evaluation` (Recall@k / MRR@k) -> `baselines`
-> `recommending` (business rules: blocklist, exclude seen, candidates)
-> `export` (SavedModel for TF Serving) -> `serving` (gRPC client, local test server).
Command lines: `train`, `evaluate`, `preprocess`, `tune`, `export`, `serving.client`.

The names below are imported on first use, so `python -m tf_gru4rec.preprocess` and other
commands that need no TensorFlow do not pay for importing it.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "data": ["Columns", "DataError", "ItemMap", "SessionData", "SessionParallelBatcher", "read_sessions"],
    "evaluation": ["EvaluationCallback", "Evaluator", "evaluate"],
    "losses": ["BPR", "BPRMax", "CrossEntropy", "GRU4RecLoss", "TOP1", "TOP1Max"],
    "model": ["GRU4Rec"],
    "optimizers": ["AdagradM"],
    "params": ["GRU4RecParams", "ParamError", "parse_params"],
    "training": ["EventsPerSecond", "TrainResult", "load_model_dir", "save_model_dir", "train"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"tf_gru4rec.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_gru4rec' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
