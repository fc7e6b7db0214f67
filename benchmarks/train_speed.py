"""Training speed and memory of tf_gru4rec on real data; prints a Markdown table.

    python benchmarks/train_speed.py [--data ../shared/data/yoochoose1_64] [--epochs 10]
        [--configs rsc15-xe rsc15-bprmax rr-xe rr-bprmax] [--batch-sizes published 256]
        [--max-events N] [--out results.json]

`--batch-sizes` runs every configuration at its published batch size and/or others;
`--max-events` trains and evaluates on the first N clicks only (a quick check, e.g. the GPU
dry run).

Each configuration runs in a fresh subprocess (so peak memory is its own) through the
library's normal path (`tf_gru4rec.train`, i.e. `model.fit`). Reported:
- events/s: training examples (clicks with a next click) per second of `model.fit` wall
  time over all epochs, compilation included (the `--json` figure of `tf_gru4rec.train`);
- mini-batches/s: session-parallel steps per second of the same wall time;
- epoch s: wall time per epoch (the first includes compilation);
- peak RSS: the process's maximum resident memory (TensorFlow itself takes ~0.6 GB);
- model+slots+cache: the bytes the parameters say training needs (tables, AdagradM slots,
  the negative-sample cache);
- eval s: evaluation of the whole test set against all items (second call, compiled).
The ratio column compares with the official PyTorch GRU4Rec on this machine kind
(median ~7,000 events/s, ../shared/docs/targets.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

OFFICIAL_PYTORCH_EVENTS_PER_SECOND = 7000.0  # median by epoch, targets.md
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "yoochoose1_64"

CONFIGS = {
    # RSC15-shaped: the spec's best RSC15 parameters.
    "rsc15-xe": "loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
    "learning_rate=0.2,momentum=0.2,n_sample=2048,sample_alpha=0.5,logq=1.0,constrained_embedding=True",
    "rsc15-bprmax": "loss=bpr-max,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
    "learning_rate=0.05,momentum=0.2,n_sample=2048,sample_alpha=0.5,bpreg=1.0,elu_param=0.5,"
    "constrained_embedding=True",
    # RetailRocket-shaped: the spec's RetailRocket parameters (224 units, batch 80).
    "rr-bprmax": "loss=bpr-max,layers=224,batch_size=80,dropout_p_embed=0.5,dropout_p_hidden=0.05,"
    "learning_rate=0.05,momentum=0.4,n_sample=2048,sample_alpha=0.4,bpreg=1.95,elu_param=0.5,"
    "constrained_embedding=True",
    "rr-xe": "loss=cross-entropy,layers=224,batch_size=80,dropout_p_embed=0.5,dropout_p_hidden=0.05,"
    "learning_rate=0.05,momentum=0.4,n_sample=2048,sample_alpha=0.4,logq=1.0,constrained_embedding=True",
}


def training_bytes(params, n_items: int) -> int:
    """Bytes that training keeps: item tables + GRU weights, AdagradM slots, sample cache."""
    d = params.layers[-1]
    table = n_items * (d + 1)  # Wy and By
    if params.embedding_mode not in ("shared", "none"):
        table += n_items * params.embedding
    gru, fan_in = 0, n_items if params.embedding_mode == "none" else (
        params.embedding if params.embedding else d)
    for units in params.layers:
        gru += fan_in * 3 * units + units * 3 * units + 3 * units
        fan_in = units
    slots = 2 if params.momentum else 1
    cache = params.sample_cache_size if params.n_sample else 0
    return 4 * ((table + gru) * (1 + slots) + cache)


def run_one(name: str, data_dir: Path, epochs: int, batch_size: int | None = None,
            max_events: int | None = None) -> dict:
    from tf_gru4rec.data.reading import read_sessions
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.evaluator import Evaluator
    from tf_gru4rec.training.params import parse_params
    from tf_gru4rec.training.trainer import train

    params = parse_params(CONFIGS[name], n_epochs=epochs, seed=1)
    if batch_size:
        params = parse_params(params, batch_size=batch_size)
    clicks, test = read_sessions(data_dir / "train_full.tsv"), read_sessions(data_dir / "test.tsv")
    if max_events:  # whole sessions, up to the one holding click max_events (test too)
        first = lambda df: df[df["SessionId"].isin(df["SessionId"].iloc[:max_events].unique())]  # noqa: E731
        clicks, test = first(clicks), first(test)
    train_data = SessionData.from_frame(clicks)
    result = train(train_data, params, verbose=0)
    hist = result.history.history
    steps = params.build_batcher(train_data).schedule.n_steps * epochs
    evaluator = Evaluator(test, result.model.item_map, cutoffs=(20,), batch_size=512)
    first = evaluator(result.model)
    second = evaluator(result.model)
    return {
        "config": f"{name} B={params.batch_size}",
        "params": params.to_string(),
        "epochs": epochs,
        "train_seconds": result.train_seconds,
        "events_per_second": result.events_per_second,
        "minibatches_per_second": steps / result.train_seconds,
        "epoch_seconds": [hist["events"][i] / hist["events_per_second"][i] for i in range(epochs)],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "training_state_mb": training_bytes(params, len(train_data.item_map)) / 2**20,
        "eval_seconds_first": first["eval_seconds"],
        "eval_seconds": second["eval_seconds"],
        "eval_events": second["n_events"],
        "recall@20": second["recall@20"],
        "mrr@20": second["mrr@20"],
    }


def table(rows) -> str:
    head = ("| config | epochs | events/s | vs official PyTorch | mini-batches/s | epoch s | "
            "peak RSS MB | model+slots+cache MB | eval s (first / compiled) | Recall@20 | MRR@20 |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['epochs']} | {r['events_per_second']:,.0f} | "
            f"{r['events_per_second'] / OFFICIAL_PYTORCH_EVENTS_PER_SECOND:.2f}x | "
            f"{r['minibatches_per_second']:,.0f} | "
            f"{' / '.join(f'{s:.1f}' for s in r['epoch_seconds'])} | {r['peak_rss_mb']:,.0f} | "
            f"{r['training_state_mb']:,.0f} | {r['eval_seconds_first']:.1f} / {r['eval_seconds']:.1f} | "
            f"{r['recall@20']:.4f} | {r['mrr@20']:.4f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs per configuration (10: the RSC15 setting, as targets.md measured)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch-sizes", nargs="+", default=["published"], metavar="B",
                        help="'published' (each configuration's own) and/or batch sizes")
    parser.add_argument("--max-events", type=int, help="train and evaluate on the first N clicks only")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.data / "train_full.tsv").exists():
        print(f"skipped: no {args.data}/train_full.tsv (the shared YOOCHOOSE data)", file=sys.stderr)
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.data, args.epochs, args.batch_size, args.max_events)))
        return 0
    rows = []
    runs = [(name, [] if b == "published" else ["--batch-size", b])
            for name in args.configs for b in args.batch_sizes]
    for name, batch in runs:
        print(f"running {name} {' '.join(batch)} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, "--data", str(args.data), "--epochs", str(args.epochs),
             *batch, *(["--max-events", str(args.max_events)] if args.max_events else [])],
            capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name} failed")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
