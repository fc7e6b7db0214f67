"""`python -m tf_gru4rec.tune`: hyperparameter search with Optuna (see `training.tune`)."""

from __future__ import annotations

import argparse

from tf_gru4rec.cli.common import (
    TIE_MODES,
    ArgumentParser,
    CommandError,
    add_data_options,
    add_output_options,
    import_tensorflow,
    log,
    positive_int,
    read,
    resolve_params,
    run,
)
from tf_gru4rec.training import tune
from tf_gru4rec.training.tune import load_space, objective, to_params_string


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise CommandError("Optuna is not installed: pip install 'tf_gru4rec[tune]'") from None
    return optuna


def tune_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m tf_gru4rec.tune", description=tune.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", metavar="TRAIN", help="training clicks (e.g. train_tr.tsv)")
    parser.add_argument("valid", metavar="VALID", help="validation clicks (e.g. train_valid.tsv)")
    parser.add_argument("--space", required=True, metavar="SPACE.json", help="the search space")
    parser.add_argument("--trials", type=positive_int, required=True, metavar="N",
                        help="trials to run now (added to a stored study's)")
    parser.add_argument("--metric", choices=("recall", "mrr"), default="recall", help="what to maximise")
    parser.add_argument("--cutoff", type=positive_int, default=20, metavar="K", help="of Recall@K / MRR@K (20)")
    parser.add_argument("--eval-mode", default="conservative", choices=TIE_MODES)
    parser.add_argument("--params", default="", metavar="K=V,...", help="fixed parameters of every trial")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage, e.g. sqlite:///study.db (resumable)")
    parser.add_argument("--study-name", default="gru4rec", metavar="NAME", help="study name (gru4rec)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (0)")
    add_output_options(parser, quiet=False)
    add_data_options(parser)
    return parser


def _tune_command(argv):
    args = tune_parser().parse_args(argv)
    optuna = _import_optuna()
    import_tensorflow(args.verbose)
    from tf_gru4rec.training.params import ParamError

    space = load_space(args.space)
    resolve_params(args.params)  # bad fixed parameters fail now, not in every trial
    overlap = sorted(set(space) & {p.split("=")[0].strip() for p in args.params.split(",") if p.strip()})
    if overlap:
        raise ParamError(f"parameter(s) both fixed and searched: {', '.join(overlap)}")
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.evaluator import as_session_data

    train_data = SessionData.from_frame(read(args.train, args), source=args.train)
    valid_data = as_session_data(read(args.valid, args), train_data.item_map, source=args.valid)
    study = optuna.create_study(storage=args.storage, study_name=args.study_name, direction="maximize",
                                load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=args.seed))
    metric = f"{args.metric}@{args.cutoff}"
    log(f"study {args.study_name!r}: {len(study.trials)} trial(s) stored; maximising {metric} "
        f"on {args.valid} over {sorted(space)}; fixed: {args.params or '(defaults)'}")
    study.optimize(objective(train_data, valid_data, space, args.params, args.metric, args.cutoff,
                             args.eval_mode),
                   n_trials=args.trials, catch=(ValueError,))  # a bad combination fails its trial only
    completed = [t for t in study.trials if t.value is not None]
    if not completed:
        raise CommandError(f"no trial of study {args.study_name!r} completed (see the log above)")
    best = study.best_trial
    log(f"best {metric} = {best.value:.4f} (trial {best.number} of {len(study.trials)})")
    print(",".join(filter(None, [args.params, to_params_string(best.params)])), flush=True)


def main(argv=None) -> int:
    """`python -m tf_gru4rec.tune`; returns the exit status."""
    return run(_tune_command, argv, "tf_gru4rec.tune")

