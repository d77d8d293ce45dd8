"""Clicks are written in batches by a background thread, never inside the redirect.

A redirect only appends a row to memory; the writer inserts what has gathered every `batch_size`
clicks or `interval_ms` after the oldest waiting click, in one transaction (COPY on PostgreSQL).
A failed write keeps the rows and retries with a back-off, logging each failure. Closing (the app's
lifespan shutdown, which uvicorn runs on SIGTERM after the last response went out) writes the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.bulk import bulk_insert
from partnerpay.db.engine import unit_of_work

log = structlog.get_logger(__name__)

COLUMNS = (
    "id",
    "program_id",
    "partner_id",
    "link_id",
    "code",
    "at",
    "ip_hash",
    "ua_class",
    "referrer",
    "country",
    "destination",
)
ClickRow = tuple[str, str | None, str | None, str | None, str, datetime, str | None, str, str | None, str | None, str]
MAX_BACKOFF_SECONDS = 5.0
CLOSE_ATTEMPTS = 5


class ClickWriter:
    """The in-memory buffer of clicks and the thread that writes them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        batch_size: int = 500,
        interval_ms: int = 200,
        max_backoff: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        if batch_size < 1 or interval_ms < 1:
            raise ValueError("batch_size and interval_ms must be positive")
        self.sessions = sessions
        self.batch_size = batch_size
        self.interval = interval_ms / 1000
        self.max_backoff = max_backoff
        self._rows: list[ClickRow] = []
        self._oldest = 0.0  # monotonic time the oldest waiting row arrived
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._writing: list[ClickRow] = []  # the batch being written: still findable by pending()
        self.written = 0
        self.failures = 0
        self.refused = 0  # rows the database refused for themselves (see _isolate), logged and dropped

    def start(self) -> ClickWriter:
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="click-writer", daemon=True)
                self._thread.start()
        return self

    def add(self, row: ClickRow) -> None:
        """Called on the event loop for every redirect: an append under a lock, nothing more."""
        if self._thread is None:
            # An app served without a lifespan (some test clients) still writes its clicks.
            self.start()
        with self._cond:
            if not self._rows:
                self._oldest = time.monotonic()
                self._cond.notify()  # the writer sleeps until a first row starts the interval's clock
            self._rows.append(row)
            if len(self._rows) >= self.batch_size:
                self._cond.notify()

    def pending(self, click_id: str) -> ClickRow | None:
        """A click not yet in the database, by id (for a lookup made right after the redirect)."""
        with self._cond:
            for row in (*self._writing, *self._rows):
                if row[0] == click_id:
                    return row
        return None

    def waiting(self) -> int:
        with self._cond:
            return len(self._rows) + len(self._writing)

    def flush(self) -> None:
        """Write everything waiting now, in the caller's thread (tests, shutdown); raises if the write fails."""
        with self._cond:
            rows, self._rows = self._rows, []
        if rows:
            self._write_or_requeue(rows)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and write what is left; rows that still cannot be written are logged, not lost silently."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            try:
                self.flush()
                return
            except Exception:  # any database error: retry, then say what is lost
                log.exception("click write failed at shutdown", attempt=attempt, waiting=self.waiting())
                time.sleep(min(0.2 * 2**attempt, MAX_BACKOFF_SECONDS))
        with self._cond:
            lost = list(self._rows)
        # The rows themselves go to the log so an operator can replay them; no address is in them, only its hash.
        log.error("clicks not written at shutdown", count=len(lost), clicks=[list(map(str, r)) for r in lost])

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                while not self._closing:
                    if len(self._rows) >= self.batch_size:
                        break
                    if self._rows:
                        left = self._oldest + self.interval - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                if self._closing:
                    return  # close() writes the rest in its own thread
                rows, self._rows = self._rows, []
            try:
                if backoff >= self.max_backoff:
                    self._isolate(rows)
                else:
                    self._write_or_requeue(rows)
                backoff = 0.0
            except Exception as exc:  # the database may be down: keep the rows and try again
                first = backoff == 0.0
                backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                # The whole traceback once per outage; a line per retry after that.
                report = log.exception if first else log.warning
                report("click write failed; keeping the clicks to retry", waiting=self.waiting(), retry_in=backoff,
                       error=str(exc)[:300])  # fmt: skip
                with self._cond:
                    self._cond.wait_for(lambda: self._closing, timeout=backoff)

    def _write_or_requeue(self, rows: list[ClickRow]) -> None:
        with self._cond:
            self._writing = rows
        try:
            self._write(rows)
        except BaseException:
            with self._cond:
                # Back in front, in order, with anything that arrived meanwhile behind them.
                self._rows[:0] = rows
                self._oldest = time.monotonic()
                self._writing = []
                self.failures += 1
            raise
        with self._cond:
            self._writing = []
            self.written += len(rows)

    def _isolate(self, rows: list[ClickRow]) -> None:
        """After failing for a while, write the batch row by row: if some rows go in and others never do,
        those others are refused by the database itself (not a database that is down), and one such row
        must not stop every click after it. They are logged in full, then dropped; if none goes in, the
        database is down and all are kept."""
        refused: list[ClickRow] = []
        for row in rows:
            try:
                self._write([row])
            except Exception:  # this row, or the database: decided below
                refused.append(row)
        if len(refused) == len(rows):
            with self._cond:
                self._rows[:0] = rows
                self._oldest = time.monotonic()
                self.failures += 1
            raise RuntimeError(f"no click of {len(rows)} could be written")
        with self._cond:
            self.written += len(rows) - len(refused)
            self.refused += len(refused)
        if refused:
            log.error(
                "clicks refused by the database, dropped",
                count=len(refused),
                clicks=[list(map(str, r)) for r in refused],
            )

    def _write(self, rows: Sequence[ClickRow]) -> None:
        with unit_of_work(self.sessions) as session:
            bulk_insert(session, "clicks", COLUMNS, rows)
