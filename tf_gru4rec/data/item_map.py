"""The item map: the bijection between original item ids and contiguous indices 0..N-1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tf_gru4rec.data.reading import DataError, check_id_bytes, string_ids


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


