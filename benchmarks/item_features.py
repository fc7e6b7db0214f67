"""Item features benchmark: GRU4Rec with and without item features, warm and cold-start.

    python benchmarks/item_features.py [--data amazon_beauty ml-100k] [--epochs N] [--trials N]
        [--id-dropout P] [--params K=V,...]

For each data set of ../shared/data (beside the repository; a missing one is skipped):

* tuning: each GRU4Rec variant gets `--trials` Optuna trials (TPE, seed 0; the library's
  `tune.objective`) over learning_rate, momentum and dropout_p_hidden, maximising
  Recall@20 on a validation split of the training rows (leave-one-out again: train on all
  but the last two items of each sequence, validate on the second to last). The other
  parameters are `--params`, the same for all. The test items are never seen in tuning.
* warm: leave-one-out (train on every sequence but its last item, rank the last item
  against the full catalogue, conservative ties): GRU4Rec without features, with features
  (id_dropout=0) and with features and id dropout (`--id-dropout`), plus Pop and item-kNN.
  HR@10 (= Recall@10 with one target), NDCG@10, Recall@20, MRR@20.
* cold: a seeded 10% of the items is hidden from training (all their events removed from
  the training sequences, their features kept); evaluated on the test sequences whose last
  item is hidden: the two feature models, the content baseline `FeatureOverlap`, and the
  id-only model (0 by construction: a hidden item is not in its catalogue, every such event
  a miss).
* training events/s of the warm runs (model.fit, compilation included) and the training
  memory estimate (`memory.training_bytes`, without evaluation).

Not run by the tests (about 20 minutes per data set on 2 CPU cores with the defaults).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PARAMS = "loss=cross-entropy,layers=64,batch_size=64,n_sample=512,sample_alpha=0.5,seed=1"
SPACE = {"learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
         "momentum": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
         "dropout_p_hidden": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1}}
UNTUNED = "learning_rate=0.05,momentum=0.1,dropout_p_hidden=0.1"  # with --trials 0
CUTS = (10, 20)
COLUMNS = ("HR@10", "NDCG@10", "Recall@20", "MRR@20")


def leave_one_out(sessions: pd.DataFrame):
    """(training rows: every sequence but its last item, the full sequences as test)."""
    last = sessions.groupby("SessionId")["Time"].transform("max") == sessions["Time"]
    return sessions[~last], sessions


def metrics(result: dict) -> dict:
    return {"HR@10": result["recall@10"], "NDCG@10": result["ndcg@10"],
            "Recall@20": result["recall@20"], "MRR@20": result["mrr@20"], "events": result["n_events"]}


def tuned(train_rows, fixed: str, trials: int, features) -> str:
    """`fixed` plus the best learning_rate, momentum and dropout of `trials` Optuna trials
    on a leave-one-out validation split of `train_rows` (Recall@20)."""
    if not trials:
        return f"{fixed},{UNTUNED}"
    import optuna

    from tf_gru4rec.training.tune import objective, to_params_string

    fit_rows, valid_rows = leave_one_out(train_rows)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective(fit_rows, valid_rows, SPACE, fixed, "recall", 20, protocol="last",
                             item_features=features), n_trials=trials)
    best = {k: round(v, 4) if isinstance(v, float) else v for k, v in study.best_params.items()}
    return f"{fixed},{to_params_string(best)}"


def memory_mib(params: str, n_items: int, features=None) -> float:
    from tf_gru4rec.system.memory import training_bytes
    from tf_gru4rec.training.params import parse_params

    parts = training_bytes(n_items, parse_params(params), features=features)
    return sum(v for k, v in parts.items() if k != "runtime") / 2**20


def run(name: str, epochs: int, fixed: str, trials: int, id_dropout: float):
    from tf_gru4rec.data.item_features import read_item_features
    from tf_gru4rec.data.sessions import SessionData
    from tf_gru4rec.evaluation.baselines import FeatureOverlap, ItemKNN, Pop, evaluate_baseline
    from tf_gru4rec.evaluation.evaluator import evaluate
    from tf_gru4rec.training.trainer import train

    folder = SHARED / name
    sessions = pd.read_csv(folder / "sessions.tsv", sep="\t")
    columns = ["attributes"] if name == "amazon_beauty" else ["year", "genres"]
    # ml-100k: year as categorical, 2 of its cells are "unkonwn" (a numeric encoding refuses them)
    encodings = {"attributes": "multi"} if name == "amazon_beauty" else {"year": "categorical", "genres": "multi"}
    features = read_item_features(folder / "items.tsv", columns, encodings)
    train_rows, test_rows = leave_one_out(sessions)
    fixed = f"{fixed},n_epochs={epochs}"
    plain_params = tuned(train_rows, fixed, trials, None)
    feature_params = tuned(train_rows, fixed, trials, features)
    dropout_params = f"{feature_params},id_dropout={id_dropout}"
    print(f"{name}: ids: {plain_params}\n{name}: features: {feature_params} (and id_dropout={id_dropout})",
          file=sys.stderr, flush=True)
    options = dict(cutoffs=CUTS, protocol="last")
    rows = []
    n_items = SessionData.from_frame(train_rows).item_map.ids.size
    featured_items = features.align(SessionData.from_frame(train_rows).item_map).features
    variants = [("GRU4Rec (ids)", plain_params, None),
                ("GRU4Rec + features", feature_params, features),
                (f"GRU4Rec + features, id_dropout={id_dropout}", dropout_params, features)]
    for label, params, table in variants:
        result = train(train_rows, params, verbose=0, item_features=table)
        mib = memory_mib(params, len(featured_items) if table else n_items,
                         featured_items.shape if table else None)
        rows.append((name, "warm", label, metrics(evaluate(result.model, test_rows, **options)),
                     result.events_per_second, mib))
    data = SessionData.from_frame(train_rows)
    for baseline in (Pop(), ItemKNN()):
        rows.append((name, "warm", baseline.name,
                     metrics(evaluate_baseline(baseline.fit(data), test_rows, **options)), None, None))
    # cold: hide 10% of the items from training
    items = np.unique(sessions["ItemId"])
    hidden = set(np.random.default_rng(1).choice(items, len(items) // 10, replace=False).tolist())
    cold_train = train_rows[~train_rows["ItemId"].isin(hidden)]
    last = test_rows.groupby("SessionId")["Time"].transform("max") == test_rows["Time"]
    targets = set(test_rows.loc[last & test_rows["ItemId"].isin(hidden), "SessionId"])
    cold_test = test_rows[test_rows["SessionId"].isin(targets)]
    for label, params, table in variants[1:]:
        model = train(cold_train, params, verbose=0, item_features=table).model
        rows.append((name, "cold", label, metrics(evaluate(model, cold_test, **options)), None, None))
    cold_data = SessionData.from_frame(cold_train)
    overlap = FeatureOverlap(features.align(cold_data.item_map).features).fit(cold_data)
    rows.append((name, "cold", "FeatureOverlap", metrics(evaluate_baseline(overlap, cold_test, **options)),
                 None, None))
    rows.append((name, "cold", "GRU4Rec (ids)", {**dict.fromkeys(COLUMNS, 0.0), "events": len(targets)},
                 None, None))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["amazon_beauty", "ml-100k"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=6, help="Optuna trials per variant (0: untuned)")
    parser.add_argument("--id-dropout", type=float, default=0.5)
    parser.add_argument("--params", default=PARAMS, help="parameters every variant shares")
    args = parser.parse_args(argv)
    print(f"shared parameters: {args.params},n_epochs={args.epochs}; {args.trials} Optuna trials per variant")
    print("| data | setting | model | HR@10 | NDCG@10 | Recall@20 | MRR@20 | test events | train events/s "
          "| memory MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.data:
        if not (SHARED / name).is_dir():
            print(f"{SHARED / name}: not found, skipped", file=sys.stderr)
            continue
        for data, setting, model, m, speed, mib in run(name, args.epochs, args.params, args.trials, args.id_dropout):
            cells = " | ".join(f"{m[k]:.4f}" for k in COLUMNS)
            speed_cell = "" if speed is None else f"{speed:,.0f}"
            mib_cell = "" if mib is None else f"{mib:,.1f}"
            print(f"| {data} | {setting} | {model} | {cells} | {m['events']:,} | {speed_cell} | {mib_cell} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
