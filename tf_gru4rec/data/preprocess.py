"""Turn the public raw session dumps into GRU4Rec's train/test TSV files.

Usage::

    python -m tf_gru4rec.preprocess {rsc15,yoochoose,diginetica,retailrocket} RAW OUT_DIR

RAW is the raw file of the dataset (or the folder that holds it under its
usual name, see ``RAW_FILES``). OUT_DIR receives ``train_full.tsv``,
``test.tsv``, ``train_tr.tsv`` and ``train_valid.tsv``: tab separated, header
``SessionId  ItemId  Time``, one click per row, grouped by session and in time
order inside a session, ``Time`` in unix seconds (float).

Two preprocessing rules exist (``docs/gru4rec-algorithm.md``, section 8):

* ``rsc15`` -- the GRU4Rec papers' YOOCHOOSE variant: one filtering pass
  (``filter_rsc15``), test = sessions *ending* in the last day, test items
  restricted to training items (``split_rsc15``).
* ``yoochoose``, ``diginetica``, ``retailrocket`` -- the RecSys'23
  reproducibility-study rule: consecutive duplicates removed and filters
  iterated to a fixed point (``filter_iterative``), test = sessions *starting*
  in the last window, train = events before it (``split_by_window``).

In both, train_tr / train_valid are produced by applying the same split to
train_full, so hyperparameters can be tuned without touching the test set.

Only pandas and numpy are used; every step is a small pure function on a
``DataFrame[SessionId, ItemId, Time]`` so it can be reused (e.g. by the TFDS
builder in ``tf_gru4rec.data.datasets``) and tested on hand-made frames.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

COLUMNS = ["SessionId", "ItemId", "Time"]
DAY = 86_400.0
HOUR = 3_600.0

#: Usual raw file name of each dataset (used when RAW is a folder).
RAW_FILES = {
    "rsc15": "yoochoose-clicks.dat",
    "yoochoose": "yoochoose-clicks.dat",
    "diginetica": "train-item-views.csv",
    "retailrocket": "events.csv",
}
#: Length of the test (and validation) window of the windowed datasets.
WINDOWS = {"yoochoose": DAY, "diginetica": 7 * DAY, "retailrocket": 7 * DAY}
DATASETS = tuple(RAW_FILES)
#: Output name -> meaning; also the order of files and of the printed table.
OUTPUTS = ("train_full", "test", "train_tr", "train_valid")

_EPOCH = pd.Timestamp(0, tz="UTC")


class PreprocessError(ValueError):
    """Bad raw input: the message names the file and the problem."""


# ----------------------------------------------------------------- readers ---


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise PreprocessError(f"raw file not found: {path}")


def _read_csv(path: str, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` whose parse failures become a one-line PreprocessError."""
    _check_file(path)
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise PreprocessError(f"{path}: file is empty") from None
    except (ValueError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PreprocessError(f"{path}: cannot parse: {first}") from None


def _require_columns(df: pd.DataFrame, required: list[str], path: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PreprocessError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(required)}, found {', '.join(map(str, df.columns))}"
        )


