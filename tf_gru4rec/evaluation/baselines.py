"""The baselines GRU4Rec is compared against: Pop, SessionPop, item-kNN and, for cold-start
items, FeatureOverlap.

Each baseline is fitted on the training rows and scores ALL training items for every
test event, exactly like the model (FeatureOverlap: all items of its item features, the
training items and then the cold-start items): `evaluate_baseline` maps the test data with
the baseline's item map (the training data's, or FeatureOverlap's catalogue, so unknown
test items are skipped and counted the same way), picks the scored events with
`protocols.scored_inputs` (same protocols) and sums the metrics with `metrics.Accumulator`
(same tie modes, same metrics). Everything is vectorised: a batch of b test events is
scored as one dense float64 [b, N] array.

Scores of the test event at position p of a session that starts at position s
(`items` = the test session's known items, `supp` = training clicks per item):

    Pop         score(j) = supp_j
    SessionPop  score(j) = count of j in items[s..p] * (max(supp) + 1) + supp_j
                (= (max(supp) + 1) * (session count + supp_j / (max(supp) + 1)): the
                session count decides, global popularity breaks its ties; kept integral
                so ties are exact)
    ItemKNN     score(j) = sim(items[p], j), 0 outside the last item's neighbours
    FeatureOverlap
                score(j) = cos(x_j, sum of x_i over items[s..p]), x_i = item i's binary
                feature-value vector (with tie_break="pop": levels of that cosine scaled
                like SessionPop's counts, + supp_j)

Example:
    >>> knn = ItemKNN().fit(train_df)
    >>> evaluate_baseline(knn, test_df)["recall@20"]
"""

from __future__ import annotations

import itertools
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tf_gru4rec.data.item_features import ItemFeatures
from tf_gru4rec.data.item_map import ItemMap
from tf_gru4rec.data.sessions import SessionData
from tf_gru4rec.evaluation.evaluator import Accumulator, as_session_data, check_options, scored_inputs


def prediction_events(offsets: np.ndarray, protocol: str = "next"):
    """The events whose prediction the protocol scores: (session starts [E], positions [E]).

    For sessions `items[offsets[k]:offsets[k+1]]` the target of the event at `positions[e]`
    is the event after it; E = n_events - n_sessions with "next", n_sessions with "last"
    (see `protocols.scored_inputs`).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    positions = np.flatnonzero(scored_inputs(offsets, protocol))
    starts = offsets[np.searchsorted(offsets, positions, side="right") - 1]
    return starts, positions


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[k], starts[k] + lengths[k]) over k."""
    begin = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + np.arange(lengths.sum()) - begin


def _powers(base: np.ndarray, exponent: float) -> np.ndarray:
    """base ** exponent element-wise with the C library's scalar pow.

    numpy's SIMD pow differs from it in the last bit for some inputs, and by CPU; the
    scalar one gives the same similarities (and so the same ties) on every machine.
    """
    return np.array([b**exponent for b in base.tolist()], dtype=np.float64)


