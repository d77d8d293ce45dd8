"""Taking what queued meanwhile, for the threads that work in groups (group commit, log flush)."""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def take_waiting(source: queue.SimpleQueue[T | None], first: T, limit: int | None = None) -> tuple[list[T], bool]:
    """`first` and whatever else is queued now, without waiting for more (so a lone item goes at once and a
    busy queue gives larger groups by itself), up to `limit` items; and whether a stop (None) was taken."""
    group = [first]
    while limit is None or len(group) < limit:
        try:
            more = source.get_nowait()
        except queue.Empty:
            break
        if more is None:
            return group, True
        group.append(more)
    return group, False
