"""Where a synchronised training step's time goes (issue 20, item 1): timings, a profiler
trace summary and controlled micro-benchmarks; see docs/distributed-profile.md.

    python benchmarks/profile_distributed.py time SETTING [--events 20000] [--data DIR]
    python benchmarks/profile_distributed.py profile SETTING [--steps 2] [--logdir DIR]
    python benchmarks/profile_distributed.py micro REPLICAS [--items 37000]
    python benchmarks/profile_distributed.py workers [--profile]   # 2 workers on 127.0.0.1
    python benchmarks/profile_distributed.py input SETTING    # the input pipeline alone

SETTING: plain (one device, 100 steps per XLA call), mirrored1 (MirroredStrategy, one
replica, batch 32), mirrored2 (two logical CPU devices, batch 16 each). `time` trains two
epochs of the first `--events` clicks with the RSC15 parameters (global batch 32) and
reports the second epoch's ms per step (and, under a strategy, the median of the per-call
times). `profile` traces `--steps` calls of the second epoch with tf.profiler and prints
the host trace's time per step by op type and by name scope (read from the .xplane.pb
with the protobuf classes TensorFlow ships; no TensorBoard plugin needed). `micro` times,
in a fresh process with REPLICAS logical CPU devices, the pieces of a step in isolation:
an empty `strategy.run`, a `merge_call`, the all-reduce of the GRU's dense gradients
(one per variable and packed), the gather of the item tables' row-sparse gradients, and
the same gradients densified.

Every figure is a median of repeats; run each command twice (the machine is noisy).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from distributed import DEFAULT_DATA, RSC15, subset  # noqa: E402

SETTINGS = {"plain": (None, None, 32), "mirrored1": ("mirrored", 1, 32),
            "mirrored2": ("mirrored", 2, 16), "worker": ("multi-worker", None, 16)}


def _setup(setting, data_dir, events):
    import tensorflow as tf  # noqa: F401

    from tf_gru4rec.training import distribute as dist
    distribute, replicas, batch = SETTINGS[setting]
    strategy = dist.make_strategy(distribute, replicas) if distribute else None
    from tf_gru4rec.data.reading import read_sessions
    from tf_gru4rec.data.sessions import SessionData
    tmp = tempfile.mkdtemp()
    path = subset(Path(data_dir) / "train_full.tsv", events, Path(tmp) / "train.tsv")
    data = SessionData.from_frame(read_sessions(path))
    params = f"{RSC15},batch_size={batch},n_epochs=2"
    return strategy, data, params


class Timer:
    """Keras callback: per-call times of the last epoch, optional profiling of some calls."""

    def __new__(cls, *args, **kwargs):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self, profile_steps=0, logdir=None, skip=20):
                super().__init__()
                self.profile_steps, self.logdir, self.skip = profile_steps, logdir, skip
                self.calls, self.epoch_seconds, self.epoch = [], None, -1
                self.profiling = False

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch, self.calls, self.t_epoch = epoch, [], time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.epoch_seconds = time.perf_counter() - self.t_epoch

            def on_train_batch_begin(self, batch, logs=None):
                import tensorflow as tf
                if self.epoch == 1 and self.profile_steps and batch == self.skip:
                    tf.profiler.experimental.start(self.logdir)
                    self.profiling = True
                self.t = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                import tensorflow as tf
                self.calls.append(time.perf_counter() - self.t)
                if self.profiling and batch == self.skip + self.profile_steps - 1:
                    tf.profiler.experimental.stop()
                    self.profiling = False

        return _Timer(*args, **kwargs)


def time_setting(setting, data_dir, events, profile_steps=0, logdir=None):
    strategy, data, params = _setup(setting, data_dir, events)
    from tf_gru4rec.training.params import parse_params
    from tf_gru4rec.training.trainer import train
    p = parse_params(params)
    skip = 1  # the second call of the second epoch: tracing and compilation are done
    timer = Timer(profile_steps, logdir, skip=skip)
    train(data, params, callbacks=[timer], verbose=0, distribute=strategy)
    if strategy:  # the longest shard's steps (a call runs a block of them)
        from tf_gru4rec.training import distribute
        steps = distribute.replica_batchers(data, strategy, p.batch_size, n_sample=p.n_sample,
                                            sample_alpha=p.sample_alpha)[0].n_steps
    else:
        steps = p.build_batcher(data).n_steps
    out = {"setting": setting, "steps_per_epoch": steps, "calls": len(timer.calls),
           "epoch2_s": timer.epoch_seconds, "ms_per_step": 1e3 * timer.epoch_seconds / steps,
           "median_call_ms": 1e3 * statistics.median(timer.calls),
           "steps_per_call": steps / len(timer.calls)}
    out["median_ms_per_step"] = out["median_call_ms"] / out["steps_per_call"]
    return out


def input_only(setting, data_dir, events):
    """Seconds per element of the training input alone: iterating the dataset `train`
    builds for `setting` (one element per step under a strategy, per 100 steps on one
    device), with nothing consuming it; each replica's element fetched to the host."""
    strategy, data, params = _setup(setting, data_dir, events)
    from tf_gru4rec.training import distribute as dist
    from tf_gru4rec.training.params import parse_params
    p = parse_params(params)
    out = {"setting": setting}
    for attempt in range(2):
        if strategy:
            batchers = dist.replica_batchers(data, strategy, p.batch_size, n_sample=p.n_sample,
                                             sample_alpha=p.sample_alpha, seed=p.seed)
            ds = dist.distributed_dataset(strategy, batchers)
        else:
            ds = p.build_batcher(data).dataset()
        t, n = time.perf_counter(), 0
        for element in ds:
            n += 1
        out[f"run{attempt}"] = {"elements": n, "ms_per_element": 1e3 * (time.perf_counter() - t) / n}
    return out


