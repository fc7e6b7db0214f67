"""tf_gru4rec: GRU4Rec session-based recommendations in TensorFlow/Keras.

The package reads as the algorithm: `data` (rows -> item map -> session-parallel blocks)
-> `sampling` (extra negatives) -> `model` (GRU4Rec) -> `losses` -> `optimizers` (AdagradM)
-> `training` (Keras fit glue) -> `evaluation` (Recall@k / MRR@k) -> `baselines`
-> `export` (SavedModel for TF Serving) -> `serving` (gRPC client).
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is not for users;
# an explicit TF_CPP_MIN_LOG_LEVEL in the environment still wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_gru4rec.data import (  # noqa: E402
    Columns,
    DataError,
    ItemMap,
    SessionData,
    SessionParallelBatcher,
    read_sessions,
)
from tf_gru4rec.evaluation import EvaluationCallback, Evaluator, evaluate  # noqa: E402
from tf_gru4rec.losses import BPR, TOP1, BPRMax, CrossEntropy, GRU4RecLoss, TOP1Max  # noqa: E402
from tf_gru4rec.model import GRU4Rec  # noqa: E402
from tf_gru4rec.optimizers import AdagradM  # noqa: E402
from tf_gru4rec.params import GRU4RecParams, ParamError, parse_params  # noqa: E402
from tf_gru4rec.training import EventsPerSecond, TrainResult, train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AdagradM",
    "BPR",
    "BPRMax",
    "Columns",
    "CrossEntropy",
    "DataError",
    "EvaluationCallback",
    "Evaluator",
    "EventsPerSecond",
    "GRU4Rec",
    "GRU4RecLoss",
    "GRU4RecParams",
    "ItemMap",
    "ParamError",
    "SessionData",
    "SessionParallelBatcher",
    "TOP1",
    "TOP1Max",
    "TrainResult",
    "evaluate",
    "parse_params",
    "read_sessions",
    "train",
]
