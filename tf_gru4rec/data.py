"""Session data: reading, the item map, and session-parallel mini-batches.

Data flows one way: rows (SessionId, ItemId, Time) -> `ItemMap` (item id <-> index)
-> `SessionData` (sessions as contiguous runs of item indices, ordered by first-event time)
-> `session_parallel_schedule` (which event every slot of every step holds)
-> `SessionParallelBatcher.dataset()` (a `tf.data.Dataset` of fixed-shape blocks of steps).

Notation: B = batch size (slots), S = extra negatives per step, K = steps per block,
U = 2B + S (rows of the item table a training step may touch).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_gru4rec.sampling import NegativeSampler


class DataError(ValueError):
    """Raised for unusable input data; the message names the file and the problem."""


@dataclass(frozen=True)
class Columns:
    """Names of the session, item and time columns of an input file."""

    session: str = "SessionId"
    item: str = "ItemId"
    time: str = "Time"


#: Text files from this size on report their reading progress (a tenth at a time).
LONG_READ_BYTES = 64 << 20
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


class _ReadProgress:
    """A binary file handle that reports, through `report`, each tenth of the file read."""

    def __init__(self, path: str, report):
        self.path, self.report, self.size = path, report, os.path.getsize(path)
        self.file, self.done, self.tenths = open(path, "rb"), 0, 0

    def read(self, n=-1):
        data = self.file.read(n)
        self.done += len(data)
        tenths = self.done * 10 // max(self.size, 1)
        if tenths > self.tenths:
            self.tenths = tenths
            self.report(f"{self.path}: read {10 * tenths}% ({self.done / 2**20:,.0f} of "
                        f"{self.size / 2**20:,.0f} MiB)")
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def read_sessions(path, columns: Columns = Columns(), sep: str | None = None,
                  progress=None) -> pd.DataFrame:
    """Reads click rows from a TSV, CSV or Parquet file and validates them.

    The format follows the extension (`.parquet`/`.pq`, `.csv`, anything else is
    tab-separated) unless `sep` is given. Returns a frame with the columns
    `SessionId`, `ItemId` (as read: integer or string ids) and `Time` (float64).
    `progress`: called with a line at each tenth of an uncompressed text file of
    `LONG_READ_BYTES` or more.

    Raises:
        DataError: missing file, unreadable file, missing columns, empty file,
            missing values or non-numeric times. The message names the problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    want = [columns.session, columns.item, columns.time]
    try:
        if path.endswith((".parquet", ".pq")) and sep is None:
            df = pd.read_parquet(path)
        else:
            sep = sep or ("," if path.endswith(".csv") else "\t")
            long = (progress is not None and not path.endswith(_COMPRESSED)
                    and os.path.getsize(path) >= LONG_READ_BYTES)
            with _ReadProgress(path, progress) if long else contextlib.nullcontext(path) as source:
                df = pd.read_csv(source, sep=sep, dtype={columns.session: str, columns.item: str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: cannot be read ({str(e).splitlines()[0]})") from None
    missing = [c for c in want if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(df.columns)} "
            "(column names are configurable)"
        )
    df = df[want].rename(
        columns={columns.session: "SessionId", columns.item: "ItemId", columns.time: "Time"}
    )
    return validate_frame(df, source=path)


_INT64_MAX = np.iinfo(np.int64).max
#: Longest string id accepted (item or session), in UTF-8 bytes: the export's bound on
#: request session ids (`export.MAX_SESSION_ID_BYTES`). Longer ids are a broken column, and
#: a few huge ones exhaust memory.
MAX_ID_BYTES = 256


def string_ids(values) -> np.ndarray:
    """Ids as an object array of str. Not NumPy's fixed-width `<U{longest}`: there one long
    id makes every id as wide (4 bytes a character), and memory grows by N times its length."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    return pd.Series(values, dtype=object, copy=False).astype(str).to_numpy(dtype=object)


def check_id_bytes(ids: np.ndarray, name: str, source: str) -> None:
    """Raises `DataError` naming the first id of `ids` (strings) longer than `MAX_ID_BYTES`."""
    chars = pd.Series(ids, dtype=object, copy=False).str.len().to_numpy()
    # A character is at most 4 bytes: only ids longer than a quarter of the bound are encoded.
    maybe = np.flatnonzero(chars > MAX_ID_BYTES // 4)
    if len(maybe):
        nbytes = pd.Series(ids[maybe], dtype=object).str.encode("utf-8").str.len().to_numpy()
        over = np.flatnonzero(nbytes > MAX_ID_BYTES)
        if len(over):
            first = ids[maybe[over[0]]]
            raise DataError(f"{source}: {len(over)} {name} value(s) longer than {MAX_ID_BYTES} bytes "
                            f"(UTF-8), e.g. one of {nbytes[over[0]]:,} bytes starting {first[:20]!r}")


def _normalise_ids(s: pd.Series, name: str, source: str) -> np.ndarray:
    """Integer ids (also integral floats or digit strings) become int64, anything else str
    (an object array, see `string_ids`; at most `MAX_ID_BYTES` bytes each).

    Digit strings are parsed as integers, not through float64, so 64-bit ids (above 2^53)
    stay exact integers; ids beyond int64 stay strings.
    """
    if pd.api.types.is_bool_dtype(s):
        raise DataError(f"{source}: {name} values are booleans, expected integer or string ids")
    numeric = s if pd.api.types.is_numeric_dtype(s) else pd.to_numeric(s, errors="coerce")
    if numeric.notna().all():
        if pd.api.types.is_integer_dtype(numeric):
            if numeric.dtype == np.uint64 and numeric.max() > _INT64_MAX:
                return string_ids(s)
            return numeric.to_numpy().astype(np.int64)
        values = numeric.to_numpy(dtype=np.float64)
        fractional = values != np.round(values)
        if fractional.any():  # all-numeric ids with fractions are a broken column, not text ids
            raise DataError(f"{source}: {name} has fractional values, e.g. {values[fractional][0]}")
        if np.all(np.abs(values) < 2**63):
            return values.astype(np.int64)
    ids = string_ids(s)
    check_id_bytes(ids, name, source)
    return ids


def _seconds(time: pd.Series, source: str) -> np.ndarray:
    """Time as float64 seconds: numbers as they are; datetimes and ISO-8601 strings (naive
    ones taken as UTC) as seconds since the epoch. Non-finite values are rejected."""
    if pd.api.types.is_datetime64_any_dtype(time):
        parsed = pd.to_datetime(time, utc=True)
    else:
        numeric = pd.to_numeric(time, errors="coerce")
        if numeric.notna().all():
            values = numeric.astype(np.float64).to_numpy()
            bad = ~np.isfinite(values)
            if bad.any():
                raise DataError(f"{source}: {int(bad.sum())} non-finite Time value(s), "
                                f"e.g. {values[bad][0]}")
            return values
        parsed = pd.to_datetime(time.astype(str), utc=True, format="ISO8601", errors="coerce")
        neither = numeric.isna() & parsed.isna()
        if neither.any():
            raise DataError(f"{source}: {int(neither.sum())} Time value(s) neither numbers nor "
                            f"ISO-8601 times, e.g. {time[neither].iloc[0]!r}")
        if parsed.isna().any():
            raise DataError(f"{source}: Time mixes numbers and ISO-8601 times, e.g. "
                            f"{time[parsed.isna()].iloc[0]!r} and {time[parsed.notna()].iloc[0]!r}")
    epoch = pd.Timestamp(0, tz="UTC")
    return ((parsed - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def validate_frame(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Checks and normalises a (SessionId, ItemId, Time) frame.

    Ids become int64 when every value is an integer, else strings; Time becomes float64
    (numbers, datetimes or ISO-8601 strings; see `_seconds`). Returns a new frame.
    """
    for c in ("SessionId", "ItemId", "Time"):
        if c not in df.columns:
            raise DataError(f"{source}: missing column {c!r}; found {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{source}: no rows")
    for c in ("SessionId", "ItemId", "Time"):
        n_null = int(df[c].isna().sum())
        if n_null:
            raise DataError(f"{source}: {n_null} row(s) with a missing {c}")
    return pd.DataFrame(
        {
            "SessionId": _normalise_ids(df["SessionId"], "SessionId", source),
            "ItemId": _normalise_ids(df["ItemId"], "ItemId", source),
            "Time": _seconds(df["Time"].reset_index(drop=True), source),
        }
    )


def mean_id_length(ids) -> float | None:
    """Mean characters of string ids (from up to 10,000 of them); None for integer ids."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iuf" or len(ids) == 0:
        return None
    sample = ids[:: max(1, len(ids) // 10_000)]
    return float(pd.Series(sample, dtype=object).astype(str).str.len().mean())


class ItemMap:
    """The bijection between original item ids and contiguous indices 0..N-1.

    Part of a trained model: saved with it and used to translate requests and results.
    Ids are int64 (integer ids) or str (an object array, see `string_ids`; at most
    `MAX_ID_BYTES` bytes each).
    """

    def __init__(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind in "iu":
            ids = ids.astype(np.int64)
        elif ids.dtype.kind in "UOS":
            ids = string_ids(ids)
            check_id_bytes(ids, "item id", "item map")
        else:
            raise DataError(f"item ids must be integers or strings, got dtype {ids.dtype}")
        self._index = pd.Index(ids, dtype=ids.dtype, copy=False)
        if not self._index.is_unique:
            raise DataError("item ids of an ItemMap must be unique")
        if ids.dtype == object and self._index.str.contains("\0", regex=False).any():
            raise DataError("an item id contains a NUL character (\\0): not an id of a text file")
        self.ids = ids

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> "ItemMap":
        """Items in order of first appearance, as the reference implementation numbers them."""
        return cls(pd.unique(df["ItemId"].to_numpy()))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_integer(self) -> bool:
        return self.ids.dtype.kind == "i"

    @property
    def id_length(self) -> float | None:
        """Mean characters of a string id (None for integer ids), for the memory estimate."""
        return mean_id_length(self.ids)

    def tobytes(self) -> bytes:
        """The ids as bytes, equal for equal maps (for fingerprints: an object array's own
        bytes are pointers): int64 values, or the UTF-8 string ids joined by NUL."""
        return self.ids.tobytes() if self.is_integer else "\0".join(self.ids).encode("utf-8")

    def save(self, path) -> None:
        """Writes the ids to `path` (.npy, no pickle): int64 ids as they are, string ids as
        `tobytes()` in a uint8 array (no fixed-width `<U{longest}` copy, see `string_ids`)."""
        ids = self.ids if self.is_integer else np.frombuffer(self.tobytes(), np.uint8)
        np.save(path, ids, allow_pickle=False)

    @classmethod
    def load(cls, path) -> "ItemMap":
        """The map `save` wrote (also a fixed-width string array, as older versions saved)."""
        ids = np.load(path, allow_pickle=False)
        if ids.dtype == np.uint8:
            ids = np.array(ids.tobytes().decode("utf-8").split("\0"), dtype=object)
        return cls(ids)

    def lookup(self, ids) -> np.ndarray:
        """Original ids -> indices (int64); unknown ids map to -1."""
        ids = np.asarray(ids)
        if self.is_integer and ids.dtype.kind not in "iu":
            # Per element: an id that is no integer is unknown, the others still map.
            as_int = pd.to_numeric(pd.Series(ids, dtype=object), errors="coerce").to_numpy()
            whole = ~np.isnan(as_int) & (as_int == np.round(np.nan_to_num(as_int)))
            out = np.full(len(ids), -1, dtype=np.int64)
            out[whole] = self._index.get_indexer(as_int[whole].astype(np.int64))
            return out
        if not self.is_integer:
            ids = string_ids(ids)
        return self._index.get_indexer(ids).astype(np.int64)

    def __eq__(self, other) -> bool:
        return isinstance(other, ItemMap) and np.array_equal(self.ids, other.ids)


@dataclass
class SessionData:
    """Sessions as contiguous runs of item indices.

    Attributes:
        items: int32 [n_events], item index of every event, sessions back to back.
        offsets: int64 [n_sessions + 1], session s is items[offsets[s]:offsets[s+1]].
        item_map: the map the indices refer to.
        skipped_unknown: events dropped because their item is not in `item_map`.
        skipped_sessions: sessions dropped for having fewer than 2 events.
        duplicate_rows: rows equal to an earlier row in all three columns.
        repeated_clicks: clicks on the same item as the session's previous click (exact
            duplicates included); removed when built with `drop_repeats`.
    """

    items: np.ndarray
    offsets: np.ndarray
    item_map: ItemMap
    skipped_unknown: int = 0
    skipped_sessions: int = 0
    duplicate_rows: int = 0
    repeated_clicks: int = 0

    @classmethod
    def from_frame(cls, df: pd.DataFrame, item_map: ItemMap | None = None, source="data",
                   drop_repeats: bool = False):
        """Sorts by session then time (stable), orders sessions by their first event.

        With `item_map` given (test data), unknown items are dropped before sessions are
        formed: the session continues across the gap. With `drop_repeats`, a click on the
        same item as the session's previous click is removed (the spec's preprocessing of
        the newer dataset variants); either way such clicks are counted. Sessions left
        with fewer than 2 events are dropped and counted.
        """
        df = validate_frame(df, source)
        duplicate_rows = int(df.duplicated().sum())
        item_map_given = item_map is not None
        if item_map is None:
            item_map = ItemMap.from_frame(df)
        idx = item_map.lookup(df["ItemId"].to_numpy())
        known = idx >= 0
        skipped_unknown = int((~known).sum())
        if not known.any():
            raise DataError(f"{source}: no item is known to the model (all {len(df)} events skipped)")
        df = df.assign(_item=idx)[known]
        df = df.sort_values(["SessionId", "Time"], kind="stable")
        sid, item = df["SessionId"].to_numpy(), df["_item"].to_numpy()
        repeat = np.r_[False, (sid[1:] == sid[:-1]) & (item[1:] == item[:-1])]
        if drop_repeats:
            df = df[~repeat]
        sid = df["SessionId"].to_numpy()
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        lengths = np.diff(np.r_[starts, len(sid)])
        first_time = df["Time"].to_numpy()[starts]
        keep = lengths >= 2
        order = np.argsort(first_time[keep], kind="stable")
        starts, lengths = starts[keep][order], lengths[keep][order]
        items = df["_item"].to_numpy().astype(np.int32)
        if len(starts) == 0:
            what = "nothing to evaluate" if item_map_given else "nothing trainable"
            raise DataError(f"{source}: {what}: no session has 2 or more known events")
        gather = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(
            lengths.sum()
        )
        return cls(
            items=items[gather],
            offsets=np.r_[0, np.cumsum(lengths)].astype(np.int64),
            item_map=item_map,
            skipped_unknown=skipped_unknown,
            skipped_sessions=int((~keep).sum()),
            duplicate_rows=duplicate_rows,
            repeated_clicks=int(repeat.sum()),
        )

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def n_examples(self) -> int:
        """Training/evaluation examples: events that have a next event in their session."""
        return self.n_events - self.n_sessions

    def support(self) -> np.ndarray:
        """Clicks per item index (float64 [N])."""
        return np.bincount(self.items, minlength=len(self.item_map)).astype(np.float64)

    def shard(self, index: int, count: int) -> "SessionData":
        """Sessions index, index + count, index + 2 count, ... (time order kept), same item map.

        Dealing sessions out in turn gives every shard the same time span and nearly the
        same number of sessions, so data-parallel replicas end their epochs close together.
        """
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} out of range for {count} shards")
        starts = self.offsets[index:-1:count]
        lengths = self.offsets[index + 1 :: count] - starts
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        # Each event's index in `items`: its session's start, shifted to its place in the shard.
        events = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SessionData(self.items[events], offsets, self.item_map)


@dataclass(frozen=True)
class Schedule:
    """Which event every slot holds at every step of a session-parallel epoch.

    Attributes:
        position: int64 [T, B], index into `SessionData.items` of the slot's input event;
            its target is the event after it. -1 where the slot is inactive.
        reset: bool [T, B], the slot starts a new session at this step (state zeroed first).
    """

    position: np.ndarray
    reset: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.position >= 0

    @property
    def n_steps(self) -> int:
        return self.position.shape[0]


def session_parallel_schedule(offsets: np.ndarray, batch_size: int, min_active: int = 1) -> Schedule:
    """Lays sessions out in `batch_size` parallel slots, as GRU4Rec trains and evaluates.

    Each slot walks through one session; when it has no next event the slot takes the
    next unused session (reset). When sessions run out the finished slots stay empty
    (inactive) and the epoch ends once fewer than `min_active` slots are active
    (1 normally; 2 for training without extra negatives, where a lone row has no negative).

    Vectorised over runs of steps in which no slot changes session.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    B = batch_size
    pos = np.full(B, -1, dtype=np.int64)  # next input event per slot
    end = np.full(B, -1, dtype=np.int64)  # last event of the slot's session
    first = np.zeros(B, dtype=bool)
    k = min(B, n)
    pos[:k], end[:k], first[:k] = offsets[:k], offsets[1 : k + 1] - 1, True
    next_session = k
    positions, resets = [], []
    while True:
        active = pos >= 0
        if active.sum() < min_active:
            break
        run = int((end - pos)[active].min())  # steps until the first slot runs out
        steps = np.arange(run)
        p = np.where(active[None, :], pos[None, :] + steps[:, None], -1)
        r = np.zeros((run, B), dtype=bool)
        r[0] = first & active
        positions.append(p)
        resets.append(r)
        pos = np.where(active, pos + run, -1)
        first[:] = False
        for slot in np.flatnonzero(active & (pos == end)):
            if next_session < n:
                pos[slot], end[slot] = offsets[next_session], offsets[next_session + 1] - 1
                first[slot] = True
                next_session += 1
            else:
                pos[slot] = -1
    if not positions:
        return Schedule(np.zeros((0, B), np.int64), np.zeros((0, B), bool))
    return Schedule(np.concatenate(positions), np.concatenate(resets))


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
