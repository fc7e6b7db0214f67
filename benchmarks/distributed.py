"""Data-parallel training (tf.distribute): accuracy and speed against one device; prints tables.

    python benchmarks/distributed.py accuracy [--data ../shared/data/yoochoose1_64] [--epochs 10]
    python benchmarks/distributed.py speed [--data ...] [--events 100000] [--runs NAME ...]

accuracy: RSC15 parameters (cross-entropy, logq 1, 100 units, 2048 negatives), one device
with batch 32 against 2 replicas (2 logical CPU devices, MirroredStrategy) with batch 16
each (the same 32 rows per step, the same learning rate), Recall@20 / MRR@20 on the test set.

speed: events/s of one epoch on the first `--events` training clicks for 1 device, 1
replica under MirroredStrategy, 2 devices (MirroredStrategy: 2 GPUs, or 2 logical CPU
devices on a machine without GPUs) and 2 worker processes on 127.0.0.1
(MultiWorkerMirroredStrategy), at the same global batch of 32 (`--runs` picks some; the
first is the base of the ratios); plus the bytes each replica sends per step. Every run is
the library's command line in its own process (`--json`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "yoochoose1_64"
RSC15 = ("loss=cross-entropy,logq=1.0,layers=100,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
         "learning_rate=0.2,momentum=0.2,n_sample=2048,sample_alpha=0.5,constrained_embedding=True,seed=1")
RUNS = {  # name: (per-replica batch, extra command-line arguments, worker processes)
    "1 device": (32, [], 1),
    "1 replica (MirroredStrategy)": (32, ["--distribute", "mirrored", "--replicas", "1"], 1),
    # On a machine with GPUs, MirroredStrategy's devices are GPUs; without, logical CPUs.
    "2 devices (MirroredStrategy)": (16, ["--distribute", "mirrored", "--replicas", "2"], 1),
    "2 workers (127.0.0.1)": (16, ["--distribute", "multi-worker"], 2),
}


def run(name: str, train: Path, test: Path, epochs: int, timeout: int) -> dict:
    batch, extra, workers = RUNS[name]
    command = [sys.executable, "-m", "tf_gru4rec.train", str(train), "--test", str(test), "--json",
               "-q", "--measure", "20", "--params", f"{RSC15},batch_size={batch},n_epochs={epochs}",
               *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if workers == 1:
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        outs = [out]
    else:
        from tf_gru4rec.training.distribute import local_cluster

        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**env, "TF_CONFIG": config})
                 for config in local_cluster(workers)]
        outs = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            outs.append(subprocess.CompletedProcess(command, p.returncode, stdout, stderr))
    for out in outs:
        if out.returncode:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(outs[0].stdout.strip().splitlines()[-1])  # the chief's report
    metrics = result["results"][0] if "results" in result else result
    return {"run": name, "batch": batch, **{k: result.get(k, metrics.get(k)) for k in
            ("train_seconds", "events_per_second")},
            "recall@20": metrics["recall@20"], "mrr@20": metrics["mrr@20"]}


def bytes_per_step(batch: int, n_sample: int = 2048, units: int = 100) -> dict:
    """What one replica contributes to a step's gradient exchange (float32, int32 indices).

    Dense: the GRU's weights, all-reduced. Row-sparse: the item-table rows the step touches
    (Wy rows and By entries of the inputs, targets and negatives; shared embedding), gathered.
    """
    dense = 4 * (units * 3 * units * 2 + 3 * units)
    rows = 2 * batch + n_sample
    sparse = rows * (4 * units + 4) + 2 * 4 * rows
    return {"dense": dense, "sparse": sparse}


def subset(path: Path, events: int, out: Path) -> Path:
    with open(path, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        header = f.readline()
        g.write(header)
        last_session, n = None, 0
        for line in f:
            session = line.split("\t", 1)[0]
            if n >= events and session != last_session:
                break
            g.write(line)
            last_session, n = session, n + 1
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("accuracy", "speed"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per run")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), help="speed: these runs only")
    args = parser.parse_args(argv)
    train, test = args.data / "train_full.tsv", args.data / "test.tsv"
    if not train.exists():
        print(f"skipped: no {train} (the shared YOOCHOOSE data)", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "accuracy":
            names, epochs = ["1 device", "2 devices (MirroredStrategy)"], args.epochs
        else:
            names, epochs = args.runs or list(RUNS), 1
            train = subset(train, args.events, Path(tmp) / "train.tsv")
        rows = []
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.append(run(name, train, test, epochs, args.timeout))
    print(f"\n{args.what}: {epochs} epoch(s) on {train.name if args.what == 'accuracy' else f'the first {args.events:,} clicks'}"
          f" of {args.data.name}, RSC15 parameters, 32 rows per step\n")
    base = rows[0]
    print(f"| run | batch per replica | Recall@20 | MRR@20 | vs {base['run']} (R / M) | train s | events/s | "
          f"events/s vs {base['run']} | bytes sent per replica per step (dense + rows) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sent = bytes_per_step(r["batch"]) if r["run"].startswith("2 ") else None
        print(f"| {r['run']} | {r['batch']} | {r['recall@20']:.4f} | {r['mrr@20']:.4f} | "
              f"{r['recall@20'] / base['recall@20'] - 1:+.2%} / {r['mrr@20'] / base['mrr@20'] - 1:+.2%} | "
              f"{r['train_seconds']:.0f} | {r['events_per_second']:,.0f} | "
              f"{r['events_per_second'] / base['events_per_second']:.2f}x | "
              + (f"{sent['dense'] / 1e3:.0f} kB + {sent['sparse'] / 1e3:.0f} kB |" if sent else "none |"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
