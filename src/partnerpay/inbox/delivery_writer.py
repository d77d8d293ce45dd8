"""Group commit for webhook deliveries: every request still waits until its delivery is committed (the
provider gets its 2xx only for a stored fact), but the deliveries that arrive together share one
transaction, one duplicate lookup, one insert per table and one audit call.

One transaction per delivery made the database the bottleneck: on SQLite sixteen threads queued on the
write lock behind the busy handler's sleeps, on PostgreSQL on the audit chain's lock; a single writer
thread removes both queues. A batch that fails as a whole (a unique key taken by another process's
writer) is stored again one delivery at a time, where each loser is answered as the replay it is.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit import service as audit
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.inbox.service import PROCESS_JOB, find, provider_actor, receive, source_of
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import ConcurrentWrite
from partnerpay.kit.ids import new_ids

log = structlog.get_logger(__name__)
COLUMNS = (
    "id", "program_id", "source", "provider", "external_id", "kind", "body", "headers", "received_at", "status",
    "attempts", "last_error", "note", "event_ids",
)  # fmt: skip


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
    """receive() for many deliveries in the caller's transaction: each stored once, replays answered."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for d in deliveries:
        by_source[d.source].append(d.external_id[:200])
    known: dict[tuple[str, str], Stored] = {}
    for source, external_ids in by_source.items():
        for start in range(0, len(external_ids), 500):
            rows = session.execute(
                select(InboxItem.external_id, InboxItem.id, InboxItem.status).where(
                    InboxItem.source == source, InboxItem.external_id.in_(external_ids[start : start + 500])
                )
            ).all()
            known.update({(source, ext): Stored(item_id, status, True) for ext, item_id, status in rows})
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
    bulk_insert(
        session,
        "inbox_items",
        COLUMNS,
        [
            (item_id, d.program_id, d.source, d.provider, d.external_id[:200], d.kind[:100], d.body,
             json_value(session, d.headers), d.now, d.status.value, 0, d.error, d.note, json_value(session, []))
            for item_id, d in new
        ],
    )  # fmt: skip
    received = [item_id for item_id, d in new if d.status is InboxStatus.RECEIVED]
    if received:
        enqueue(session, PROCESS_JOB, [{"item_id": i} for i in received], now=new[0][1].now)
    groups: dict[tuple[str, str], list[tuple[str, Delivery]]] = defaultdict(list)
    for item_id, d in new:
        groups[(d.provider, d.program_id)].append((item_id, d))
    for (provider, program_id), members in groups.items():
        audit.record_many(
            session,
            actor=provider_actor(provider, program_id),
            action="inbox.receive",
            now=members[0][1].now,
            items=[("inbox_item", item_id, program_id, None, _snapshot(d)) for item_id, d in members],
        )
    return results


def _snapshot(d: Delivery) -> dict[str, str]:
    return {"source": d.source, "external_id": d.external_id[:200], "kind": d.kind[:100], "status": d.status.value}


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
        self._queue: queue.SimpleQueue[tuple[Delivery, Future[Stored]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

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

    def submit(self, delivery: Delivery) -> Future[Stored]:
        future: Future[Stored] = Future()
        self._queue.put((delivery, future))
        return future

    def _run(self) -> None:
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
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[Delivery, Future[Stored]]]) -> None:
        try:
            with unit_of_work(self.sessions) as session:
                results = store_batch(session, [d for d, _ in batch])
        except Exception as exc:
            log.warning("delivery batch failed; storing one by one", size=len(batch), error=str(exc)[:300])
            for delivery, future in batch:
                try:
                    future.set_result(store_one(self.sessions, self.readers, delivery))
                except Exception as one:
                    future.set_exception(one)
            return
        for (_, future), stored in zip(batch, results, strict=True):
            future.set_result(stored)
