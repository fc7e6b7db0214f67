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
        model.compile(optimizer=AdagradM(...), loss=CrossEntropy(...))
    model.fit(distributed_dataset(strategy, replica_batchers(data, strategy, B, block_steps=100, ...)))

One call of the model's train function runs a block: its steps one after the other, each a
`strategy.run` (every step synchronises the replicas), the step's compute an XLA call.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time

import tensorflow as tf

from tf_gru4rec.data.batcher import SessionParallelBatcher
from tf_gru4rec.data.sampling import sampling_table
from tf_gru4rec.data.sessions import SessionData

STRATEGIES = ("mirrored", "multi-worker")
#: Seconds a worker waits for the others of its cluster to start.
WORKER_TIMEOUT = 300.0


class ClusterError(ValueError):
    """A TF_CONFIG that describes no usable cluster, or a worker that did not start or
    stopped; the message says which."""


def parse_tf_config(text: str) -> tuple[dict[str, list[tuple[str, int]]], tuple[str, int]]:
    """Checks a `TF_CONFIG` value: ({job: [(host, port), ...]}, (task type, task index)).

    Raises:
        ClusterError: in one line, naming the field (what TensorFlow would otherwise
            report with a traceback, or not at all).
    """
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ClusterError(f"TF_CONFIG is not JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not config["cluster"]:
        raise ClusterError('TF_CONFIG needs a "cluster" object, e.g. {"cluster": {"worker": '
                           '["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}')
    cluster = {}
    for job, addresses in config["cluster"].items():
        if not isinstance(addresses, list) or not addresses:
            raise ClusterError(f'TF_CONFIG: cluster "{job}" should be a list of "host:port" '
                               f"addresses, got {json.dumps(addresses)}")
        cluster[job] = [_host_port(job, i, a) for i, a in enumerate(addresses)]
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ClusterError(f'TF_CONFIG: "task" should name this process\'s job among '
                           f"{sorted(cluster)} and its index, got {json.dumps(task)}")
    index = task.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ClusterError(f'TF_CONFIG: task index {json.dumps(index)} is not one of the '
                           f'{len(cluster[task["type"]])} "{task["type"]}" address(es)')
    return cluster, (task["type"], index)


def _host_port(job: str, index: int, address) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f'TF_CONFIG: {job} {index} address {json.dumps(address)} should be '
                           '"host:port" with a port number')
    return host.strip("[]"), int(port)


def _accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_peers(cluster: dict, task: tuple[str, int], timeout: float = WORKER_TIMEOUT,
                   log=None, poll: float = 0.5) -> None:
    """Waits until every other task of `cluster` accepts connections on its port.

    TensorFlow's own wait (in `MultiWorkerMirroredStrategy()`) has no bound, holds the
    GIL and ignores SIGTERM and Ctrl-C. So each worker first listens on its own port
    itself, to be seen by the others, until it has seen them all (a peer's TensorFlow
    server counts too); then the strategy's wait is short. `log` gets a "waiting for
    worker ..." line at once and every 30 s.

    Raises:
        ClusterError: some task did not answer within `timeout` seconds.
    """
    host, port = cluster[task[0]][task[1]]
    peers = {f"{job} {i} ({h}:{p})": (h, p) for job, addresses in cluster.items()
             for i, (h, p) in enumerate(addresses) if (job, i) != task}
    deadline = time.monotonic() + timeout
    next_log = time.monotonic()
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("", port))
            listener.listen(64)
        except OSError as error:
            raise ClusterError(f"cannot listen on port {port} of this worker ({task[0]} {task[1]}): "
                               f"{error.strerror}") from None
        while peers:
            peers = {name: address for name, address in peers.items() if not _accepts(*address)}
            if not peers:
                break
            now = time.monotonic()
            if now >= deadline:
                raise ClusterError(f"{', '.join(peers)} did not start within {timeout:g} s "
                                   "(--worker-timeout); start the same command there with its TF_CONFIG")
            if log and now >= next_log:
                log(f"waiting for {', '.join(peers)} (up to {deadline - now:.0f} s more) ...")
                next_log = now + 30
            time.sleep(poll)