def _to_unix_seconds(values: pd.Series, path: str, column: str, fmt: str) -> pd.Series:
    """Parse date strings as UTC and return float unix seconds.

    Subtracting the epoch (instead of casting to int64) is independent of the
    datetime resolution pandas infers (s/ms/us/ns in pandas >= 3).
    """
    try:
        parsed = pd.to_datetime(values, format=fmt, utc=True)
    except (ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise PreprocessError(f"{path}: unparsable time in column {column}: {first}") from None
    if parsed.isna().any():
        raise PreprocessError(f"{path}: missing time in column {column}")
    return (parsed - _EPOCH).dt.total_seconds().astype(np.float64)


def _frame(session, item, time) -> pd.DataFrame:
    """The canonical frame: int64 SessionId / ItemId, float64 unix-second Time."""
    return pd.DataFrame(
        {
            "SessionId": np.asarray(session, dtype=np.int64),
            "ItemId": np.asarray(item, dtype=np.int64),
            "Time": np.asarray(time, dtype=np.float64),
        }
    )


def _read_yoochoose_file(path: str) -> pd.DataFrame:
    """Read one headerless YOOCHOOSE click file (SessionId,Timestamp,ItemId,Category)."""
    _check_file(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        first_line = f.readline().strip()
    if not first_line:
        raise PreprocessError(f"{path}: file is empty")
    if len(first_line.split(",")) < 3:
        raise PreprocessError(
            f"{path}: expected comma separated columns SessionId,Timestamp,ItemId[,Category], "
            f"got {first_line!r}"
        )
    # The 4th column (category) is not needed; skipping it saves memory on 33M rows.
    raw = _read_csv(
        path,
        header=None,
        usecols=[0, 1, 2],
        names=["SessionId", "Timestamp", "ItemId"],
        dtype={"SessionId": np.int64, "Timestamp": str, "ItemId": np.int64},
    )
    time = _to_unix_seconds(raw["Timestamp"], path, "Timestamp", "ISO8601")
    return _frame(raw["SessionId"], raw["ItemId"], time)


def load_raw_rsc15(path: str) -> pd.DataFrame:
    """Read ``yoochoose-clicks.dat`` (comma separated, no header).

    Columns: SessionId, Timestamp (ISO 8601, e.g. ``2014-04-07T10:51:09.277Z``),
    ItemId, Category. Returns ``DataFrame[SessionId, ItemId, Time]`` in file
    order, Time in unix seconds with the milliseconds kept.
    """
    return _read_yoochoose_file(path)


def load_raw_yoochoose(path: str) -> pd.DataFrame:
    """Read ``yoochoose-clicks.dat`` plus ``yoochoose-test.dat`` beside it, if present.

    The newer Yoochoose variant uses the clicks of both files (the challenge's
    test sessions are simply later sessions with their own ids).
    """
    frames = [_read_yoochoose_file(path)]
    test_path = os.path.join(os.path.dirname(os.path.abspath(path)), "yoochoose-test.dat")
    if os.path.isfile(test_path) and os.path.abspath(test_path) != os.path.abspath(path):
        logger.info("also reading %s", test_path)
        frames.append(_read_yoochoose_file(test_path))
    return pd.concat(frames, ignore_index=True)


def load_raw_diginetica(path: str) -> pd.DataFrame:
    """Read Diginetica's ``train-item-views.csv`` (``;`` separated, with header).

    Header: ``sessionId;userId;itemId;timeframe;eventdate``. Only a day
    (eventdate) and an offset in ms from the session start (timeframe) are
    given, so Time = the session's first eventdate (UTC midnight, unix
    seconds) + timeframe / 1000.
    """
    required = ["sessionId", "itemId", "timeframe", "eventdate"]
    header = _read_csv(path, sep=";", nrows=0)
    _require_columns(header, required, path)
    raw = _read_csv(
        path,
        sep=";",
        usecols=required,
        dtype={"sessionId": np.int64, "itemId": np.int64, "timeframe": np.int64, "eventdate": str},
    )
    day = _to_unix_seconds(raw["eventdate"], path, "eventdate", "%Y-%m-%d")
    # A session may cross midnight; its clock starts on its first day.
    session_day = day.groupby(raw["sessionId"]).transform("min")
    return _frame(raw["sessionId"], raw["itemId"], session_day + raw["timeframe"] / 1000.0)


def sessionize(visitor: pd.Series, time: pd.Series, gap: float = HOUR) -> np.ndarray:
    """Session ids (0, 1, ...) for events already sorted by (visitor, time).

    A new session starts at each new visitor and after more than ``gap``
    seconds without an event (a gap of exactly ``gap`` stays in the session).
    """
    v = visitor.to_numpy()
    t = time.to_numpy()
    new = np.ones(len(v), dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (np.diff(t) > gap)
    return np.cumsum(new) - 1


def load_raw_retailrocket(path: str) -> pd.DataFrame:
    """Read RetailRocket's ``events.csv`` and rebuild sessions from views.

    Header: ``timestamp,visitorid,event,itemid,transactionid``, timestamp in
    ms. Only ``view`` events are kept (carts and transactions are other
    signals); the dump has visitors, not sessions, so each visitor's views are
    cut into sessions at inactivity gaps longer than 1 hour. SessionIds are
    0, 1, ... in (visitor, first event time) order.
    """
    required = ["timestamp", "visitorid", "event", "itemid"]
    header = _read_csv(path, nrows=0)
    _require_columns(header, required, path)
    raw = _read_csv(
        path,
        usecols=required,
        dtype={"timestamp": np.int64, "visitorid": np.int64, "event": str, "itemid": np.int64},
    )
    raw = raw[raw["event"] == "view"]
    raw = raw.assign(Time=raw["timestamp"] / 1000.0)
    # Stable sort: simultaneous views keep their file order.
    raw = raw.sort_values(["visitorid", "Time"], kind="stable")
    return _frame(sessionize(raw["visitorid"], raw["Time"]), raw["itemid"], raw["Time"])


LOADERS = {
    "rsc15": load_raw_rsc15,
    "yoochoose": load_raw_yoochoose,
    "diginetica": load_raw_diginetica,
    "retailrocket": load_raw_retailrocket,
}


# --------------------------------------------------------------- filtering ---


def _session_length(df: pd.DataFrame) -> pd.Series:
    return df.groupby("SessionId")["SessionId"].transform("size")


def _item_support(df: pd.DataFrame) -> pd.Series:
    return df.groupby("ItemId")["ItemId"].transform("size")


def filter_rsc15(df: pd.DataFrame, min_item_support: int = 5) -> pd.DataFrame:
    """The GRU4Rec papers' RSC15 filter: one pass, in this order, no de-duplication.

    1. drop sessions of length 1;
    2. drop items with fewer than ``min_item_support`` clicks;
    3. drop sessions shorter than 2 (those that lost items in step 2).

    It is deliberately not iterated: an item that falls below the threshold
    in step 3 stays, so the published RSC15 numbers are reproduced.
    """
    df = df[_session_length(df) > 1]
    df = df[_item_support(df) >= min_item_support]
    return df[_session_length(df) >= 2]


def remove_consecutive_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by (SessionId, Time, ItemId); drop a click equal to the previous one of its session.

    Repeated clicks (page reloads) carry no next-item signal; a later return
    to the same item after another item is kept.
    """
    df = df.sort_values(["SessionId", "Time", "ItemId"], kind="stable")
    same_session = df["SessionId"].eq(df["SessionId"].shift())
    same_item = df["ItemId"].eq(df["ItemId"].shift())
    return df[~(same_session & same_item)]


def filter_iterative(df: pd.DataFrame, min_item_support: int = 5) -> pd.DataFrame:
    """The RecSys'23 filter: de-duplicate, then filter until nothing changes.

    After ``remove_consecutive_duplicates``, repeat: drop one-click sessions,
    drop items with fewer than ``min_item_support`` clicks; stop when a round
    removes nothing. Every remaining session has >= 2 clicks and every item
    >= ``min_item_support`` clicks.
    """
    df = remove_consecutive_duplicates(df)
    while True:
        before = len(df)
        df = df[_session_length(df) > 1]
        df = df[_item_support(df) >= min_item_support]
        if len(df) == before:
            return df


# --------------------------------------------------------------- splitting ---


def split_rsc15(df: pd.DataFrame, test_seconds: float = DAY) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RSC15 time split: test = sessions whose LAST event is in the final ``test_seconds``.

    With ``tmax`` the latest event time, a session is test when its last event
    is at or after ``tmax - test_seconds``; all its events go to test. Test
    then keeps only items seen in train (the model cannot score others) and
    sessions with >= 2 of the remaining events. Returns ``(train, test)``.
    """
    boundary = df["Time"].max() - test_seconds
    session_end = df.groupby("SessionId")["Time"].transform("max")
    train = df[session_end < boundary]
    test = df[session_end >= boundary]
    test = test[test["ItemId"].isin(train["ItemId"].unique())]
    test = test[_session_length(test) >= 2]
    return train, test


def split_by_window(
    df: pd.DataFrame, window_seconds: float, end: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RecSys'23 time split: test = sessions STARTING in ``[end - window_seconds, ...)``.

    ``end`` defaults to the latest event time. Test holds every event of the
    sessions whose first event is at or after the window start; its items are
    not filtered (evaluation skips unknown ones). Train holds the events
    strictly before the window start -- sessions running into the window are
    cut there -- with the sessions left with one event dropped. Returns
    ``(train, test)``.
    """
    if end is None:
        end = df["Time"].max()
    start = end - window_seconds
    session_start = df.groupby("SessionId")["Time"].transform("min")
    test = df[session_start >= start]
    train = df[df["Time"] < start]
    train = train[_session_length(train) > 1]
    return train, test


# ---------------------------------------------------------------- pipeline ---


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by session, in time order inside it (stable), fresh index."""
    return df.sort_values(["SessionId", "Time"], kind="stable").reset_index(drop=True)[COLUMNS]


def resolve_raw_path(dataset: str, raw_path: str) -> str:
    """RAW may be the raw file or a folder holding it under ``RAW_FILES[dataset]``."""
    if os.path.isdir(raw_path):
        return os.path.join(raw_path, RAW_FILES[dataset])
    return raw_path


def make_splits(dataset: str, raw_path: str) -> dict[str, pd.DataFrame]:
    """Read and preprocess one dataset; return ``{name: frame}`` for ``OUTPUTS``.

    Raises ``PreprocessError`` for bad input, including an empty output.
    """
    if dataset not in LOADERS:
        raise PreprocessError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    path = resolve_raw_path(dataset, raw_path)
    _check_file(path)
    logger.info("reading %s", path)
    df = LOADERS[dataset](path)
    logger.info("read %d events, %d sessions, %d items", *_counts(df))
    if dataset == "rsc15":
        df = filter_rsc15(df)
        train, test = split_rsc15(df)
        train_tr, train_valid = split_rsc15(train)
    else:
        window = WINDOWS[dataset]
        df = filter_iterative(df)
        train, test = split_by_window(df, window)
        # "One window earlier": the validation window ends where the test window starts.
        if len(df):
            test_start = df["Time"].max() - window
            train_tr, train_valid = split_by_window(train, window, end=test_start)
        else:
            train_tr, train_valid = train, train
    logger.info("after filtering: %d events, %d sessions, %d items", *_counts(df))
    splits = dict(zip(OUTPUTS, map(_ordered, (train, test, train_tr, train_valid)), strict=True))
    for name, frame in splits.items():
        if frame.empty:
            raise PreprocessError(
                f"{path}: {name} is empty after filtering "
                f"({dataset} needs more sessions / a longer time span)"
            )
    return splits


def write_tsv(df: pd.DataFrame, path: str) -> None:
    """Write ``df`` as a tab separated file with header, atomically.

    The data go to a temporary file in the same folder that then replaces
    ``path``, so a reader never sees a half-written file and an interrupted
    run leaves no temporary file behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            df[COLUMNS].to_csv(f, sep="\t", index=False, lineterminator="\n")
        # mkstemp makes the file private (0600); give it the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _counts(df: pd.DataFrame) -> tuple[int, int, int]:
    return len(df), df["SessionId"].nunique(), df["ItemId"].nunique()


def format_table(splits: dict[str, pd.DataFrame]) -> str:
    """A plain text table: file, events, sessions, items."""
    lines = [f"{'file':<12}{'events':>12}{'sessions':>12}{'items':>10}"]
    for name, df in splits.items():
        events, sessions, items = _counts(df)
        lines.append(f"{name:<12}{events:>12}{sessions:>12}{items:>10}")
    return "\n".join(lines)


def preprocess(dataset: str, raw_path: str, out_dir: str) -> dict[str, pd.DataFrame]:
    """Preprocess ``dataset`` from ``raw_path`` and write ``OUT_DIR/<name>.tsv``.

    Returns the frames written (``train_full``, ``test``, ``train_tr``,
    ``train_valid``), each ``DataFrame[SessionId, ItemId, Time]``. Nothing is
    written unless all four are non-empty.
    """
    splits = make_splits(dataset, raw_path)
    os.makedirs(out_dir, exist_ok=True)
    for name, frame in splits.items():
        path = os.path.join(out_dir, f"{name}.tsv")
        write_tsv(frame, path)
        logger.info("wrote %s", path)
    return splits
