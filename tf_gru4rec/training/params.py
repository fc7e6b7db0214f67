"""GRU4Rec's published parameter names, parsed and validated, and what they build.

The names are the reference implementation's, so a published table can be pasted as
`"loss=cross-entropy,layers=100,batch_size=32,..."` (lists as `layers=100/100`) or as a
dict. `embedding` > 0 is a separate embedding of that size; `embedding=0` with
`constrained_embedding=True` shares the output table as input embedding; both 0/False is
one-hot input.

The published best parameter sets (the spec's section 9) ship in `paramfiles/` in the
reference Python format; `load_param_file` takes their names as well as paths.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# What the parameters build is imported in the build_* methods: parsing and checking them
# imports no TensorFlow, so the command lines refuse bad parameters at once.

#: `losses.LOSSES`' names (tests/test_cli.py checks they agree).
LOSS_NAMES = ("cross-entropy", "bpr-max", "top1-max", "bpr", "top1")

#: The published parameter sets shipped with the package (package data).
PARAM_FILE_DIR = Path(__file__).resolve().parent / "paramfiles"


class ParamError(ValueError):
    """An unknown parameter name or an invalid value; the message names it."""


@dataclass
class GRU4RecParams:
    """Training parameters: the reference names, plus `seed` and this library's own knobs."""

    loss: str = "cross-entropy"
    layers: list = field(default_factory=lambda: [100])
    batch_size: int = 64
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    n_sample: int = 2048
    sample_alpha: float = 0.5
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    embedding: int = 0
    constrained_embedding: bool = True
    n_epochs: int = 10
    seed: int | None = None
    # This library's own knobs (not in the reference).
    block_steps: int = 100  # training steps per compiled call (one tf.data element)
    sample_cache_size: int = 10_000_000  # extra-negative ids drawn ahead per cache refill
    id_dropout: float = 0.0  # with item features: share of a step's rows scored by features alone

    def __post_init__(self):
        _check(self)

    @property
    def embedding_mode(self):
        """'shared', 'none' or the separate embedding size, as `GRU4Rec(embedding=...)` takes."""
        if self.embedding > 0:
            return self.embedding
        return "shared" if self.constrained_embedding else "none"

    def build_model(self, item_map, item_features=None) -> GRU4Rec:
        """The model of these parameters for `item_map` (and `item_features` in its order)."""
        from tf_gru4rec.models.gru4rec import GRU4Rec

        return GRU4Rec(
            item_features=item_features,
            item_ids=item_map.ids,
            layers=self.layers,
            embedding=self.embedding_mode,
            batch_size=self.batch_size,
            dropout_p_embed=self.dropout_p_embed,
            dropout_p_hidden=self.dropout_p_hidden,
            seed=self.seed,
            id_dropout=self.id_dropout,
        )

    def build_loss(self) -> losses.GRU4RecLoss:
        from tf_gru4rec import losses

        if self.loss == "cross-entropy":
            return losses.CrossEntropy(logq=self.logq)
        if self.loss == "bpr-max":
            return losses.BPRMax(bpreg=self.bpreg, elu_param=self.elu_param)
        return losses.get(self.loss)

    def build_optimizer(self) -> AdagradM:
        from tf_gru4rec.optimizers import AdagradM

        return AdagradM(learning_rate=self.learning_rate, momentum=self.momentum)

    def build_batcher(self, data: SessionData) -> SessionParallelBatcher:
        from tf_gru4rec.data.batcher import SessionParallelBatcher

        return SessionParallelBatcher(
            data,
            batch_size=self.batch_size,
            n_sample=self.n_sample,
            sample_alpha=self.sample_alpha,
            block_steps=self.block_steps,
            sample_cache_size=self.sample_cache_size,
            inputs_in_rows=self.embedding_mode == "shared",
            seed=self.seed,
        )

    def to_string(self) -> str:
        """The `k=v,k=v` form that `parse_params` reads back."""
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name in WRITTEN_WHEN_SET and v == f.default):
                continue
            parts.append(f"{f.name}={'/'.join(map(str, v)) if isinstance(v, list) else v}")
        return ",".join(parts)


_FIELDS = {f.name: f for f in dataclasses.fields(GRU4RecParams)}
#: Knobs `to_string` writes only when not at their default, so that the parameter strings
#: of models without item features stay what they were.
WRITTEN_WHEN_SET = ("id_dropout",)


def _convert(name, value):
    """Converts one value (often a string) to the field's type, or raises ParamError."""
    kind = _FIELDS[name].type
    try:
        if name == "layers":
            if isinstance(value, str):
                value = [v for v in value.replace(",", "/").split("/") if v.strip()]
            value = value if isinstance(value, (list, tuple)) else [value]
            return [_to_int(v) for v in value]
        if kind == "bool":
            if isinstance(value, str):
                if value.strip().lower() in ("1", "true", "yes", "y"):
                    return True
                if value.strip().lower() in ("0", "false", "no", "n"):
                    return False
                raise ValueError
            return bool(value)
        if kind in ("int", "int | None"):
            if kind == "int | None" and value in (None, "None", "none", ""):
                return None
            return _to_int(value)
        if kind == "float":
            return float(value)
        return str(value).strip()
    except (TypeError, ValueError):
        expected = "layer sizes separated by '/', e.g. 100/100" if name == "layers" else kind
        raise ParamError(f"invalid value for {name}: {value!r} (expected {expected})") from None


