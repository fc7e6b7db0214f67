"""Item features: a table of item side information (ItemId + feature columns), encoded.

Every feature column becomes a vocabulary of feature values, and all columns share one
global value space (each column's indices offset past the previous columns'), so that an
item's features are a list of global value indices: a CSR pair (`values`, `offsets`) that
TensorFlow can later gather from one embedding table and pool per item.

Encodings of a column:

* `categorical`: one value per item (the cell's text).
* `multi`: several values per item, joined by `|` in a cell (or a list cell of Parquet).
* `numeric` / `numeric:N`: a number, bucketed into N quantile buckets (`DEFAULT_BUCKETS`
  without `:N`).

A column without an encoding given is inferred, in this order: list cells -> `multi`;
numbers (a numeric dtype, or text where every non-empty cell is a finite number) ->
`numeric:DEFAULT_BUCKETS`; text where some cell contains `|` -> `multi`; other text ->
`categorical`. The inferred encodings are recorded, so that new rows are encoded alike.

An empty cell (or a null of Parquet) is no value for that column. Cells are stripped of
surrounding whitespace. TensorFlow-free, like `reading`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tf_gru4rec.data.item_map import ItemMap
# The private normaliser on purpose: feature ItemIds must be typed exactly as session ItemIds.
from tf_gru4rec.data.reading import DataError, _normalise_ids

#: Quantile buckets of a numeric column whose encoding names no N (`numeric`, or inferred).
DEFAULT_BUCKETS = 10
#: Separator of the values of a multi-valued text cell.
SEPARATOR = "|"
#: File extensions read, and their field separators (None: Parquet).
FORMATS = {".tsv": "\t", ".csv": ",", ".parquet": None, ".pq": None}
ENCODINGS = ("categorical", "multi", "numeric")
ID = "ItemId"


def _parse_encoding(spec, column: str, source: str) -> str:
    """'categorical' | 'multi' | 'numeric' | 'numeric:N' -> canonical name ('numeric:N')."""
    text = str(spec).strip().lower()
    name, _, n = text.partition(":")
    if name == "numeric":
        if not n:
            return f"numeric:{DEFAULT_BUCKETS}"
        if n.isdigit() and int(n) >= 1:
            return f"numeric:{int(n)}"
    elif name in ENCODINGS and not n:
        return name
    raise DataError(f"{source}: column {column!r}: unknown encoding {spec!r} (expected "
                    "categorical, multi, numeric or numeric:N with N a positive integer)")


def _buckets(encoding: str) -> int:
    return int(encoding.partition(":")[2])


def _number_text(v) -> str:
    """A number of a typed column as the text a text file would hold: integral floats
    without '.0' (pandas makes an integer column with nulls float)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and v == np.round(v):
        return str(int(v))
    return str(v.item() if isinstance(v, np.generic) else v)


def _cells(series: pd.Series, null: np.ndarray) -> list:
    """A column's cells as Python objects: None (no value), a stripped non-empty str, a
    number (numeric dtypes), or a list of stripped non-empty str (list cells)."""
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    out = []
    for v, missing in zip(series.tolist(), null):
        if missing or v is None:
            out.append(None)
        elif isinstance(v, (list, tuple, np.ndarray)):
            out.append([t for t in (str(x).strip() for x in v if x is not None) if t])
        elif numeric:
            out.append(v)
        else:
            text = v.strip() if isinstance(v, str) else _number_text(v)
            out.append(text or None)
    return out


def _infer(cells: list, dtype_numeric: bool) -> str:
    """The encoding of a column given none (the rule of the module docstring)."""
    present = [c for c in cells if c is not None]
    if any(isinstance(c, list) for c in present):
        return "multi"
    if dtype_numeric:
        return f"numeric:{DEFAULT_BUCKETS}"
    if present:
        numbers = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(numbers).all():
            return f"numeric:{DEFAULT_BUCKETS}"
    if any(SEPARATOR in c for c in present):
        return "multi"
    return "categorical"


