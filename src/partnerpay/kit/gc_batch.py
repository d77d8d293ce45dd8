"""Collector settings for a batch that builds a large working set of objects that stay alive and form no
cycles: a replay's history, lines and drafts (commissions/replay.py), up to a million events in one run.

With the default thresholds the cyclic collector runs every 700 allocations and, as the working set grows,
keeps rescanning everything that existed before the batch (the events being replayed, the process's
modules). Inside `batch_collection` what exists at the start is frozen (gc.freeze: left out of collections
until the end) and the youngest generation is collected ten times less often. Reference counting frees
everything as usual; only cyclic garbage waits a little longer. Nested or concurrent batches share one
setting: the first in saves and changes it, the last out puts it back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_THRESHOLD = 7_000  # allocations between collections of the youngest generation (default 700)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def batch_collection() -> Iterator[None]:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_saved[0], BATCH_THRESHOLD), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
