"""The evaluation protocols: which predictions of a test session are scored.

Test events with items unknown to the model are dropped before sessions are formed (the
session continues across the gap) and sessions left with fewer than 2 events contribute
nothing; both are counted. Which predictions are scored (`PROTOCOLS`):
    next  every event except the session's last predicts the one after it (L - 1 per
          session of L known events): the papers' protocol, the default;
    last  only the session's last known event is the target, predicted after all the
          clicks before it (leave-one-out, as RecBole and session-rec's "last" evaluation;
          an unknown last click is dropped like any other, so its target is the last
          KNOWN click, and a session needs 2 known clicks, else it is skipped and counted).
"""

from __future__ import annotations

import numpy as np

TIE_MODES = ("standard", "conservative", "median")
PROTOCOLS = ("next", "last")


def check_options(mode="conservative", protocol="next") -> None:
    """Raises a one-line ValueError for an unknown tie mode or protocol."""
    if mode not in TIE_MODES:
        raise ValueError(f"Unknown tie mode {mode!r}. Expected one of {TIE_MODES}.")
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol!r}. Expected one of {PROTOCOLS}.")


def scored_inputs(offsets, protocol="next") -> np.ndarray:
    """Which events' predictions are scored: bool [n_events], True at the INPUT event (its
    target is the event after it) for sessions `items[offsets[s]:offsets[s+1]]` of >= 2
    events. next: all but each session's last event; last: only its second-to-last."""
    check_options(protocol=protocol)
    offsets = np.asarray(offsets, dtype=np.int64)
    scored = np.full(offsets[-1], protocol == "next")
    scored[offsets[1:] - (1 if protocol == "next" else 2)] = protocol == "last"
    return scored
