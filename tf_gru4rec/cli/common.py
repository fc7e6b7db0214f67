"""The command lines: `python -m tf_gru4rec.train`, `.evaluate` and `.export`, and the
plumbing they share with `python -m tf_gru4rec.tune`.

Conventions of every command:
- logs and progress go to stderr; stdout carries the results (a Markdown table, or with
  `--json` one single-line JSON object as the LAST line);
- errors exit non-zero with ONE line on stderr that names the problem, never a traceback:
  2 for bad settings (arguments, parameter names and values, parameter files, search
  spaces), 1 for bad input (missing or unusable data files, model directories);
- with several test files, a bad one does not lose the others' results: every good file
  is evaluated and reported, each bad one gets one error line, and the exit status is 1;
- TensorFlow is imported only after the arguments, the parameters and the existence of
  the input files and model directories are checked (`--help`, bad options, a typo in a
  path or a parameter answer at once: `check_before_tensorflow`), with its start-up logs
  silenced unless `--verbose`. What needs reading the data is checked after.

The commands live here rather than in `train.py` / `evaluate.py` because the package
exports the functions `train` and `evaluate`: importing a submodule of the same name
would rebind `tf_gru4rec.train` to the module. Those two files are only the `python -m`
entry points and nothing imports them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from typing import TYPE_CHECKING

from tf_gru4rec.system.console import log
from tf_gru4rec.system.files import model_dir_problem
from tf_gru4rec.training.params import ParamError, resolve_params

if TYPE_CHECKING:
    pass

#: Parameters of the embedded default run (synthetic data): about 20 s on 2 CPU cores.
SYNTHETIC_PARAMS = (
    "loss=cross-entropy,layers=64,batch_size=32,n_sample=128,sample_alpha=0.5,logq=1,"
    "dropout_p_embed=0,dropout_p_hidden=0.1,learning_rate=0.1,momentum=0.1,n_epochs=4,seed=42"
)
#: Baselines printed next to GRU4Rec in the default run.
SYNTHETIC_BASELINES = ("pop", "itemknn")
CUTOFFS = (1, 5, 10, 20)
# `protocols.TIE_MODES` and `.PROTOCOLS`, the keys of `baselines.BASELINES` and
# `params.shipped_param_files()`, repeated here so that the parsers are built without importing TensorFlow
# (tests/test_cli.py checks they agree).
TIE_MODES = ("standard", "conservative", "median")
PROTOCOLS = ("next", "last")
BASELINE_NAMES = ("pop", "session-pop", "itemknn")
PARAM_FILES = ("coveo_bprmax_shared_best", "diginetica_bprmax_shared_best", "rees46_xe_shared_best",
               "retailrocket_bprmax_shared_best", "rsc15_xe_shared_best", "yoochoose_xe_shared_best")


# ----- errors and exit statuses ---------------------------------------------------------------
class UsageError(Exception):
    """A bad command line (exit status 2)."""


class CommandError(Exception):
    """A failure the user can fix that is not about data or parameters (exit status 1)."""


class InputFilesError(Exception):
    """Input files that could not be used, one message each (exit status 1); the results
    of the other files were printed."""

    def __init__(self, messages):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise `UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def run(command, argv=None, prog=None) -> int:
    """Runs `command(argv)` and turns user errors into one stderr line and an exit status:
    2 for usage and parameter errors, 1 for bad input and for running out of memory."""
    prog = prog or "tf_gru4rec"

    def fail(message, status):
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return status

    try:
        command(argv)
    except UsageError as e:
        return fail(f"{_one_line(e)} (see --help)", 2)
    except InputFilesError as e:
        for message in e.messages:
            fail(message, 1)
        return 1
    except ValueError as e:  # incl. data.DataError, and params.ParamError: a bad setting
        return fail(_one_line(e), 2 if isinstance(e, ParamError) else 1)
    except (CommandError, OSError) as e:
        return fail(_one_line(e), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001: only out-of-memory is turned into a line
        if not _is_out_of_memory(e):
            raise
        return fail("out of memory: reduce batch_size, n_sample, layers or --eval-batch-size "
                    f"({_one_line(e)[:200]})", 1)
    return 0


def _is_out_of_memory(error: BaseException) -> bool:
    tf = sys.modules.get("tensorflow")
    return isinstance(error, MemoryError) or (
        tf is not None and isinstance(error, tf.errors.ResourceExhaustedError))


# ----- TensorFlow, quietly --------------------------------------------------------------------
@contextlib.contextmanager
def _stderr_descriptor_to_devnull():
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow, its start-up logs silenced unless `verbose`.

    TF_CPP_MIN_LOG_LEVEL=3 (unless the user set it) hides TF's C++ logs, e.g. the `cuInit`
    error on a machine without GPU and the XLA lines. Some of TF's libraries log while
    loading, before absl's logging is initialised, and ignore it; so stderr's descriptor
    points to /dev/null during the import itself (Python errors still propagate).
    """
    if "tensorflow" in sys.modules:
        return
    if verbose:
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_descriptor_to_devnull():
        import tensorflow  # noqa: F401
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def parse_then_import_tensorflow(parser: ArgumentParser, argv=None) -> argparse.Namespace:
    """The parsed arguments of a command: --help and bad arguments (one line, exit 2) answer
    before TensorFlow loads; then TensorFlow is imported, silenced unless --verbose."""
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"{parser.prog}: error: {_one_line(e)} (see --help)", file=sys.stderr)
        sys.exit(2)
    import_tensorflow(getattr(args, "verbose", False))
    return args


