"""Which function runs which outbox job kind: a plain mapping, built explicitly by the entry point."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler knows about the run: the job id (its idempotency key), 1-based attempt, and now."""

    job_id: str
    attempt: int
    now: datetime


# A handler writes through the session it is given and never commits: the worker commits its
# writes together with the job's "done" mark, or rolls both back.
Handler = Callable[[Session, dict[str, Any], JobContext], None]


@dataclass(frozen=True, slots=True)
class External:
    """A handler whose side effect talks to another system (SMTP, HTTP) and needs no database to do it.

    The worker runs `effect` before opening its transaction, then marks the job done and runs `record` (the
    handler's own writes, if any) in one short transaction: on SQLite the write lock is never held while a
    slow server answers. Called as a plain Handler it does both in order, so it works wherever one does.
    A crash between the effect and the commit repeats the effect on the retry, as it would inside the
    transaction; the effect should carry the job id (a Message-ID, an idempotency key) so a repeat is known.
    """

    effect: Callable[[dict[str, Any], JobContext], None]
    record: Handler | None = None

    def __call__(self, session: Session, payload: dict[str, Any], context: JobContext) -> None:
        self.effect(payload, context)
        if self.record is not None:
            self.record(session, payload, context)


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad payload, missing row): the job goes dead at once."""


class UnknownJobKind(PermanentJobError):
    """No handler is registered for the kind: no retry will find one, so the job goes dead."""

    def __init__(self, kind: str, known: list[str]) -> None:
        listed = ", ".join(known) or "none"
        super().__init__(f"no handler registered for job kind {kind!r} (registered: {listed})")
        self.kind = kind


class Registry:
    """Job kind → handler. Build one per process (see jobs.handlers.build_registry) and pass it in."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str) -> Callable[[Handler], Handler]:
        """Decorator: `@registry.register("notify.partner")`; a kind can be registered once."""

        def decorate(handler: Handler) -> Handler:
            self.add(kind, handler)
            return handler

        return decorate

    def add(self, kind: str, handler: Handler) -> None:
        if not kind or len(kind) > 64:
            raise ValueError(f"job kind must be 1 to 64 characters, got {kind!r}")
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def get(self, kind: str) -> Handler:
        """The handler for `kind`; UnknownJobKind (a permanent failure) when there is none."""
        try:
            return self._handlers[kind]
        except KeyError:
            raise UnknownJobKind(kind, self.kinds()) from None

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds())

    def __len__(self) -> int:
        return len(self._handlers)