class Baseline:
    """Base of the baselines: `fit` keeps the item map and supports, `score` ranks items.

    Attributes (after `fit`):
        item_map: the training data's item map (indices of all scores).
        support: float64 [N], training clicks per item.
    """

    name = "baseline"

    def __init__(self):
        self.item_map = None
        self.support = None

    def fit(self, train) -> Baseline:
        """Fits on training rows (DataFrame with SessionId, ItemId, Time) or SessionData.

        Rows go through `SessionData.from_frame` as for GRU4Rec's training (sessions of one
        event are dropped), so a baseline and a model fitted on the same rows share their
        item map.
        """
        if not isinstance(train, SessionData):
            if not isinstance(train, pd.DataFrame):
                raise TypeError(
                    "`train` should be a pandas DataFrame or SessionData. "
                    f"Received: `train` of type {type(train).__name__}."
                )
            train = SessionData.from_frame(train, source="training data")
        self.item_map = train.item_map
        self.support = train.support()
        self._fit(train)
        return self

    def _fit(self, data: SessionData):
        """Model-specific fitting (nothing beyond the supports by default)."""

    def score(self, items: np.ndarray, starts: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Scores of all N items after the events `items[positions]`: float64 [b, N].

        Args:
            items: int [n_events] item indices of the test sessions, back to back.
            starts: int [b] first position of each event's session.
            positions: int [b] position of each event (the session so far is
                items[starts[k] : positions[k] + 1]).
        """
        raise NotImplementedError


class Pop(Baseline):
    """Global popularity: score(j) = training clicks of j, the same for every event."""

    name = "Pop"

    def score(self, items, starts, positions):
        return np.broadcast_to(self.support, (len(positions), len(self.support)))


class SessionPop(Baseline):
    """Popularity within the session so far, ties broken by global popularity.

    score(j) = n_j * (max_supp + 1) + supp_j, n_j = clicks of j in the session up to and
    including the current event; i.e. n_j + supp_j / (max_supp + 1) scaled to integers.
    """

    name = "SessionPop"

    def score(self, items, starts, positions):
        scores = np.tile(self.support, (len(positions), 1))
        lengths = positions - starts + 1
        rows = np.repeat(np.arange(len(positions)), lengths)
        np.add.at(scores, (rows, items[_ranges(starts, lengths)]), self.support.max() + 1.0)
        return scores


class ItemKNN(Baseline):
    """Item-to-item kNN: recommends the items most similar to the session's last item.

        sim(i, j) = C_ij / ((supp_i + lambda)^alpha * (supp_j + lambda)^(1 - alpha)),
        C_ij = sum over training sessions s of n_is * n_js  (i != j; sim(i, i) = 0)

    with n_is the clicks of i in session s and supp_i the training clicks of i. C counts
    co-occurring EVENT pairs, as the reference baseline does (an item clicked twice in a
    session counts twice). For each item i only the `n_neighbors` largest sim(i, .) are
    kept (ties at the cut: smaller item index first); every other item scores 0. Row i
    is the query (last) item, so with alpha != 0.5 the similarity is asymmetric.

    Stored like a CSR matrix: the neighbours of item i are `neighbors[indptr[i]:indptr[i+1]]`
    with similarities `similarity[indptr[i]:indptr[i+1]]`, most similar first.

    Args:
        n_neighbors: neighbours kept per item (100).
        lambda_: support regularisation (20).
        alpha: exponent balancing the two supports (0.5: cosine-like).
        max_pairs: event pairs expanded at once while counting co-occurrences (memory
            bound; sessions are processed in chunks of about this many pairs).
    """

    name = "Item-kNN"

    def __init__(self, n_neighbors=100, lambda_=20.0, alpha=0.5, max_pairs=20_000_000):
        super().__init__()
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
            raise ValueError(
                f"`n_neighbors` should be a positive int. Received: `n_neighbors` = {n_neighbors!r}."
            )
        if not lambda_ >= 0:
            raise ValueError(f"`lambda_` should be >= 0. Received: `lambda_` = {lambda_!r}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` should be in [0, 1]. Received: `alpha` = {alpha!r}.")
        if int(max_pairs) < 1:
            raise ValueError(f"`max_pairs` should be a positive int. Received: `max_pairs` = {max_pairs!r}.")
        self.n_neighbors = int(n_neighbors)
        self.lambda_ = float(lambda_)
        self.alpha = float(alpha)
        self.max_pairs = int(max_pairs)

    def _fit(self, data):
        n = len(self.item_map)
        i, j, count = self._cooccurrence(data, n)
        left = _powers(self.support + self.lambda_, self.alpha)  # [N], per query item
        right = _powers(self.support + self.lambda_, 1.0 - self.alpha)  # [N], per candidate
        sim = count / (left[i] * right[j])
        order = np.lexsort((j, -sim, i))  # by row, then most similar, then smaller index
        i, j, sim = i[order], j[order], sim[order]
        rank = np.arange(len(i)) - np.searchsorted(i, i)  # position within the row
        keep = rank < self.n_neighbors
        self.neighbors = j[keep].astype(np.int32)
        self.similarity = sim[keep]
        self.indptr = np.r_[0, np.cumsum(np.bincount(i[keep], minlength=n))].astype(np.int64)

    def _cooccurrence(self, data, n):
        """Non-zero C_ij, i != j: (i [P], j [P], count float64 [P]), sorted by (i, j).

        All event pairs of a session are expanded (sum of length^2 pairs), in chunks of
        whole sessions of at most about `max_pairs` pairs; counts are merged by key i*N+j.
        """
        lengths = np.diff(data.offsets)
        chunk = np.cumsum(lengths.astype(np.int64) ** 2) // self.max_pairs  # per session
        bounds = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1, len(lengths)]
        keys, counts = [], []
        for lo, hi in itertools.pairwise(bounds):
            start, length = data.offsets[lo:hi], lengths[lo:hi]
            per_event = np.repeat(length, length)  # each event is paired with its session's
            a = data.items[np.repeat(_ranges(start, length), per_event)]
            b = data.items[_ranges(np.repeat(start, length), per_event)]
            key = a.astype(np.int64)[a != b] * n + b[a != b]
            k, cnt = np.unique(key, return_counts=True)
            keys.append(k)
            counts.append(cnt)
        key, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        count = np.bincount(inverse, weights=np.concatenate(counts).astype(np.float64))
        return key // n, key % n, count

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Dense similarity rows sim(query[k], .) of item indices query [b]: float64 [b, N]."""
        query = np.asarray(query, dtype=np.int64)
        lengths = self.indptr[query + 1] - self.indptr[query]
        flat = _ranges(self.indptr[query], lengths)
        scores = np.zeros((len(query), len(self.item_map)))
        scores[np.repeat(np.arange(len(query)), lengths), self.neighbors[flat]] = self.similarity[flat]
        return scores

    def score(self, items, starts, positions):
        return self.similarities(items[positions])


class FeatureOverlap(Baseline):
    """Content baseline: ranks items by the overlap of their feature values with the session's.

    With x_j the binary vector of item j's feature values (`ItemFeatures` rows, M values)
    and the session profile p = sum of x_i over the session's events so far (a plain sum:
    every click counts once, repeats again, no recency weighting, like SessionPop's counts):

        cos(j) = (p . x_j) / (|p| |x_j|),  0 when j or the session has no feature value

    p . x_j, |p|^2 and |x_j|^2 are integers, and cos(j) is computed as
    sqrt((p . x_j)^2 / (|p|^2 |x_j|^2)): mathematically equal cosines are equal floats, so
    the tie modes see exact ties. The session's own items are not excluded (they share all
    their values, as SessionPop scores them too).

    The catalogue is every row of `features`: `fit` replaces the training item map with the
    features' ids, so that test clicks on cold-start items (a feature row, no training
    click) are scored and counted instead of skipped; their support is 0. Not in
    `BASELINES` (whose classes are built without arguments): it needs the features.

    Scores are the sparse products p . x_j of each event's profile with the items holding
    its values (a value -> items index), never a dense [N, M] matrix.

    Example:
        >>> train = SessionData.from_frame(train_df)
        >>> aligned = read_item_features("items.tsv").align(train.item_map)
        >>> evaluate_baseline(FeatureOverlap(aligned.features).fit(train), test_df)

    Args:
        features: `ItemFeatures` in the order of the catalogue, training items first, by
            index (`ItemFeatures.align(train_item_map).features`).
        tie_break: "pop": ties of the cosine are broken by training clicks, never more:
            score(j) = level(j) * (max_supp + 1) + supp_j, with level(j) the number of
            distinct positive cosines of the event that are <= cos(j) (0 for cos 0); kept
            integral like SessionPop's scores. Items without a feature value then score
            supp_j. None: score(j) = cos(j).
        max_entries: (event, item) products expanded at once while scoring (memory bound:
            a few int64 and float64 arrays of that length; the events of a batch are
            processed in chunks of about this many products, one event at least).
    """

    name = "FeatureOverlap"

    def __init__(self, features: ItemFeatures, tie_break="pop", max_entries=4_000_000):
        super().__init__()
        if not isinstance(features, ItemFeatures):
            raise TypeError(
                "`features` should be an ItemFeatures (of an AlignedFeatures: its `.features`). "
                f"Received: `features` of type {type(features).__name__}."
            )
        if tie_break not in ("pop", None):
            raise ValueError(f'`tie_break` should be "pop" or None. Received: `tie_break` = {tie_break!r}.')
        if int(max_entries) < 1:
            raise ValueError(
                f"`max_entries` should be a positive int. Received: `max_entries` = {max_entries!r}."
            )
        self.features = features
        self.tie_break = tie_break
        self.max_entries = int(max_entries)
        n, values = len(features), features.values.astype(np.int64)
        self.row_values = values  # [nnz], CSR item -> values, rows `features.offsets`
        self.n_row_values = np.diff(features.offsets)  # [N], |x_j|^2
        item = np.repeat(np.arange(n), self.n_row_values)  # [nnz], the row of each entry
        order = np.argsort(values, kind="stable")  # CSC: value -> items, ascending item
        self.column_items = item[order]  # [nnz]
        self.column_offsets = np.r_[0, np.cumsum(np.bincount(values, minlength=features.n_values))]  # [M + 1]

    def _fit(self, data):
        known, ids = self.item_map.ids, self.features.ids
        n = len(known)
        if len(ids) < n:
            raise ValueError(f"`features` has {len(ids)} rows, fewer than the {n} items of the training "
                             "item map; pass `features.align(train_item_map).features`.")
        bad = np.flatnonzero(self.item_map.lookup(ids[:n]) != np.arange(n))  # matched as `align` does
        if len(bad):
            r = bad[0]
            got, want = ids[r:r + 1].tolist()[0], known[r:r + 1].tolist()[0]  # Python ints or str
            raise ValueError(f"`features` row {r} is item {got!r}, the training item map's item {r} is "
                             f"{want!r}: the first rows should be the item map's items by index; pass "
                             "`features.align(train_item_map).features`.")
        self.item_map = ItemMap(ids)
        self.support = np.r_[self.support, np.zeros(len(ids) - n)]

    def profiles(self, items: np.ndarray, starts: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Session profiles p, the summed feature-value vectors of the events so far: float64 [b, M]."""
        lengths = positions - starts + 1
        clicked = items[_ranges(starts, lengths)]  # [sum of lengths]
        per_click = self.n_row_values[clicked]
        rows = np.repeat(np.repeat(np.arange(len(positions)), lengths), per_click)
        values = self.row_values[_ranges(self.features.offsets[clicked], per_click)]
        m = self.features.n_values
        return np.bincount(rows * m + values, minlength=len(positions) * m).astype(np.float64).reshape(-1, m)

    def cosines(self, items, starts, positions) -> np.ndarray:
        """cos(j) of every catalogue item j for each event (arguments of `score`): float64 [b, N]."""
        profile = self.profiles(items, starts, positions)  # [b, M]
        n = len(self.features)
        dot = np.empty((len(positions), n))  # [b, N], p . x_j; every row is written below
        event, value = np.nonzero(profile)
        weight = profile[event, value]
        df = np.diff(self.column_offsets)[value]  # items holding each profile value
        # Events in chunks of about max_entries (event, item) products (whole events).
        chunk = np.cumsum(np.bincount(event, weights=df, minlength=len(positions))) // self.max_entries
        bounds = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1, len(positions)]
        for lo, hi in itertools.pairwise(bounds):
            sel = slice(np.searchsorted(event, lo), np.searchsorted(event, hi))  # np.nonzero: row order
            item = self.column_items[_ranges(self.column_offsets[value[sel]], df[sel])]
            key = (np.repeat(event[sel], df[sel]) - lo) * n + item
            dot[lo:hi] = np.bincount(key, weights=np.repeat(weight[sel], df[sel]),
                                     minlength=(hi - lo) * n).reshape(hi - lo, n)
        # |p| or |x_j| is 0 only where p . x_j is: dividing by 1 there keeps the 0. One
        # division of integers, so equal cosines stay equal floats.
        dot *= dot
        dot /= np.outer(np.maximum((profile * profile).sum(axis=1), 1.0), np.maximum(self.n_row_values, 1))
        return np.sqrt(dot, out=dot)

    def score(self, items, starts, positions):
        cos = self.cosines(items, starts, positions)
        if self.tie_break is None:
            return cos
        order = np.argsort(cos, axis=1, kind="stable")
        ranked = np.take_along_axis(cos, order, axis=1)
        # A new level at each positive cosine greater than the one before it.
        new = (ranked > 0) & (np.diff(ranked, axis=1, prepend=0.0) > 0)
        level = np.empty_like(cos)
        np.put_along_axis(level, order, np.cumsum(new, axis=1), axis=1)
        return level * (self.support.max() + 1.0) + self.support


BASELINES = {"pop": Pop, "session-pop": SessionPop, "itemknn": ItemKNN}


def evaluate_baseline(model: Baseline, test, cutoffs=(1, 5, 10, 20), mode="conservative",
                      batch_size=512, verbose=0, progress=None, protocol="next", coverage=False,
                      popularity=None) -> dict:
    """The metrics of a fitted baseline on `test`, exactly as `evaluation.evaluate`.

    Args:
        model: a fitted `Baseline`.
        test: test rows (DataFrame) or SessionData built with `model.item_map`.
        cutoffs: the k of the metrics.
        mode: tie handling, one of `protocols.TIE_MODES`.
        batch_size: test events scored at once (memory: 8 * batch_size * N bytes).
        verbose: 1 shows a Keras progress bar.
        progress: optional `progress(done, total)` callback in events, called before the
            first batch and after every batch (e.g. to draw one's own progress bar instead).
        protocol, coverage, popularity: as for `evaluation.Evaluator` (e.g.
            `popularity=model.support` for Popularity@k).

    Returns:
        The keys of `evaluation.evaluate`: recall@k, mrr@k, ndcg@k (and coverage@k,
        popularity@k) for every k, n_events, skipped_unknown, skipped_sessions, eval_seconds.
    """
    if model.item_map is None:
        raise ValueError(f"{type(model).__name__} is not fitted: call `fit(train)` first.")
    check_options(mode, protocol)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` should be a positive int. Received: `batch_size` = {batch_size!r}.")
    metrics = Accumulator(cutoffs, mode, len(model.item_map), coverage, popularity)
    start_time = time.perf_counter()
    data = as_session_data(test, model.item_map)
    starts, positions = prediction_events(data.offsets, protocol)
    targets = data.items[positions + 1]
    sums, best = metrics.initial()
    bar = keras.utils.Progbar(len(positions), verbose=verbose, unit_name="event")
    if progress is not None:
        progress(0, len(positions))
    for s in range(0, len(positions), int(batch_size)):
        batch = slice(s, s + int(batch_size))
        scores = model.score(data.items, starts[batch], positions[batch])
        sums, best = metrics.add(sums, best, scores, targets[batch], tf.ones(len(scores), tf.bool))
        bar.add(len(scores))
        if progress is not None:
            progress(s + len(scores), len(positions))
    return metrics.result(
        sums, best, len(positions),
        {
            "skipped_unknown": data.skipped_unknown,
            "skipped_sessions": data.skipped_sessions,
            "eval_seconds": time.perf_counter() - start_time,
        },
    )
