"""Item features benchmark: GRU4Rec with and without item features, warm and cold-start.

    python benchmarks/item_features.py [--data amazon_beauty ml-100k] [--epochs N] [--params K=V,...]

For each data set of ../shared/data (beside the repository; a missing one is skipped):

* warm: leave-one-out (train on every sequence but its last item, rank the last item
  against the full catalogue, conservative ties): GRU4Rec without and with features, the
  same parameters, plus Pop. HR@10 (= Recall@10 with one target), NDCG@10, Recall@20, MRR@20.
* cold: a seeded 10% of the items is hidden from training (all their events removed from
  the training sequences, their features kept); evaluated on the test sequences whose last
  item is hidden: the feature model, the content baseline `FeatureOverlap`, and the id-only
  model (0 by construction: a hidden item is not in its catalogue).
* training events/s with and without features (model.fit, compilation included).

The parameters are the same for both models and NOT tuned (see the printed line). Not run
by the tests (minutes per data set on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PARAMS = ("loss=cross-entropy,layers=64,batch_size=64,n_sample=512,sample_alpha=0.5,learning_rate=0.05,"
          "momentum=0.1,dropout_p_hidden=0.1,seed=1")
CUTS = (10, 20)


def leave_one_out(sessions: pd.DataFrame):
    """(training rows: every sequence but its last item, the full sequences as test)."""
    last = sessions.groupby("SessionId")["Time"].transform("max") == sessions["Time"]
    return sessions[~last], sessions


def metrics(result: dict) -> dict:
    return {"HR@10": result["recall@10"], "NDCG@10": result["ndcg@10"],
            "Recall@20": result["recall@20"], "MRR@20": result["mrr@20"], "events": result["n_events"]}


def run(name: str, epochs: int, params: str) -> list[tuple]:
    from tf_gru4rec.data.item_features import read_item_features
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.baselines import FeatureOverlap, Pop, evaluate_baseline
    from tf_gru4rec.evaluation.evaluator import evaluate
    from tf_gru4rec.training.trainer import train

    folder = SHARED / name
    sessions = pd.read_csv(folder / "sessions.tsv", sep="\t")
    columns = ["attributes"] if name == "amazon_beauty" else ["year", "genres"]
    # ml-100k: year as categorical, 2 of its cells are "unkonwn" (a numeric encoding refuses them)
    encodings = {"attributes": "multi"} if name == "amazon_beauty" else {"year": "categorical", "genres": "multi"}
    features = read_item_features(folder / "items.tsv", columns, encodings)
    params = f"{params},n_epochs={epochs}"
    rows = []
    train_rows, test_rows = leave_one_out(sessions)
    options = dict(cutoffs=CUTS, protocol="last")
    plain = train(train_rows, params, verbose=0)
    featured = train(train_rows, params, verbose=0, item_features=features)
    rows.append((name, "warm", "GRU4Rec (ids)", metrics(evaluate(plain.model, test_rows, **options)),
                 plain.events_per_second))
    rows.append((name, "warm", "GRU4Rec + features", metrics(evaluate(featured.model, test_rows, **options)),
                 featured.events_per_second))
    data = SessionData.from_frame(train_rows)
    rows.append((name, "warm", "Pop", metrics(evaluate_baseline(Pop().fit(data), test_rows, **options)), None))
    # cold: hide 10% of the items from training
    items = np.unique(sessions["ItemId"])
    hidden = set(np.random.default_rng(1).choice(items, len(items) // 10, replace=False).tolist())
    cold_train = train_rows[~train_rows["ItemId"].isin(hidden)]
    last = test_rows.groupby("SessionId")["Time"].transform("max") == test_rows["Time"]
    targets = set(test_rows.loc[last & test_rows["ItemId"].isin(hidden), "SessionId"])
    cold_test = test_rows[test_rows["SessionId"].isin(targets)]
    cold_featured = train(cold_train, params, verbose=0, item_features=features).model
    rows.append((name, "cold", "GRU4Rec + features", metrics(evaluate(cold_featured, cold_test, **options)), None))
    cold_data = SessionData.from_frame(cold_train)
    overlap = FeatureOverlap(features.align(cold_data.item_map).features).fit(cold_data)
    rows.append((name, "cold", "FeatureOverlap", metrics(evaluate_baseline(overlap, cold_test, **options)), None))
    rows.append((name, "cold", "GRU4Rec (ids)", {"HR@10": 0.0, "NDCG@10": 0.0, "Recall@20": 0.0, "MRR@20": 0.0,
                                                 "events": 0}, None))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["amazon_beauty", "ml-100k"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--params", default=PARAMS)
    args = parser.parse_args(argv)
    print(f"parameters (both models, not tuned): {args.params},n_epochs={args.epochs}")
    print("| data | setting | model | HR@10 | NDCG@10 | Recall@20 | MRR@20 | test events | train events/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.data:
        if not (SHARED / name).is_dir():
            print(f"{SHARED / name}: not found, skipped", file=sys.stderr)
            continue
        for data, setting, model, m, speed in run(name, args.epochs, args.params):
            cells = " | ".join(f"{m[k]:.4f}" for k in ("HR@10", "NDCG@10", "Recall@20", "MRR@20"))
            speed_cell = "" if speed is None else f"{speed:,.0f}"
            print(f"| {data} | {setting} | {model} | {cells} | {m['events']:,} | {speed_cell} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
