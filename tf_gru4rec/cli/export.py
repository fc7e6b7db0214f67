"""`python -m tf_gru4rec.export`: write a model directory as a SavedModel for TF Serving."""

from __future__ import annotations

import os

from tf_gru4rec.cli.common import (
    ArgumentParser,
    UsageError,
    add_output_options,
    import_tensorflow,
    run,
)


def export_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m tf_gru4rec.export",
        description="Export a trained GRU4Rec as a SavedModel for TF Serving: <out>/<version>/ "
                    "(signatures: stateful, end_session, step, score_items, stateful_rules, "
                    "step_rules, set_blocklist, limits, and add_items with --spare-items; see "
                    "tf_gru4rec.serving.export).",
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
    parser.add_argument("--spare-items", type=int, default=0, metavar="N",
                        help="catalogue rows for items added after export by the add_items "
                             "signature (a model trained with --item-features; 0)")
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

    from tf_gru4rec.serving import export, rules
    from tf_gru4rec.training import model_dir

    try:
        export.check_export_args(args.k, args.capacity, args.version, args.max_rows,
                                 args.max_session_id_bytes, args.max_seen, args.request_memory,
                                 args.spare_items)
    except export.ExportError as e:  # a bad setting
        raise UsageError(str(e)) from None
    try:
        model = model_dir.load_model_dir(args.model_dir)[0]
    except ValueError as e:  # a file Keras cannot read
        raise export.ExportError(
            f"{args.model_dir}: cannot load the model ({str(e).splitlines()[0]})") from None
    blocklist = () if args.blocklist is None else read_id_list(args.blocklist)
    if args.blocklist is not None:
        blocked, unknown = rules.blocked_mask(model.item_map, blocklist)
        print(f"blocklist: {int(blocked.sum())} items blocked, {len(unknown)} unknown ids skipped")
    path = export.export_model(model, args.out, args.version, blocklist=blocklist, k=args.k, capacity=args.capacity,
                               max_rows=args.max_rows, max_session_id_bytes=args.max_session_id_bytes,
                               max_seen=args.max_seen, request_memory=args.request_memory,
                               spare_items=args.spare_items)
    print(f"exported {path} (version {os.path.basename(path)})")
    loaded = tf.saved_model.load(path)
    print(export.describe_limits(loaded))
    print(export.describe_signatures(loaded.signatures))


def export_main(argv=None) -> int:
    """`python -m tf_gru4rec.export`; returns the exit status."""
    return run(_export_command, argv, "python -m tf_gru4rec.export")
