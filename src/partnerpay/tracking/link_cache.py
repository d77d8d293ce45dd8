"""The redirect path's in-memory map of code → where it goes, bounded, refreshed and invalidated.

Both rules apply, for different writers:
- a link changed in this process (created, deactivated) is dropped from every cache of the process
  right after its transaction commits, so the partner who just deactivated a link sees it take effect;
- an entry older than the TTL is looked up again, because other processes (several web servers on
  PostgreSQL, the CLI) and other tables (a program's site_url, a partner's status) change what a code
  resolves to without telling this process. The TTL bounds how stale a redirect can be: a stale entry
  is served once more while it is refreshed in the background, in batches (one query per 500 codes),
  so a busy link never makes a visitor wait for the database.
The cache is filled at startup with the newest links and the partners' codes, up to its size.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_CHANGED = "partnerpay.tracking.changed_codes"
_CACHES: weakref.WeakSet[LinkCache] = weakref.WeakSet()
_CACHES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Target:
    """What one code resolves to. An attributed target's Location is prefix + click id + suffix."""

    program_id: str | None
    partner_id: str | None
    link_id: str | None
    destination: str  # stored on the click: the destination with the link's params, without ref
    attributed: bool  # an active partner's active link: the click credits them, gets ref= and the cookie
    prefix: str
    suffix: str = ""
    cookie_days: int = 0
    # The database row it was built from: a refresh that reads the same row keeps this target as it is.
    source: int = field(default=0, compare=False, repr=False)

    def location(self, click_id: str) -> str:
        return self.prefix + click_id + self.suffix if self.attributed else self.prefix


class LinkCache:
    """A bounded LRU of targets with a TTL; unknown codes are kept apart so a flood of junk codes
    cannot push real links out."""

    def __init__(self, *, size: int, ttl_seconds: float, unknown_size: int = 10_000) -> None:
        self.size = size
        self.ttl = ttl_seconds
        self.unknown_size = unknown_size
        self._known: OrderedDict[str, tuple[float, Target]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._fallback: tuple[float, Target] | None = None
        # Bumped by every invalidation: a lookup that started before one must not cache what it read.
        self.generation = 0
        with _CACHES_LOCK:
            _CACHES.add(self)

    def lookup(self, code: str) -> tuple[Target, bool] | None:
        """(target, still fresh) for a cached code, None for one to look up. A stale target is still
        served (the redirect must not wait) while the caller has it refreshed in the background."""
        entry = self._known.get(code)
        if entry is None:
            return None
        try:  # noqa: SIM105 - try costs nothing here, contextlib.suppress an object per redirect
            self._known.move_to_end(code)
        except KeyError:  # invalidated by another thread between the two lines: still a valid answer
            pass
        return entry[1], entry[0] >= time.monotonic()

    def is_known_unknown(self, code: str) -> bool:
        expires = self._unknown.get(code)
        return expires is not None and expires >= time.monotonic()

    def fallback(self) -> Target | None:
        entry = self._fallback
        return entry[1] if entry is not None and entry[0] >= time.monotonic() else None

    def put(self, code: str, target: Target | None) -> None:
        """Remember a code's target, or (None) that the code is unknown."""
        expires = time.monotonic() + self.ttl
        if target is None:
            self._unknown.pop(code, None)
            self._unknown[code] = expires
            while len(self._unknown) > self.unknown_size:
                self._pop_oldest(self._unknown)
            return
        self._unknown.pop(code, None)
        # Re-inserting puts the key last; no move_to_end that another thread's invalidate could break.
        self._known.pop(code, None)
        self._known[code] = (expires, target)
        while len(self._known) > self.size:
            self._pop_oldest(self._known)

    @staticmethod
    def _pop_oldest(entries: OrderedDict[str, Any]) -> None:
        with contextlib.suppress(KeyError):  # emptied by an invalidation meanwhile
            entries.popitem(last=False)

    def put_fallback(self, target: Target) -> None:
        self._fallback = (time.monotonic() + self.ttl, target)

    def invalidate(self, codes: set[str]) -> None:
        self.generation += 1
        for code in codes:
            self._known.pop(code, None)
            self._unknown.pop(code, None)

    def __len__(self) -> int:
        return len(self._known)


def note_changed(session: Session, code: str) -> None:
    """Called by the link service: drop `code` from this process's caches once the transaction commits."""
    session.info.setdefault(_CHANGED, set()).add(code)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    codes = session.info.pop(_CHANGED, None)
    if not codes:
        return
    with _CACHES_LOCK:
        caches = list(_CACHES)
    for cache in caches:
        cache.invalidate(codes)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    # A rolled-back change changed nothing; the cached targets are still right.
    session.info.pop(_CHANGED, None)
