"""Top-k recommendations from a trained GRU4Rec for click sequences, under business rules."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gru4rec.serving.candidates import per_session
from tf_gru4rec.serving.rules import allowed_items, blocked_mask, known_indices, pad_id, padded, top_k_allowed


class Recommender:
    """Recommends with a `GRU4Rec` model in original item ids, applying the business rules.

    Args:
        model: a trained `GRU4Rec` (the item map saved with it translates ids).
        blocklist: ids never recommended (also the initial blocklist of an export).

    Example:
        >>> recommender = Recommender(model, blocklist=[214826623])
        >>> ids, scores, report = recommender.recommend([[214536502, 214536500]], k=20)
    """

    def __init__(self, model, blocklist=()):
        self.model = model
        self.set_blocklist(blocklist)

    def set_blocklist(self, ids):
        """Items `recommend` never returns; replaces the last blocklist.

        Returns:
            dict with `blocked` (items now blocked) and `unknown` (ids skipped as unknown).
        """
        self.blocked, unknown = blocked_mask(self.model.item_map, ids)
        return {"blocked": int(self.blocked.sum()), "unknown": unknown}

    @property
    def blocklist(self):
        """Original ids of the blocked items, in index order."""
        return self.model.item_map.ids[self.blocked]

    def recommend(self, sessions, k=20, exclude_seen=False, blocklist=None, candidates=None):
        """Top-k next items for click sequences given in original item ids.

        Blocked items are never returned. When fewer than k items are allowed, the remaining
        slots hold `rules.pad_id` (-1, or "" for string ids) with score -inf.

        Args:
            sessions: list of click sequences (each a list of original item ids).
            k: number of recommendations, a positive int (more than N items give N).
            exclude_seen: drop items the session already clicked.
            blocklist: ids blocked for this call only, on top of the recommender's blocklist.
            candidates: restrict the ranking to these ids (re-ranking), with the scores of
                full-catalogue scoring: one list of ids for all sessions, or one list per
                session (None: that session is not restricted).

        Returns:
            (item_ids [n, k] original ids, scores [n, k] float32, report) where report is a
            dict with `unknown` (per session, the click ids skipped as unknown to the model),
            `empty` (indices of sessions with no known item; they get the recommendations
            of an empty session), `unknown_blocklist` (ids of `blocklist` skipped),
            `unknown_candidates` (per session, the candidate ids skipped) and `padded` (per
            session, the number of padded slots).
        """
        model = self.model
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` should be a positive int. Received: k={k}")
        item_map, n = model.item_map, len(sessions)
        k = int(min(k, model.n_items))
        clicks, unknown = zip(*(known_indices(item_map, s) for s in sessions)) if n else ((), ())
        blocked, unknown_blocklist = blocked_mask(item_map, [] if blocklist is None else blocklist)
        restrict, allowed_ids, unknown_candidates = [], [], []
        for c in per_session(candidates, n):
            index, skipped = known_indices(item_map, [] if c is None else c)
            restrict.append(c is not None)
            allowed_ids.append(index)
            unknown_candidates.append(skipped)
        clicks_padded = padded(clicks)
        index, scores = _rank_sessions(
            model, tf.constant(clicks_padded), tf.constant(~(blocked | self.blocked)),
            tf.constant(clicks_padded if exclude_seen else padded([[]] * n)),
            tf.constant(padded(allowed_ids)), tf.constant(np.array(restrict, bool)), k)
        index, scores = index.numpy(), scores.numpy()
        ids = np.where(index >= 0, item_map.ids[np.maximum(index, 0)], pad_id(item_map))
        report = {
            "unknown": [list(u) for u in unknown],
            "empty": [i for i, c in enumerate(clicks) if len(c) == 0],
            "unknown_blocklist": unknown_blocklist,
            "unknown_candidates": unknown_candidates,
            "padded": (index < 0).sum(axis=1).tolist(),
        }
        return ids, scores, report


@tf.function(reduce_retracing=True)
def _rank_sessions(model, clicks, available, seen, candidates, restrict, k):
    """Runs click sequences [n, T] (padded with -1) from the zero state and ranks the items."""
    n = tf.shape(clicks)[0]
    state, h = model.initial_state(n), tf.zeros([n, model.layer_sizes[-1]])
    for t in tf.range(tf.shape(clicks)[1]):
        valid = clicks[:, t : t + 1] >= 0
        new_state, new_h = model.step(tf.maximum(clicks[:, t], 0), state)
        state, h = tf.where(valid, new_state, state), tf.where(valid, new_h, h)
    allowed = allowed_items(available, seen, candidates, restrict)
    return top_k_allowed(model.score_all(h), allowed, k)
