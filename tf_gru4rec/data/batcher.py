"""Session-parallel training blocks: the schedule's steps with negatives, as a `tf.data.Dataset`.

Notation: B = batch size (slots), S = extra negatives per step, K = steps per block,
U = 2B + S (rows of the item table a training step may touch).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gru4rec.data.reading import DataError
from tf_gru4rec.data.sampling import NegativeSampler
from tf_gru4rec.data.schedule import session_parallel_schedule
from tf_gru4rec.data.sessions import SessionData


def unique_rows(item_lists: np.ndarray, width: int):
    """Per step, the distinct item-table rows touched and where each item sits among them.

    Args:
        item_lists: int [K, L] items per step (inputs, targets, negatives; -1 = none).
        width: static row count U >= L; padding repeats the step's last row, so each
            step's rows stay sorted (the optimizer then skips its sort); a step without
            any item (no active row, no extra negatives) is all padding, -1.

    Returns:
        rows int32 [K, U] and positions int32 [K, L] with rows[k, positions[k, j]] ==
        item_lists[k, j] (positions of -1 entries point at slot 0).

    Deduplicating here, in the input pipeline, means the model gathers each touched row
    once and autodiff sums the gradient of repeated items; the optimizer gets sorted rows
    (padding: zero-gradient repeats of the last row, or -1, which it skips) and needs no
    sort inside the compiled step, where sorting is slow.
    """
    K, L = item_lists.shape
    # One stable sort per step on narrow keys (radix sort for uint16), absent (-1) last.
    dtype = np.uint16 if item_lists.max(initial=0) < np.iinfo(np.uint16).max else np.uint32
    absent_key = np.iinfo(dtype).max
    keys = np.where(item_lists >= 0, item_lists, absent_key).astype(dtype)
    order = np.argsort(keys, axis=1, kind="stable")
    ordered = np.take_along_axis(keys, order, axis=1)
    first = np.ones((K, L), dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    rank = np.cumsum(first, axis=1, dtype=np.int32) - 1  # slot of each sorted key
    positions = np.empty((K, L), dtype=np.int32)
    np.put_along_axis(positions, order, rank, axis=1)
    positions[item_lists < 0] = 0
    present = ordered != absent_key
    n_rows = rank[:, -1] + present[:, -1]  # distinct present items per step
    rows = np.zeros((K, width), dtype=np.int32)
    keep = first & present
    rows[np.nonzero(keep)[0], rank[keep]] = ordered[keep]
    last = np.where(n_rows > 0, rows[np.arange(K), np.maximum(n_rows - 1, 0)], -1)
    return np.where(np.arange(width) >= n_rows[:, None], last[:, None], rows), positions


class SessionParallelBatcher:
    """Session-parallel training blocks as a `tf.data.Dataset`.

    One dataset element is a block of K consecutive steps, so one compiled `train_step`
    runs K updates (the per-call overhead of Keras is paid once per K steps). Every
    tensor has a static shape: rows past the end of the data are inactive (valid False),
    steps past the end of the epoch are counted out by `n_steps`.

    Element (per block):
        inputs, targets: int32 [K, B] item indices (0 where inactive)
        reset, valid: bool [K, B]
        negatives: int32 [K, S] extra negatives, shared by the step's rows
        rows: int32 [K, U] distinct item-table rows touched per step, sorted, padded
            (see `unique_rows`; -1 in a step that touches no item)
        input_pos: int32 [K, B] position of each input in `rows`; only with
            `inputs_in_rows` (its presence tells the model the layout: `check_blocks`)
        column_pos: int32 [K, B + S] position of each score column (targets, then
            negatives) in `rows`
        column_log_q: float32 [K, B + S] log sampling probability (up to a constant)
            of each column, for the logQ correction
        n_steps: int32 scalar, steps of the block that hold data
        position: int32 [2], (epoch, first step) of the block: what data-parallel replicas
            derive their dropout seeds from (they share no mutable seed state)

    Args:
        data: training sessions.
        batch_size: B.
        n_sample: S, extra negatives per step drawn from support^sample_alpha.
        sample_alpha: exponent of the sampling distribution.
        block_steps: K.
        sample_cache_size: ids drawn ahead per refill of the sample cache.
        inputs_in_rows: whether inputs index the same table as the outputs (shared
            embedding); then `rows` also covers the inputs.
        seed: seed of the negative sampler.
        shard: (index, count): train on `data.shard(index, count)` only (one data-parallel
            replica); popularity, sampling and logQ still come from all of `data`.
        sampling_table: `sampling.sampling_table(data.support(), sample_alpha)` when
            already built (data-parallel replicas share one); None builds it.

    Attributes:
        n_steps: steps per epoch. Raising it pads the epoch with inactive steps (data-
            parallel replicas must all run the same number of synchronised steps).
        epoch: epochs started (each `blocks()` call starts one); set it to resume.
    """

    def __init__(
        self,
        data: SessionData,
        batch_size: int,
        n_sample: int = 2048,
        sample_alpha: float = 0.5,
        block_steps: int = 100,
        sample_cache_size: int = 10_000_000,
        inputs_in_rows: bool = True,
        seed: int | None = None,
        shard: tuple[int, int] = (0, 1),
        sampling_table: tuple | None = None,
    ):
        if batch_size < 1 or block_steps < 1 or n_sample < 0:
            raise ValueError(
                "batch_size and block_steps must be positive and n_sample >= 0. Received: "
                f"batch_size={batch_size}, block_steps={block_steps}, n_sample={n_sample}"
            )
        self.data = data if shard == (0, 1) else data.shard(*shard)
        self.batch_size = batch_size
        self.n_sample = n_sample
        self.block_steps = block_steps
        self.inputs_in_rows = inputs_in_rows
        self.schedule = session_parallel_schedule(
            self.data.offsets, batch_size, min_active=1 if n_sample > 0 else 2
        )
        if self.schedule.n_steps == 0:
            where = "" if shard == (0, 1) else f" of replica {shard[0]} of {shard[1]}"
            raise DataError(f"nothing trainable: the data{where} yields no training step")
        self.n_steps = self.schedule.n_steps
        self.epoch = 0
        support = data.support()
        self.sampler = (
            NegativeSampler(support, sample_alpha, n_sample, sample_cache_size, seed,
                            table=sampling_table)
            if n_sample > 0
            else None
        )
        # log q: support for in-batch columns (targets are drawn by popularity),
        # support^alpha for extra samples; zero-support items never occur.
        self._log_support = np.log(np.maximum(support, 1.0)).astype(np.float32)
        self._sample_alpha = float(sample_alpha)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_steps // self.block_steps)

    @property
    def n_examples(self) -> int:
        """Training examples per epoch (events with a next event that a step covers)."""
        return int(self.schedule.valid.sum())

    @property
    def width(self) -> int:
        """U: static number of item-table rows per step."""
        return (2 if self.inputs_in_rows else 1) * self.batch_size + self.n_sample

    def blocks(self):
        """Yields the epoch's blocks as dicts of NumPy arrays (new negatives each call)."""
        K, B, S = self.block_steps, self.batch_size, self.n_sample
        items = self.data.items
        sched = self.schedule
        epoch, self.epoch = self.epoch, self.epoch + 1
        for start in range(0, self.n_steps, K):
            n = min(K, self.n_steps - start)
            scheduled = sched.position[start : start + n]  # short or empty past its end
            pos = np.full((K, B), -1, dtype=np.int64)  # -1: inactive (also padding steps)
            pos[: len(scheduled)] = scheduled
            reset = np.zeros((K, B), dtype=bool)
            reset[: len(scheduled)] = sched.reset[start : start + n]
            valid = pos >= 0
            inputs = np.where(valid, items[np.maximum(pos, 0)], 0).astype(np.int32)
            targets = np.where(valid, items[np.maximum(pos, 0) + 1], 0).astype(np.int32)
            negatives = (
                self.sampler.draw(K) if S else np.zeros((K, 0), dtype=np.int32)
            ).astype(np.int32)
            touched = [np.where(valid, targets, -1), negatives]
            if self.inputs_in_rows:
                touched.insert(0, np.where(valid, inputs, -1))
            rows, positions = unique_rows(np.concatenate(touched, axis=1), self.width)
            offset = B if self.inputs_in_rows else 0
            column_log_q = np.concatenate(
                [self._log_support[targets], self._sample_alpha * self._log_support[negatives]],
                axis=1,
            )
            block = {
                "inputs": inputs,
                "targets": targets,
                "reset": reset,
                "valid": valid,
                "negatives": negatives,
                "rows": rows,
                "column_pos": positions[:, offset:],
                "column_log_q": column_log_q,
                "n_steps": np.int32(n),
                "position": np.array([epoch, start], np.int32),
            }
            if self.inputs_in_rows:
                block["input_pos"] = positions[:, :B]
            yield block

    def element_spec(self) -> dict:
        K, B, S, U = self.block_steps, self.batch_size, self.n_sample, self.width
        spec = lambda shape, dtype: tf.TensorSpec(shape, dtype)  # noqa: E731
        specs = {
            "inputs": spec([K, B], tf.int32),
            "targets": spec([K, B], tf.int32),
            "reset": spec([K, B], tf.bool),
            "valid": spec([K, B], tf.bool),
            "negatives": spec([K, S], tf.int32),
            "rows": spec([K, U], tf.int32),
            "column_pos": spec([K, B + S], tf.int32),
            "column_log_q": spec([K, B + S], tf.float32),
            "n_steps": spec([], tf.int32),
            "position": spec([2], tf.int32),
        }
        if self.inputs_in_rows:
            specs["input_pos"] = spec([K, B], tf.int32)
        return specs

    def dataset(self, prefetch: int = 4) -> tf.data.Dataset:
        """The epoch as a `tf.data.Dataset` of blocks; each iteration draws new negatives.

        Blocks are produced on a background thread and prefetched, so sampling and
        deduplication overlap with training.
        """
        ds = tf.data.Dataset.from_generator(self.blocks, output_signature=self.element_spec())
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.n_blocks))
        # No autotuning (the prefetch depth is fixed): TF's autotune thread can outlive the
        # epoch's iterator by up to a minute, and fit waits for it when the epoch ends.
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.prefetch(prefetch).with_options(options)