# ----- progress -------------------------------------------------------------------------------
class Progress:
    """Progress of counted work on stderr, called as `progress(done, total)`.

    On a terminal a bar redrawn in place; otherwise (a pipe, a file) one plain line at each
    tenth of the work, with no carriage return or colour code, so logs stay readable.
    Disabled, it prints nothing.
    """

    WIDTH = 30

    def __init__(self, label: str, unit: str = "events", enabled: bool = True, stream=None):
        self.label, self.unit, self.enabled = label, unit, enabled
        self.stream = stream or sys.stderr
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._next_tenth = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = done / total if total else 1.0
        counts = f"{int(100 * share):3d}% ({done:,}/{total:,} {self.unit})"  # 100% only when done
        if self.terminal:
            filled = int(self.WIDTH * share)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} [{bar}] {counts}{end}")
        elif int(share * 10) >= self._next_tenth:
            self._next_tenth = int(share * 10) + 1
            self.stream.write(f"{self.label}: {counts}\n")
        self.stream.flush()


# ----- shared options -------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type of a cutoff k."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type of a duration in seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_output_options(parser: argparse.ArgumentParser, quiet: bool = True) -> None:
    """-q (no progress) and --verbose (TensorFlow's logs)."""
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and C++ logs (silenced by default)")


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
                       default=list(CUTOFFS), metavar="K",
                       help="cutoffs of Recall@K / MRR@K / NDCG@K (1 5 10 20)")
    group.add_argument("--eval-mode", default="conservative", choices=TIE_MODES,
                       help="rank of a target tied with other items (conservative: ranked last)")
    group.add_argument("--protocol", default="next", choices=PROTOCOLS,
                       help="next: predict every click of a test session after the first (the "
                            "papers'); last: only its last known click (leave-one-out)")
    group.add_argument("--beyond-accuracy", action="store_true",
                       help="also Coverage@K (share of items in any top-K list) and "
                            "Popularity@K (mean training popularity of the recommended items, "
                            "1 = the most clicked item)")
    group.add_argument("--eval-batch-size", type=positive_int, default=None, metavar="N",
                       help="test sessions scored against all items at once (default: as many "
                            "as fit 1 GiB of scores, at most 256); lower it for huge catalogues")
    group.add_argument("--json", action="store_true",
                       help="print the results as one JSON object on the last stdout line")


def check_before_tensorflow(data_files=(), tests=(), model_dirs=(), params=None) -> None:
    """The checks that need no TensorFlow, so that a typo is answered in a second, not
    after its import: data files that do not exist, model directories, and `params`
    (the arguments of `resolve_params`). With several test files, only all of them
    missing is an error here (a run reports the good ones).

    Raises:
        CommandError: a data file or model directory that is not there.
        InputFilesError: every test file missing.
        ParamError: bad parameters.
    """
    for path in data_files:
        if not os.path.exists(path):
            raise CommandError(f"{path}: no such file")
    for path in model_dirs:
        if problem := model_dir_problem(path):
            raise CommandError(problem)
    missing = [f"{path}: no such file" for path in tests if not os.path.exists(path)]
    if missing and len(missing) == len(tests):
        raise InputFilesError(missing)
    if params is not None:
        resolve_params(*params)