def _tokens(cells: list, encoding: str, column: str, source: str):
    """(row, value) pairs of a column: value str for categorical/multi, float for numeric.
    Raises `DataError` for lists in a categorical column and non-numbers in a numeric one."""
    rows, values = [], []
    if encoding.startswith("numeric"):
        bad = []
        for r, c in enumerate(cells):
            if c is None:
                continue
            try:
                x = float(c) if not isinstance(c, list) else np.nan
            except (TypeError, ValueError):
                x = np.nan
            if not np.isfinite(x):
                bad.append(c)
                continue
            rows.append(r)
            values.append(x)
        if bad:
            raise DataError(f"{source}: column {column!r} ({encoding}): {len(bad)} value(s) are "
                            f"not finite numbers, e.g. {bad[0]!r}")
        return np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64)
    lists = [c for c in cells if isinstance(c, list)]
    if lists and encoding == "categorical":
        raise DataError(f"{source}: column {column!r} (categorical): {len(lists)} cell(s) hold "
                        f"lists, e.g. {lists[0]!r}; encode the column as multi")
    for r, c in enumerate(cells):
        if c is None:
            continue
        if isinstance(c, list):
            parts = c
        elif not isinstance(c, str):
            parts = [_number_text(c)]
        elif encoding == "multi":
            parts = [t for t in (p.strip() for p in c.split(SEPARATOR)) if t]
        else:
            parts = [c]
        for p in dict.fromkeys(parts):  # a value repeated in a cell counts once
            rows.append(r)
            values.append(p)
    return np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=object)


def _bucket_edges(values: np.ndarray, n: int) -> tuple[float, ...]:
    """Inner edges of `n` quantile buckets of `values` (np.quantile, linear). Bucket k holds
    edges[k-1] <= x < edges[k]. Ties merge buckets: equal edges are one, and edges at or
    below the minimum are dropped (they would leave the lowest bucket empty)."""
    if len(values) == 0 or n <= 1:
        return ()
    edges = np.unique(np.quantile(values, np.arange(1, n) / n))
    return tuple(float(e) for e in edges[edges > values.min()])


def _bucket_labels(edges) -> tuple[str, ...]:
    """Names of the buckets (the vocabulary of a numeric column): '<a', '[a, b)', '>=b'."""
    if not edges:
        return ("any",)
    e = [repr(float(x)) for x in edges]
    return (f"<{e[0]}", *(f"[{a}, {b})" for a, b in zip(e[:-1], e[1:])), f">={e[-1]}")


def _check_ids(frame: pd.DataFrame, null: np.ndarray, source: str) -> np.ndarray:
    """ItemIds typed as `reading` types session ids (int64 or str); none missing, none twice."""
    n_missing = int(null.sum())
    if n_missing:
        raise DataError(f"{source}: {n_missing} row(s) with a missing {ID}")
    ids = _normalise_ids(frame[ID].reset_index(drop=True), ID, source)
    counts = pd.Series(ids, dtype=ids.dtype).value_counts(sort=False)
    twice = counts[counts > 1]
    if len(twice):
        examples = ", ".join(f"{v!r} ({n} rows)" for v, n in zip(twice.index.tolist()[:3], twice.tolist()))
        raise DataError(f"{source}: {len(twice)} {ID} value(s) occur more than once "
                        f"({int(twice.sum())} rows), e.g. {examples}")
    return ids


