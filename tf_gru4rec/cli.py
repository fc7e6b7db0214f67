"""The command line: `python -m tf_gru4rec.train`, `python -m tf_gru4rec.evaluate`, and
the plumbing they share with `python -m tf_gru4rec.tune`.

Conventions of every command:
- logs and Keras progress bars go to stderr; stdout carries the results (a Markdown
  table, or with `--json` one single-line JSON object as the LAST line);
- bad arguments or bad input exit non-zero (2: usage, 1: input) with ONE line on stderr
  that names the problem, never a traceback.

The commands live here rather than in `train.py` / `evaluate.py` because the package
exports the functions `train` and `evaluate`: importing a submodule of the same name
would rebind `tf_gru4rec.train` to the module. Those two files are only the `python -m`
entry points and nothing imports them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import keras

from tf_gru4rec import baselines, evaluation, training
from tf_gru4rec.data import Columns, DataError, SessionData, read_sessions
from tf_gru4rec.params import GRU4RecParams, ParamError, load_param_file, parse_params
from tf_gru4rec.synthetic import split_by_time, synthetic_sessions

#: Parameters of the embedded default run (synthetic data): about 20 s on 2 CPU cores.
SYNTHETIC_PARAMS = (
    "loss=cross-entropy,layers=64,batch_size=32,n_sample=128,sample_alpha=0.5,logq=1,"
    "dropout_p_embed=0,dropout_p_hidden=0.1,learning_rate=0.1,momentum=0.1,n_epochs=4,seed=42"
)
#: Baselines printed next to GRU4Rec in the default run.
SYNTHETIC_BASELINES = ("pop", "itemknn")
CUTOFFS = (1, 5, 10, 20)


# ----- shared plumbing ----------------------------------------------------------------------
class UsageError(Exception):
    """A bad command line (exit status 2)."""


class CommandError(Exception):
    """A failure the user can fix that is not about data or parameters (exit status 1)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise `UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def run(command, argv=None, prog=None) -> int:
    """Runs `command(argv)` and turns user errors into one stderr line and an exit status."""
    prog = prog or "tf_gru4rec"
    try:
        command(argv)
    except UsageError as e:
        print(f"{prog}: error: {_one_line(e)} (see --help)", file=sys.stderr)
        return 2
    except (CommandError, DataError, ParamError, ValueError, OSError) as e:  # incl. FileNotFoundError
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: error: interrupted", file=sys.stderr)
        return 130
    return 0


def positive_int(text: str) -> int:
    """argparse type of a cutoff k."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input files (TSV, CSV or Parquet by extension)")
    group.add_argument("--session-key", default="SessionId", help="session id column (SessionId)")
    group.add_argument("--item-key", default="ItemId", help="item id column (ItemId)")
    group.add_argument("--time-key", default="Time", help="time column, numeric (Time)")
    group.add_argument("--sep", default=None,
                       help="field separator, overriding the extension (.csv: ',', else tab)")


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("-m", "--measure", dest="cutoffs", type=positive_int, nargs="+",
                       default=list(CUTOFFS), metavar="K", help="cutoffs of Recall@K / MRR@K (1 5 10 20)")
    group.add_argument("--eval-mode", default="conservative", choices=evaluation.TIE_MODES,
                       help="rank of a target tied with other items (conservative: ranked last)")
    group.add_argument("--json", action="store_true",
                       help="print the results as one JSON object on the last stdout line")


def read(path, args):
    """Click rows of a file, with the column names and separator of the options."""
    return read_sessions(path, Columns(args.session_key, args.item_key, args.time_key), args.sep)


def resolve_params(spec: str | None = None, param_file=None,
                   base: GRU4RecParams | str | None = None) -> GRU4RecParams:
    """`param_file` (JSON or reference Python; a whole parameter set, omitted names take the
    library defaults) or else `base`, then the `k=v,...` overrides of `spec`."""
    params = load_param_file(param_file) if param_file else parse_params(base)
    if spec:
        params = parse_params(f"{params.to_string()},{spec}")
    return params


def metrics_table(rows, cutoffs) -> str:
    """Markdown table of (label, metrics dict) rows: Recall@k and MRR@k columns."""
    head = ["model"] + [f"{m}@{k}" for k in cutoffs for m in ("Recall", "MRR")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, m in rows:
        cells = [f"{m[f'{name}@{k}']:.4f}" for k in cutoffs for name in ("recall", "mrr")]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def report(results: list[dict], rows, args, extra: dict | None = None) -> None:
    """Prints the table (stdout; stderr with --json) and, with --json, the JSON line.

    JSON: the first test's metrics at the top level, `extra` (e.g. train_seconds), and
    `tests`, the list of every test's metrics with its `path`.
    """
    table = metrics_table(rows, args.cutoffs)
    if not args.json:
        print(table, flush=True)
        return
    log(table)
    top = {k: v for k, v in results[0].items() if k != "path"}
    print(json.dumps({**top, **(extra or {}), "tests": results}), flush=True)


def _label(name: str, path: str, n_tests: int) -> str:
    return name if n_tests == 1 else f"{name} ({path})"


def _evaluate_baselines(names, train_data, tests, args):
    """{name: [metrics per test]} of the named baselines fitted on the training data."""
    out = {}
    for name in names:
        model = baselines.BASELINES[name]()
        start = time.perf_counter()
        model.fit(train_data)
        log(f"{model.name}: fitted in {time.perf_counter() - start:.1f} s")
        with contextlib.redirect_stdout(sys.stderr):
            out[name] = [baselines.evaluate_baseline(model, data, args.cutoffs, args.eval_mode,
                                                     verbose=0 if args.quiet else 1)
                         for _, data in tests]
    return out


# ----- python -m tf_gru4rec.train -----------------------------------------------------------
def train_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.train",
        description="Trains GRU4Rec (and evaluates it on test files). Without TRAIN: the "
                    "embedded synthetic demo, compared with Pop and item-kNN.",
    )
    parser.add_argument("train", nargs="?", metavar="TRAIN", help="training clicks (omit for the demo)")
    parser.add_argument("--test", nargs="+", default=[], metavar="TEST", help="test file(s) to evaluate on")
    parser.add_argument("--params", metavar="K=V,...",
                        help="training parameters by their reference names, e.g. "
                             "'loss=cross-entropy,layers=100,batch_size=32,n_epochs=10' "
                             "(overrides --param-file)")
    parser.add_argument("--param-file", metavar="FILE",
                        help="parameters as JSON or a reference Python file (gru4rec_params = "
                             "OrderedDict(...)); names it omits take the library defaults")
    parser.add_argument("--save", metavar="DIR", help="write the trained model directory here")
    parser.add_argument("--baselines", nargs="+", default=None, choices=sorted(baselines.BASELINES),
                        metavar="NAME", help="also evaluate these baselines: "
                        f"{', '.join(sorted(baselines.BASELINES))} (demo default: pop itemknn)")
    parser.add_argument("--tensorboard", metavar="LOGDIR",
                        help="write TensorBoard logs here (with validation curves on the first "
                             "--test file, evaluated after every epoch, which adds to train_seconds)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_eval_options(parser)
    add_data_options(parser)
    return parser


def _train_command(argv):
    args = train_parser().parse_args(argv)
    demo = args.train is None
    if demo and args.test:
        raise UsageError("--test needs a TRAIN file (the demo evaluates on its own synthetic test split)")
    params = resolve_params(args.params, args.param_file, SYNTHETIC_PARAMS if demo else None)
    if demo:
        train_df, test_df = split_by_time(synthetic_sessions())
        log(f"demo: synthetic sessions, {len(train_df)} training and {len(test_df)} test clicks")
        train_path, test_frames = "synthetic training data", [("synthetic test data", test_df)]
    else:
        train_path = args.train
        train_df = read(train_path, args)
        test_frames = [(path, read(path, args)) for path in args.test]
    # Map test files before training: a file the model cannot evaluate fails now, not later.
    train_data = SessionData.from_frame(train_df, source=train_path)
    tests = [(path, evaluation.as_session_data(df, train_data.item_map, source=path))
             for path, df in test_frames]
    log(f"training on {train_data.n_events} clicks, {train_data.n_sessions} sessions, "
        f"{len(train_data.item_map)} items: {params.to_string()}")
    callbacks, validation = [], None
    if args.tensorboard:  # per-block loss, validation curves (first test file), projector
        callbacks = [keras.callbacks.TensorBoard(args.tensorboard, update_freq=1),
                     training.ItemEmbeddingProjector(args.tensorboard, support=train_data.support())]
        validation = tests[0][1] if tests else None
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints progress to stdout
        result = training.train(train_data, params, validation=validation, callbacks=callbacks,
                                cutoffs=args.cutoffs, mode=args.eval_mode,
                                verbose=0 if args.quiet else "auto")
    log(f"trained {len(result.history.epoch)} epoch(s) in {result.train_seconds:.1f} s, "
        f"{result.events_per_second:,.0f} events/s")
    if args.save:
        log(f"saved the model to {training.save_model_dir(result.model, args.save, params)}")
    if not tests:
        if args.json:
            print(json.dumps({"train_seconds": result.train_seconds,
                              "events_per_second": result.events_per_second}), flush=True)
        return
    results = [{"path": path, **evaluation.evaluate(result.model, data, args.cutoffs, args.eval_mode)}
               for path, data in tests]
    names = SYNTHETIC_BASELINES if demo and args.baselines is None else (args.baselines or [])
    compared = _evaluate_baselines(names, train_data, tests, args)
    rows = [(_label("GRU4Rec", r["path"], len(results)), r) for r in results]
    for name, per_test in compared.items():
        for r, metrics in zip(results, per_test):
            rows.append((_label(baselines.BASELINES[name].name, r["path"], len(results)), metrics))
            r.setdefault("baselines", {})[name] = metrics
    report(results, rows, args, {"train_seconds": result.train_seconds,
                                 "events_per_second": result.events_per_second})


def train_main(argv=None) -> int:
    """`python -m tf_gru4rec.train`; returns the exit status."""
    return run(_train_command, argv, "tf_gru4rec.train")


# ----- python -m tf_gru4rec.evaluate --------------------------------------------------------
def evaluate_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.evaluate",
        description="Recall@K / MRR@K of a saved model (MODEL_DIR TEST...) or of a baseline "
                    "(--baseline NAME TRAIN TEST...) on test files, all training items ranked.",
    )
    parser.add_argument("source", metavar="MODEL_DIR|TRAIN",
                        help="a model directory (train --save), or with --baseline the training file")
    parser.add_argument("tests", nargs="+", metavar="TEST", help="test file(s)")
    parser.add_argument("--baseline", choices=sorted(baselines.BASELINES),
                        help="evaluate this baseline fitted on TRAIN instead of a saved model")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_eval_options(parser)
    add_data_options(parser)
    return parser


def _evaluate_command(argv):
    args = evaluate_parser().parse_args(argv)
    if args.baseline:
        train_data = SessionData.from_frame(read(args.source, args), source=args.source)
        item_map, label = train_data.item_map, baselines.BASELINES[args.baseline].name
    else:
        model, _ = training.load_model_dir(args.source)
        item_map, label = model.item_map, "GRU4Rec"
    tests = [(path, evaluation.as_session_data(read(path, args), item_map, source=path))
             for path in args.tests]
    if args.baseline:
        per_test = _evaluate_baselines([args.baseline], train_data, tests, args)[args.baseline]
    else:
        per_test = [evaluation.evaluate(model, data, args.cutoffs, args.eval_mode) for _, data in tests]
    results = [{"path": path, **metrics} for (path, _), metrics in zip(tests, per_test)]
    report(results, [(_label(label, r["path"], len(results)), r) for r in results], args)


def evaluate_main(argv=None) -> int:
    """`python -m tf_gru4rec.evaluate`; returns the exit status."""
    return run(_evaluate_command, argv, "tf_gru4rec.evaluate")
