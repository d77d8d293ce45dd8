"""The SQLite delivery writer's helpers beside its commits: the WAL's flush (WalFile, for the Flusher of
inbox/durable.py: the writer commits with synchronous=NORMAL and is answered after the flush) and its
checkpoint (the writer's connection never stops to copy the WAL into the database file; Checkpointer does
that beside it, PASSIVE: it never waits for the writer, nor the writer for it)."""

from __future__ import annotations

import os
import threading
from typing import Any

import structlog
from sqlalchemy import Engine

log = structlog.get_logger(__name__)


def wal_path(raw: Any) -> str | None:
    """The WAL file of a sqlite3 connection's main database; None for a database in memory, and for one not
    in WAL mode (SQLite falls back to a rollback journal where the file system cannot share memory): there
    synchronous=NORMAL could corrupt the file on power loss, so its commits must keep flushing themselves."""
    if str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return None
    for _seq, name, path in raw.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return f"{path}-wal" if path else None
    return None


class WalFile:
    """SQLite's flush for inbox/durable.Flusher: fdatasync of the WAL file. Opened at the first flush, when
    a batch has been committed and the file exists; the writer's connection keeps it (SQLite deletes a WAL
    only when its last connection closes), so the inode stays the same."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def flush(self) -> None:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDONLY)
        os.fdatasync(self._fd)  # releases the GIL: the writer goes on inserting meanwhile

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


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