def _null_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].isna().to_numpy() for c in frame.columns}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class FeatureEncoder:
    """The vocabularies and bucket edges that turn feature columns into global value indices.

    Saved with a model (`get_config`, `from_config`) so that new items are encoded the same
    way later. Global value indices: column `c`'s local index plus `column_offsets[c]`.

    Attributes:
        columns: the feature columns, in the order of the value space.
        encodings: column -> 'categorical', 'multi' or 'numeric:N'.
        vocabularies: column -> its values in index order (text values for categorical and
            multi columns, bucket labels for numeric ones).
        edges: numeric column -> the inner bucket edges (bucket k: edges[k-1] <= x < edges[k]).
    """

    columns: tuple[str, ...]
    encodings: dict[str, str]
    vocabularies: dict[str, tuple[str, ...]]
    edges: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def column_offsets(self) -> dict[str, int]:
        """Column -> the global index of its first value."""
        sizes = np.cumsum([0] + [len(self.vocabularies[c]) for c in self.columns])
        return {c: int(s) for c, s in zip(self.columns, sizes)}

    @property
    def n_values(self) -> int:
        """Size of the global value space (all columns' vocabularies together)."""
        return sum(len(self.vocabularies[c]) for c in self.columns)

    def vocabulary(self, column: str) -> dict[str, int]:
        """Column's feature value (or bucket label) -> its local index."""
        return {v: i for i, v in enumerate(self.vocabularies[column])}

    def get_config(self) -> dict:
        """A JSON-serialisable description; `from_config` rebuilds the encoder from it."""
        return {"columns": list(self.columns), "encodings": dict(self.encodings),
                "vocabularies": {c: list(self.vocabularies[c]) for c in self.columns
                                 if not self.encodings[c].startswith("numeric")},
                "edges": {c: list(e) for c, e in self.edges.items()}, "separator": SEPARATOR}

    @classmethod
    def from_config(cls, config: dict) -> "FeatureEncoder":
        """The encoder `get_config` described."""
        try:
            columns = tuple(config["columns"])
            encodings = {c: _parse_encoding(config["encodings"][c], c, "item features config")
                         for c in columns}
            edges = {c: tuple(float(x) for x in config["edges"][c])
                     for c in columns if encodings[c].startswith("numeric")}
            vocabularies = {c: _bucket_labels(edges[c]) if c in edges
                            else tuple(str(v) for v in config["vocabularies"][c]) for c in columns}
        except (KeyError, TypeError) as e:
            raise DataError(f"item features config: missing or malformed entry {e}") from None
        return cls(columns, encodings, vocabularies, edges)

    @classmethod
    def fit(cls, cells: dict[str, list], encodings: dict[str, str], source: str) -> "FeatureEncoder":
        """Vocabularies (sorted values) and quantile bucket edges of the given columns."""
        vocabularies, edges = {}, {}
        for c, encoding in encodings.items():
            _, values = _tokens(cells[c], encoding, c, source)
            if encoding.startswith("numeric"):
                edges[c] = _bucket_edges(values, _buckets(encoding))
                vocabularies[c] = _bucket_labels(edges[c])
            else:
                vocabularies[c] = tuple(sorted(set(values.tolist())))
        return cls(tuple(encodings), dict(encodings), vocabularies, edges)

    def extend(self, cells: dict[str, list], source: str) -> "FeatureEncoder":
        """This encoder with the categorical and multi values of `cells` that it lacks
        appended to their column's vocabulary (sorted); numeric bucket edges are kept.
        Known values keep their local index, so a trained value embedding stays valid
        (`value_index_in`)."""
        vocabularies = dict(self.vocabularies)
        for c in self.columns:
            if c not in self.edges:
                _, values = _tokens(cells[c], self.encodings[c], c, source)
                known = set(self.vocabularies[c])
                vocabularies[c] = self.vocabularies[c] + tuple(sorted(set(values.tolist()) - known))
        return FeatureEncoder(self.columns, dict(self.encodings), vocabularies, dict(self.edges))

    def extension_problem(self, other: "FeatureEncoder") -> str | None:
        """Why `other` does not extend this encoder (None if it does): it must have the
        same columns, encodings and bucket edges, each vocabulary starting with this one's."""
        if tuple(other.columns) != tuple(self.columns):
            return f"columns {list(other.columns)}, the model's are {list(self.columns)}"
        for c in self.columns:
            if other.encodings[c] != self.encodings[c]:
                return f"column {c!r} is {other.encodings[c]}, the model's is {self.encodings[c]}"
        for c in self.columns:
            if tuple(other.edges.get(c, ())) != tuple(self.edges.get(c, ())):
                return f"column {c!r} has other bucket edges than the model's"
            if tuple(other.vocabularies[c][:len(self.vocabularies[c])]) != tuple(self.vocabularies[c]):
                return f"column {c!r} numbers its values otherwise than the model"
        return None

    def value_index_in(self, other: "FeatureEncoder") -> np.ndarray:
        """Where each of this encoder's global values lies in `other`, which extends it
        [M_self] (columns' offsets move when an earlier column's vocabulary grows).

        Raises:
            ValueError: `other` does not extend this encoder (`extension_problem`).
        """
        problem = self.extension_problem(other)
        if problem:
            raise ValueError(problem)
        offsets = other.column_offsets
        return np.concatenate([offsets[c] + np.arange(len(self.vocabularies[c])) for c in self.columns]
                              + [np.zeros(0, np.int64)]).astype(np.int64)

    def encode_cells(self, ids: np.ndarray, cells: dict[str, list], source: str) -> "ItemFeatures":
        """Items `ids` with their columns' `cells` (see `_cells`) -> `ItemFeatures`."""
        all_rows, all_values, unseen = [], [], {}
        offsets = self.column_offsets
        for c in self.columns:
            rows, values = _tokens(cells[c], self.encodings[c], c, source)
            if c in self.edges:
                local = np.searchsorted(np.asarray(self.edges[c], dtype=np.float64), values, side="right")
            else:
                vocab = self.vocabulary(c)
                local = np.array([vocab.get(v, -1) for v in values.tolist()], dtype=np.int64)
            seen = local >= 0
            unseen[c] = int((~seen).sum())  # unseen values are dropped: no feature, not an error
            all_rows.append(rows[seen])
            all_values.append(local[seen] + offsets[c])
        rows = np.concatenate(all_rows) if all_rows else np.zeros(0, np.int64)
        values = np.concatenate(all_values) if all_values else np.zeros(0, np.int64)
        order = np.lexsort((values, rows))  # per item, ascending global index
        counts = np.bincount(rows, minlength=len(ids))
        return ItemFeatures(ids=ids, values=values[order].astype(np.int32),
                            offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
                            encoder=self, unseen=unseen, source=source)

    def encode(self, frame: pd.DataFrame, source: str = "frame") -> "ItemFeatures":
        """New rows (an `ItemId` column and this encoder's columns; others are ignored)
        encoded with these vocabularies and bucket edges.

        Missing values (None/NaN) and empty strings are no value. Values not in a
        vocabulary map to nothing and are counted in `ItemFeatures.unseen`; numbers beyond
        the edges fall in the first or last bucket.

        Raises:
            DataError: missing columns, missing or duplicate ItemIds, or cells that are not
                finite numbers in a numeric column.
        """
        missing = [c for c in (ID, *self.columns) if c not in frame.columns]
        if missing:
            raise DataError(f"{source}: missing column(s) {missing}; the item features need "
                            f"{[ID, *self.columns]}")
        nulls = _null_masks(frame)
        ids = _check_ids(frame, nulls[ID], source)
        cells = {c: _cells(frame[c], nulls[c]) for c in self.columns}
        return self.encode_cells(ids, cells, source)


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """Items with their encoded features, as CSR: item i's global feature-value indices are
    `values[offsets[i]:offsets[i + 1]]` (ascending, each at most once).

    Attributes:
        ids: item ids in file order (int64, or str as `reading` types ItemIds).
        values: int32 [nnz], global feature-value indices, in [0, n_values).
        offsets: int64 [n_items + 1].
        encoder: the vocabularies and bucket edges (`FeatureEncoder`).
        unseen: column -> values not in its vocabulary (dropped); zeros for the table the
            vocabularies were built from.
        source: where the rows came from, for messages.
    """

    ids: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    encoder: FeatureEncoder
    unseen: dict[str, int] = field(default_factory=dict)
    source: str = "item features"

    def __post_init__(self):
        for a in (self.ids, self.values, self.offsets):
            _readonly(a)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_items(self) -> int:
        return len(self.ids)

    @property
    def n_values(self) -> int:
        """Size of the global value space."""
        return self.encoder.n_values

    @property
    def columns(self) -> tuple[str, ...]:
        return self.encoder.columns

    @property
    def encodings(self) -> dict[str, str]:
        return self.encoder.encodings

    @property
    def vocabularies(self) -> dict[str, dict[str, int]]:
        """Column -> {feature value (bucket label for numeric columns): local index}."""
        return {c: self.encoder.vocabulary(c) for c in self.columns}

    @property
    def column_offsets(self) -> dict[str, int]:
        return self.encoder.column_offsets

    @property
    def shape(self) -> tuple[int, int]:
        """(M values, L: the most values of one item, at least 1), as the model sizes them."""
        return self.n_values, max(int(np.diff(self.offsets).max(initial=0)), 1)

    def item_values(self, i: int) -> np.ndarray:
        """Global feature-value indices of the item in row `i`."""
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def get_config(self) -> dict:
        """The encoder's JSON-serialisable description (`FeatureEncoder.from_config`)."""
        return self.encoder.get_config()

    def encode(self, frame: pd.DataFrame, source: str = "frame") -> "ItemFeatures":
        """New rows encoded with these vocabularies and edges (`FeatureEncoder.encode`)."""
        return self.encoder.encode(frame, source)

    def align(self, item_map: ItemMap) -> "AlignedFeatures":
        """The features in model order: `item_map`'s items by index, then the items with a
        feature row that `item_map` lacks (never clicked: cold-start items), in file order.

        Ids match as `ItemMap.lookup` matches them. Items of `item_map` without a feature row
        get no features and are reported in `AlignedFeatures.missing_ids`.

        Raises:
            DataError: two feature rows are the same item of `item_map` (e.g. '7' and '07'
                against integer ids).
        """
        index = item_map.lookup(self.ids)
        known = np.flatnonzero(index >= 0)
        rows = np.full(len(item_map), -1, dtype=np.int64)
        rows[index[known]] = known
        if len(np.unique(index[known])) < len(known):
            first = pd.Series(index[known]).duplicated(keep=False).to_numpy()
            same = self.ids[known[first]].tolist()[:2]
            raise DataError(f"{self.source}: {ID} values {same[0]!r} and {same[1]!r} are the same "
                            "item of the item map")
        cold = np.flatnonzero(index < 0)
        order = np.r_[rows, cold]
        # Items without a row take the extra last entry: an empty row.
        order = np.where(order >= 0, order, len(self))
        starts = np.r_[self.offsets[:-1], 0][order]
        lengths = np.r_[np.diff(self.offsets), 0][order]
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        # Gather the CSR rows in the new order without a Python loop.
        gather = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - starts, lengths)
        ids = np.concatenate([item_map.ids, self.ids[cold]])
        features = ItemFeatures(ids=ids, values=self.values[gather].astype(np.int32),
                                offsets=offsets, encoder=self.encoder, unseen=dict(self.unseen),
                                source=self.source)
        return AlignedFeatures(features=features, n_known=len(item_map),
                               missing_ids=_readonly(item_map.ids[rows < 0].copy()))


