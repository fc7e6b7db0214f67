"""Trains the reference data on 2 replicas (2 logical CPU devices, MirroredStrategy) and saves
what `test_distribute.py` compares with the independent reference: run in its own process,
because logical devices must be set before TensorFlow starts.

    python tests/distributed_step.py OUT.npz
    python tests/distributed_step.py --padding OUT.npz   (see `padding_run`)
    python tests/distributed_step.py --both OUT.npz PADDING.npz BLOCKS.npz   (the three runs, one
        process; BLOCKS: `main` with blocks of 3 steps)
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from gru4rec_reference import reference_name, session_data  # this script's folder is on sys.path

from tf_gru4rec.losses import CrossEntropy
from tf_gru4rec.models.gru4rec import GRU4Rec
from tf_gru4rec.optimizers import AdagradM
from tf_gru4rec.training import distribute

REPLICAS, B, S, LAYERS = 2, 2, 3, [5, 4]


def reference_data():
    """Ten sessions of a few items: 5 per replica, so slots reset mid-epoch and one
    replica's shard ends before the other's (it then runs inactive steps)."""
    return session_data([4, 2, 2, 3, 3, 2, 5, 2, 2, 2])


def main(out, strategy=None, block_steps=1):
    strategy = strategy or distribute.make_strategy("mirrored", REPLICAS)
    data = reference_data()
    with strategy.scope():
        model = GRU4Rec(item_ids=data.item_map.ids, layers=LAYERS, batch_size=B,
                        dropout_p_embed=0.25, dropout_p_hidden=0.3, seed=11)
        model.compile(optimizer=AdagradM(0.2, momentum=0.3), loss=CrossEntropy(logq=1.0))
    initial = {w.path: w.numpy() for w in model.trainable_weights}
    # The real masks' uniforms at three (epoch, step) positions, on both replicas.
    masks = [strategy.experimental_local_results(strategy.run(
        lambda p=p: model._dropout_noise(1, B, tf.constant(p)))) for p in ([0, 3], [1, 3], [0, 3])]
    batchers = distribute.replica_batchers(data, strategy, B, n_sample=S, seed=5, block_steps=block_steps)
    steps = batchers[0].n_steps
    recorded = [[] for _ in batchers]
    for r, batcher in enumerate(batchers):  # record the blocks each replica is fed
        blocks = batcher.blocks
        batcher.blocks = lambda blocks=blocks, r=r: (recorded[r].append(b) or b for b in blocks())
    # Uniforms for more steps than the epoch has: a padding step that runs gets some too.
    noise = np.random.default_rng(3).random(
        (REPLICAS, steps + 8, 1, B, model._noise_width)).astype(np.float32)

    def replica_noise(block_steps, batch_size, position):  # replica r's noise of this step
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.gather_nd(noise, [[replica, position[1]]])[0]

    model._dropout_noise = replica_noise
    batch_logs = []  # what callbacks see after each block (Keras averages the replicas' logs)
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batch_logs.append(logs))
    history = model.fit(distribute.distributed_dataset(strategy, batchers), epochs=1, verbose=0,
                        callbacks=[record])
    opt = model.optimizer
    arrays = {"noise": noise, "masks": np.array([[m.numpy() for m in r] for r in masks]), "support": data.support(), "loss": history.history["loss"][0],
              "events": history.history["events"][0],
              "batch_events": [float(logs["events"]) for logs in batch_logs],
              "batch_loss": [float(logs["loss"]) for logs in batch_logs]}
    for w in model.trainable_weights:
        i = opt._get_variable_index(w)
        arrays[f"initial/{w.path}"] = initial[w.path]
        arrays[f"final/{w.path}"] = w.numpy()
        arrays[f"acc/{w.path}"] = opt._accumulators[i].numpy()
        arrays[f"vel/{w.path}"] = opt._velocities[i].numpy()
    for r, component in enumerate(model.train_state.value.values):
        arrays[f"state/{r}"] = component.numpy()
    for r, blocks in enumerate(recorded):
        for key in blocks[0]:
            arrays[f"block/{r}/{key}"] = np.stack([b[key] for b in blocks])
    np.savez(out, **arrays)


def padding_data():
    """Replica 0's sessions (0, 2, 4) are short and hold items 0-2 only; replica 1's (1, 3,
    5) are long, on items 3-5. Replica 0 trains 2 steps (item 0 is an input, then a
    target, so it gets a velocity), then runs 5 steps of padding while replica 1 trains."""
    from tf_gru4rec.data.sessions import SessionData

    sessions = [[0, 1, 0, 2], [3, 4, 5, 3, 4, 5, 3, 4], [1, 2], [4, 5, 4, 5, 3, 4], [2, 1], [5, 3, 4, 5]]
    rows = [(s, item, 10 * s + i) for s, items in enumerate(sessions) for i, item in enumerate(items)]
    return SessionData.from_frame(pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"]))


def padding_run(out, strategy=None):
    """Trains `padding_data` (no extra negatives, momentum 0.5) with a shared, a separate
    and a one-hot input embedding; saves every item table, with its accumulator and
    velocity, after each step ("<embedding>/<table>/<value|acc|vel>" [steps, N, ...]) and
    the blocks each replica was fed ("<embedding>/block/<r>/<key>")."""
    strategy = strategy or distribute.make_strategy("mirrored", REPLICAS)
    data = padding_data()
    arrays = {}
    for embedding in ("shared", 3, "none"):
        with strategy.scope():
            model = GRU4Rec(item_ids=data.item_map.ids, layers=[4], embedding=embedding,
                            batch_size=B, seed=2)
            model.compile(optimizer=AdagradM(0.2, momentum=0.5), loss=CrossEntropy())
        tables = [model.item_table.wy, model.item_table.by] + (
            [model.item_embedding.e] if embedding == 3 else [model.gru.cells[0].wx] if embedding == "none" else [])
        snapshots = []

        def snapshot(batch, logs, tables=tables, snapshots=snapshots, opt=model.optimizer):
            snapshots.append({f"{t.path}/{kind}": v.numpy() for t in tables
                              for kind, v in [("value", t), *opt.slots(t).items()]})

        batchers = distribute.replica_batchers(data, strategy, B, n_sample=0,
                                               inputs_in_rows=embedding == "shared")
        recorded = [[] for _ in batchers]
        for r, batcher in enumerate(batchers):
            blocks = batcher.blocks
            batcher.blocks = lambda blocks=blocks, r=r: (recorded[r].append(b) or b for b in blocks())
        model.fit(distribute.distributed_dataset(strategy, batchers), epochs=1, verbose=0,
                  callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=snapshot)])
        for key in snapshots[0]:
            arrays[f"{embedding}/{reference_name(key)}"] = np.stack([s[key] for s in snapshots])
        for r, blocks in enumerate(recorded):
            for key in ("inputs", "targets", "valid"):
                arrays[f"{embedding}/block/{r}/{key}"] = np.stack([b[key][0] for b in blocks])
    np.savez(out, **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "--both":  # one TensorFlow start-up for the tests
        # One strategy for the runs: a second MirroredStrategy in the same process reuses
        # the first one's collective instance keys (a shape mismatch in the all-reduce).
        both = distribute.make_strategy("mirrored", REPLICAS)
        main(sys.argv[2], both)
        padding_run(sys.argv[3], both)
        main(sys.argv[4], both, block_steps=3)
    else:
        padding_run(sys.argv[2]) if sys.argv[1] == "--padding" else main(sys.argv[1])
