"""Data-parallel training with `tf.distribute`: the strategies, and each replica's data.

Synchronous data parallelism, as GRU4Rec's session-parallel training allows it:

- replica r of R trains its own B session slots on its own shard of the sessions
  (sessions r, r + R, r + 2R, ... in time order), with its own hidden state and resets;
- every step, each replica's gradient is of (its active rows' loss) / (R * B); the dense
  gradients are all-reduced (summed), the row-sparse ones of the item tables are gathered,
  and AdagradM then sums a row's slices and updates it once, identically on every replica;
- a replica whose shard has ended runs inactive steps until the longest shard ends, so all
  replicas run the same number of steps (each step synchronises);
- the extra negatives are shared: every replica's sampler has the same seed and draws the
  same S items each step, so a step is exactly one combined batch of R * B rows with one
  set of S negatives, whose in-batch negatives stay within a replica.

Plain Keras use:

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model = GRU4Rec(item_ids=data.item_map.ids, batch_size=B, ...)
        model.compile(optimizer=AdagradM(...), loss=CrossEntropy(...),
                      steps_per_execution=100)
    model.fit(distributed_dataset(strategy, replica_batchers(data, strategy, B, ...)))
"""

from __future__ import annotations

import json
import os
import socket

import tensorflow as tf

from tf_gru4rec.data import SessionData, SessionParallelBatcher
from tf_gru4rec.sampling import sampling_table

STRATEGIES = ("mirrored", "multi-worker")


def make_strategy(name: str, replicas: int | None = None) -> tf.distribute.Strategy:
    """A strategy by name; create it before any other TensorFlow work of the program.

    Args:
        name: 'mirrored' (the GPUs of this machine) or 'multi-worker' (one replica per
            worker process, the cluster described by the `TF_CONFIG` environment variable).
        replicas: 'mirrored' only: use this many devices. On a machine without GPUs the
            CPU is split into this many logical devices (to try distribution out; it does
            not add compute).
    """
    if name == "multi-worker":
        if replicas is not None:
            raise ValueError("--replicas is for 'mirrored'; multi-worker runs one replica per worker")
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("multi-worker training needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's index)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "mirrored":
        raise ValueError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        count = len(gpus) if replicas is None else replicas
        if not 1 <= count <= len(gpus):
            raise ValueError(f"--replicas {count}: this machine has {len(gpus)} GPU(s)")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(count)])
    count = 1 if replicas is None else replicas
    if count < 1:
        raise ValueError(f"--replicas should be positive. Received: {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    if count > 1:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError as error:  # TensorFlow already initialised its devices
            if len(tf.config.list_logical_devices("CPU")) != count:
                raise ValueError(f"cannot split the CPU into {count} devices now: {error}") from None
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(count)])


def replica_batchers(data: SessionData, strategy: tf.distribute.Strategy, batch_size: int,
                     n_sample: int = 2048, sample_alpha: float = 0.5,
                     sample_cache_size: int = 10_000_000, inputs_in_rows: bool = True,
                     seed: int | None = None) -> list[SessionParallelBatcher]:
    """One batcher per replica of `strategy` (all of them, so every worker agrees on the
    epoch length): blocks of one step, padded with inactive steps to the longest shard.

    The samplers share one seed, so every replica draws the same negatives each step, and
    one sampling table (built once). With `seed` None that seed is 0 (workers cannot agree
    on a random one without talking).
    """
    count = strategy.num_replicas_in_sync
    if data.n_sessions < count:
        raise ValueError(f"{data.n_sessions} training sessions cannot be shared by {count} replicas")
    table = sampling_table(data.support(), sample_alpha) if n_sample > 0 else None
    batchers = [
        SessionParallelBatcher(
            data, batch_size, n_sample=n_sample, sample_alpha=sample_alpha, block_steps=1,
            sample_cache_size=sample_cache_size, inputs_in_rows=inputs_in_rows,
            seed=0 if seed is None else seed, shard=(r, count), sampling_table=table)
        for r in range(count)
    ]
    steps = max(b.n_steps for b in batchers)
    for b in batchers:
        b.n_steps = steps
    return batchers


def distributed_dataset(strategy: tf.distribute.Strategy, batchers, prefetch: int = 8):
    """The replicas' one-step blocks as a distributed dataset for `model.fit`.

    Each input pipeline (one per worker) yields the steps of its local replicas in turn,
    which is how `distribute_datasets_from_function` deals elements out to them.
    """
    if len(batchers) != strategy.num_replicas_in_sync:
        raise ValueError(f"{len(batchers)} batchers for {strategy.num_replicas_in_sync} replicas")

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = len(batchers) // context.num_input_pipelines
        mine = batchers[context.input_pipeline_id * local : (context.input_pipeline_id + 1) * local]

        def steps():
            for blocks in zip(*(b.blocks() for b in mine)):
                yield from blocks

        # No cardinality: Keras would read this pipeline's as the number of (synchronised) steps.
        ds = tf.data.Dataset.from_generator(steps, output_signature=mine[0].element_spec())
        options = tf.data.Options()
        options.autotune.enabled = False  # see SessionParallelBatcher.dataset
        return ds.prefetch(prefetch).with_options(options)

    return strategy.distribute_datasets_from_function(dataset_fn)


def local_cluster(workers: int) -> list[str]:
    """`TF_CONFIG` values for `workers` worker processes on 127.0.0.1 (free ports), one per
    worker in index order: to try multi-worker training on one machine."""
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes the run's files (always, except on non-chief workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())