@dataclass(frozen=True, eq=False)
class AlignedFeatures:
    """Item features in model order (`ItemFeatures.align`).

    Attributes:
        features: rows 0..n_known-1 are the item map's items by index, then the cold-start
            items (a feature row, not in the item map).
        n_known: items of the item map.
        missing_ids: ids of the item map's items without a feature row (no features).
    """

    features: ItemFeatures
    n_known: int
    missing_ids: np.ndarray

    @property
    def cold_ids(self) -> np.ndarray:
        """Ids of the cold-start items, the rows after `n_known`, in file order."""
        return self.features.ids[self.n_known:]

    @property
    def n_cold(self) -> int:
        return len(self.features) - self.n_known

    @property
    def n_missing(self) -> int:
        return len(self.missing_ids)

    @property
    def unseen(self) -> dict[str, int]:
        return self.features.unseen

    def summary(self) -> str:
        """One line: items with and without features, cold-start items."""
        return (f"item features: {self.n_known - self.n_missing:,} of {self.n_known:,} items have "
                f"a feature row ({self.n_missing:,} without: no features); "
                f"{self.n_cold:,} cold-start item(s) with features only")


def _read_table(path: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The table and each column's mask of missing cells (empty text cells, Parquet nulls;
    a Parquet NaN is a value, which a numeric column then rejects)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise DataError(f"{path}: unsupported file extension {ext!r} (expected .tsv, .csv or .parquet)")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if FORMATS[ext] is None:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            # Arrow's own null masks: to_pandas would turn nulls of a float column into NaN.
            nulls = {name: table.column(name).is_null().to_numpy(zero_copy_only=False)
                     for name in table.column_names}
            frame = table.to_pandas()
        else:
            # All text, no NA guessing: 'NA' or 'null' may be real values; empty means none.
            frame = pd.read_csv(path, sep=FORMATS[ext], dtype=str, keep_default_na=False,
                                na_filter=False)
            nulls = {c: (frame[c].str.strip() == "").to_numpy() for c in frame.columns}
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as e:  # pyarrow's errors are both kinds
        raise DataError(f"{path}: cannot be read ({str(e).splitlines()[0]})") from None
    return frame, nulls


