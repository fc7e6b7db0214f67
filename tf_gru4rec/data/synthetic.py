"""The embedded default data: seeded synthetic sessions with real sequential structure.

Items have Zipf popularity. Each item has a few favourite successors; a session starts at
a popular item and mostly walks along successors (now and then jumping to a popular item),
so the next click depends on the current one and a sequence model clearly beats
popularity. No download, deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_sessions(
    n_sessions: int = 6000,
    n_items: int = 500,
    mean_length: float = 6.0,
    n_successors: int = 4,
    p_follow: float = 0.8,
    zipf_exponent: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Generates click rows `SessionId, ItemId, Time` (sessions in time order).

    Args:
        n_sessions: number of sessions.
        n_items: catalogue size; item ids are the non-contiguous ints 1000 + 7 * i.
        mean_length: mean session length (at least 2: lengths are 2 + geometric).
        n_successors: favourite successors per item.
        p_follow: probability that a click follows a successor of the current item.
        zipf_exponent: popularity of item rank r is proportional to r^-exponent.
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf_exponent
    popularity /= popularity.sum()
    successors = np.stack([rng.choice(n_items, n_successors, replace=False) for _ in range(n_items)])
    successor_p = rng.dirichlet(np.full(n_successors, 0.7), size=n_items)
    lengths = 2 + rng.geometric(1.0 / max(mean_length - 1.0, 1.0), size=n_sessions) - 1
    sessions, items = [], []
    for s, length in enumerate(lengths):
        current = rng.choice(n_items, p=popularity)
        for _ in range(length):
            sessions.append(s)
            items.append(current)
            if rng.random() < p_follow:
                current = successors[current, rng.choice(n_successors, p=successor_p[current])]
            else:
                current = rng.choice(n_items, p=popularity)
    sessions = np.asarray(sessions)
    position = np.arange(len(sessions)) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return pd.DataFrame(
        {
            "SessionId": sessions.astype(np.int64),
            "ItemId": (1000 + 7 * np.asarray(items)).astype(np.int64),
            "Time": (sessions * 100 + position).astype(np.float64),
        }
    )


def split_by_time(df: pd.DataFrame, test_fraction: float = 0.1):
    """Train / test by session start time: the latest `test_fraction` of sessions are test."""
    start = df.groupby("SessionId")["Time"].min().sort_values(kind="stable")
    n_test = max(1, int(round(len(start) * test_fraction)))
    test_ids = start.index[-n_test:]
    is_test = df["SessionId"].isin(test_ids)
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