def _to_int(v):
    f = float(v)
    if f != int(f):
        raise ValueError
    return int(f)


def _check(p: GRU4RecParams):
    def bad(name, why):
        raise ParamError(f"invalid value for {name}: {getattr(p, name)!r} ({why})")

    for f in dataclasses.fields(p):  # NaN passes every comparison below: reject it first
        value = getattr(p, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            bad(f.name, "must be a finite number")
    if p.loss not in LOSS_NAMES:
        bad("loss", f"expected one of {sorted(LOSS_NAMES)}")
    if not p.layers or min(p.layers) < 1:
        bad("layers", "positive layer sizes, e.g. 100 or 100/100")
    for name in ("batch_size", "n_epochs", "block_steps", "sample_cache_size"):
        if getattr(p, name) < 1:
            bad(name, "must be >= 1")
    for name in ("dropout_p_embed", "dropout_p_hidden"):
        if not 0.0 <= getattr(p, name) < 1.0:
            bad(name, "a drop probability in [0, 1)")
    if not 0.0 <= p.id_dropout <= 1.0:
        bad("id_dropout", "a drop probability in [0, 1]")
    if not 0 < p.learning_rate <= 100:
        bad("learning_rate", "must be in (0, 100]")
    if not 0.0 <= p.momentum < 1.0:
        bad("momentum", "must be in [0, 1)")
    for name in ("n_sample", "embedding"):
        if getattr(p, name) < 0:
            bad(name, "must be >= 0")
    for name in ("sample_alpha", "bpreg", "elu_param", "logq"):
        if getattr(p, name) < 0:
            bad(name, "must be >= 0")


def parse_params(spec=None, **overrides) -> GRU4RecParams:
    """Parameters from a `k=v,k=v` string, a dict, or a `GRU4RecParams`, plus overrides.

    Raises:
        ParamError: unknown names (all of them listed) or invalid values.
    """
    if spec is None:
        items = {}
    elif isinstance(spec, GRU4RecParams):
        items = dataclasses.asdict(spec)
    elif isinstance(spec, dict):
        items = dict(spec)
    elif isinstance(spec, str):
        items = {}
        for part in [s for s in spec.split(",") if s.strip()]:
            if "=" not in part:
                raise ParamError(f"expected name=value, got {part.strip()!r}")
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
    else:
        raise ParamError(f"parameters must be a string or a dict, got {type(spec).__name__}")
    items.update(overrides)
    unknown = sorted(k for k in items if k not in _FIELDS)
    if unknown:
        raise ParamError(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    return GRU4RecParams(**{k: _convert(k, v) for k, v in items.items()})


def shipped_param_files() -> list[str]:
    """Names of the shipped parameter files (without `.py`), e.g. 'rsc15_xe_shared_best'."""
    return sorted(f.stem for f in PARAM_FILE_DIR.glob("*.py"))


def param_file_path(name) -> str:
    """`name` itself when it is an existing file, else the shipped file of that name.

    Raises:
        ParamError: neither; the message lists the shipped names.
    """
    name = os.fspath(name)
    if os.path.exists(name):
        return name
    shipped = PARAM_FILE_DIR / (name if name.endswith(".py") else f"{name}.py")
    if os.sep not in name and shipped.is_file():
        return str(shipped)
    raise ParamError(f"{name}: no such parameter file, nor a shipped one "
                     f"({', '.join(shipped_param_files())})")


def load_param_file(path) -> GRU4RecParams:
    """Parameters from JSON or from a reference-style Python file defining `gru4rec_params`.

    `path` is a file or the name of a shipped file (`shipped_param_files()`, with or
    without `.py`); an existing file wins over a shipped name. The Python file is read
    without being run: its `gru4rec_params` must be a literal dict or `OrderedDict([...])`
    of literals.

    Example:
        >>> load_param_file("rsc15_xe_shared_best").batch_size
        32
    """
    path = param_file_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ParamError(f"{path}: cannot read parameter file ({e.strerror})") from None
    if path.endswith(".json"):
        try:
            return parse_params(json.loads(text))
        except json.JSONDecodeError as e:
            raise ParamError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    return parse_params(_literal_params(text, path))


def _literal_params(text, path):
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise ParamError(f"{path}: not valid Python ({e.msg}, line {e.lineno})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "gru4rec_params" for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Call) and value.args:  # OrderedDict([...]) / dict([...])
                value = value.args[0]
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                raise ParamError(f"{path}: gru4rec_params must be made of literals") from None
            return dict(literal)
    raise ParamError(f"{path}: defines no gru4rec_params")


def resolve_params(spec: str | None = None, param_file=None,
                   base: GRU4RecParams | str | None = None) -> GRU4RecParams:
    """`param_file` (a path or a shipped name, JSON or reference Python; a whole parameter
    set, omitted names take the library defaults) or else `base`, then the `k=v,...`
    overrides of `spec`. Raises `ParamError`."""
    params = load_param_file(param_file) if param_file else parse_params(base)
    if spec:
        params = parse_params(f"{params.to_string()},{spec}")
    return params