def read_item_features(path: str | os.PathLike, columns: Sequence[str] | None = None,
                       encodings: Mapping[str, str] | None = None,
                       encoder: FeatureEncoder | None = None) -> ItemFeatures:
    """Reads and encodes an item-features table: an `ItemId` column plus feature columns.

    The format follows the extension: `.tsv` (tab-separated), `.csv`, `.parquet` (or `.pq`).
    Vocabularies are the column's distinct values, sorted; numeric columns are bucketed at
    quantiles of their values (see the module docstring for the encodings and the rule that
    infers one).

    Args:
        path: the table.
        columns: the feature columns to use, in this order (default: all but ItemId, in
            file order).
        encodings: column -> 'categorical', 'multi', 'numeric' or 'numeric:N'; columns not
            named are inferred.
        encoder: encode as this encoder does (a trained model's `feature_encoder`, for a
            warm start): its columns and encodings, its bucket edges, its vocabularies
            with the table's new values appended (`FeatureEncoder.extend`). Excludes
            `columns` and `encodings`.

    Returns:
        The items in file order with their encoded features.

    Raises:
        DataError: a missing or empty file, an unsupported extension, no ItemId column,
            missing or duplicate ItemIds, unknown columns or encodings, or cells that are not
            finite numbers in a numeric column. One line, naming the file and the column.
    """
    path = os.fspath(path)
    frame, nulls = _read_table(path)
    if ID not in frame.columns:
        raise DataError(f"{path}: no {ID} column; found {list(frame.columns)}")
    available = [c for c in frame.columns if c != ID]
    if not available:
        raise DataError(f"{path}: no feature columns, only {ID}")
    if len(frame) == 0:
        raise DataError(f"{path}: the table has no rows")
    if encoder is not None:
        if columns is not None or encodings:
            raise DataError(f"{path}: give an encoder or columns and encodings, not both (the "
                            "encoder's columns and encodings are kept)")
        columns, encodings = list(encoder.columns), dict(encoder.encodings)
    if isinstance(columns, str):
        columns = [columns]
    selected = available if columns is None else list(dict.fromkeys(columns))
    unknown = [c for c in selected if c not in available]
    if unknown:
        named = "columns" if encoder is None else "the encoder (the model's feature columns)"
        raise DataError(f"{path}: unknown column(s) {unknown} in {named}; available: {available}")
    if not selected:
        raise DataError(f"{path}: columns selects no feature column; available: {available}")
    encodings = dict(encodings or {})
    unknown = [c for c in encodings if c not in available]
    if unknown:
        raise DataError(f"{path}: unknown column(s) {unknown} in encodings; available: {available}")
    unselected = [c for c in encodings if c not in selected]
    if unselected:
        raise DataError(f"{path}: encodings name column(s) {unselected} that columns does not "
                        f"select ({selected})")
    given = {c: _parse_encoding(e, c, path) for c, e in encodings.items()}
    ids = _check_ids(frame, nulls[ID], path)
    cells = {c: _cells(frame[c], nulls[c]) for c in selected}
    chosen = {c: given.get(c) or _infer(cells[c], pd.api.types.is_numeric_dtype(frame[c])
                                        and not pd.api.types.is_bool_dtype(frame[c]))
              for c in selected}
    encoder = FeatureEncoder.fit(cells, chosen, path) if encoder is None else encoder.extend(cells, path)
    return encoder.encode_cells(ids, cells, path)
