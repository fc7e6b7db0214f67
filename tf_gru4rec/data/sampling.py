"""Extra negative samples drawn proportional to support^alpha from a pre-sampled cache."""

from __future__ import annotations

import numpy as np


def sampling_distribution(support: np.ndarray, alpha: float) -> np.ndarray:
    """P(i) proportional to support(i)^alpha (alpha 0: uniform over items with support)."""
    if alpha < 0:
        raise ValueError(f"`sample_alpha` should be >= 0. Received: sample_alpha={alpha}")
    support = np.asarray(support, dtype=np.float64)
    if np.any(support < 0):
        raise ValueError("support must be non-negative")
    weights = np.where(support > 0, support**alpha, 0.0)
    total = weights.sum()
    if total <= 0:
        raise ValueError("no item has positive support")
    return weights / total


def alias_table(p: np.ndarray):
    """Walker's alias table of a distribution p: (prob float64 [n], alias int32 [n]).

    Drawing i uniformly, then keeping i with probability prob[i] and otherwise taking
    alias[i], yields i with probability p[i] exactly (Vose's construction).
    """
    n = len(p)
    prob = np.asarray(p, dtype=np.float64) * n
    alias = np.arange(n, dtype=np.int32)
    small = list(np.flatnonzero(prob < 1.0))
    large = list(np.flatnonzero(prob >= 1.0))
    while small and large:
        s, big = small.pop(), large.pop()
        alias[s] = big
        prob[big] -= 1.0 - prob[s]
        (small if prob[big] < 1.0 else large).append(big)
    prob[large + small] = 1.0  # leftovers are 1 up to round-off
    return prob, alias


def sampling_table(support: np.ndarray, alpha: float):
    """The alias table `NegativeSampler` draws from, P(i) ~ support(i)^alpha: built in
    O(N) Python steps, so data-parallel replicas build it once and share it."""
    return alias_table(sampling_distribution(support, alpha))


class NegativeSampler:
    """Draws S item indices per step, P(i) ~ support(i)^alpha, shared by the step's rows.

    Draws are made ahead in a cache of `cache_size` ids with Walker's alias method (O(1)
    per id: one uniform slot and one uniform number, ~10x faster than a binary search in
    the cumulative distribution) and refilled when used up, so the per-step cost is a
    slice. Memory: 4 bytes per cached id.

    Args:
        support: clicks per item index.
        alpha: sample_alpha; 0 uniform, 1 popularity.
        n_sample: S, ids per step.
        cache_size: ids drawn per refill (rounded up to whole steps).
        seed: seed of the generator.
        table: `sampling_table(support, alpha)` when already built (shared, read only);
            None builds it.
    """

    def __init__(self, support, alpha: float, n_sample: int, cache_size: int = 10_000_000, seed=None,
                 table=None):
        if n_sample < 1:
            raise ValueError(f"`n_sample` should be a positive integer. Received: n_sample={n_sample}")
        self.n_sample = int(n_sample)
        self.prob, self.alias = sampling_table(support, alpha) if table is None else table
        self.steps_per_refill = max(1, -(-int(cache_size) // self.n_sample))
        self.rng = np.random.default_rng(seed)
        self._cache = np.zeros((0, self.n_sample), dtype=np.int32)
        self._next = 0
        self._refill_state = None  # the generator's state before the cache was drawn

    def get_state(self) -> dict:
        """The sampler's position, JSON-serialisable: `set_state` continues the same stream."""
        if self._refill_state is None:
            return {"rng": self.rng.bit_generator.state, "next": None}
        return {"rng": self._refill_state, "next": self._next}

    def set_state(self, state: dict) -> None:
        """Continues from a `get_state` of a sampler built with the same arguments (the
        cache is drawn again from the saved generator state, not stored)."""
        self.rng.bit_generator.state = state["rng"]
        if state["next"] is None:
            self._cache, self._next, self._refill_state = self._cache[:0], 0, None
        else:
            self._refill()
            self._next = state["next"]

    def _refill(self):
        self._refill_state = self.rng.bit_generator.state
        shape = (self.steps_per_refill, self.n_sample)
        slot = self.rng.integers(0, len(self.prob), size=shape, dtype=np.int32)
        keep = self.rng.random(shape) < self.prob[slot]
        self._cache = np.where(keep, slot, self.alias[slot])
        self._next = 0

    def draw(self, n_steps: int) -> np.ndarray:
        """Negatives for `n_steps` steps: int32 [n_steps, S]."""
        out = []
        while n_steps > 0:
            if self._next >= len(self._cache):
                self._refill()
            take = min(n_steps, len(self._cache) - self._next)
            out.append(self._cache[self._next : self._next + take])
            self._next += take
            n_steps -= take
        return np.concatenate(out) if out else np.zeros((0, self.n_sample), np.int32)
