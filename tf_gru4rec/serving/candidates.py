"""Candidate sets of a recommendation request, one per session or row (no TensorFlow: the
gRPC client uses it, as do `Recommender` and `rules`)."""

from __future__ import annotations

import numpy as np


def per_session(candidates, n):
    """`candidates` as one entry per session (None: not restricted)."""
    if candidates is None:
        return [None] * n
    listlike = [c is None or (not isinstance(c, (str, bytes)) and np.ndim(c) == 1) for c in candidates]
    if len(candidates) and all(listlike):
        if len(candidates) != n:
            raise ValueError(f"`candidates` holds {len(candidates)} lists for {n} sessions; give one "
                             "list (or None) per session, or one list of ids for all sessions")
        return list(candidates)
    if any(listlike):
        raise ValueError("`candidates` should be one list of item ids for all sessions, or one list "
                         "(or None) per session; it mixes ids and lists")
    return [candidates] * n