# ----- reading the profiler's trace ------------------------------------------------------------
def host_planes(logdir):
    """(host CPU plane, event id -> name) of every `.xplane.pb` under `logdir`, with the file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    for f in sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)):
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(f).read_bytes())
        for plane in space.planes:
            if plane.name.startswith("/host:CPU"):
                yield f, plane, {k: m.name for k, m in plane.event_metadata.items()}


def summarise_trace(logdir, calls, top=25):
    result = {}
    for f, plane, names in host_planes(logdir):
        by_name = collections.Counter()
        count = collections.Counter()
        per_line = collections.Counter()
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                by_name[name] += ev.duration_ps
                count[name] += 1
                per_line[line.name] += ev.duration_ps
        result[f"{Path(f).name}:{plane.name}"] = {
            "top_events_ms_per_step": [
                (n, round(d / 1e9 / calls, 3), round(count[n] / calls, 1))
                for n, d in by_name.most_common(top)],
            "lines": {k: round(v / 1e9 / calls, 3) for k, v in per_line.most_common(12)},
        }
    return result or {"error": f"no .xplane.pb under {logdir}"}


def op_types(logdir, calls, top=30):
    """TF op events (`name:type`) of the host plane: ms per step by type and by scope (`calls`: the steps traced)."""
    by_type, by_scope, n_type = collections.Counter(), collections.Counter(), collections.Counter()
    by_category, n_category = collections.Counter(), collections.Counter()
    busy = collections.Counter()
    for _, plane, names in host_planes(logdir):
        for line in plane.lines:
            end = 0  # busy time of the line: the union of its events' intervals
            for ev in sorted(line.events, key=lambda e: e.offset_ps):
                start, stop = ev.offset_ps, ev.offset_ps + ev.duration_ps
                if stop > end:
                    busy[line.name.split("/")[0]] += stop - max(start, end)
                    end = stop
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                if ":" not in name or name.startswith(("Tf", "Executor")):
                    continue
                scope, _, kind = name.rpartition(":")
                by_type[kind] += ev.duration_ps
                n_type[kind] += 1
                parts = scope.split("/")
                by_scope["/".join(parts[:3])] += ev.duration_ps
                if scope.startswith("StatefulPartitionedCall"):  # an op of the step's graph
                    by_category[_category(scope, kind)] += ev.duration_ps
                    n_category[_category(scope, kind)] += 1
    return {"by_type": [(k, round(v / 1e9 / calls, 3), round(n_type[k] / calls, 1))
                        for k, v in by_type.most_common(top)],
            "by_scope": [(k, round(v / 1e9 / calls, 3)) for k, v in by_scope.most_common(top)],
            "graph_ops_by_category": [(k, round(v / 1e9 / calls, 3), round(n_category[k] / calls, 1))
                                      for k, v in by_category.most_common()],
            "busy_ms_per_step_by_thread_kind": {k: round(v / 1e9 / calls, 3) for k, v in busy.most_common()}}


def _category(scope, kind):
    if kind.startswith("Collective"):
        return f"exchange: {kind}"
    if "/adagradm/" in scope or scope.endswith("/adagradm"):
        return "optimizer: update (sort/segment-sum/scatter) and its glue"
    if "gradient_tape" in scope:
        return "local compute: backward"
    if kind in ("ReadVariableOp", "AssignVariableOp", "Identity", "NoOp", "Const"):
        return "variable reads/assigns, identities"
    return "local compute: forward, loss, metrics, other"


# ----- micro-benchmarks -------------------------------------------------------------------------
def micro(replicas, n_items=37_000, repeats=200):
    import tensorflow as tf

    from tf_gru4rec.training import distribute as dist
    strategy = dist.make_strategy("mirrored", replicas)
    # A replica's item-table rows per step: its inputs and targets plus the shared negatives.
    units, rows = 100, 2 * (32 // replicas) + 2048
    dense_shapes = [(units, 3 * units), (units, 3 * units), (3 * units,)]  # the GRU's dense weights: 241,200 bytes
    with strategy.scope():
        dense_vars = [tf.Variable(tf.zeros(s)) for s in dense_shapes]
        table = tf.Variable(tf.zeros([n_items, units]))
        bias = tf.Variable(tf.zeros([n_items, 1]))

    def timed(fn, *args):
        fn(*args)
        fn(*args)  # traced, warm
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            r = fn(*args)
            tf.nest.map_structure(lambda x: x.numpy() if hasattr(x, "numpy") else x,
                                  strategy.experimental_local_results(r) if r is not None else 0)
            ts.append(time.perf_counter() - t)
        return round(1e3 * statistics.median(ts), 3), round(1e3 * min(ts), 3)

    idx = tf.constant([2 * i % n_items for i in range(rows)], tf.int32)  # in range, spread out

    def grads():  # a step's gradients: the 3 dense GRU ones, then Wy's and By's row slices
        return [*(tf.ones(s) for s in dense_shapes),
                tf.IndexedSlices(tf.ones([rows, units]), idx, tf.constant([n_items, units])),
                tf.IndexedSlices(tf.ones([rows, 1]), idx, tf.constant([n_items, 1]))]

    def all_reduce(values):
        return tf.distribute.get_replica_context().all_reduce("sum", values)

    def total(values):  # one scalar of tensors and IndexedSlices, so the results are fetched
        return tf.add_n([tf.reduce_sum(getattr(x, "values", x)) for x in values])

    def merged(s, *g):  # what an optimizer's merge_call does: reduce all, update the dense
        reduced = s.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, list(zip(g, [*dense_vars, table, bias])))
        for v, r in zip(dense_vars, reduced[:3]):
            s.extended.update(v, lambda var, x: var.assign_add(x), args=(r,))
        return tf.constant(1.0)

    # Each piece runs on every replica, one `tf.function` call per timing.
    pieces = {
        "empty strategy.run": lambda: tf.constant(1.0),
        "merge_call": lambda: tf.distribute.get_replica_context().merge_call(lambda s: tf.constant(1.0)),
        "local gradients only": lambda: total(grads()[:4]),
        "dense all_reduce per variable": lambda: total([all_reduce(x) for x in grads()[:3]]),
        "dense all_reduce packed": lambda: total(all_reduce(grads()[:3])),
        "row-sparse gather (IndexedSlices)": lambda: total(all_reduce(grads()[3:])),
        "row-sparse densified then all_reduce":
            lambda: total(all_reduce([tf.convert_to_tensor(x) for x in grads()[3:]])),
        "dense + sparse in one all_reduce":  # a step's exchange: dense sum + row gathers, one call
            lambda: total(all_reduce(grads())),
        "merge_call + batch_reduce_to + dense update":  # one merge_call per step, as an optimizer
            lambda: tf.distribute.get_replica_context().merge_call(merged, args=grads()),
    }

    out = {"replicas": replicas, "rows_per_replica": rows, "items": n_items,
           "dense_bytes": sum(4 * int(tf.reduce_prod(s)) for s in dense_shapes),
           "sparse_bytes": rows * (units + 1) * 4 + 2 * rows * 4}
    for name, piece in pieces.items():
        step = tf.function(lambda piece=piece: strategy.run(piece))
        out[name] = [timed(step), timed(step)]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("time", "profile", "micro", "workers", "input"))
    parser.add_argument("setting", nargs="?", default="mirrored2")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=2, help="profile: calls to trace")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--items", type=int, default=37_000, help="micro: item-table rows")
    args = parser.parse_args(argv)
    if args.what == "micro":
        print(json.dumps(micro(int(args.setting), args.items), indent=1))
        return 0
    if args.what == "workers":
        from tf_gru4rec.training.distribute import local_cluster
        extra = ["--steps", str(args.steps)] if args.profile else []
        what = "profile" if args.profile else "time"
        # Only worker 0 traces (with both tracing, worker 1 died without a message here).
        procs = [subprocess.Popen([sys.executable, __file__, what if i == 0 else "time", "worker",
                                   "--events", str(args.events), "--data", str(args.data),
                                   *(extra if i == 0 else [])],
                                  env={**os.environ, "TF_CONFIG": c}, stdout=subprocess.PIPE, text=True)
                 for i, c in enumerate(local_cluster(2))]
        for i, p in enumerate(procs):
            out, _ = p.communicate()
            print(f"worker {i}:", out.strip().splitlines()[-1] if out.strip() else "(nothing)")
        return 0
    if args.what == "input":
        print(json.dumps(input_only(args.setting, args.data, args.events)))
        return 0
    if args.what == "time":
        print(json.dumps(time_setting(args.setting, args.data, args.events)))
        return 0
    logdir = args.logdir or tempfile.mkdtemp(prefix=f"prof-{args.setting}-")
    calls = args.steps
    result = time_setting(args.setting, args.data, args.events, calls, logdir)
    steps = calls * result["steps_per_call"]  # every setting runs blocks of ~100 steps per call
    summary = {"timing": result, "logdir": logdir, "profiled_calls": calls, "per": "step",
               "ops": op_types(logdir, steps), "trace": summarise_trace(logdir, steps)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
