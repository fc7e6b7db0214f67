"""Progress and log lines: on stderr, so that stdout carries only results (tables, JSON)."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
