"""`python -m tf_gru4rec.daily`: day-by-day retraining and evaluation (see `training.daily`)."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from tf_gru4rec.cli.common import (
    TIE_MODES,
    ArgumentParser,
    CommandError,
    UsageError,
    add_data_options,
    add_output_options,
    import_tensorflow,
    log,
    positive_int,
    read,
    resolve_params,
    run,
    strict_json,
)
from tf_gru4rec.training import daily
from tf_gru4rec.training.daily import MODES, mean_row, run_daily, table


def daily_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m tf_gru4rec.daily", description=daily.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", metavar="DATA", help="click files (Time in unix seconds)")
    parser.add_argument("--window-days", type=positive_int, required=True, metavar="W",
                        help="cold models train on the W days before the evaluated day")
    parser.add_argument("--days", type=positive_int, required=True, metavar="D",
                        help="evaluate on the last D days")
    parser.add_argument("--last-day", metavar="YYYY-MM-DD",
                        help="the last evaluated day (default: the last day with data)")
    parser.add_argument("--mode", choices=("cold", "warm", "both"), default="both",
                        help="retrain from scratch on the window, continue yesterday's model on "
                             "yesterday's sessions, or both side by side (default)")
    parser.add_argument("--warm-optimizer", choices=("carry", "reset"), default="carry",
                        help="warm: carry the AdagradM slots over day to day (default) or reset them")
    parser.add_argument("--params", metavar="K=V,...", help="training parameters (see train --help)")
    parser.add_argument("--param-file", metavar="FILE", help="a parameter file or a shipped set's name")
    parser.add_argument("--cutoff", type=positive_int, default=20, metavar="K", help="of Recall@K / MRR@K (20)")
    parser.add_argument("--eval-mode", default="conservative", choices=TIE_MODES)
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object on the last stdout line")
    add_output_options(parser, quiet=False)
    add_data_options(parser)
    return parser


def _daily_command(argv):
    args = daily_parser().parse_args(argv)
    if args.last_day is not None:
        try:
            np.datetime64(args.last_day, "D")
        except ValueError:
            raise UsageError(f"--last-day: not a date YYYY-MM-DD: {args.last_day!r}") from None
    import_tensorflow(args.verbose)
    params = resolve_params(args.params, args.param_file)
    modes = MODES if args.mode == "both" else (args.mode,)
    frames = [read(path, args) for path in args.data]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rows = run_daily(df, params, args.window_days, args.days, args.last_day, modes,
                     args.warm_optimizer, args.cutoff, args.eval_mode, source=", ".join(args.data))
    text = table(rows + [mean_row(rows, modes)], modes, args.cutoff)
    if args.json:
        log(text)
        print(strict_json({"days": rows, "mean": mean_row(rows, modes)}), flush=True)
    else:
        print(text, flush=True)
    if all("not_evaluated" in r for r in rows):
        raise CommandError(f"no day could be evaluated ({len(rows)} day(s) without usable sessions; "
                           "see the table): check --days, --window-days and --last-day")


def main(argv=None) -> int:
    """`python -m tf_gru4rec.daily`; returns the exit status."""
    return run(_daily_command, argv, "tf_gru4rec.daily")