def read(path, args):
    """Click rows of a file, with the column names and separator of the options."""
    from tf_gru4rec.data.reading import Columns, read_sessions

    return read_sessions(path, Columns(args.session_key, args.item_key, args.time_key), args.sep,
                         progress=log)


# ----- test files: read, evaluate, report -----------------------------------------------------
def read_tests(paths, item_map, args) -> list:
    """(path, SessionData mapped with `item_map`, or the one-line reason it is unusable)
    for every test file."""
    from tf_gru4rec.evaluation.evaluator import as_session_data

    tests = []
    for path in paths:
        try:
            tests.append((path, as_session_data(read(path, args), item_map, source=path)))
        except (ValueError, OSError) as e:
            message = _one_line(e)
            tests.append((path, message if str(path) in message else f"{path}: {message}"))
    return tests


def unusable(tests) -> list[str]:
    """The error messages of `read_tests`' unusable files."""
    return [data for _, data in tests if isinstance(data, str)]


def evaluate_tests(evaluate_one, tests, label: str, args) -> list[dict]:
    """[{"path", metrics...}] of `evaluate_one(data, progress)` on the usable test files,
    [{"path", "error"}] for the others, in the order given."""
    results = []
    for path, data in tests:
        if isinstance(data, str):
            results.append({"path": path, "error": data})
            continue
        progress = Progress(f"{label} on {path}", enabled=not args.quiet)
        results.append({"path": path, **evaluate_one(data, progress)})
    return results


#: Table headings of the metrics, in the order of the columns for each cutoff.
METRIC_HEADINGS = {"recall": "Recall", "mrr": "MRR", "ndcg": "NDCG", "coverage": "Coverage",
                   "popularity": "Pop"}


def metrics_table(rows, cutoffs) -> str:
    """Markdown table of (label, metrics dict) rows: for each cutoff, the columns of the
    metrics every row has (Recall, MRR, NDCG, then Coverage and Pop(ularity) if computed)."""
    names = [n for n in METRIC_HEADINGS if all(f"{n}@{cutoffs[0]}" in m for _, m in rows)]
    head = ["model"] + [f"{METRIC_HEADINGS[n]}@{k}" for k in cutoffs for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, m in rows:
        cells = [f"{m[f'{name}@{k}']:.4f}" for k in cutoffs for name in names]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def eval_options(args, popularity=None) -> dict:
    """The keyword options of `evaluation.evaluate` / `evaluate_baseline` that the command
    line sets: protocol, and with --beyond-accuracy coverage and `popularity` (training
    clicks per item, None when unknown)."""
    return {"protocol": args.protocol, "coverage": args.beyond_accuracy,
            "popularity": popularity if args.beyond_accuracy else None}


def strict_json(value) -> str:
    """One line of standard JSON: NaN and infinities (which `json.dumps` writes as the
    invalid tokens NaN / Infinity) become null."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False)


def report(results: list[dict], rows, args, extra: dict | None = None) -> None:
    """Prints the table (stdout; stderr with --json) and, with --json, the JSON line; then
    raises `InputFilesError` for the test files that could not be evaluated.

    JSON: the first evaluated test's metrics at the top level, `extra` (e.g. train_seconds),
    and `tests`, one dict per test file with its `path`: its metrics, or `error`.
    """
    evaluated = [r for r in results if "error" not in r]
    if evaluated:
        table = metrics_table(rows, args.cutoffs)
        if args.json:
            log(table)
            top = {k: v for k, v in evaluated[0].items() if k != "path"}
            print(strict_json({**top, **(extra or {}), "tests": results}), flush=True)
        else:
            print(table, flush=True)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise InputFilesError(errors)


def test_label(name: str, path: str, n_tests: int) -> str:
    return name if n_tests == 1 else f"{name} ({path})"


def evaluate_baselines(names, train_data, tests, args) -> dict:
    """{name: results per test file (see `evaluate_tests`)} of the named baselines (their
    popularity, with --beyond-accuracy, is that of the training data they are fitted on)."""
    from tf_gru4rec.evaluation import baselines

    out = {}
    for name in names:
        model = baselines.BASELINES[name]()
        start = time.perf_counter()
        model.fit(train_data)
        log(f"{model.name}: fitted in {time.perf_counter() - start:.1f} s")
        out[name] = evaluate_tests(
            lambda data, progress, model=model: baselines.evaluate_baseline(
                model, data, args.cutoffs, args.eval_mode, progress=progress,
                **eval_options(args, model.support)),
            tests, model.name, args)
    return out


