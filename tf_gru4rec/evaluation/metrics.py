"""Ranks and metrics of scored events.

Rank of the target with ties (`protocols.TIE_MODES`):
    standard     = 1 + #(score > target)
    conservative = #(score >= target)                  (the default: ties rank it last)
    median       = 1 + #(>) + (#(==) - 1) / 2          (x.5 for an even number of ties)
Per scored event, with that rank r (one relevant item, so the ideal DCG is 1):
    Recall@k = [r <= k],  MRR@k = [r <= k] / r,  NDCG@k = [r <= k] / log2(r + 1)
all micro averaged over events. A median rank of x.5 enters MRR and NDCG as it is (the same
formula at a fractional rank, not an average over orderings of the tied items).

Beyond accuracy (optional: they need the top-k lists, computed in the same compiled loop):
    Coverage@k   = #(distinct items in any top-k list) / N
    Popularity@k = mean over events of the mean popularity of the k items recommended,
                   popularity = training clicks / the most clicked item's (session-rec's)
The top-k list is what `Recommender.recommend` returns: `tf.math.top_k` of all N scores, ties
broken by the smaller item index; it does not depend on the tie mode.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gru4rec.evaluation.protocols import check_options

#: The rank metrics, in the order of the rows of `metric_sums`.
RANK_METRICS = ("recall", "mrr", "ndcg")
_NO_POSITION = np.iinfo(np.int32).max  # an item not recommended yet (see `recommended_positions`)


def target_ranks(scores, targets, mode="conservative"):
    """Rank of each row's target among all columns: scores [b, N], targets [b] -> float32 [b].

    Non-finite scores never make a hit: a NaN or infinite target score ranks +inf (a
    miss at every cutoff), and a NaN score of another item counts as above the target.
    """
    check_options(mode)
    target = tf.gather(scores, targets, batch_dims=1)[:, None]

    def count(mask):
        return tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)

    # Comparisons written as "not below" so that a NaN score counts as above the target.
    if mode == "conservative":  # one pass over the scores: the target counts itself
        ranks = count(~(scores < target))
    else:
        greater = count(~(scores <= target))
        ranks = 1.0 + greater if mode == "standard" else (
            1.0 + greater + (count(scores == target) - 1.0) / 2.0)
    return tf.where(tf.math.is_finite(target[:, 0]), ranks, np.inf)


def metric_sums(ranks, valid, cutoffs):
    """Sums over the valid rows per cutoff: float64 [3, C], rows `RANK_METRICS` (hits,
    reciprocal ranks, DCG). Summed in float64 so that results do not depend on how rows
    are batched; an infinite rank adds 0 everywhere."""
    valid = tf.cast(valid, tf.float64)
    ranks = tf.cast(ranks, tf.float64)
    gain = tf.stack([tf.ones_like(ranks), 1.0 / ranks, 1.0 / (tf.math.log(ranks + 1.0) / np.log(2.0))])
    return tf.stack([tf.reduce_sum(gain * tf.cast(ranks <= k, tf.float64) * valid, axis=1)
                     for k in cutoffs], axis=1)


def top_lists(scores, cutoffs):
    """The top-max(cutoffs) item indices of every row, best first: int32 [b, min(max k, N)]
    (`tf.math.top_k`: ties broken by the smaller index, as `Recommender.recommend`)."""
    return tf.math.top_k(scores, k=min(max(cutoffs), scores.shape[1])).indices


def popularity_sums(top, valid, popularity, cutoffs):
    """Sum over the valid rows of each top-k list's mean popularity: float64 [C].

    `popularity`: float64 [N], normalised (`normalised_popularity`); a list holds
    min(k, N) items."""
    cumulative = tf.cumsum(tf.gather(popularity, top), axis=1)  # [b, L]
    valid = tf.cast(valid, tf.float64)
    width = top.shape[1]
    return tf.stack([tf.reduce_sum(cumulative[:, min(k, width) - 1] * valid) / min(k, width)
                     for k in cutoffs])


def recommended_positions(best, top, valid):
    """Updates `best` (int32 [N]): the best 0-based list position at which each item has
    been recommended to a valid row so far (`_NO_POSITION` if never). Coverage@k is then
    mean(best < k): one [N] vector serves every cutoff, and no list is kept."""
    positions = tf.where(valid[:, None], tf.range(tf.shape(top)[1])[None, :], _NO_POSITION)
    return tf.tensor_scatter_nd_min(best, tf.reshape(top, [-1, 1]), tf.reshape(positions, [-1]))


def normalised_popularity(popularity, n_items):
    """Training clicks per item index [N] -> float64 [N] divided by their maximum."""
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.shape != (n_items,) or not np.isfinite(pop).all() or (pop < 0).any() or not pop.max() > 0:
        raise ValueError(f"`popularity` should be the training clicks of the {n_items} items "
                         f"(finite, >= 0, not all 0). Received: an array of shape {pop.shape}.")
    return pop / pop.max()


class Accumulator:
    """Adds up the metrics of batches of scored events; `result` turns them into the dict.

    Args:
        cutoffs, mode: as in `evaluate`.
        n_items: N, the number of scored items.
        coverage: also Coverage@k.
        popularity: training clicks per item index [N], or None (no Popularity@k).
    """

    def __init__(self, cutoffs, mode, n_items, coverage=False, popularity=None):
        check_options(mode)
        self.cutoffs = tuple(int(k) for k in cutoffs)
        if not self.cutoffs or min(self.cutoffs) < 1:
            raise ValueError(f"`cutoffs` should be positive ints. Received: `cutoffs` = {cutoffs!r}.")
        self.mode, self.n_items, self.coverage = mode, n_items, bool(coverage)
        self.popularity = None if popularity is None else tf.constant(
            normalised_popularity(popularity, n_items))

    def initial(self):
        """The zero sums: (float64 [M, C], int32 [N] positions, or [0] without coverage)."""
        rows = len(RANK_METRICS) + (self.popularity is not None)
        best = tf.fill([self.n_items if self.coverage else 0], _NO_POSITION)
        return tf.zeros([rows, len(self.cutoffs)], tf.float64), best

    def add(self, sums, best, scores, targets, valid):
        """The sums after one batch: scores [b, N], targets [b], valid bool [b]."""
        new = [metric_sums(target_ranks(scores, targets, self.mode), valid, self.cutoffs)]
        if self.coverage or self.popularity is not None:
            top = top_lists(scores, self.cutoffs)
            if self.popularity is not None:
                new.append(popularity_sums(top, valid, self.popularity, self.cutoffs)[None])
            if self.coverage:
                best = recommended_positions(best, top, valid)
        return sums + tf.concat(new, axis=0), best

    def result(self, sums, best, n_events, extra=None) -> dict:
        """{'recall@k', 'mrr@k', 'ndcg@k', ['coverage@k'], ['popularity@k'] per k, 'n_events', ...}."""
        sums, best = np.asarray(sums), np.asarray(best)
        out = {}
        for i, k in enumerate(self.cutoffs):
            for row, name in enumerate(RANK_METRICS):
                out[f"{name}@{k}"] = float(sums[row, i] / max(n_events, 1))
            if self.coverage:
                out[f"coverage@{k}"] = float(np.count_nonzero(best < k) / self.n_items)
            if self.popularity is not None:
                out[f"popularity@{k}"] = float(sums[-1, i] / max(n_events, 1))
        out["n_events"] = int(n_events)
        out.update(extra or {})
        return out
