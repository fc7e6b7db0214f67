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
import math
import logging
import os
import sys
import time
import warnings

from typing import TYPE_CHECKING

from tf_gru4rec.files import model_dir_problem

if TYPE_CHECKING:
    from tf_gru4rec.params import GRU4RecParams

#: Parameters of the embedded default run (synthetic data): about 20 s on 2 CPU cores.
SYNTHETIC_PARAMS = (
    "loss=cross-entropy,layers=64,batch_size=32,n_sample=128,sample_alpha=0.5,logq=1,"
    "dropout_p_embed=0,dropout_p_hidden=0.1,learning_rate=0.1,momentum=0.1,n_epochs=4,seed=42"
)
#: Baselines printed next to GRU4Rec in the default run.
SYNTHETIC_BASELINES = ("pop", "itemknn")
CUTOFFS = (1, 5, 10, 20)
# `evaluation.TIE_MODES` and `.PROTOCOLS`, the keys of `baselines.BASELINES` and
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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
        return fail(_one_line(e), 2 if _is_param_error(e) else 1)
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


def _is_param_error(error: BaseException) -> bool:
    # params.py imports TensorFlow, so its ParamError is looked up here, not imported: one
    # can only have been raised once the module is loaded.
    params = sys.modules.get("tf_gru4rec.params")
    return params is not None and isinstance(error, params.ParamError)


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


def parse_then_import_tensorflow(parser: ArgumentParser) -> None:
    """For a module run as a command: --help and bad arguments (one line, exit 2) answer
    before TensorFlow loads; then TensorFlow is imported, silenced unless --verbose."""
    try:
        args = parser.parse_args()
    except UsageError as e:
        print(f"{parser.prog}: error: {_one_line(e)} (see --help)", file=sys.stderr)
        sys.exit(2)
    import_tensorflow(getattr(args, "verbose", False))


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
        CommandError, InputFilesError, params.ParamError.
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
    from tf_gru4rec.data import Columns, read_sessions

    return read_sessions(path, Columns(args.session_key, args.item_key, args.time_key), args.sep,
                         progress=log)


def resolve_params(spec: str | None = None, param_file=None,
                   base: GRU4RecParams | str | None = None) -> GRU4RecParams:
    """`param_file` (a path or a shipped name, JSON or reference Python; a whole parameter
    set, omitted names take the library defaults) or else `base`, then the `k=v,...`
    overrides of `spec`. Raises `params.ParamError`."""
    from tf_gru4rec.params import load_param_file, parse_params

    params = load_param_file(param_file) if param_file else parse_params(base)
    if spec:
        params = parse_params(f"{params.to_string()},{spec}")
    return params


# ----- test files: read, evaluate, report -----------------------------------------------------
def read_tests(paths, item_map, args) -> list:
    """(path, SessionData mapped with `item_map`, or the one-line reason it is unusable)
    for every test file."""
    from tf_gru4rec.evaluation import as_session_data

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


def _label(name: str, path: str, n_tests: int) -> str:
    return name if n_tests == 1 else f"{name} ({path})"


def _evaluate_baselines(names, train_data, tests, args) -> dict:
    """{name: results per test file (see `evaluate_tests`)} of the named baselines (their
    popularity, with --beyond-accuracy, is that of the training data they are fitted on)."""
    from tf_gru4rec import baselines

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
                             "OrderedDict(...)), or the name of a shipped published set: "
                             f"{', '.join(PARAM_FILES)}; names it omits take the "
                             "library defaults")
    parser.add_argument("--save", metavar="DIR",
                        help="write the trained model directory here (checked before training: "
                             "a new or empty folder, or a model folder with --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the model directory at --save (atomically)")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="checkpoint after every epoch; rerun the same command to continue a "
                             "killed run from its last completed epoch, with identical results")
    parser.add_argument("--init-from", metavar="MODEL_DIR",
                        help="warm start from this model directory: its item map grows by the new "
                             "items (old indices kept), known items' rows, the GRU weights and the "
                             "AdagradM slots are copied; its saved parameters are the defaults "
                             "(--params overrides; the architecture must stay the same)")
    parser.add_argument("--warm-optimizer", choices=("carry", "reset"), default="carry",
                        help="with --init-from: carry the AdagradM slots over (default) or reset them")
    parser.add_argument("--drop-absent-items", action="store_true",
                        help="with --init-from: remove the model's items that occur in no training "
                             "session of TRAIN (item indices then change); by default they stay")
    parser.add_argument("--drop-repeats", action="store_true",
                        help="remove a click on the same item as the session's previous click "
                             "(they are counted either way)")
    parser.add_argument("--distribute", choices=("mirrored", "multi-worker"),
                        help="synchronous data-parallel training, batch_size session slots per "
                             "replica: 'mirrored' on the GPUs of this machine, 'multi-worker' "
                             "with one replica per worker process of the TF_CONFIG cluster "
                             "(run the same command on every worker; the chief saves and "
                             "evaluates)")
    parser.add_argument("--worker-timeout", type=positive_float, default=300.0, metavar="SECONDS",
                        help="with --distribute multi-worker: how long to wait for the other "
                             "workers of TF_CONFIG to start (300); then exit with an error")
    parser.add_argument("--replicas", type=positive_int, metavar="N",
                        help="with --distribute mirrored: use N devices (on a machine without "
                             "GPUs, N logical CPU devices: a functional check, not a speed-up)")
    parser.add_argument("--baselines", nargs="+", default=None, choices=BASELINE_NAMES,
                        metavar="NAME", help="also evaluate these baselines: "
                        f"{', '.join(BASELINE_NAMES)} (demo default: pop itemknn)")
    parser.add_argument("--tensorboard", metavar="LOGDIR",
                        help="write TensorBoard logs here (with validation curves on the first "
                             "--test file, evaluated after every epoch, which adds to train_seconds)")
    add_output_options(parser)
    add_eval_options(parser)
    add_data_options(parser)
    return parser


