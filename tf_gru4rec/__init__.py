"""tf_gru4rec: GRU4Rec session-based recommendations in TensorFlow/Keras.

The package's folders are the pipeline's stages, in order; each imports only earlier ones
(`tests/test_layout.py` checks it):

    system/      files written atomically, memory estimates, log lines
    data/        rows -> item map -> sessions -> session-parallel schedule -> blocks (+ negatives)
    layers/      the network's Keras layers: item table, item embedding, GRU cell and stack
    losses/      cross-entropy, BPR-max, TOP1-max, BPR, TOP1 on one base
    optimizers/  AdagradM (row-sparse Adagrad with momentum)
    tasks/       the objective of one training step
    models/      GRU4Rec: the layers composed, the K-step training loop
    evaluation/  protocols, metrics, the evaluator, baselines
    training/    parameters, `train()`, callbacks, checkpoints, model directories, warm start,
                 tf.distribute, day-by-day retraining, Optuna search
    serving/     business rules, `Recommender`, SavedModel export, gRPC client, local server
    cli/         the command lines; nothing in the library imports it

Commands: `python -m tf_gru4rec.train|evaluate|export|daily|tune|preprocess` (the top-level
modules of those names are only their entry points) and `python -m
tf_gru4rec.serving.client|local_server`.

The names below are imported on first use, so commands that need no TensorFlow do not pay
for importing it. Yet `import tf_gru4rec` is enough for `keras.models.load_model("model.keras")`:
Keras' registry gets stand-ins of the package's serializable classes as soon as Keras is
imported (see `_SERIALIZABLE`).
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

__version__ = "0.1.0"

_EXPORTS = {
    "data.reading": ["Columns", "DataError", "read_sessions"],
    "data.item_map": ["ItemMap"],
    "data.sessions": ["SessionData"],
    "data.batcher": ["SessionParallelBatcher"],
    "evaluation.evaluator": ["EvaluationCallback", "Evaluator", "evaluate"],
    "losses": ["BPR", "BPRMax", "CrossEntropy", "GRU4RecLoss", "TOP1", "TOP1Max"],
    "models": ["GRU4Rec"],
    "optimizers": ["AdagradM"],
    "training.params": ["GRU4RecParams", "ParamError", "parse_params"],
    "training.callbacks": ["EventsPerSecond"],
    "training.trainer": ["TrainResult", "train"],
    "training.model_dir": ["load_model_dir", "save_model_dir"],
    "serving.recommender": ["Recommender"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


#: Keras-serializable classes per module, as registered ("tf_gru4rec>NAME"); tests/test_training.py
#: checks it against Keras' registry.
_SERIALIZABLE = {
    "layers.gru": ["GRUCell", "GRUStack"],
    "layers.item_features": ["ItemFeatureEmbedding"],
    "layers.item_table": ["ItemEmbedding", "ItemTable"],
    "losses.ranking": ["BPR", "BPRMax", "CrossEntropy", "TOP1", "TOP1Max"],
    "models.gru4rec": ["GRU4Rec"],
    "optimizers.adagradm": ["AdagradM"],
    "tasks.next_item": ["NextItemTask"],
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
    if registration is None:  # another Keras layout: loading then needs `import tf_gru4rec.models`
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
