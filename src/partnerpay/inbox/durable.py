"""Answers after the flush, not inside the commit: the SQLite delivery writer's commits do not wait for
the disk; a Flusher thread makes the log durable beside the next batch's inserts and only then hands each
batch's answers on. A batch is answered after a flush that began after its COMMIT returned.

Why: a commit that waits for its own flush holds the writer meanwhile, and SQLite has one writer: no batch
could be inserted during the ~0.3-1 ms fsync. (PostgreSQL's two lanes overlap one lane's flush with the
other's insert already, and its server joins concurrent flushes: there, commits with synchronous_commit
off and a flushing barrier transaction measured no faster, so its commits flush themselves.)

Why it is as durable as a flushing commit: the WAL is append-only and read back in order after a crash,
up to the first frame that is not complete. One flush covers every frame written before it, whichever
connection wrote it; so a delivery answered after such a flush survives exactly as if its own commit had
flushed, and a crash can lose only deliveries nobody was told were stored (the provider sends them
again). A later transaction that read such a row and committed with its own flush made it durable too,
by the same prefix rule. The writer's connection commits with synchronous=NORMAL (in WAL mode: frames
written, not flushed); the flush is WalFile.flush, fdatasync of the WAL file (inbox/sqlite_wal.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.queues import take_waiting

log = structlog.get_logger(__name__)


class NotDurable(PartnerpayError):
    """The log could not be flushed: a delivery that may not survive a crash is not acknowledged, so the
    provider delivers it again later."""

    code = "not_durable"
    status = 503


Settle = Callable[[Any, list[Any]], None]


class Flusher:
    """Calls `flush` in its own thread for every group of batches handed over meanwhile, then `settle`s
    them. A failed flush refuses the deliveries it covered with NotDurable, and every later one too: an
    fsync error may have dropped pages silently, so nothing after it can be vouched for. `failed` is set
    and the writer stops taking deliveries."""

    def __init__(self, flush: Callable[[], None], settle: Settle, *, close: Callable[[], None]) -> None:
        self._flush, self._settle, self._close = flush, settle, close
        self.failed: Exception | None = None
        self._queue: queue.SimpleQueue[tuple[Any, list[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-flush", daemon=True)
        self._thread.start()

    def after_flush(self, batch: Any, outcomes: list[Any]) -> None:
        """Settle `outcomes` once the log, as it is now, is on disk. Call it after the batch's COMMIT."""
        self._queue.put((batch, outcomes))

    def stop(self, timeout: float = 10.0) -> None:
        """Flush and settle what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                pending, stop = take_waiting(self._queue, first)  # all covered by the one flush below
                error = self._flushed()
                for batch, outcomes in pending:
                    self._settle(batch, _refused(outcomes, error) if error else outcomes)
                if stop:
                    return
        finally:
            self._close()

    def _flushed(self) -> NotDurable | None:
        if self.failed is not None:
            return NotDurable(f"the database log could not be flushed to disk earlier: {self.failed}")
        try:
            self._flush()
            return None
        except Exception as exc:
            self.failed = exc
            log.error("log flush failed: deliveries refused with 503 until restart", error=str(exc)[:300])
            return NotDurable(f"the database log could not be flushed to disk: {exc}")


def _refused(outcomes: list[Any], error: NotDurable) -> list[Any]:
    return [outcome if isinstance(outcome, BaseException) else error for outcome in outcomes]
