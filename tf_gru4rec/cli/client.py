"""`python -m tf_gru4rec.serving.client`: send a session's clicks to a served GRU4Rec and print
the recommendations (see `tf_gru4rec.serving.client` for the Python client).

Its arguments are checked before gRPC and the protos load.
"""

from __future__ import annotations

import numpy as np

from tf_gru4rec.cli.common import ArgumentParser, UsageError, add_output_options
from tf_gru4rec.cli.export import read_id_list


class ClientParser(ArgumentParser):
    """Also checks which options go together, so a bad combination answers before gRPC and
    the protos load."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.items is None and not parsed.end_session and parsed.set_blocklist is None:
            self.error("give --session with --items and/or --end-session, or --set-blocklist")
        for given, option in ((parsed.items is not None, "--items"), (parsed.end_session, "--end-session")):
            if given and parsed.session is None:
                self.error(f"{option} needs --session")
        return parsed


def build_parser() -> ArgumentParser:
    parser = ClientParser(
        prog="python -m tf_gru4rec.serving.client",
        description="Sends a session's clicks; prints the recommendations after each click.",
    )
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC endpoint")
    parser.add_argument("--model", default="gru4rec", help="model name")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--session", help="session id (with --items and/or --end-session)")
    parser.add_argument("--items", help="comma-separated item ids, in click order")
    parser.add_argument("--k", type=int, default=None, help="default: the exported k")
    parser.add_argument("--end-session", action="store_true",
                        help="free the session (after the clicks of --items, if any)")
    parser.add_argument("--exclude-seen", action="store_true",
                        help="never recommend the session's clicked items")
    parser.add_argument("--candidates", default=None, metavar="ID,ID,...",
                        help="recommend only among these item ids (re-ranking)")
    parser.add_argument("--set-blocklist", default=None, metavar="FILE",
                        help="first replace the server's blocklist by the ids of FILE, one per line "
                             "(alone: only that)")
    add_output_options(parser, quiet=False)
    return parser


def parse_command_line(parser, argv=None):
    """The parsed arguments, or exit 2 with one line for bad ones."""
    try:
        return parser.parse_args(argv)
    except UsageError as e:
        parser.exit(2, f"{parser.prog}: error: {e} (see --help)\n")


def parse_item(text, integer_ids):
    """An item id typed on the command line, as the model's ItemId dtype wants it."""
    if not integer_ids:
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"item {text!r} is not an integer, and the model's ItemIds are int64") from None


#: Printed for a click after which no item may be recommended.
NO_ITEM_LEFT = "no item left to recommend (each is seen, blocked or not a candidate)"


def format_click(item_id, item_ids, scores, unknown):
    """One printed line: the click, then `id (score)` of each recommendation (padded slots,
    score -inf, left out), or why there is none."""
    flag = " [unknown item: state unchanged]" if unknown else ""
    recs = ", ".join(f"{i} ({s:.4f})" for i, s in zip(item_ids, scores) if s != -np.inf)
    return f"{item_id}{flag} -> {recs or NO_ITEM_LEFT}"


def parse_items(texts, integer_ids):
    """Ids typed on the command line or in a file -> (ids to send, ids skipped: not integers)."""
    if not integer_ids:
        return list(texts), []
    ids, skipped = [], []
    for text in texts:
        try:
            ids.append(int(text))
        except ValueError:
            skipped.append(text)
    return ids, skipped


def main(argv=None):
    """`python -m tf_gru4rec.serving.client`; returns the exit status."""
    parser = build_parser()
    args = parse_command_line(parser, argv)
    import grpc

    from tf_gru4rec.serving.client import GRU4RecClient, truncate_k

    split = lambda text: [i.strip() for i in text.split(",") if i.strip()]  # noqa: E731
    try:
        with GRU4RecClient(args.server, args.model, args.version) as client:
            integer_ids = client.item_dtype == np.int64
            if args.set_blocklist is not None:
                ids, skipped = parse_items(read_id_list(args.set_blocklist), integer_ids)
                done = client.set_blocklist(ids)
                print(f"blocklist: {done['blocked']} items blocked, "
                      f"{len(done['unknown']) + len(skipped)} unknown ids skipped")
            items = split(args.items or "")
            candidates, not_integers = None, []
            if args.candidates is not None:
                candidates, not_integers = parse_items(split(args.candidates), integer_ids)
            rules = {}
            if args.exclude_seen or candidates is not None:
                rules = client.rules_inputs(1, args.exclude_seen, candidates)
            for text in items:
                item = parse_item(text, integer_ids)
                inputs = {"session_id": [args.session], "item_id": [item], **rules}
                out = client.predict("stateful_rules" if rules else "stateful", inputs)
                k = truncate_k(args.k, out["item_ids"].shape[1])
                recs = out["item_ids"][0, :k], out["scores"][0, :k]
                print(format_click(text, *recs, out["unknown_item"][0]))
            if candidates is not None and items:
                unknown = int(out["unknown_candidates"][0]) + len(not_integers)
                print(f"candidates: {unknown} unknown ids skipped")
            if args.end_session:
                held = client.end_session(args.session)
                print(f"session {args.session}: " + ("ended" if held else "not held (nothing to end)"))
    except grpc.RpcError as e:
        parser.exit(1, f"{parser.prog}: error: {e.code().name}: {e.details()}\n")
    except OSError as e:  # an unreadable --set-blocklist file
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return 0