def make_strategy(name: str, replicas: int | None = None, worker_timeout: float = WORKER_TIMEOUT,
                  log=None) -> tf.distribute.Strategy:
    """A strategy by name; create it before any other TensorFlow work of the program.

    Args:
        name: 'mirrored' (the GPUs of this machine) or 'multi-worker' (one replica per
            worker process, the cluster described by the `TF_CONFIG` environment variable).
        replicas: 'mirrored' only: use this many devices. On a machine without GPUs the
            CPU is split into this many logical devices (to try distribution out; it does
            not add compute).
        worker_timeout: 'multi-worker' only: seconds to wait for every worker of the
            cluster to start (`wait_for_peers`).
        log: 'multi-worker' only: called with each "waiting for worker ..." line.

    Raises:
        ClusterError: a malformed TF_CONFIG, or a worker that did not start in time.
    """
    if name == "multi-worker":
        if replicas is not None:
            raise ValueError("--replicas is for 'mirrored'; multi-worker runs one replica per worker")
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("multi-worker training needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's index)")
        cluster, task = parse_tf_config(os.environ["TF_CONFIG"])
        wait_for_peers(cluster, task, worker_timeout, log)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # TensorFlow's preemption notifier catches SIGTERM and only records it: restore the
        # default, so that `kill` stops a worker (its peers then report it gone).
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return strategy
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


def worker_failure(error: BaseException) -> str | None:
    """The one-line message for an error that means another worker of a multi-worker run
    stopped (killed, crashed, unreachable), else None.

    TensorFlow raises these from the collective all-reduce, as "Graph execution error:"
    followed by a trace, with the tasks that stopped sending heartbeats in the text."""
    if not isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError,
                              tf.errors.DeadlineExceededError)):
        return None
    lost = sorted(set(re.findall(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)", str(error).split("unhealthy", 1)[-1])))
    who = ", ".join(f"{job} {task}" for job, task in lost) or "another worker"
    return (f"{who} stopped during training ({type(error).__name__}); restart every worker "
            "(with --checkpoint-dir they continue from the last completed epoch)")


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def oversubscription_warning(strategy: tf.distribute.Strategy) -> str | None:
    """A warning when the strategy's replicas are more logical CPU devices than cores
    (they then take turns: slower than one device), else None."""
    devices = strategy.extended.worker_devices
    cores = usable_cores()
    if len(devices) > cores and all("CPU" in d.upper() for d in devices):
        return (f"warning: {len(devices)} logical CPU devices on {cores} core(s): the replicas take "
                "turns, so this is slower than one device (a functional check, not a speed-up)")
    return None


def replica_batchers(data: SessionData, strategy: tf.distribute.Strategy, batch_size: int,
                     n_sample: int = 2048, sample_alpha: float = 0.5,
                     sample_cache_size: int = 10_000_000, inputs_in_rows: bool = True,
                     seed: int | None = None, block_steps: int = 1) -> list[SessionParallelBatcher]:
    """One batcher per replica of `strategy` (all of them, so every worker agrees on the
    epoch length): blocks of `block_steps` steps (one call of the model's train function
    runs a block, one synchronised step at a time), padded with inactive steps to the
    longest shard.

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
            data, batch_size, n_sample=n_sample, sample_alpha=sample_alpha, block_steps=block_steps,
            sample_cache_size=sample_cache_size, inputs_in_rows=inputs_in_rows,
            seed=0 if seed is None else seed, shard=(r, count), sampling_table=table)
        for r in range(count)
    ]
    steps = max(b.n_steps for b in batchers)
    for b in batchers:
        b.n_steps = steps
    return batchers


def distributed_dataset(strategy: tf.distribute.Strategy, batchers, prefetch: int = 8):
    """The replicas' blocks as a distributed dataset for `model.fit`.

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

