"""Makes `docs/training_curves.png` from a real training run, read back from TensorBoard.

    python docs/plot_training_curves.py [--data DIR] [--epochs 10] [--params K=V,...]
        [--logdir runs/training_curves] [--out docs/training_curves.png]

Trains GRU4Rec with `keras.callbacks.TensorBoard(update_freq=1)` and the evaluation callback
on the test file, then reads the curves back from the event files (not from the Keras
history): the training loss per epoch and per Keras step, Recall@20 / MRR@20 on the test
sessions after every epoch, and events/s per epoch. Data: `DIR/train_full.tsv` and
`DIR/test.tsv`, by default `../shared/data/rsc15_100k` next to the checkout (a YOOCHOOSE
sample) with the published RSC15 parameters; when that folder is missing, the embedded
synthetic data with the demo parameters (and a note saying so). Prints where the figure came
from (data, parameters, machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "rsc15_100k"
#: The published RSC15 setting (cross-entropy, shared embedding, 100 units, batch 32).
RSC15_PARAMS = ("loss=cross-entropy,logq=1,layers=100,batch_size=32,n_sample=2048,sample_alpha=0.5,"
                "dropout_p_hidden=0.4,learning_rate=0.2,momentum=0.2,seed=42")


def read_scalars(run_dir):
    """{tag: (steps, values)} of the scalar summaries in a TensorBoard run folder."""
    import numpy as np
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import (
        TENSORS,
        EventAccumulator,
    )

    events = EventAccumulator(str(run_dir), size_guidance={TENSORS: 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["tensors"]:
        points = events.Tensors(tag)
        out[tag] = (np.array([e.step for e in points]),
                    np.array([float(tf.make_ndarray(e.tensor_proto)) for e in points]))
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} CPU cores ({cpu}), {platform.system()}"


def load_data(data_dir):
    """(train, test, label, base parameters): the real files if present, else synthetic."""
    from tf_gru4rec import read_sessions
    from tf_gru4rec.cli.common import SYNTHETIC_PARAMS
    from tf_gru4rec.data.synthetic import split_by_time, synthetic_sessions

    train_file, test_file = data_dir / "train_full.tsv", data_dir / "test.tsv"
    if train_file.is_file() and test_file.is_file():
        return read_sessions(train_file), read_sessions(test_file), data_dir.name, RSC15_PARAMS
    print(f"note: no train_full.tsv and test.tsv in {data_dir}: using the embedded synthetic data",
          file=sys.stderr)
    train, test = split_by_time(synthetic_sessions())
    return train, test, "synthetic (embedded default)", SYNTHETIC_PARAMS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with train_full.tsv and test.tsv (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--params", default="", help="k=v,... overriding the default parameters")
    parser.add_argument("--logdir", type=Path, default=REPO / "runs" / "training_curves",
                        help="TensorBoard log dir, emptied first (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "training_curves.png")
    args = parser.parse_args(argv)

    import keras
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    from tf_gru4rec import EvaluationCallback, EventsPerSecond, SessionData, parse_params

    train_df, test_df, label, base = load_data(args.data)
    base = ",".join(p for p in base.split(",") if not p.startswith("n_epochs="))
    spec = ",".join(p for p in (base, f"n_epochs={args.epochs}", args.params) if p)
    params = parse_params(spec)
    keras.utils.set_random_seed(params.seed)
    data = SessionData.from_frame(train_df, source="training data")
    batcher = params.build_batcher(data)
    model = params.build_model(data.item_map)
    model.compile(optimizer=params.build_optimizer(), loss=params.build_loss())
    shutil.rmtree(args.logdir, ignore_errors=True)
    start = time.perf_counter()
    model.fit(batcher.dataset(), epochs=params.n_epochs, shuffle=False, verbose=2, callbacks=[
        EventsPerSecond(),
        EvaluationCallback(test_df, cutoffs=(20,)),
        keras.callbacks.TensorBoard(str(args.logdir), update_freq=1, write_graph=False),
    ])
    seconds = time.perf_counter() - start

    train, valid = read_scalars(args.logdir / "train"), read_scalars(args.logdir / "validation")
    epoch = train["epoch_loss"][0] + 1
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps, batch_loss = train["batch_loss"]
    axes[0].plot(steps / batcher.n_blocks, batch_loss, lw=0.8, alpha=0.6,
                 label=f"per Keras step ({params.block_steps} GRU4Rec steps; epoch mean so far)")
    axes[0].plot(epoch, train["epoch_loss"][1], "o-", label="per epoch")
    axes[0].set_title("training loss (cross-entropy)" if params.loss == "cross-entropy" else
                      f"training loss ({params.loss})")
    axes[0].legend(fontsize=7)
    for tag, name in (("epoch_recall@20", "Recall@20"), ("epoch_mrr@20", "MRR@20")):
        axes[1].plot(valid[tag][0] + 1, valid[tag][1], "o-", label=name)
    axes[1].set_title("test metrics after each epoch")
    axes[1].legend(fontsize=8)
    axes[2].bar(train["epoch_events_per_second"][0] + 1, train["epoch_events_per_second"][1])
    axes[2].set_title("events/s (epoch 1 includes XLA compilation)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xticks(epoch)
        ax.grid(alpha=0.3)
    source = (f"data: {label} ({data.n_events:,} training events, {len(data.item_map):,} items); "
              f"TensorFlow {tf.__version__}; {machine()}")
    fig.suptitle("GRU4Rec training curves, read back from the TensorBoard event files\n"
                 + "\n".join(textwrap.wrap(spec.replace(",", ", "), 190)), fontsize=8, y=0.995)
    fig.text(0.5, 0.005, source, ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)

    recall = valid["epoch_recall@20"][1]
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    print(f"source: {source}")
    print(f"params: {params.to_string()}")
    print(f"trained {params.n_epochs} epochs in {seconds:.0f} s (evaluation included); "
          f"Recall@20 {recall[0]:.4f} after epoch 1, {recall[-1]:.4f} after epoch {len(recall)}; "
          f"median events/s of epochs 2+: {np.median(train['epoch_events_per_second'][1][1:]):,.0f}")
    print(f"TensorBoard logs: {args.logdir} (tensorboard --logdir {args.logdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