def _train_command(argv):
    args = train_parser().parse_args(argv)
    demo = args.train is None
    if demo and (args.test or args.init_from):
        raise UsageError(f"{'--test' if args.test else '--init-from'} needs a TRAIN file "
                         "(the demo runs on its own synthetic data)")
    if (args.warm_optimizer != "carry" or args.drop_absent_items) and not args.init_from:
        raise UsageError("--warm-optimizer and --drop-absent-items need --init-from")
    if args.replicas and args.distribute != "mirrored":
        raise UsageError("--replicas needs --distribute mirrored")
    # A warm start's parameters are the saved ones: here checked over the defaults.
    check_before_tensorflow([] if demo else [args.train], args.test, [args.init_from] if args.init_from else [],
                            (args.params, args.param_file, SYNTHETIC_PARAMS if demo else None))
    import_tensorflow(args.verbose)
    warm = None
    if args.init_from:  # loaded first: its saved parameters are the defaults
        from tf_gru4rec.warm_start import WarmStart

        warm = WarmStart(args.init_from, args.warm_optimizer, args.drop_absent_items)
    base = SYNTHETIC_PARAMS if demo else (warm.params if warm else None)
    params = resolve_params(args.params, args.param_file, base)
    import keras

    from tf_gru4rec import distribute, evaluation, training

    # Before any other TensorFlow work (multi-worker collectives, logical devices).
    strategy = distribute.make_strategy(args.distribute, args.replicas, args.worker_timeout,
                                        log) if args.distribute else None
    if strategy and (warning := distribute.oversubscription_warning(strategy)):
        log(warning)
    from tf_gru4rec.data import SessionData, mean_id_length
    from tf_gru4rec.files import remove_leftovers

    if args.save:  # before any work: a save that would fail must not cost a training run
        for done in remove_leftovers(args.save):  # first: it may restore the model directory
            log(f"{done}, left by an interrupted save")
        training.check_model_dir(args.save, args.overwrite)

    if demo:
        from tf_gru4rec.synthetic import split_by_time, synthetic_sessions

        train_df, test_df = split_by_time(synthetic_sessions())
        log(f"demo: synthetic sessions, {len(train_df)} training and {len(test_df)} test clicks")
        train_path = "synthetic training data"
    else:
        train_path = args.train
        training.check_memory(params, strategy)  # what the parameters alone need, before reading
        train_df = read(train_path, args)
        training.check_memory(params, strategy, train_df["ItemId"].nunique(), len(train_df),
                              mean_id_length(train_df["ItemId"].to_numpy()), evaluate=bool(args.tensorboard))
    train_data = SessionData.from_frame(train_df, source=train_path, drop_repeats=args.drop_repeats)
    if warm:  # the grown item map, before the test files are mapped with it
        with warnings.catch_warnings(record=True) as caught:  # as log lines, not Python's format
            warnings.simplefilter("always")
            train_data = warm.prepare(train_data, params)
        for warning in caught:
            log(f"warning: {warning.message}")
        known = int((warm.model.item_map.lookup(train_data.item_map.ids) >= 0).sum())
        log(f"warm start from {args.init_from}: {known} of its {warm.model.n_items} items kept, "
            f"+{len(train_data.item_map) - known} new (optimizer state: {args.warm_optimizer})")
    # Test files are read and mapped before training: if none is usable, fail now.
    if demo:
        tests = [("synthetic test data", evaluation.as_session_data(test_df, train_data.item_map))]
    else:
        tests = read_tests(args.test, train_data.item_map, args)
    if tests and len(unusable(tests)) == len(tests):
        raise InputFilesError(unusable(tests))
    usable = [(path, data) for path, data in tests if not isinstance(data, str)]
    if train_data.duplicate_rows or train_data.repeated_clicks:
        log(f"{train_path}: {train_data.duplicate_rows} duplicate row(s), "
            f"{train_data.repeated_clicks} repeated click(s) on the previous item "
            + ("(removed)" if args.drop_repeats else "(kept; --drop-repeats removes them)"))
    log(f"training on {train_data.n_events} clicks, {train_data.n_sessions} sessions, "
        f"{len(train_data.item_map)} items: {params.to_string()}")
    if not demo and not (args.save or args.test or args.checkpoint_dir):
        log("warning: no --save, --test or --checkpoint-dir: the trained model will be discarded")
    callbacks, validation = [], None
    if args.tensorboard:  # per-block loss, validation curves (first usable test file), projector
        callbacks = [keras.callbacks.TensorBoard(args.tensorboard, update_freq=1),
                     training.ItemEmbeddingProjector(args.tensorboard, support=train_data.support())]
        validation = usable[0][1] if usable else None
    try:
        # Keras prints progress to stdout; "auto" then draws its bar only if stderr is a terminal.
        with contextlib.redirect_stdout(sys.stderr):
            result = training.train(train_data, params, validation=validation, callbacks=callbacks,
                                    cutoffs=args.cutoffs, mode=args.eval_mode, protocol=args.protocol,
                                    verbose=0 if args.quiet else "auto", checkpoint_dir=args.checkpoint_dir,
                                    init_from=warm, distribute=strategy)
    except Exception as e:  # noqa: BLE001: only a lost worker is turned into a line
        if strategy is None or not (lost := distribute.worker_failure(e)):
            raise
        raise CommandError(lost) from None
    log(f"trained {len(result.history.epoch)} epoch(s) in {result.train_seconds:.1f} s, "
        f"{result.events_per_second:,.0f} events/s"
        + (f" on {strategy.num_replicas_in_sync} replica(s)" if strategy else ""))
    if not distribute.is_chief(strategy):
        log("not the chief worker: the chief saves and evaluates the model")
        return
    if args.save:
        log(f"saved the model to "
            f"{training.save_model_dir(result.model, args.save, params, overwrite=args.overwrite)}")
    timing = {"train_seconds": result.train_seconds, "events_per_second": result.events_per_second}
    if not tests:
        if args.json:
            print(strict_json(timing), flush=True)
        return
    results = evaluate_tests(
        lambda data, progress: evaluation.evaluate(result.model, data, args.cutoffs, args.eval_mode,
                                                   args.eval_batch_size, progress=progress,
                                                   **eval_options(args, train_data.support())),
        tests, "GRU4Rec", args)
    names = SYNTHETIC_BASELINES if demo and args.baselines is None else (args.baselines or [])
    compared = _evaluate_baselines(names, train_data, tests, args)
    rows = [(_label("GRU4Rec", r["path"], len(results)), r) for r in results if "error" not in r]
    from tf_gru4rec.baselines import BASELINES

    for name, per_test in compared.items():
        for r, metrics in zip(results, per_test):
            if "error" not in r:
                rows.append((_label(BASELINES[name].name, r["path"], len(results)), metrics))
                r.setdefault("baselines", {})[name] = {k: v for k, v in metrics.items() if k != "path"}
    report(results, rows, args, timing)


