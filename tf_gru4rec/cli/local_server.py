"""`python -m tf_gru4rec.serving.local_server`: serve an export on 127.0.0.1 for tests and demos."""

from __future__ import annotations

import os

from tf_gru4rec.cli.common import ArgumentParser, add_output_options, parse_then_import_tensorflow

DESCRIPTION = "A local gRPC PredictionService that runs an exported GRU4Rec's SavedModel signatures."


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m tf_gru4rec.serving.local_server",
                                     description=DESCRIPTION)
    parser.add_argument("--model-base-path", required=True, help="folder of numeric version folders")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--model-name", default=None, help="default: the folder's name")
    parser.add_argument("--version", type=int, default=None, help="default: the highest version")
    add_output_options(parser, quiet=False)
    return parser


def main(argv=None):
    """`python -m tf_gru4rec.serving.local_server`; returns the exit status."""
    parser = build_parser()
    args = parse_then_import_tensorflow(parser, argv)
    from tf_gru4rec.serving.local_server import start_local_server

    try:
        server, port = start_local_server(args.model_base_path, args.port, args.model_name, args.version)
    except (OSError, RuntimeError, ValueError) as e:
        parser.exit(1, f"{parser.prog}: error: {str(e).splitlines()[0]}\n")
    service_name = args.model_name or os.path.basename(os.path.abspath(args.model_base_path))
    print(f"serving {service_name} from {args.model_base_path} on 127.0.0.1:{port} (Ctrl-C stops)",
          flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(grace=None)
    return 0

