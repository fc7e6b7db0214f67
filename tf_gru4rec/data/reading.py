"""Reading and validating session files: (SessionId, ItemId, Time) rows from TSV, CSV or Parquet.

TensorFlow-free, so that a command line can refuse a bad file before importing it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd


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