def train_main(argv=None) -> int:
    """`python -m tf_gru4rec.train`; returns the exit status."""
    return run(_train_command, argv, "tf_gru4rec.train")


# ----- python -m tf_gru4rec.evaluate --------------------------------------------------------
def evaluate_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.evaluate",
        description="Recall@K / MRR@K / NDCG@K of a saved model (MODEL_DIR TEST...) or of a "
                    "baseline (--baseline NAME TRAIN TEST...) on test files, all training items "
                    "ranked.",
    )
    parser.add_argument("source", metavar="MODEL_DIR|TRAIN",
                        help="a model directory (train --save), or with --baseline the training file")
    parser.add_argument("tests", nargs="+", metavar="TEST", help="test file(s)")
    parser.add_argument("--baseline", choices=BASELINE_NAMES,
                        help="evaluate this baseline fitted on TRAIN instead of a saved model")
    parser.add_argument("--train", metavar="TRAIN",
                        help="the model's training clicks, for the Popularity@K of "
                             "--beyond-accuracy (a model directory does not keep them)")
    add_output_options(parser)
    add_eval_options(parser)
    add_data_options(parser)
    return parser


def _evaluate_command(argv):
    args = evaluate_parser().parse_args(argv)
    if args.train and (args.baseline or not args.beyond_accuracy):
        raise UsageError("--train is only for the Popularity@K of --beyond-accuracy with a MODEL_DIR "
                         "(a baseline's training clicks are its TRAIN)")
    check_before_tensorflow([args.source] if args.baseline else [args.train] if args.train else [],
                            args.tests, [] if args.baseline else [args.source])
    import_tensorflow(args.verbose)
    from tf_gru4rec import evaluation, training
    from tf_gru4rec.data import SessionData

    if args.baseline:
        train_data = SessionData.from_frame(read(args.source, args), source=args.source)
        tests = read_tests(args.tests, train_data.item_map, args)
        results = _evaluate_baselines([args.baseline], train_data, tests, args)[args.baseline]
        from tf_gru4rec.baselines import BASELINES

        label = BASELINES[args.baseline].name
    else:
        model, _ = training.load_model_dir(args.source)
        clicks = None
        if args.train:  # counted on the sessions the model trained on (2+ known clicks)
            clicks = SessionData.from_frame(read(args.train, args), model.item_map, args.train).support()
        elif args.beyond_accuracy:
            log("Popularity@K needs the training clicks: add --train TRAIN")
        tests = read_tests(args.tests, model.item_map, args)
        label = "GRU4Rec"
        results = evaluate_tests(
            lambda data, progress: evaluation.evaluate(model, data, args.cutoffs, args.eval_mode,
                                                       args.eval_batch_size, progress=progress,
                                                       **eval_options(args, clicks)),
            tests, label, args)
    rows = [(_label(label, r["path"], len(results)), r) for r in results if "error" not in r]
    report(results, rows, args)


