"""`python -m tf_gru4rec.evaluate`: evaluate a model directory (or baselines) on test files."""

from __future__ import annotations

from tf_gru4rec.cli.common import (
    BASELINE_NAMES,
    ArgumentParser,
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
    read,
    read_tests,
    report,
    run,
    test_label,
)


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
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation import evaluator
    from tf_gru4rec.training import model_dir

    if args.baseline:
        train_data = SessionData.from_frame(read(args.source, args), source=args.source)
        tests = read_tests(args.tests, train_data.item_map, args)
        results = evaluate_baselines([args.baseline], train_data, tests, args)[args.baseline]
        from tf_gru4rec.evaluation.baselines import BASELINES

        label = BASELINES[args.baseline].name
    else:
        model, _ = model_dir.load_model_dir(args.source)
        clicks = None
        if args.train:  # counted on the sessions the model trained on (2+ known clicks)
            clicks = SessionData.from_frame(read(args.train, args), model.item_map, args.train).support()
        elif args.beyond_accuracy:
            log("Popularity@K needs the training clicks: add --train TRAIN")
        tests = read_tests(args.tests, model.item_map, args)
        label = "GRU4Rec"
        results = evaluate_tests(
            lambda data, progress: evaluator.evaluate(model, data, args.cutoffs, args.eval_mode,
                                                       args.eval_batch_size, progress=progress,
                                                       **eval_options(args, clicks)),
            tests, label, args)
    rows = [(test_label(label, r["path"], len(results)), r) for r in results if "error" not in r]
    report(results, rows, args)


def evaluate_main(argv=None) -> int:
    """`python -m tf_gru4rec.evaluate`; returns the exit status."""
    return run(_evaluate_command, argv, "tf_gru4rec.evaluate")


