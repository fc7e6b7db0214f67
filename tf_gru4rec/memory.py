"""Memory a run needs, estimated before anything is built, so that a run that cannot fit
is refused with one line instead of failing after minutes (or taking the machine down).

The big terms scale with the catalogue: the item tables and their AdagradM slots, the
extra-negative cache, and the evaluation chunk (rows scored against every item at once).
Training's own step is [B, 2B + S]-sized and matters only for huge batch sizes.
"""

from __future__ import annotations

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


def available_bytes() -> int | None:
    """Memory the OS can still give (MemAvailable, bounded by a cgroup limit), or None."""
    found = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except OSError:
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and found is not None:
            found = min(found, int(text))
    return found


def training_bytes(n_items: int, params, eval_rows: int = 0) -> dict:
    """Bytes by part for training a GRU4Rec of `params` on `n_items` items (and evaluating
    `eval_rows` rows against the catalogue at once, 0: no evaluation)."""
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
    return {
        "item tables": tables,
        "optimizer slots": tables * n_slots,
        "negative cache": cache,
        "training step": step,
        "evaluation chunk": _eval_chunk_bytes(eval_rows, n_items),
        "runtime": RUNTIME_BYTES,
    }


_DRIVERS = {
    "item tables": "the catalogue size and layers",
    "optimizer slots": "the catalogue size, layers and momentum",
    "negative cache": "sample_cache_size",
    "training step": "batch_size and n_sample",
    "evaluation chunk": "the evaluation batch size (--eval-batch-size)",
}


def check_fits(parts: dict, available: int | None = None) -> int:
    """Raises `MemoryEstimateError` if the parts clearly exceed the available memory.

    "Clearly": the estimate, less a 25% margin for its own error, is above what the OS
    can give. Returns the estimated total in bytes.
    """
    total = sum(parts.values())
    available = available_bytes() if available is None else available
    if available is not None and 0.75 * total > available:
        part = max((k for k in parts if k in _DRIVERS), key=parts.get)
        raise MemoryEstimateError(
            f"this run needs about {total / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is "
            f"available; the largest part is the {part} ({parts[part] / 2**30:.1f} GiB): "
            f"reduce {_DRIVERS[part]}"
        )
    return total


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
