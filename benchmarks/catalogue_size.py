"""Peak memory and time against catalogue size: training and evaluation with 1M and 10M items.

    python benchmarks/catalogue_size.py [--items 100000 1000000 10000000] [--events 200000]
                                        [--eval-batch-size 16] [--predictions 2000]

Each size runs in a fresh process (so its peak RSS is its own): a catalogue of N items,
synthetic sessions whose clicks follow a Zipf law over the catalogue (most items are never
clicked, as in a real long tail), one epoch of GRU4Rec with 100 units (batch 32, 2048
extra negatives, momentum 0.2: accumulator and velocity slots), then next-item evaluation
of `--predictions` test events against all N items in chunks of `--eval-batch-size` rows.
Printed per size: the memory estimate of `tf_gru4rec.system.memory` and the measured peak RSS,
training time, evaluation time per prediction (its second, compiled call) next to the time of the bare
[rows, d] x [d, N] matmul that scoring the catalogue costs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PARAMS = ("loss=cross-entropy,layers=100,batch_size=32,n_sample=2048,sample_alpha=0.5,logq=1,"
          "learning_rate=0.1,momentum=0.2,n_epochs=1,seed=1")


def sessions(n_items, n_events, seed):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 8, size=n_events // 4)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n_events)]
    items = np.minimum(rng.zipf(1.3, size=lengths.sum()) - 1, n_items - 1)
    items = rng.permutation(n_items)[items]  # popular items anywhere in the catalogue
    session = np.repeat(np.arange(len(lengths)), lengths)
    return pd.DataFrame({"SessionId": session, "ItemId": items, "Time": np.arange(len(items), dtype=float)})


def one_size(n_items, n_events, eval_batch_size, predictions):
    """Runs in the child process; prints one JSON line."""
    import numpy as np
    import tensorflow as tf

    from tf_gru4rec.data.item_map import ItemMap
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.evaluator import Evaluator
    from tf_gru4rec.system import memory
    from tf_gru4rec.training.params import parse_params
    from tf_gru4rec.training.trainer import train

    params = parse_params(PARAMS)
    catalogue = ItemMap(np.arange(n_items))
    data = SessionData.from_frame(sessions(n_items, n_events, 0), item_map=catalogue)
    test = sessions(n_items, int(predictions * 1.4), 1)
    estimate = memory.training_bytes(n_items, params, eval_rows=eval_batch_size)
    result = train(data, params, verbose=0)
    evaluator = Evaluator(test, catalogue, batch_size=eval_batch_size)
    evaluator(result.model)  # the first call compiles
    metrics = evaluator(result.model)
    eval_seconds = metrics["eval_seconds"]
    h = tf.random.normal([eval_batch_size, 100])
    matmul = tf.function(lambda h: tf.reduce_max(tf.matmul(h, result.model.item_table.wy, transpose_b=True)))
    matmul(h)
    start = time.perf_counter()
    for _ in range(5):
        matmul(h).numpy()
    matmul_seconds = (time.perf_counter() - start) / 5 / eval_batch_size
    print(json.dumps({
        "items": n_items, "estimate_gib": sum(estimate.values()) / 2**30,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "train_seconds": result.train_seconds, "events_per_second": result.events_per_second,
        "predictions": metrics["n_events"], "eval_ms_per_prediction": 1e3 * eval_seconds / metrics["n_events"],
        "matmul_ms_per_row": 1e3 * matmul_seconds,
    }), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--events", type=int, default=200_000, help="training clicks")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--predictions", type=int, default=2000, help="about this many test events")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return one_size(args.items[0], args.events, args.eval_batch_size, args.predictions)
    rows = []
    for n in args.items:
        out = subprocess.run([sys.executable, __file__, "--child", "--items", str(n), "--events",
                              str(args.events), "--eval-batch-size", str(args.eval_batch_size),
                              "--predictions", str(args.predictions)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{n} items: failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{n:,} items done", file=sys.stderr, flush=True)
    print(f"\nOne epoch of {args.events:,} clicks (100 units, batch 32, 2048 negatives, momentum 0.2); "
          f"evaluation in chunks of {args.eval_batch_size} rows against all items.\n")
    print("| items | estimate (GiB) | peak RSS (GiB) | train s | events/s | eval ms / prediction | "
          "bare matmul ms / row | eval / matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['items']:,} | {r['estimate_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
              f"{r['train_seconds']:.0f} | {r['events_per_second']:,.0f} | "
              f"{r['eval_ms_per_prediction']:.2f} | {r['matmul_ms_per_row']:.2f} | "
              f"{r['eval_ms_per_prediction'] / r['matmul_ms_per_row']:.1f}x |")


if __name__ == "__main__":
    main()
