"""Accuracy benchmark: GRU4Rec with each of its five losses against Pop and item-kNN.

    python benchmarks/accuracy.py [--data DIR] [--epochs N] [--losses cross-entropy bpr-max ...]
                                  [--out results.json] [--seed 1]

Trains on DIR/train_full.tsv, evaluates on DIR/test.tsv (next-item prediction, ALL training
items ranked, conservative ties; unknown test items skipped) and prints a Markdown table in
the style of the papers' Table 2: Recall@20, MRR@20, their change relative to item-kNN,
training seconds (model.fit, compilation included) and training events/s. DIR defaults
to ../shared/data/yoochoose1_64 (beside the repository); without it the script says so
and exits 0. Not run by the tests (about 10 minutes per loss on 2 CPU cores).

Parameters (shared embedding unless noted; 10 epochs unless --epochs):
- cross-entropy: the published RSC15 setting (docs/gru4rec-algorithm.md, section 9):
  layers=100, batch_size=32, dropout 0.0 / 0.4, learning_rate=0.2, momentum=0.2,
  n_sample=2048, sample_alpha=0.5, logq=1.
- bpr-max: the RSC15 architecture with the learning rate, momentum, bpreg and ELU of the
  published BPR-max rows (lr 0.05, momentum 0.15-0.4, bpreg 0.9-1.95, elu 0.5-1):
  dropout 0.0 / 0.2, learning_rate=0.05, momentum=0.2, n_sample=2048, sample_alpha=0.5,
  bpreg=1.0, elu_param=0.5.
- top1-max: as bpr-max (without bpreg / elu_param).
- bpr, top1: the original losses as in the ICLR 2016 paper (its Table 3 RSC15 settings:
  batch 50, mini-batch negatives only, one-hot input): bpr dropout 0.2, lr 0.05,
  momentum 0.2; top1 dropout 0.5, lr 0.01, momentum 0.0; 100 units.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "yoochoose1_64"
COMMON = "layers=100,dropout_p_embed=0.0,constrained_embedding=True,n_epochs=10"
LOSS_PARAMS = {
    "cross-entropy": f"loss=cross-entropy,{COMMON},batch_size=32,dropout_p_hidden=0.4,"
                     "learning_rate=0.2,momentum=0.2,n_sample=2048,sample_alpha=0.5,logq=1",
    "bpr-max": f"loss=bpr-max,{COMMON},batch_size=32,dropout_p_hidden=0.2,learning_rate=0.05,"
               "momentum=0.2,n_sample=2048,sample_alpha=0.5,bpreg=1.0,elu_param=0.5",
    "top1-max": f"loss=top1-max,{COMMON},batch_size=32,dropout_p_hidden=0.2,learning_rate=0.05,"
                "momentum=0.2,n_sample=2048,sample_alpha=0.5",
    "bpr": f"loss=bpr,{COMMON},constrained_embedding=False,batch_size=50,dropout_p_hidden=0.2,"
           "learning_rate=0.05,momentum=0.2,n_sample=0",
    "top1": f"loss=top1,{COMMON},constrained_embedding=False,batch_size=50,dropout_p_hidden=0.5,"
            "learning_rate=0.01,momentum=0.0,n_sample=0",
}
CUTOFFS = (1, 5, 10, 20)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with train_full.tsv and test.tsv (../shared/data/yoochoose1_64)")
    parser.add_argument("--epochs", type=int, default=None, help="override n_epochs (10)")
    parser.add_argument("--losses", nargs="+", default=list(LOSS_PARAMS), choices=list(LOSS_PARAMS))
    parser.add_argument("--seed", type=int, default=1, help="seed of every training run (1)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    return parser.parse_args(argv)


def run_gru4rec(loss, train, test, args):
    from tf_gru4rec.evaluation import evaluator as evaluation
    from tf_gru4rec.training import trainer
    from tf_gru4rec.training.params import parse_params

    params = parse_params(LOSS_PARAMS[loss] + f",seed={args.seed}"
                          + (f",n_epochs={args.epochs}" if args.epochs is not None else ""))
    print(f"== GRU4Rec {loss}: {params.to_string()}", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints epoch lines to stdout
        result = trainer.train(train, params, verbose=2)
    metrics = evaluation.evaluate(result.model, test, CUTOFFS, "conservative")
    return {**metrics, "params": params.to_string(), "train_seconds": result.train_seconds,
            "events_per_second": result.events_per_second}


def run_baseline(name, train, test):
    from tf_gru4rec.evaluation import baselines

    model = baselines.BASELINES[name]()
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    return {**baselines.evaluate_baseline(model, test, CUTOFFS, "conservative"), "train_seconds": seconds}


def table(results: dict) -> str:
    """Table 2 of the papers: Recall@20 / MRR@20 and their change relative to item-kNN."""
    knn = results.get("Item-kNN")
    lines = ["| method | Recall@20 | MRR@20 | Recall@20 vs item-kNN | MRR@20 vs item-kNN | train s | events/s |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        change = [f"{(r[m] / knn[m] - 1) * 100:+.1f}%" if knn else "-" for m in ("recall@20", "mrr@20")]
        eps = f"{r['events_per_second']:,.0f}" if "events_per_second" in r else "-"
        lines.append(f"| {name} | {r['recall@20']:.4f} | {r['mrr@20']:.4f} | {change[0]} | {change[1]} "
                     f"| {r['train_seconds']:.1f} | {eps} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    train_file, test_file = args.data / "train_full.tsv", args.data / "test.tsv"
    if not (train_file.exists() and test_file.exists()):
        print(f"skipped: {args.data} has no train_full.tsv / test.tsv (give --data DIR)", file=sys.stderr)
        return 0
    from tf_gru4rec.data.reading import read_sessions
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.evaluator import as_session_data

    train = SessionData.from_frame(read_sessions(train_file), source=str(train_file))
    test = as_session_data(read_sessions(test_file), train.item_map, source=str(test_file))
    print(f"{args.data}: {train.n_events} training clicks, {len(train.item_map)} items; "
          f"{test.n_events - test.n_sessions} test events", file=sys.stderr, flush=True)
    results = {"Pop": run_baseline("pop", train, test), "Item-kNN": run_baseline("itemknn", train, test)}
    for loss in args.losses:
        results[f"GRU4Rec {loss}"] = run_gru4rec(loss, train, test, args)
        print(table(results), file=sys.stderr, flush=True)  # partial results as they come
    print(table(results))
    if args.out:
        import tensorflow as tf

        machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__}
        args.out.write_text(json.dumps({"data": str(args.data), "machine": machine, "results": results},
                                       indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
