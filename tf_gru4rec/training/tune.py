"""Hyperparameter search for GRU4Rec with Optuna (the optional extra `tf_gru4rec[tune]`).

    python -m tf_gru4rec.tune TRAIN VALID --space SPACE.json --trials N --metric {recall,mrr}
        [--cutoff 20] [--eval-mode conservative] [--params "fixed k=v,..."]
        [--storage sqlite:///study.db --study-name NAME] [--seed 0]

Each trial trains GRU4Rec on TRAIN with the fixed `--params` plus values drawn from the
search space, evaluates Recall@cutoff or MRR@cutoff on VALID (all training items ranked,
`--eval-mode` ties) and Optuna's TPE sampler maximises it. Use train_tr / train_valid
(the test split applied to the training data), never the test set. With `--storage` the
study is saved and a rerun with the same study name resumes it: `--trials` more trials
are added to those already stored. Invalid combinations fail their trial and the search
goes on. The last stdout line is the best parameters, fixed ones included, in the
`--params` format, ready for `python -m tf_gru4rec.train TRAIN --params "..."`.

SPACE.json maps GRU4RecParams names to distributions:

    {
      "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": true},
      "momentum":      {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
      "n_sample":      {"type": "int", "low": 0, "high": 2048, "step": 64},
      "batch_size":    {"type": "int", "low": 16, "high": 256, "log": true},
      "layers":        {"type": "categorical", "choices": ["100", "200", "100/100"]},
      "loss":          {"type": "categorical", "choices": ["cross-entropy", "bpr-max"]}
    }

"float" and "int" take `low`, `high` and optionally `log` (bool) or `step` (not both);
"categorical" takes `choices` (strings, numbers or booleans; layer lists as "100/100").
"""

from __future__ import annotations

import json
import os

from tf_gru4rec.training.params import resolve_params

SPACE_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
              "categorical": {"choices"}}


def load_space(path) -> dict:
    """Reads and checks SPACE.json: {name: {"type": ..., ...}} over GRU4RecParams names.

    Every bound and choice is parsed as that parameter, so a bad space fails before any
    training. Raises ParamError naming the file and the entry.
    """
    from tf_gru4rec.training.params import ParamError

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            space = json.load(f)
    except OSError as e:
        raise ParamError(f"{path}: cannot read the search space ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ParamError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(space, dict) or not space:
        raise ParamError(f"{path}: the search space should be a non-empty JSON object of parameters")
    for name, spec in space.items():
        _check_entry(name, spec, f"{path}: `{name}`")
    return space


def _check_entry(name, spec, where):
    from tf_gru4rec.training.params import GRU4RecParams, ParamError

    if name not in GRU4RecParams.__dataclass_fields__:
        raise ParamError(f"{where} is not a GRU4Rec parameter")
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in SPACE_KEYS:
        raise ParamError(f"{where} should be an object with \"type\" one of {sorted(SPACE_KEYS)}. "
                         f"Received: {spec!r}")
    unknown = set(spec) - SPACE_KEYS[kind] - {"type"}
    if unknown:
        raise ParamError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind!r}")
    if kind == "categorical":
        values = spec.get("choices")
        if not isinstance(values, list) or not values:
            raise ParamError(f"{where}: \"choices\" should be a non-empty list. Received: {values!r}")
    else:
        if "low" not in spec or "high" not in spec or not spec["low"] <= spec["high"]:
            raise ParamError(f"{where}: needs \"low\" <= \"high\". Received: {spec!r}")
        if spec.get("log") and spec.get("step"):
            raise ParamError(f"{where}: \"log\" and \"step\" cannot be combined")
        values = [spec["low"], spec["high"]]
    for value in values:
        try:
            resolve_params(f"{name}={_format(value)}")
        except ParamError as e:
            raise ParamError(f"{where}: {e}") from None


def _format(value) -> str:
    return "/".join(map(str, value)) if isinstance(value, list) else str(value)


def suggest(trial, space: dict) -> dict:
    """One value per parameter of the space, drawn by the Optuna trial."""
    values = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            suggest_number = trial.suggest_float if spec["type"] == "float" else trial.suggest_int
            options = {k: spec[k] for k in ("log", "step") if k in spec}
            values[name] = suggest_number(name, spec["low"], spec["high"], **options)
    return values


def to_params_string(values: dict) -> str:
    return ",".join(f"{k}={_format(v)}" for k, v in values.items())


def objective(train_data, valid_data, space: dict, fixed: str, metric: str = "recall",
              cutoff: int = 20, mode: str = "conservative", protocol: str = "next", item_features=None):
    """The Optuna objective: train with fixed + drawn parameters, return metric@cutoff on VALID.

    `train_data` and `valid_data` are `SessionData`, the latter mapped with the former's items
    (or a DataFrame); `protocol` is the evaluation's ("next" or "last"), `item_features` the
    training's (`train(item_features=...)`).
    """
    import keras

    from tf_gru4rec.evaluation import evaluator
    from tf_gru4rec.training import trainer

    def evaluate_trial(trial):
        params = resolve_params(",".join(filter(None, [fixed, to_params_string(suggest(trial, space))])))
        keras.backend.clear_session()  # free the previous trial's graphs
        result = trainer.train(train_data, params, verbose=0, item_features=item_features)
        metrics = evaluator.evaluate(result.model, valid_data, [cutoff], mode, protocol=protocol)
        trial.set_user_attr("events_per_second", result.events_per_second)
        return metrics[f"{metric}@{cutoff}"]

    return evaluate_trial
