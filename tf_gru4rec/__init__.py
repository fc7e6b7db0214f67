"""tf_gru4rec: GRU4Rec session-based recommendations in TensorFlow/Keras.

The package reads as the algorithm: `data` (rows -> item map -> session-parallel blocks)
-> `sampling` (extra negatives) -> `model` (GRU4Rec) -> `losses` -> `optimizers` (AdagradM)
-> `training` (Keras fit glue) -> `evaluation` (Recall@k / MRR@k) -> `baselines`
-> `recommending` (business rules: blocklist, exclude seen, candidates)
-> `export` (SavedModel for TF Serving) -> `serving` (gRPC client, local test server).
Command lines: `train`, `evaluate`, `preprocess`, `tune`, `export`, `serving.client`.

The names below are imported on first use, so `python -m tf_gru4rec.preprocess` and other
commands that need no TensorFlow do not pay for importing it. Yet `import tf_gru4rec` is
enough for `keras.models.load_model("model.keras")`: Keras' registry gets stand-ins of the
package's serializable classes as soon as Keras is imported (see `_SERIALIZABLE`).
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

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


#: Keras-serializable classes per module, as registered ("tf_gru4rec>NAME"); tests/test_training.py
#: checks it against Keras' registry.
_SERIALIZABLE = {
    "losses": ["BPR", "BPRMax", "CrossEntropy", "TOP1", "TOP1Max"],
    "model": ["GRU4Rec", "GRUCell"],
    "optimizers": ["AdagradM"],
}


def _stand_in(module: str, name: str) -> type:
    """A registry entry for `module.name` that imports the module when Keras deserializes
    one (importing it registers the real class in its place)."""

    def from_config(cls, config, *args, **kwargs):
        real = getattr(importlib.import_module(f"tf_gru4rec.{module}"), name)
        return real.from_config(config, *args, **kwargs)

    return type(name, (), {"from_config": classmethod(from_config), "get_config": lambda self: {}})


def _register_stand_ins() -> None:
    # Keras' registry is a plain dict filled by decorators; it is read only when loading, so
    # a stand-in defers our modules' import (and TensorFlow's) to that moment. Not imported
    # here: Keras may be loading inside `import tensorflow`, inside one of our modules.
    registration = sys.modules.get("keras.src.saving.object_registration")
    if registration is None:  # another Keras layout: loading then needs `import tf_gru4rec.model`
        return
    for module, names in _SERIALIZABLE.items():
        for name in names:
            registration.GLOBAL_CUSTOM_OBJECTS.setdefault(f"tf_gru4rec>{name}", _stand_in(module, name))


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs `_register_stand_ins` once `keras` has been imported, then leaves `sys.meta_path`.

    TensorFlow looks Keras' spec up without importing it, so only loading it counts."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                _register_stand_ins()

            spec.loader.exec_module = exec_then_register
        return spec


if "keras.src.saving.object_registration" in sys.modules:
    _register_stand_ins()
else:
    sys.meta_path.insert(0, _AfterKerasImport())


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"tf_gru4rec.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_gru4rec' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
