"""A sliding-window limiter for public endpoints (logins now; applications and webhooks later).

It lives in process memory: with several web processes each enforces its own window, which still
bounds guessing to N times the limit; a shared store can replace it behind the same two methods.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from partnerpay.kit.clock import Clock
from partnerpay.kit.errors import RateLimited


class SlidingWindowLimiter:
    def __init__(self, *, limit: int, window: timedelta, clock: Clock, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._hits: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def hit(self, *keys: str, what: str = "attempts") -> None:
        """Count one attempt against every key; raise RateLimited once any key is over its limit."""
        now = self.clock.now()
        with self._lock:
            if len(self._hits) > self.max_keys:
                self._hits.clear()  # bounded memory beats perfect memory under a flood of keys
            for key in keys:
                hits = self._hits.setdefault(key, deque())
                while hits and hits[0] <= now - self.window:
                    hits.popleft()
                if len(hits) >= self.limit:
                    wait = int((hits[0] + self.window - now).total_seconds()) + 1
                    raise RateLimited(f"too many {what}; try again in {wait} seconds", retry_after=wait)
            for key in keys:
                self._hits[key].append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
