"""`python -m tf_gru4rec.preprocess`: a public session data set into GRU4Rec's TSV splits."""

from __future__ import annotations

import argparse
import logging
import sys

from tf_gru4rec.data.preprocess import DATASETS, PreprocessError, format_table, preprocess


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tf_gru4rec.preprocess",
        description="Preprocess a public session dataset into GRU4Rec TSV files "
        "(train_full, test, train_tr, train_valid).",
    )
    parser.add_argument("dataset", choices=DATASETS, help="which preprocessing rule and raw format")
    parser.add_argument(
        "raw",
        help="raw file (yoochoose-clicks.dat, train-item-views.csv or events.csv) "
        "or the folder holding it",
    )
    parser.add_argument("out_dir", help="output folder (created if missing)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: bad input exits non-zero with one ``error: ...`` line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        splits = preprocess(args.dataset, args.raw, args.out_dir)
    except PreprocessError as e:
        raise SystemExit(f"error: {e}") from None
    except OSError as e:  # e.g. OUT_DIR not writable
        raise SystemExit(f"error: {e.strerror or e}: {e.filename or args.out_dir}") from None
    print(format_table(splits))
    return 0

