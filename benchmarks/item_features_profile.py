"""Where the item-feature model's training time goes: events/s of the id-only model, the
feature model, and the feature model with AdagradM's sort of unsorted gradient rows skipped
(its updates are then wrong: timing only).

    python benchmarks/item_features_profile.py [--data ml-100k] [--epochs 3] [--repeats 2]

Each variant is trained `--repeats` times in one process, interleaved, on the leave-one-out
training rows of ../shared/data/<data> (see benchmarks/item_features.py), with the shared
parameters of that benchmark and learning_rate=0.05. Events/s include compilation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from item_features import PARAMS, SHARED, leave_one_out  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    import tf_gru4rec.optimizers.adagradm as adagradm
    from tf_gru4rec.data.item_features import read_item_features
    from tf_gru4rec.training.trainer import train

    folder = SHARED / args.data
    sessions = pd.read_csv(folder / "sessions.tsv", sep="\t")
    columns = ["attributes"] if args.data == "amazon_beauty" else ["year", "genres"]
    encodings = {"attributes": "multi"} if args.data == "amazon_beauty" else {"year": "categorical", "genres": "multi"}
    features = read_item_features(folder / "items.tsv", columns, encodings)
    train_rows, _ = leave_one_out(sessions)
    params = f"{PARAMS},learning_rate=0.05,n_epochs={args.epochs}"
    sort = adagradm._sorted_by
    print(f"{args.data}, {params}")
    print("| variant | train events/s |\n|---|---|")
    for _ in range(args.repeats):
        for label, table, skip_sort in [("ids", None, False), ("features", features, False),
                                        ("features, sort skipped (wrong updates)", features, True)]:
            adagradm._sorted_by = (lambda rows, values: (rows, values)) if skip_sort else sort
            result = train(train_rows, params, verbose=0, item_features=table)
            adagradm._sorted_by = sort
            print(f"| {label} | {result.events_per_second:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
