"""Group commit for webhook deliveries: every request still waits until its delivery is committed (the
provider gets its 2xx only for a stored fact), but the deliveries that arrive together share one
transaction, one duplicate lookup, one insert per table and one audit row per provider and program (which
names every delivery it stored: docs/api-inbox.md).

One transaction per delivery made the database the bottleneck: on SQLite sixteen threads queued on the
write lock behind the busy handler's sleeps, on PostgreSQL on the audit chain's lock; a writer thread per
connection (one on SQLite, two on PostgreSQL) removes both queues. The batch's statements are in
inbox/delivery_sqlite.py and inbox/delivery_pg.py; on SQLite the answers wait for the WAL's flush, done
beside the next batch's inserts (inbox/durable.py), not inside each COMMIT. On SQLite a batch that
fails as a whole (a unique key taken by another process's writer, a program that does not exist) is
stored again one delivery at a time, where each loser is answered as the replay it is; on PostgreSQL a key
taken meanwhile is skipped by the insert itself and answered as a replay, and only other failures take the
one-by-one path.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence

import structlog
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit import service as audit
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.delivery_batch import BATCH_OBJECT, Delivery, Stored
from partnerpay.inbox.delivery_pg import store_pg
from partnerpay.inbox.delivery_sqlite import store_sqlite
from partnerpay.inbox.durable import Flusher
from partnerpay.inbox.service import find, receive
from partnerpay.inbox.sqlite_wal import SQLITE_AUTOCHECKPOINT, Checkpointer, WalFile, wal_path
from partnerpay.kit.errors import ConcurrentWrite
from partnerpay.kit.queues import take_waiting

__all__ = ["BATCH_OBJECT", "Delivery", "DeliveryWriter", "Stored", "store_batch", "store_one"]

log = structlog.get_logger(__name__)


def store_batch(session: Session, deliveries: Sequence[Delivery]) -> list[Stored]:
    """receive() for many deliveries in the caller's transaction: each stored once, replays answered, one
    audit row per provider and program naming every delivery the batch stored (inbox/delivery_batch.py)."""
    conn = session.connection()  # begins the session's transaction (BEGIN IMMEDIATE on SQLite)
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        answers, head = store_pg(driver, deliveries, commit=False)
    else:
        answers, head = store_sqlite(driver, deliveries)
    audit.written_behind(session, head)
    return answers


def store_one(sessions: sessionmaker[Session], readers: sessionmaker[Session], d: Delivery) -> Stored:
    """One delivery in its own transaction; a lost race on its id is answered as the replay it is."""
    try:
        with unit_of_work(sessions) as session:
            item, created = receive(
                session, program_id=d.program_id, provider=d.provider, external_id=d.external_id, kind=d.kind,
                body=d.body, headers=d.headers, now=d.now, status=d.status, error=d.error, note=d.note,
            )  # fmt: skip
            return Stored(item.id, item.status, not created)
    except ConcurrentWrite:
        with readers() as session:
            winner = find(session, *d.key)
            if winner is None:
                raise
            return Stored(winner.id, winner.status, True)


class DeliveryWriter:
    """The queue of verified deliveries and the threads ("lanes") that commit them in groups.

    SQLite has one writer at a time, so it gets one lane. PostgreSQL gets two, each on its own connection:
    while one lane's batch waits for its commit (the flush to disk, ~0.5-1.5 ms here), the other inserts
    the next batch. They meet only at the audit chain's lock, which each takes after its insert.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        readers: sessionmaker[Session],
        *,
        max_batch: int = 500,
        lanes: int | None = None,
    ) -> None:
        self.sessions, self.readers, self.max_batch = sessions, readers, max_batch
        bind = sessions.kw["bind"]
        self.lanes = lanes or (PG_LANES if bind.dialect.name == "postgresql" else 1)
        self._queue: queue.SimpleQueue[tuple[Delivery, _Waiter] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._checkpointer = Checkpointer()
        self._sync: Flusher | None = None  # SQLite on a file: answers wait for the WAL's flush, not the commit

    @property
    def running(self) -> bool:
        if self._sync is not None and self._sync.failed is not None:
            return False  # the WAL cannot be flushed: the route stores one by one, each commit flushing itself
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        if not self.running:
            if self._sync is None:
                self._sync = self._flusher()
            self._threads = [
                threading.Thread(target=self._run, name=f"delivery-writer-{n}", daemon=True) for n in range(self.lanes)
            ]
            for thread in self._threads:
                thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop (the app's shutdown, after the last response)."""
        for _ in self._threads:
            self._queue.put(None)  # one stop per lane, behind every delivery already queued
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._sync is not None:
            self._sync.stop()  # after the lanes: their last batches are flushed and answered too
            self._sync = None
        self._checkpointer.stop()

    def _flusher(self) -> Flusher | None:
        """On SQLite the lane's commits do not wait for the disk; this flushes beside them (inbox/durable.py)."""
        bind = self.sessions.kw["bind"]
        if bind.dialect.name != "sqlite":
            return None  # PostgreSQL's commits flush themselves (why: inbox/durable.py)
        with bind.connect() as connection:
            path = wal_path(connection.connection.driver_connection)
        if path is None:
            return None  # a database in memory: nothing to flush, commits answered as they return
        wal = WalFile(path)
        return Flusher(wal.flush, _settle, close=wal.close)

    async def store(self, delivery: Delivery) -> Stored:
        """Queue a delivery for the next group commit and wait (without blocking the loop) until it is stored."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((delivery, (loop, waiter)))
        return await waiter

    def _run(self) -> None:
        lane = _Lane(self)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                # Whatever queued while the last batch was written goes in this one.
                batch, stop = take_waiting(self._queue, first, self.max_batch)
                outcomes = lane.write([d for d, _ in batch])
                if self._sync is not None:
                    self._sync.after_flush(batch, outcomes)
                else:
                    _settle(batch, outcomes)
                if stop:
                    return
        finally:
            lane.release()


PG_LANES = 2


class _Lane:
    """One writer thread's connection, kept between batches: no pool checkout (on PostgreSQL, no pre-ping
    round trip) per group commit. Dropped after a failed batch, so a broken connection is not used again."""

    def __init__(self, writer: DeliveryWriter) -> None:
        self.writer = writer
        self._connection: Connection | None = None

    def write(self, deliveries: list[Delivery]) -> list[Stored | BaseException]:
        try:
            if self._connection is None:
                self._connection = self._open()
            # The driver's own transaction: SQLAlchemy's begin, session and events cost more than a batch's rows.
            raw = self._connection.connection.driver_connection
            if self._connection.dialect.name == "postgresql":
                return list(store_pg(raw, deliveries, commit=True)[0])  # committed in its second round trip
            raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]  # the write lock, as for every writer
            try:
                stored: list[Stored | BaseException] = list(store_sqlite(raw, deliveries)[0])
                raw.execute("COMMIT")  # type: ignore[union-attr]
            except BaseException:
                raw.rollback()  # type: ignore[union-attr]  # then the one-by-one path below
                raise
            self.writer._checkpointer.wanted.set()
            return stored
        except Exception as exc:
            self.release()
            log.warning("delivery batch failed; storing one by one", size=len(deliveries), error=str(exc)[:300])
        outcomes: list[Stored | BaseException] = []
        for delivery in deliveries:
            try:
                outcomes.append(store_one(self.writer.sessions, self.writer.readers, delivery))
            except Exception as one:
                outcomes.append(one)
        return outcomes

    def _open(self) -> Connection:
        connection: Connection = self.writer.sessions.kw["bind"].connect()
        if connection.dialect.name == "sqlite":
            # This connection writes nearly all of the WAL. Its commits no longer stop to checkpoint (1,000
            # pages copied and the database fsynced: ~20 ms for the one batch in ~80 that crossed the mark,
            # the p99 of a busy endpoint); the checkpointer thread copies them beside the commits instead.
            _pragma(connection, "wal_autocheckpoint=0")
            self.writer._checkpointer.start(connection.engine)
            if self.writer._sync is not None:
                # Its commits write the WAL without flushing it; the Flusher flushes beside the next batch's
                # inserts and only then are the batch's deliveries answered (inbox/durable.py).
                _pragma(connection, "synchronous=NORMAL")
        return connection

    def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                if connection.dialect.name == "sqlite":
                    self.writer._checkpointer.stop()
                    _pragma(connection, f"wal_autocheckpoint={SQLITE_AUTOCHECKPOINT}")
                    _pragma(connection, "synchronous=FULL")  # the pool's setting (db/engine.py)
                connection.close()
            except Exception as exc:  # already broken: nothing to give back to the pool
                log.warning("delivery writer connection not closed cleanly", error=str(exc)[:300])
                with contextlib.suppress(Exception):
                    connection.invalidate()  # never pooled again with the writer's own pragmas


def _pragma(connection: Connection, pragma: str) -> None:
    # On the driver's connection: through SQLAlchemy the statement would begin a transaction (BEGIN IMMEDIATE).
    connection.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


# The loop whose request waits, and the future it waits on.
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Stored]"]


def _settle(batch: list[tuple[Delivery, _Waiter]], outcomes: list[Stored | BaseException]) -> None:
    """Wake each loop once per batch (one call_soon_threadsafe, not one per delivery)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Stored], Stored | BaseException]]] = {}
    for (_, (loop, waiter)), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((waiter, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop closed (shutdown): nobody is left to answer
            log.warning("delivery answers dropped: event loop closed", size=len(settled))


def _resolve(settled: list[tuple[asyncio.Future[Stored], Stored | BaseException]]) -> None:
    for waiter, outcome in settled:
        if waiter.done():  # the request went away (cancelled); the delivery is stored all the same
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