def evaluate_main(argv=None) -> int:
    """`python -m tf_gru4rec.evaluate`; returns the exit status."""
    return run(_evaluate_command, argv, "tf_gru4rec.evaluate")


# ----- python -m tf_gru4rec.export ----------------------------------------------------------
def export_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.export",
        description="Export a trained GRU4Rec as a SavedModel for TF Serving: <out>/<version>/ "
                    "(signatures: stateful, end_session, step, score_items, stateful_rules, "
                    "step_rules, set_blocklist, limits; see tf_gru4rec.export).",
    )
    parser.add_argument("model_dir", help="model directory (train --save)")
    parser.add_argument("--out", required=True, help="base path, e.g. export/models/gru4rec")
    parser.add_argument("--version", type=int, default=None, help="default: highest existing + 1")
    parser.add_argument("--k", type=int, default=20, help="recommendations per request row")
    parser.add_argument("--capacity", type=int, default=100_000, help="most sessions kept")
    parser.add_argument("--request-memory", type=float, default=1.0, metavar="GIB",
                        help="memory one request may use; the row and candidate limits follow from "
                             "it and the catalogue (1)")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="most rows one request may hold (default: as many as --request-memory fits)")
    parser.add_argument("--max-session-id-bytes", type=int, default=256,
                        help="longest session id accepted (256)")
    parser.add_argument("--max-seen", type=int, default=100,
                        help="a session's last clicks the server remembers for exclude_seen (100)")
    parser.add_argument("--blocklist", default=None, metavar="FILE",
                        help="initial blocklist: item ids never recommended, one per line")
    add_output_options(parser, quiet=False)
    return parser


def read_id_list(path):
    """Item ids of a text file, one per line (blank lines and lines starting with # skipped)."""
    with open(path, encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        return [line for line in lines if line and not line.startswith("#")]


def _export_command(argv):
    args = export_parser().parse_args(argv)
    import_tensorflow(args.verbose)
    import tensorflow as tf

    from tf_gru4rec import export, training

    try:
        export.check_export_args(args.k, args.capacity, args.version, args.max_rows,
                                 args.max_session_id_bytes, args.max_seen, args.request_memory)
    except export.ExportError as e:  # a bad setting
        raise UsageError(str(e)) from None
    try:
        model = training.load_model_dir(args.model_dir)[0]
    except ValueError as e:  # a file Keras cannot read
        raise export.ExportError(
            f"{args.model_dir}: cannot load the model ({str(e).splitlines()[0]})") from None
    if args.blocklist is not None:
        blocked = model.set_blocklist(read_id_list(args.blocklist))
        print(f"blocklist: {blocked['blocked']} items blocked, {len(blocked['unknown'])} unknown ids "
              "skipped")
    path = export.export_model(model, args.out, args.version, k=args.k, capacity=args.capacity,
                               max_rows=args.max_rows, max_session_id_bytes=args.max_session_id_bytes,
                               max_seen=args.max_seen, request_memory=args.request_memory)
    print(f"exported {path} (version {os.path.basename(path)})")
    loaded = tf.saved_model.load(path)
    print(export.describe_limits(loaded))
    print(export.describe_signatures(loaded.signatures))


def export_main(argv=None) -> int:
    """`python -m tf_gru4rec.export`; returns the exit status."""
    return run(_export_command, argv, "python -m tf_gru4rec.export")
