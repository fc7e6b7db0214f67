"""The session-parallel schedule: which event every slot of every step holds (spec section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """Which event every slot holds at every step of a session-parallel epoch.

    Attributes:
        position: int64 [T, B], index into `SessionData.items` of the slot's input event;
            its target is the event after it. -1 where the slot is inactive.
        reset: bool [T, B], the slot starts a new session at this step (state zeroed first).
    """

    position: np.ndarray
    reset: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.position >= 0

    @property
    def n_steps(self) -> int:
        return self.position.shape[0]


def session_parallel_schedule(offsets: np.ndarray, batch_size: int, min_active: int = 1) -> Schedule:
    """Lays sessions out in `batch_size` parallel slots, as GRU4Rec trains and evaluates.

    Each slot walks through one session; when it has no next event the slot takes the
    next unused session (reset). When sessions run out the finished slots stay empty
    (inactive) and the epoch ends once fewer than `min_active` slots are active
    (1 normally; 2 for training without extra negatives, where a lone row has no negative).

    Vectorised over runs of steps in which no slot changes session.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    B = batch_size
    pos = np.full(B, -1, dtype=np.int64)  # next input event per slot
    end = np.full(B, -1, dtype=np.int64)  # last event of the slot's session
    first = np.zeros(B, dtype=bool)
    k = min(B, n)
    pos[:k], end[:k], first[:k] = offsets[:k], offsets[1 : k + 1] - 1, True
    next_session = k
    positions, resets = [], []
    while True:
        active = pos >= 0
        if active.sum() < min_active:
            break
        run = int((end - pos)[active].min())  # steps until the first slot runs out
        steps = np.arange(run)
        p = np.where(active[None, :], pos[None, :] + steps[:, None], -1)
        r = np.zeros((run, B), dtype=bool)
        r[0] = first & active
        positions.append(p)
        resets.append(r)
        pos = np.where(active, pos + run, -1)
        first[:] = False
        for slot in np.flatnonzero(active & (pos == end)):
            if next_session < n:
                pos[slot], end[slot] = offsets[next_session], offsets[next_session + 1] - 1
                first[slot] = True
                next_session += 1
            else:
                pos[slot] = -1
    if not positions:
        return Schedule(np.zeros((0, B), np.int64), np.zeros((0, B), bool))
    return Schedule(np.concatenate(positions), np.concatenate(resets))


