"""Memory a run needs, estimated before anything is built, so that a run that cannot fit
is refused with one line instead of failing after minutes (or taking the machine down).

The big terms scale with the catalogue: the item tables and their AdagradM slots, the
extra-negative cache, and the evaluation chunk (rows scored against every item at once);
then with the data: the click rows read, the item map, the sessions and their schedules.
Training's own step is [B, 2B + S]-sized and matters only for huge batch sizes. Each of R
data-parallel replicas holds its own tables, slots, step, sampler and cache. On a GPU the
tables, slots, step and evaluation chunk are checked against the GPU's memory, the rest
against the host's.
"""

from __future__ import annotations

import os

FLOAT = 4  # bytes of a float32 / int32
#: TensorFlow's own footprint (runtime, compiled kernels), measured ~0.9 GB on CPU.
RUNTIME_BYTES = 1 << 30
#: Default memory for the evaluation chunk: rows scored against the whole catalogue at once.
EVAL_CHUNK_BYTES = 1 << 30


def eval_batch_size(n_items: int, budget: int = EVAL_CHUNK_BYTES, most: int = 256) -> int:
    """Evaluation rows per chunk whose scores and comparisons fit `budget` (at most `most`):
    256 up to ~350k items, 8 at 10M items."""
    return int(max(1, min(most, budget // _eval_chunk_bytes(1, max(n_items, 1)))))


def _eval_chunk_bytes(rows: int, n_items: int) -> int:
    """Scores of `rows` evaluation rows against every item, and their comparisons."""
    return 3 * rows * n_items * FLOAT


class MemoryEstimateError(ValueError):
    """The run clearly needs more memory than the machine has; the message names the
    biggest part and the setting that drives it."""


#: cgroup v2 and v1: (limit, usage, stat file, its reclaimable page-cache key), under the root.
_CGROUP_FILES = (("memory.max", "memory.current", "memory.stat", "inactive_file"),
                 ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
                  "memory/memory.stat", "total_inactive_file"))


def _read_int(path: str) -> int | None:
    """The integer a one-value file holds; None if absent or not a number (cgroup "max")."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat(path: str, key: str) -> int:
    """A `key value` line's value of a cgroup memory.stat file (0 if absent)."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return int(value)
    except OSError:
        pass
    return 0


def cgroup_headroom(root: str = "/sys/fs/cgroup") -> int | None:
    """What the memory cgroup still lets this process use: its limit less its current use,
    inactive page cache counted free (the kernel reclaims it before an OOM kill, and reading
    a large file fills it); None without a limit."""
    for limit_file, usage_file, stat_file, reclaimable in _CGROUP_FILES:
        limit, usage = _read_int(os.path.join(root, limit_file)), _read_int(os.path.join(root, usage_file))
        if limit is not None and usage is not None:
            free_cache = min(_stat(os.path.join(root, stat_file), reclaimable), usage)
            return max(0, limit - usage + free_cache)
    return None


def available_bytes(meminfo: str = "/proc/meminfo", cgroup: str = "/sys/fs/cgroup") -> int | None:
    """Memory the OS can still give: MemAvailable, and under a cgroup limit at most what the
    cgroup has left (`cgroup_headroom`); None if neither is known."""
    found = None
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except OSError:
        pass
    headroom = cgroup_headroom(cgroup)
    known = [x for x in (found, headroom) if x is not None]
    return min(known) if known else None


def device_available_bytes() -> int | None:
    """GPU memory TensorFlow can still allocate on the GPU with the least (its allocator's
    limit less what it holds), or None without a GPU (or if TensorFlow cannot say)."""
    import tensorflow as tf  # only here: the estimate itself needs no TensorFlow

    if not tf.config.list_physical_devices("GPU"):
        return None
    from tensorflow.python.client import device_lib

    try:
        return min(d.memory_limit - tf.config.experimental.get_memory_info(
            d.name.split("device:")[-1])["current"]  # "/device:GPU:0" -> "GPU:0"
            for d in device_lib.list_local_devices() if d.device_type == "GPU")
    except (ValueError, RuntimeError):  # then the host check alone stands
        return None


#: Parts each data-parallel replica holds its own copy of (mirrored variables, its batcher).
PER_REPLICA = ("item tables", "optimizer slots", "negative cache", "training step", "samplers")
#: Parts in the accelerator's memory when training on GPUs (one replica's on each).
ON_DEVICE = ("item tables", "optimizer slots", "training step", "evaluation chunk")


def training_bytes(n_items: int, params, eval_rows: int = 0, replicas: int = 1,
                   features: tuple[int, int] | None = None) -> dict:
    """Bytes by part for training a GRU4Rec of `params` on `n_items` items (and evaluating
    `eval_rows` rows against the catalogue at once, 0: no evaluation), with `replicas`
    data-parallel replicas in this process (the `PER_REPLICA` parts count once each).
    `features`: (M feature values, L most values of an item) of item features."""
    layers, d = list(params.layers), params.layers[-1]
    n_slots = 2 if params.momentum else 1  # accumulator (+ velocity)
    table_cols = d + 1  # Wy and By
    mode = params.embedding_mode
    if mode == "none":
        table_cols += 3 * layers[0]  # one-hot input: GRU layer 0's input weights are a table
    elif mode != "shared":
        table_cols += int(mode)
    tables = n_items * table_cols * FLOAT
    steps_per_refill = -(-params.sample_cache_size // max(params.n_sample, 1))
    # The cache (int32) plus its refill's temporaries (int32 slots, float64 uniforms, a mask).
    cache = steps_per_refill * params.n_sample * (FLOAT + FLOAT + 8 + 1) if params.n_sample else 0
    B, S = params.batch_size, params.n_sample
    U = 2 * B + S  # item-table rows one step touches
    # Prefetched blocks ([K, B], [K, U] and [K, B + S] tensors) and the step's [B, U]-sized
    # score matrices and gradients.
    step = 5 * params.block_steps * (6 * B + U + 2 * (B + S)) * FLOAT + 6 * B * U * FLOAT
    parts = {
        "item tables": tables * replicas,
        "optimizer slots": tables * n_slots * replicas,
        "negative cache": cache * replicas,
        "training step": step * replicas,
        "evaluation chunk": _eval_chunk_bytes(eval_rows, n_items),
        "runtime": RUNTIME_BYTES,
    }
    if features:
        M, L = features
        width = d + 1 + (int(mode) if isinstance(mode, int) else 0)  # V and b; a separate input V
        # Value tables with their slots, the item -> values table (int32), and a step's
        # gathered [U, L, width] values with their gradient slices.
        parts["feature tables"] = (M * width * (1 + n_slots) + n_items * L + 3 * U * L * width) * FLOAT * replicas
        parts["evaluation chunk"] += eval_rows * (M + n_items) * FLOAT if eval_rows else 0
    return parts


#: Bytes, measured with tracemalloc on 1M items and 3M clicks (rounded up): a click row
#: read (int64 ids, float64 time; a string id adds a str object of 49 + length bytes), an
#: integer id in the item map (the ids and pandas' hash index), a training event (items,
#: offsets, the schedule's slot positions and resets), and per item and replica the
#: batcher's popularity and logQ tables and its sampler's alias table.
ROW_BYTES, ITEM_MAP_BYTES, EVENT_BYTES, SAMPLER_ITEM_BYTES = 24, 24, 18, 40
STR_OBJECT_BYTES = 49


def data_bytes(n_rows: int, n_items: int, replicas: int = 1, id_length: float | None = None) -> dict:
    """Bytes by part of the data structures for `n_rows` clicks on `n_items` items (string
    ids of `id_length` characters on average; None: integer ids) with `replicas` replicas."""
    per_id = 0 if id_length is None else STR_OBJECT_BYTES + id_length
    shards = 1 if replicas == 1 else 2  # the sessions, and the replicas' shards of them
    return {
        "click rows": n_rows * (ROW_BYTES + 2 * per_id),  # session and item ids
        "item map": n_items * (ITEM_MAP_BYTES + per_id),
        "sessions": n_rows * EVENT_BYTES * shards,
        "samplers": n_items * SAMPLER_ITEM_BYTES * replicas,
    }


_DRIVERS = {
    "item tables": "the catalogue size and layers",
    "optimizer slots": "the catalogue size, layers and momentum",
    "negative cache": "sample_cache_size",
    "training step": "batch_size and n_sample",
    "evaluation chunk": "the evaluation batch size (--eval-batch-size)",
    "click rows": "the data (fewer clicks)",
    "item map": "the catalogue size (or the id length)",
    "sessions": "the data (fewer clicks)",
    "samplers": "the catalogue size or the replicas",
}


def _refuse_if_over(parts: dict, available: int | None, where: str) -> None:
    total = sum(parts.values())
    if available is not None and 0.75 * total > available:
        part = max((k for k in parts if k in _DRIVERS), key=parts.get)
        raise MemoryEstimateError(
            f"this run needs about {total / 2**30:.1f} GiB{where} but {available / 2**30:.1f} GiB "
            f"is available; the largest part is the {part} ({parts[part] / 2**30:.1f} GiB): "
            f"reduce {_DRIVERS[part]}"
        )


def check_fits(parts: dict, available: int | None = None, device: int | None = None,
               replicas: int = 1) -> int:
    """Raises `MemoryEstimateError` if the parts clearly exceed the available memory.

    "Clearly": the estimate, less a 25% margin for its own error, is above what the OS
    can give (`available`, default `available_bytes()`). With a GPU (`device`: the memory
    free on it, default `device_available_bytes()`), each of the `replicas` GPUs must hold
    one replica's `ON_DEVICE` parts and the host the rest. Returns the estimated total in
    bytes.
    """
    available = available_bytes() if available is None else available
    device = device_available_bytes() if device is None else device
    if device is None:
        _refuse_if_over(parts, available, "")
    else:
        on_device = {k: v // (replicas if k in PER_REPLICA else 1)
                     for k, v in parts.items() if k in ON_DEVICE}
        _refuse_if_over(on_device, device, " of GPU memory per GPU")
        _refuse_if_over({k: v for k, v in parts.items() if k not in ON_DEVICE}, available, " of host memory")
    return sum(parts.values())


def describe(parts: dict) -> str:
    """One line: total and the parts, in GiB."""
    return f"{sum(parts.values()) / 2**30:.2f} GiB (" + ", ".join(
        f"{k} {v / 2**30:.2f}" for k, v in parts.items() if v) + ")"



#: Default memory one serving request may use (`python -m tf_gru4rec.export --request-memory`).
REQUEST_BYTES = 1 << 30


def request_limits(n_items: int, state_size: int, k: int, d: int, budget: int = REQUEST_BYTES) -> dict:
    """The largest serving request whose tensors fit `budget` bytes, for a model of `n_items`
    items, state width `state_size`, last layer `d` and `k` recommendations per row.

    Returns {"max_rows": request rows, "max_candidates": candidate (or seen) id cells, rows
    x columns}; 0 where not even one fits. A recommending row scores every item: its scores
    and masked scores (float32) and five bool masks (blocked, seen, candidates, allowed,
    found) of N each, plus the GRU step's gates and states (8H), its output (d) and the top-k
    (indices, ids, scores). A candidate cell of `score_items` gathers its output-table row
    (d floats) beside its id, index, score and flag.
    """
    row = n_items * (2 * FLOAT + 5) + (8 * state_size + d) * FLOAT + k * (2 * FLOAT + 2 * 8)
    candidate = (d + 2) * FLOAT + 2 * 8 + 1
    return {"max_rows": int(budget // row), "max_candidates": int(budget // candidate)}
