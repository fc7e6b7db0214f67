"""Recommendations with business rules: top-k over the items a request may receive.

One mechanism for `Recommender` (`recommender.py`) and the exported signatures (`export.py`): the scores
of all N items are computed as usual (`GRU4Rec.score_all`), then an `allowed` mask [b, N]
removes what the rules exclude, and `top_k_allowed` ranks what is left:

- blocklist: items never recommended, a bool `available` [N] (a `Recommender`'s blocklist, the
  SavedModel's `available` variable);
- exclude seen: each row's clicked items;
- candidates: a row restricted to a candidate set ranks only those items, with the very same
  scores as full-catalogue scoring (they are its scores, masked).

When fewer than k items are allowed, the row is padded with index -1 and score -inf (the
original-id sentinel is `pad_id`: -1 for integer ItemIds, "" for string ones). Unknown ids in
a blocklist or candidate set are skipped and reported, never an error.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf



def pad_id(item_map):
    """The id that fills result slots no allowed item is left for (and pads request rows)."""
    return -1 if item_map.is_integer else ""


# ----- the shared graph functions --------------------------------------------------------
def index_mask(indices, n_items):
    """Item indices [b, L] padded with -1 -> bool [b, N], true at each row's indices."""
    indices = tf.cast(indices, tf.int32)
    rows = tf.broadcast_to(tf.range(tf.shape(indices)[0])[:, None], tf.shape(indices))
    where = tf.boolean_mask(tf.stack([rows, indices], axis=-1), indices >= 0)
    return tf.tensor_scatter_nd_update(
        tf.zeros([tf.shape(indices)[0], n_items], tf.bool), where,
        tf.ones(tf.shape(where)[:1], tf.bool))


def allowed_items(available, seen, candidates, restrict):
    """Which items each row may recommend: bool [b, N].

    Args:
        available: bool [N], false for blocked items.
        seen: item indices [b, L] to exclude, padded with -1.
        candidates: item indices [b, C], padded with -1.
        restrict: bool [b]; a true row may only recommend its candidates.
    """
    n_items = tf.shape(available)[0]
    allowed = available[None, :] & ~index_mask(seen, n_items)
    return tf.where(restrict[:, None], allowed & index_mask(candidates, n_items), allowed)


def top_k_allowed(scores, allowed, k):
    """Top-k of scores [b, N] among allowed [b, N] -> (indices [b, k], scores [b, k]).

    Slots left when fewer than k items are allowed get index -1 and score -inf. Allowed
    items keep their scores and their order in the full ranking (ties: lower index first).
    """
    top = tf.math.top_k(tf.where(allowed, scores, -np.inf), k)
    found = tf.gather(allowed, top.indices, batch_dims=1)
    return tf.where(found, top.indices, -1), tf.where(found, top.values, -np.inf)


# ----- Python API --------------------------------------------------------------------------
def known_indices(item_map, ids):
    """Original ids -> (indices of the known ones, in order; the unknown ids, in order)."""
    ids = list(ids)
    index = item_map.lookup(np.asarray(ids)) if ids else np.zeros(0, np.int64)
    return index[index >= 0], [i for i, j in zip(ids, index) if j < 0]


def blocked_mask(item_map, ids):
    """A blocklist of original ids -> (bool [N], true for blocked items; unknown ids)."""
    index, unknown = known_indices(item_map, ids)
    mask = np.zeros(len(item_map), bool)
    mask[index] = True
    return mask, unknown


def padded(rows):
    """Lists of indices -> int32 [len(rows), longest] padded with -1."""
    out = np.full((len(rows), max([len(r) for r in rows] + [0])), -1, np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out
