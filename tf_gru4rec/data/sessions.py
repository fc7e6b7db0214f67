"""Sessions as contiguous runs of item indices, ordered by first-event time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.reading import DataError, validate_frame


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