def check_blocks(shapes, embedding, batch_size):
    """Raises a one-line ValueError when training blocks do not fit a model.

    The model checks the blocks it is given, so that a batcher and a model built apart cannot
    disagree. A shared-embedding model takes its inputs from the gathered output-table rows, so its
    blocks need the inputs among the rows (`input_pos`, 2B + S rows per step); a separate
    or one-hot model looks its inputs up in their own table (B + S rows, no `input_pos`).

    Args:
        shapes: block entry name -> shape, steps first (`SessionParallelBatcher.element_spec`).
        embedding, batch_size: the model's.
    """
    B, S, U = shapes["inputs"][-1], shapes["negatives"][-1], shapes["rows"][-1]
    if B != batch_size:
        raise ValueError(f"training blocks of batch size {B} for a model built with "
                         f"batch_size={batch_size}: build the batcher with the model's batch size")
    shared = embedding == "shared"
    if shared and "input_pos" not in shapes:
        raise ValueError("training blocks without the inputs among their rows (inputs_in_rows="
                         "False) for a shared-embedding model, whose inputs are rows of the "
                         "output table: build the batcher with inputs_in_rows=True")
    if not shared and "input_pos" in shapes:
        raise ValueError(f"training blocks with the inputs among their rows (inputs_in_rows=True) "
                         f"for a model with embedding={embedding!r}, whose inputs have a table of "
                         "their own: build the batcher with inputs_in_rows=False")
    need = (2 if shared else 1) * B + S
    if U != need:
        raise ValueError(f"training blocks of {U} rows per step: a model with batch_size={B} and "
                         f"{S} extra negatives needs {'2B + S' if shared else 'B + S'} = {need}")
