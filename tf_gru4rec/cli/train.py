"""`python -m tf_gru4rec.train`: train GRU4Rec (default: the embedded synthetic data, against baselines)."""

from __future__ import annotations

import contextlib
import sys
import warnings

from tf_gru4rec.cli.common import (
    BASELINE_NAMES,
    PARAM_FILES,
    SYNTHETIC_BASELINES,
    SYNTHETIC_PARAMS,
    ArgumentParser,
    CommandError,
    InputFilesError,
    UsageError,
    add_data_options,
    add_eval_options,
    add_output_options,
    check_before_tensorflow,
    eval_options,
    evaluate_baselines,
    evaluate_tests,
    import_tensorflow,
    log,
    positive_float,
    positive_int,
    read,
    read_tests,
    report,
    resolve_params,
    run,
    strict_json,
    test_label,
    unusable,
)


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
    parser.add_argument("--item-features", metavar="FILE",
                        help="item features (TSV, CSV or Parquet: ItemId plus columns): items add "
                             "learned embeddings of their features, and the table's never-clicked "
                             "items become recommendable (cold start)")
    parser.add_argument("--feature-columns", metavar="COL,...",
                        help="the --item-features columns to use (default: all)")
    parser.add_argument("--feature-encodings", metavar="COL=ENC,...",
                        help="how columns are encoded: categorical, multi (values joined by |), "
                             "numeric or numeric:N (N quantile buckets); default: inferred")
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
    if (args.feature_columns or args.feature_encodings) and not args.item_features:
        raise UsageError("--feature-columns and --feature-encodings need --item-features")
    # A warm start's parameters are the saved ones: here checked over the defaults.
    check_before_tensorflow([] if demo else [args.train], args.test, [args.init_from] if args.init_from else [],
                            (args.params, args.param_file, SYNTHETIC_PARAMS if demo else None))
    import_tensorflow(args.verbose)
    warm = None
    if args.init_from:  # loaded first: its saved parameters are the defaults
        from tf_gru4rec.training.warm_start import WarmStart

        warm = WarmStart(args.init_from, args.warm_optimizer, args.drop_absent_items)
    base = SYNTHETIC_PARAMS if demo else (warm.params if warm else None)
    params = resolve_params(args.params, args.param_file, base)
    import keras

    from tf_gru4rec.evaluation import evaluator
    from tf_gru4rec.training import distribute
    from tf_gru4rec.training import trainer
    from tf_gru4rec.training import model_dir
    from tf_gru4rec.training.callbacks import ItemEmbeddingProjector

    # Before any other TensorFlow work (multi-worker collectives, logical devices).
    strategy = distribute.make_strategy(args.distribute, args.replicas, args.worker_timeout,
                                        log) if args.distribute else None
    if strategy and (warning := distribute.oversubscription_warning(strategy)):
        log(warning)
    from tf_gru4rec.data.item_map import mean_id_length
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.system.files import remove_leftovers

    if args.save:  # before any work: a save that would fail must not cost a training run
        for done in remove_leftovers(args.save):  # first: it may restore the model directory
            log(f"{done}, left by an interrupted save")
        model_dir.check_model_dir(args.save, args.overwrite)

    if demo:
        from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions

        train_df, test_df = split_by_time(synthetic_sessions())
        log(f"demo: synthetic sessions, {len(train_df)} training and {len(test_df)} test clicks")
        train_path = "synthetic training data"
    else:
        train_path = args.train
        trainer.check_memory(params, strategy)  # what the parameters alone need, before reading
        train_df = read(train_path, args)
        trainer.check_memory(params, strategy, train_df["ItemId"].nunique(), len(train_df),
                              mean_id_length(train_df["ItemId"].to_numpy()), evaluate=bool(args.tensorboard))
    train_data = SessionData.from_frame(train_df, source=train_path, drop_repeats=args.drop_repeats)
    item_features = None
    if args.item_features:
        from tf_gru4rec.data.item_features import read_item_features

        # A warm start keeps the model's encoding: its columns, buckets and value numbers.
        encoder = warm.model.feature_encoder if warm else None
        if encoder and (args.feature_columns or args.feature_encodings):
            raise UsageError(f"--feature-columns and --feature-encodings do not apply with --init-from "
                             f"{args.init_from}: its item features' encoding is kept")
        item_features = read_item_features(args.item_features, _list(args.feature_columns),
                                           _encodings(args.feature_encodings), encoder=encoder)
    if warm:  # the grown item map, before the test files are mapped with it
        with warnings.catch_warnings(record=True) as caught:  # as log lines, not Python's format
            warnings.simplefilter("always")
            train_data = warm.prepare(train_data, params, item_features)
        for warning in caught:
            log(f"warning: {warning.message}")
        known = int((warm.model.item_map.lookup(train_data.item_map.ids) >= 0).sum())
        log(f"warm start from {args.init_from}: {known} of its {warm.model.n_items} items kept, "
            f"+{len(train_data.item_map) - known} new (optimizer state: {args.warm_optimizer})")
    if item_features is not None:  # the cold-start items join the map before the tests are mapped
        from tf_gru4rec.data.item_map import ItemMap
        from tf_gru4rec.training.warm_start import reindex

        aligned = item_features.align(train_data.item_map)
        log(f"{args.item_features}: {aligned.summary()}")
        train_data = reindex(train_data, ItemMap(aligned.features.ids))
    # Test files are read and mapped before training: if none is usable, fail now.
    if demo:
        tests = [("synthetic test data", evaluator.as_session_data(test_df, train_data.item_map))]
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
                     ItemEmbeddingProjector(args.tensorboard, support=train_data.support())]
        validation = usable[0][1] if usable else None
    try:
        # Keras prints progress to stdout; "auto" then draws its bar only if stderr is a terminal.
        with contextlib.redirect_stdout(sys.stderr):
            result = trainer.train(train_data, params, validation=validation, callbacks=callbacks,
                                    cutoffs=args.cutoffs, mode=args.eval_mode, protocol=args.protocol,
                                    verbose=0 if args.quiet else "auto", checkpoint_dir=args.checkpoint_dir,
                                    init_from=warm, distribute=strategy, item_features=item_features)
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
            f"{model_dir.save_model_dir(result.model, args.save, params, overwrite=args.overwrite)}")
    timing = {"train_seconds": result.train_seconds, "events_per_second": result.events_per_second}
    if not tests:
        if args.json:
            print(strict_json(timing), flush=True)
        return
    results = evaluate_tests(
        lambda data, progress: evaluator.evaluate(result.model, data, args.cutoffs, args.eval_mode,
                                                   args.eval_batch_size, progress=progress,
                                                   **eval_options(args, train_data.support())),
        tests, "GRU4Rec", args)
    names = SYNTHETIC_BASELINES if demo and args.baselines is None else (args.baselines or [])
    compared = evaluate_baselines(names, train_data, tests, args)
    rows = [(test_label("GRU4Rec", r["path"], len(results)), r) for r in results if "error" not in r]
    from tf_gru4rec.evaluation.baselines import BASELINES

    for name, per_test in compared.items():
        for r, metrics in zip(results, per_test):
            if "error" not in r:
                rows.append((test_label(BASELINES[name].name, r["path"], len(results)), metrics))
                r.setdefault("baselines", {})[name] = {k: v for k, v in metrics.items() if k != "path"}
    report(results, rows, args, timing)


def _list(text):
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _encodings(text):
    """'col=enc,...' -> {col: enc}."""
    out = {}
    for part in _list(text) or []:
        column, sep, encoding = part.partition("=")
        if not sep or not column.strip():
            raise UsageError(f"--feature-encodings: {part!r} is not COLUMN=ENCODING")
        out[column.strip()] = encoding.strip()
    return out


def train_main(argv=None) -> int:
    """`python -m tf_gru4rec.train`; returns the exit status."""
    return run(_train_command, argv, "tf_gru4rec.train")


