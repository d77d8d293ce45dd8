"""The SQLite delivery writer's two helpers beside its commits: the WAL's sync and its checkpoint.

Sync: with synchronous=FULL every COMMIT waits for its own fsync of the WAL (~0.3-1 ms here), and no
batch could be inserted meanwhile, as SQLite has one writer. The writer's connection commits with
synchronous=NORMAL instead (in WAL mode: the frames are written, not flushed) and WalSync flushes the WAL
file in its own thread while the writer inserts the next batch; a batch's deliveries are answered only
after a flush that began after their COMMIT. One fdatasync covers every frame written before it, whichever
connection wrote it, and the WAL is read back in order up to its first torn frame, so an answered delivery
is as durable as under FULL, and a crash can lose only deliveries nobody was told were stored.

Checkpoint: the writer's connection never stops to copy the WAL into the database file; Checkpointer
does that beside it (PASSIVE: it never waits for the writer, nor the writer for it).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Engine

from partnerpay.kit.errors import PartnerpayError

log = structlog.get_logger(__name__)


class NotDurable(PartnerpayError):
    """The WAL could not be flushed to disk: a delivery that may not survive a crash is not acknowledged,
    so the provider delivers it again later (and the writer stops: the route stores one by one)."""

    code = "not_durable"
    status = 503


def wal_path(raw: Any) -> str | None:
    """The WAL file of a sqlite3 connection's main database; None for a database in memory."""
    for _seq, name, path in raw.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return f"{path}-wal" if path else None
    return None


class WalSync:
    """Flushes a WAL file in its own thread and hands each batch committed before the flush to `settle`."""

    def __init__(self, path: str, settle: Callable[[Any, list[Any]], None]) -> None:
        self.path, self._settle = path, settle
        self.failed: OSError | None = None  # set once a flush failed: the writer stops taking deliveries
        self._queue: queue.SimpleQueue[tuple[Any, list[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="wal-sync", daemon=True)
        self._thread.start()

    def after_flush(self, batch: Any, outcomes: list[Any]) -> None:
        """Settle `outcomes` once the WAL, as it is now, is on disk. Call it after the batch's COMMIT."""
        self._queue.put((batch, outcomes))

    def stop(self, timeout: float = 10.0) -> None:
        """Flush and settle what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        fd = -1
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                pending, stop = [first], False
                while True:  # every batch committed by now is covered by the one flush below
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    pending.append(more)
                fd = self._flush(fd)
                for batch, outcomes in pending:
                    self._settle(batch, self._refused(outcomes) if self.failed else outcomes)
                if stop:
                    return
        finally:
            if fd >= 0:
                os.close(fd)

    def _flush(self, fd: int) -> int:
        if self.failed:
            return fd
        try:
            if fd < 0:
                # Opened once the first batch is committed, so the file exists; the writer's connection keeps
                # it (SQLite deletes a WAL only when its last connection closes), so the inode stays the same.
                fd = os.open(self.path, os.O_RDONLY)
            os.fdatasync(fd)  # releases the GIL: the writer goes on inserting meanwhile
        except OSError as exc:
            self.failed = exc
            log.error("WAL flush failed: deliveries are refused with 503 until restart", error=str(exc)[:300])
        return fd

    def _refused(self, outcomes: list[Any]) -> list[Any]:
        error = NotDurable(f"the database's write-ahead log could not be flushed to disk: {self.failed}")
        return [outcome if isinstance(outcome, BaseException) else error for outcome in outcomes]


SQLITE_AUTOCHECKPOINT = 1000  # SQLite's default, given back to the connection when the writer lets it go
CHECKPOINT_EVERY_SECONDS = 1.0


class Checkpointer:
    """PRAGMA wal_checkpoint(PASSIVE) on a connection of its own, every second while batches are being
    committed. PASSIVE copies what no reader still needs and never waits for the writer, nor the writer for it."""

    def __init__(self) -> None:
        self.wanted = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, engine: Engine) -> None:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, args=(engine,), name="wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopped.set()
            self.wanted.set()
            self._thread.join(10)
            self._thread = None

    def _run(self, engine: Engine) -> None:
        raw = engine.raw_connection()  # the driver's own: no BEGIN IMMEDIATE, which would stop the writer
        try:
            while not self._stopped.wait(CHECKPOINT_EVERY_SECONDS):
                if not self.wanted.is_set():
                    continue
                self.wanted.clear()
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                except Exception as exc:  # tried again a second later: the WAL must not grow unchecked
                    self.wanted.set()
                    log.warning("WAL checkpoint failed", error=str(exc)[:300])
        finally:
            raw.close()
