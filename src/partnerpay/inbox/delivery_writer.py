"""Group commit for webhook deliveries: every request still waits until its delivery is committed (the
provider gets its 2xx only for a stored fact), but the deliveries that arrive together share one
transaction, one duplicate lookup, one insert per table and one audit row per provider and program (which
names every delivery it stored: docs/api-inbox.md).

One transaction per delivery made the database the bottleneck: on SQLite sixteen threads queued on the
write lock behind the busy handler's sleeps, on PostgreSQL on the audit chain's lock; a single writer
thread removes both queues. A batch that fails as a whole (a unique key taken by another process's
writer) is stored again one delivery at a time, where each loser is answered as the replay it is.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit import service as audit
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import PROCESS_JOB, find, provider_actor, receive, source_of
from partnerpay.kit.errors import ConcurrentWrite
from partnerpay.kit.ids import new_ids

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    program_id: str
    provider: str
    external_id: str
    kind: str
    body: str
    headers: dict[str, str]
    now: datetime
    status: InboxStatus = InboxStatus.RECEIVED
    error: str | None = None
    note: str | None = None

    @property
    def source(self) -> str:
        return source_of(self.provider, self.program_id)


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    status: str
    duplicate: bool

    def answer(self) -> dict[str, Any]:
        return {"received": True, "id": self.id, "status": self.status, "duplicate": self.duplicate}


def store_batch(session: Session, deliveries: Sequence[Delivery]) -> list[Stored]:
    """receive() for many deliveries in the caller's transaction: each stored once, replays answered.

    The statements go to the driver directly (the ORM's statement building cost more than the rows), and
    one audit row per provider and program names every delivery the batch stored.
    """
    conn = session.connection()
    sql = _PG if conn.dialect.name == "postgresql" else _SQLITE
    with closing(conn.connection.driver_connection.cursor()) as cursor:  # type: ignore[union-attr]
        return _store(session, cursor, sql, deliveries)


def _store(session: Session, cursor: Any, sql: _Statements, deliveries: Sequence[Delivery]) -> list[Stored]:
    known = _stored_already(cursor, sql, deliveries)
    results: list[Stored] = []
    new: list[tuple[str, Delivery]] = []
    ids = iter(new_ids("inb", len(deliveries)))
    for d in deliveries:
        key = (d.source, d.external_id[:200])
        earlier = known.get(key)
        if earlier is not None:
            results.append(Stored(earlier.id, earlier.status, True))
            continue
        item_id = next(ids)
        new.append((item_id, d))
        known[key] = Stored(item_id, d.status.value, True)  # later copies in this batch are replays of it
        results.append(Stored(item_id, d.status.value, False))
    if not new:
        return results
    at = sql.time
    items = [
        (item_id, d.program_id, d.source, d.provider, d.external_id[:200], d.kind[:100], d.body,
         _json(d.headers), at(d.now), d.status.value, d.error, d.note)
        for item_id, d in new
    ]  # fmt: skip
    received = [(item_id, d) for item_id, d in new if d.status is InboxStatus.RECEIVED]
    jobs = [
        (job_id, PROCESS_JOB, f'{{"item_id":"{item_id}"}}', at(d.now), at(d.now))
        for job_id, (item_id, d) in zip(new_ids("job", len(received)), received, strict=True)
    ]
    sql.insert(cursor, items, jobs)
    groups: dict[tuple[str, str], list[tuple[str, Delivery]]] = defaultdict(list)
    for item_id, d in new:
        groups[(d.provider, d.program_id)].append((item_id, d))
    for (provider, program_id), members in groups.items():
        audit.record_many(
            session,
            actor=provider_actor(provider, program_id),
            action="inbox.receive",
            now=members[0][1].now,
            items=[(BATCH_OBJECT, members[0][0], program_id, None, _batch_snapshot(members))],
        )
    return results


BATCH_OBJECT = "inbox_batch"  # the audit object of a group commit: named by its first item, listing all


def _batch_snapshot(members: list[tuple[str, Delivery]]) -> dict[str, Any]:
    return {
        "source": members[0][1].source,
        "items": [
            {"id": item_id, "external_id": d.external_id[:200], "kind": d.kind[:100], "status": d.status.value}
            for item_id, d in members
        ],
    }


def _stored_already(cursor: Any, sql: _Statements, deliveries: Sequence[Delivery]) -> dict[tuple[str, str], Stored]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for d in deliveries:
        by_source[d.source].append(d.external_id[:200])
    known: dict[tuple[str, str], Stored] = {}
    for source, external_ids in by_source.items():
        for start in range(0, len(external_ids), 500):
            chunk = external_ids[start : start + 500]
            cursor.execute(*sql.find(source, chunk))
            known.update({(source, ext): Stored(item_id, status, True) for ext, item_id, status in cursor.fetchall()})
    return known


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime writes (db/bulk.py), so these rows read back like the ORM's.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _pg_time(value: datetime) -> datetime:
    return value


def _sqlite_insert(cursor: Any, items: list[tuple[Any, ...]], jobs: list[tuple[Any, ...]]) -> None:
    cursor.executemany(_SQLITE_ITEMS, items)  # one C loop over the rows
    if jobs:
        cursor.executemany(_SQLITE_JOBS, jobs)


def _pg_insert(cursor: Any, items: list[tuple[Any, ...]], jobs: list[tuple[Any, ...]]) -> None:
    # One statement over arrays (unnest), sent in binary (%b), items and jobs together in one round trip.
    # psycopg's executemany runs a pipelined statement per row, whose Python side cost ~60 µs a row, more than
    # all the rest of a delivery's writing; and text arrays are escaped element by element with a regex.
    columns = [list(column) for column in zip(*items, strict=True)]
    if not jobs:
        cursor.execute(_PG_ITEMS, columns)
        return
    cursor.execute(_PG_ITEMS_AND_JOBS, [*columns, *(list(column) for column in zip(*jobs, strict=True))])


def _sqlite_find(source: str, external_ids: list[str]) -> tuple[str, tuple[Any, ...]]:
    marks = ", ".join("?" * len(external_ids))  # only placeholders go into the text
    query = "SELECT external_id, id, status FROM inbox_items WHERE source = ? AND external_id IN ({})"
    return query.format(marks), (source, *external_ids)


def _pg_find(source: str, external_ids: list[str]) -> tuple[str, tuple[Any, ...]]:
    return "SELECT external_id, id, status FROM inbox_items WHERE source = %s AND external_id = ANY(%s)", (
        source,
        external_ids,
    )


_ITEM = (
    "INSERT INTO inbox_items (id, program_id, source, provider, external_id, kind, body, headers, received_at, "
    "status, attempts, last_error, note, event_ids) "
)
_JOB = "INSERT INTO outbox_jobs (id, kind, payload, status, attempts, max_attempts, run_after, created_at) "
# Constant text only (no value is ever formatted into a statement), hence the noqa on the concatenations.
_SQLITE_ITEMS = _ITEM + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '[]')"
_SQLITE_JOBS = _JOB + "VALUES (?, ?, ?, 'pending', 0, 8, ?, ?)"
_PG_ITEMS = (
    _ITEM  # noqa: S608
    + "SELECT i, p, s, pr, e, k, b, h::json, r, st, 0, le, n, '[]' FROM unnest(%b::text[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::text[], "
    "%b::text[], %b::text[]) AS t(i, p, s, pr, e, k, b, h, r, st, le, n)"
)
_PG_ITEMS_AND_JOBS = (
    "WITH items AS ("  # noqa: S608
    + _PG_ITEMS
    + ") "
    + _JOB
    + "SELECT i, k, pl::json, 'pending', 0, 8, r, c FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[]) AS t(i, k, pl, r, c)"
)


@dataclass(frozen=True, slots=True)
class _Statements:
    insert: Callable[[Any, list[tuple[Any, ...]], list[tuple[Any, ...]]], None]
    find: Callable[[str, list[str]], tuple[str, tuple[Any, ...]]]
    time: Callable[[datetime], Any]


_SQLITE = _Statements(insert=_sqlite_insert, find=_sqlite_find, time=_sqlite_time)
_PG = _Statements(insert=_pg_insert, find=_pg_find, time=_pg_time)


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
            winner = find(session, d.source, d.external_id[:200])
            if winner is None:
                raise
            return Stored(winner.id, winner.status, True)


class DeliveryWriter:
    """The queue of verified deliveries and the thread that commits them in groups."""

    def __init__(self, sessions: sessionmaker[Session], readers: sessionmaker[Session], *, max_batch: int = 500):
        self.sessions, self.readers, self.max_batch = sessions, readers, max_batch
        self._queue: queue.SimpleQueue[tuple[Delivery, _Waiter] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Kept by the writer thread between batches: no pool checkout (on PostgreSQL, no pre-ping round trip)
        # per group commit. Dropped after a failed batch, so a broken connection is not used again.
        self._connection: Connection | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.running:
            self._thread = threading.Thread(target=self._run, name="delivery-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop (the app's shutdown, after the last response)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    async def store(self, delivery: Delivery) -> Stored:
        """Queue a delivery for the next group commit and wait (without blocking the loop) until it is stored."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((delivery, (loop, waiter)))
        return await waiter

    def _run(self) -> None:
        try:
            self._take_batches()
        finally:
            self._release()

    def _take_batches(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            # No waiting for more: whatever queued while the last batch was written goes in this one, so a
            # lone delivery is committed at once and a busy endpoint gets larger batches by itself.
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            _settle(batch, self._write([d for d, _ in batch]))
            if stop:
                return

    def _write(self, deliveries: list[Delivery]) -> list[Stored | BaseException]:
        try:
            if self._connection is None:
                self._connection = self.sessions.kw["bind"].connect()
            # The session only carries the audit chain's head; the transaction is the connection's, committed
            # when the block ends (BEGIN IMMEDIATE on SQLite, as for every writer).
            with self._connection.begin(), Session(bind=self._connection) as session:
                return list(store_batch(session, deliveries))
        except Exception as exc:
            self._release()
            log.warning("delivery batch failed; storing one by one", size=len(deliveries), error=str(exc)[:300])
        outcomes: list[Stored | BaseException] = []
        for delivery in deliveries:
            try:
                outcomes.append(store_one(self.sessions, self.readers, delivery))
            except Exception as one:
                outcomes.append(one)
        return outcomes

    def _release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception as exc:  # already broken: nothing to give back to the pool
                log.warning("delivery writer connection not closed cleanly", error=str(exc)[:300])


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
