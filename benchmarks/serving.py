"""Serving latency of an exported GRU4Rec: p50 / p99 per request and requests/s.

    python benchmarks/serving.py [--model-dir DIR] [--data ../shared/data/yoochoose1_64]
        [--requests 2000] [--batch 32]

Signatures `stateful` (the server keeps the state) and `step` (the client carries it), with
one session per request and `--batch` sessions per request, measured (a) by calling the
SavedModel's signatures in-process and (b) through gRPC to the local server
(`tf_gru4rec.serving.local_server`, 127.0.0.1). One client sends requests one after another,
so requests/s = 1 / mean latency. Clicks are those of the test sessions, replayed
session-parallel: each request row takes its session's next click; a finished session's row
moves on to a new session. Without `--model-dir`, a model is trained for one epoch on the
training data with the RSC15 parameters. Prints a Markdown table; skips if the data is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "yoochoose1_64"
RSC15_PARAMS = ("loss=cross-entropy,layers=100,batch_size=32,dropout_p_hidden=0.4,learning_rate=0.2,"
                "momentum=0.2,n_sample=2048,sample_alpha=0.5,logq=1,n_epochs=1,seed=1")
WARMUP_REQUESTS = 20


def session_parallel_requests(sessions, n_requests, batch, prefix):
    """Replays click streams `batch` at a time.

    Returns a list of (session keys [batch], item ids [batch], starts [batch] bool: the row
    begins a new session), `n_requests` long; sessions are reused (with new keys) if needed.
    Keys are `prefix-<n>`, so measurements do not continue each other's sessions.
    """
    requests, next_session, rows = [], 0, []
    for _ in range(n_requests):
        while len(rows) < batch:
            rows.append([next_session, 0])
            next_session += 1
        keys, items, starts = [], [], []
        for row in rows:
            clicks = sessions[row[0] % len(sessions)]
            keys.append(f"{prefix}-{row[0]}")
            items.append(clicks[row[1]])
            starts.append(row[1] == 0)
            row[1] += 1
        rows = [row for row in rows if row[1] < len(sessions[row[0] % len(sessions)])]
        requests.append((keys, items, np.array(starts)))
    return requests


def timed(call, requests):
    """Runs `call(request)` for each request; returns the latencies in seconds of all but
    the first WARMUP_REQUESTS."""
    for request in requests[:WARMUP_REQUESTS]:
        call(request)
    requests = requests[WARMUP_REQUESTS:]
    latencies = np.empty(len(requests))
    for i, request in enumerate(requests):
        start = time.perf_counter()
        call(request)
        latencies[i] = time.perf_counter() - start
    return latencies


def stateless(step, state_size):
    """`step(items, state) -> new state` as a call on requests, carrying the state per row."""
    state = {}

    def call(request):
        keys, items, starts = request
        current = state.get(len(keys), np.zeros((len(keys), state_size), np.float32))
        # A row that starts a new session starts from zeros.
        state[len(keys)] = step(items, np.where(starts[:, None], np.float32(0), current))

    return call


def in_process_calls(loaded, item_dtype, state_size):
    import tensorflow as tf

    signatures = loaded.signatures

    def stateful(request):
        keys, items, _ = request
        out = signatures["stateful"](session_id=tf.constant(keys), item_id=tf.constant(items, item_dtype))
        out["item_ids"].numpy()

    def step(items, state):
        out = signatures["step"](item_id=tf.constant(items, item_dtype), state=tf.constant(state))
        return out["state"].numpy()

    return stateful, stateless(step, state_size)


def grpc_calls(client):
    def stateful(request):
        keys, items, _ = request
        client.next_items_batch(keys, items)

    def step(items, state):
        return client.step(items, state)[2]

    return stateful, stateless(step, client.state_size)


def row(path, signature, batch, latencies):
    ms = latencies * 1000
    per_second = len(latencies) / latencies.sum()
    return (f"| {path} | {signature} | {batch} | {len(latencies)} | {np.percentile(ms, 50):.2f} "
            f"| {np.percentile(ms, 99):.2f} | {per_second:.0f} | {per_second * batch:.0f} |")


def trained_model(args, data_dir):
    from tf_gru4rec import read_sessions, train
    from tf_gru4rec.training.model_dir import load_model_dir

    if args.model_dir:
        return load_model_dir(args.model_dir)[0]
    print(f"training 1 epoch on {data_dir / 'train_full.tsv'} ({RSC15_PARAMS})", file=sys.stderr)
    return train(read_sessions(data_dir / "train_full.tsv"), RSC15_PARAMS, verbose=0).model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help="model directory; default: train one")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with train_full.tsv, test.tsv")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per measurement")
    parser.add_argument("--batch", type=int, default=32, help="sessions per batched request")
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    data_dir = Path(args.data)
    needed = [data_dir / "test.tsv"] + ([] if args.model_dir else [data_dir / "train_full.tsv"])
    if not all(p.is_file() for p in needed):
        print(f"skipped: {', '.join(str(p) for p in needed)} not found")
        return 0

    import tensorflow as tf

    from tf_gru4rec import read_sessions
    from tf_gru4rec.serving import GRU4RecClient, start_local_server
    from tf_gru4rec.serving.export import export_model

    model = trained_model(args, data_dir)
    test = read_sessions(data_dir / "test.tsv")
    sessions = [g.tolist() for _, g in test.groupby("SessionId", sort=False)["ItemId"]]
    item_dtype = tf.int64 if model.item_map.is_integer else tf.string
    lines = ["| path | signature | sessions/request | requests | p50 ms | p99 ms | requests/s | clicks/s |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "gru4rec")
        export_model(model, base, k=args.k)
        loaded = tf.saved_model.load(os.path.join(base, "1"))
        server, port = start_local_server(base, port=0)
        client = GRU4RecClient(f"127.0.0.1:{port}", model_name="gru4rec")
        try:
            paths = {"in-process": in_process_calls(loaded, item_dtype, model.state_size),
                     "gRPC (local server)": grpc_calls(client)}
            for path, (stateful_call, step_call) in paths.items():
                for batch in (1, args.batch):
                    n = args.requests + WARMUP_REQUESTS
                    requests = session_parallel_requests(sessions, n, batch, prefix=f"{path}-{batch}")
                    for signature, call in (("stateful", stateful_call), ("step", step_call)):
                        lines.append(row(path, signature, batch, timed(call, requests)))
                        print(lines[-1], file=sys.stderr)
        finally:
            client.close()
            server.stop(grace=None)
    print(f"\nServing latency, {model.n_items} items, {model.state_size} units, k={args.k}, "
          f"one client (sequential requests), {os.cpu_count()} CPU cores\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
