"""The webhook delivery writer (inbox/delivery_writer.py): a group commit stores each delivery once, answers
replays as duplicates, queues one processing job per received item, and writes one audit row per provider
and program that names every delivery it stored, on a chain that still verifies."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import record, verify_chain
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import make_session_factory, unit_of_work
from partnerpay.inbox.delivery_writer import BATCH_OBJECT, Delivery, DeliveryWriter, store_batch
from partnerpay.inbox.durable import Flusher
from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.programs.service import create_program

HEADERS = {"stripe-signature": "t=1,v1=ab", "content-type": "application/json", "user-agent": "Stripe/1.0 é"}


def _program(session_factory: sessionmaker[Session], clock: FixedClock, name: str = "Acme") -> str:
    with unit_of_work(session_factory) as s:
        return create_program(s, actor=SYSTEM, name=name, currency="EUR", hold_days=0, now=clock.now()).id


def _delivery(program_id: str, n: int, clock: FixedClock, **overrides: Any) -> Delivery:
    fields: dict[str, Any] = {
        "program_id": program_id,
        "provider": "stripe",
        "external_id": f"evt_{n}",
        "kind": "invoice.paid",
        "body": f'{{"id": "evt_{n}", "type": "invoice.paid"}}',
        "headers": HEADERS,
        "now": clock.now(),
    }
    return Delivery(**{**fields, **overrides})


class TestStoreBatch:
    def test_each_delivery_is_stored_once_and_copies_are_answered_as_replays(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        first, second = _delivery(program_id, 1, clock), _delivery(program_id, 2, clock)
        with unit_of_work(session_factory) as s:
            stored = store_batch(s, [first, second, first])
        assert [r.duplicate for r in stored] == [False, False, True]
        assert stored[2].id == stored[0].id and stored[0].id != stored[1].id
        with unit_of_work(session_factory) as s:
            again = store_batch(s, [second])
        assert again[0].id == stored[1].id and again[0].duplicate and again[0].status == "received"
        with session_factory() as s:
            items = s.scalars(select(InboxItem).order_by(InboxItem.external_id)).all()
            assert [i.external_id for i in items] == ["evt_1", "evt_2"]
            assert items[0].headers == HEADERS and items[0].received_at == clock.now()
            assert items[0].source == f"stripe:{program_id}" and items[0].event_ids == [] and items[0].attempts == 0
            # The replay-only batch wrote nothing: two jobs, one audit row (the first batch's).
            assert s.scalar(select(func.count()).select_from(OutboxJob)) == 2
            assert s.scalar(select(func.count()).where(AuditEntry.action == "inbox.receive")) == 1

    def test_bodies_and_headers_are_stored_exactly_as_received(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        # Escapes, quotes, backslashes, line breaks, non-ASCII and astral characters, spacing:
        # the body is the provider's text, kept byte for byte whatever the batch's encoding on the way.
        body = '{"type": "invoice.paid",  "id": "evt_x", "note": "Zo\u00eb \\"q\\" \\\\ a\\nb 😀 ü\t"}\r\n'
        headers = {"user-agent": 'Stripe/1.0 "é" \\', "content-type": "application/json", "a": '{"x": 1}'}
        delivery = _delivery(program_id, 9, clock, body=body, headers=headers)
        with unit_of_work(session_factory) as s:
            store_batch(s, [delivery])
        with session_factory() as s:
            item = s.scalars(select(InboxItem)).one()
            assert item.body == body and item.headers == headers

    def test_a_batch_mixing_stored_and_new_deliveries_writes_only_the_new_ones(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        old, new = _delivery(program_id, 1, clock), _delivery(program_id, 2, clock)
        with unit_of_work(session_factory) as s:
            (stored_before,) = store_batch(s, [old])
        with unit_of_work(session_factory) as s:
            answers = store_batch(s, [old, new, old, new])
        assert [(a.id, a.duplicate) for a in answers] == [
            (stored_before.id, True),
            (answers[1].id, False),
            (stored_before.id, True),
            (answers[1].id, True),
        ]
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(InboxItem)) == 2
            jobs = s.scalars(select(OutboxJob.payload).order_by(OutboxJob.created_at, OutboxJob.id)).all()
            assert sorted(j["item_id"] for j in jobs) == sorted([stored_before.id, answers[1].id])
            audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "inbox.receive").order_by(AuditEntry.seq))
            assert [[i["external_id"] for i in (a.after or {})["items"]] for a in audit] == [["evt_1"], ["evt_2"]]
            assert verify_chain(s)[1] == []

    def test_in_one_transaction_the_batch_continues_the_chain_the_session_started(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        with unit_of_work(session_factory) as s:
            record(s, actor=SYSTEM, action="test.before", object_type="t", object_id="1", now=clock.now())
            store_batch(s, [_delivery(program_id, 1, clock)])
            # The session's next audit row must follow the batch's row, not the one it wrote itself.
            record(s, actor=SYSTEM, action="test.after", object_type="t", object_id="2", now=clock.now())
        with session_factory() as s:
            actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
            assert actions[-3:] == ["test.before", "inbox.receive", "test.after"]
            assert verify_chain(s)[1] == []

    def test_a_received_item_gets_a_processing_job_and_an_ignored_one_none(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        note = "partnerpay does not use Stripe customer.created events"
        ignored = _delivery(program_id, 2, clock, kind="customer.created", status=InboxStatus.IGNORED, note=note)
        with unit_of_work(session_factory) as s:
            stored = store_batch(s, [_delivery(program_id, 1, clock), ignored])
        assert [r.status for r in stored] == ["received", "ignored"]
        with session_factory() as s:
            job = s.scalars(select(OutboxJob)).one()
            assert job.kind == "inbox.process" and job.payload == {"item_id": stored[0].id}
            assert job.status == JobStatus.PENDING and job.run_after == clock.now() and job.max_attempts == 8
            assert s.scalars(select(InboxItem.note).where(InboxItem.id == stored[1].id)).one() == note

    def test_one_audit_row_per_program_names_every_stored_delivery_and_the_chain_verifies(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        one, two = _program(session_factory, clock, "One"), _program(session_factory, clock, "Two")
        batch = [_delivery(one, 1, clock), _delivery(two, 2, clock), _delivery(one, 3, clock)]
        with unit_of_work(session_factory) as s:
            stored = store_batch(s, [*batch, batch[0]])
        clock.advance(timedelta(seconds=1))
        with unit_of_work(session_factory) as s:
            store_batch(s, [_delivery(one, 4, clock)])
        with session_factory() as s:
            audit = s.scalars(
                select(AuditEntry).where(AuditEntry.action == "inbox.receive").order_by(AuditEntry.seq)
            ).all()
            assert [(a.program_id, a.object_type, a.actor_id) for a in audit] == [
                (one, BATCH_OBJECT, "webhook:stripe"),
                (two, BATCH_OBJECT, "webhook:stripe"),
                (one, BATCH_OBJECT, "webhook:stripe"),
            ]
            assert audit[0].object_id == stored[0].id
            assert audit[0].after == {
                "source": f"stripe:{one}",
                "items": [
                    {"id": stored[0].id, "external_id": "evt_1", "kind": "invoice.paid", "status": "received"},
                    {"id": stored[2].id, "external_id": "evt_3", "kind": "invoice.paid", "status": "received"},
                ],
            }
            assert audit[1].after is not None and [i["external_id"] for i in audit[1].after["items"]] == ["evt_2"]
            assert verify_chain(s) == (s.scalar(select(func.count()).select_from(AuditEntry)), [])


class TestDeliveryWriter:
    def test_concurrent_requests_are_each_answered_after_their_commit(
        self, session_factory: sessionmaker[Session], engine: Any, clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        writer = DeliveryWriter(session_factory, make_session_factory(engine, readonly=True))
        writer.start()

        async def deliver_all() -> list[Any]:
            # 40 requests at once, every event twice: 20 stored, 20 answered as replays of them.
            return await asyncio.gather(*(writer.store(_delivery(program_id, n % 20, clock)) for n in range(40)))

        try:
            answers = asyncio.run(deliver_all())
        finally:
            writer.close()
        assert not writer.running
        assert sum(1 for a in answers if not a.duplicate) == 20
        assert {a.id for a in answers[:20]} == {a.id for a in answers[20:]}
        with session_factory() as s:
            committed = set(s.scalars(select(InboxItem.id)))
            assert committed == {a.id for a in answers}
            assert s.scalar(select(func.count()).select_from(OutboxJob)) == 20
            assert verify_chain(s)[1] == []

    def test_two_lanes_store_copies_racing_in_both_once_and_answer_them_with_one_id(
        self, session_factory: sessionmaker[Session], engine: Any, clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        writer = DeliveryWriter(session_factory, make_session_factory(engine, readonly=True), lanes=2)
        writer.start()
        assert len(writer._threads) == 2

        async def deliver_all() -> list[Any]:
            # 50 events, each delivered 4 times at once: copies land in both lanes' batches together.
            return await asyncio.gather(*(writer.store(_delivery(program_id, n % 50, clock)) for n in range(200)))

        try:
            answers = asyncio.run(deliver_all())
        finally:
            writer.close()
        assert not writer.running
        ids: dict[int, set[str]] = {}
        for n, answer in enumerate(answers):
            ids.setdefault(n % 50, set()).add(answer.id)
        assert all(len(one) == 1 for one in ids.values())
        assert sum(1 for a in answers if not a.duplicate) == 50
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(InboxItem)) == 50
            assert s.scalar(select(func.count()).select_from(OutboxJob)) == 50
            listed = [
                item["id"]
                for after in s.scalars(select(AuditEntry.after).where(AuditEntry.action == "inbox.receive"))
                for item in after["items"]
            ]
            assert sorted(listed) == sorted(set(listed)) == sorted(i for one in ids.values() for i in one)
            assert verify_chain(s)[1] == []

    def test_a_failing_delivery_fails_alone_and_the_writer_goes_on(
        self, session_factory: sessionmaker[Session], engine: Any, clock: FixedClock
    ) -> None:
        program_id = _program(session_factory, clock)
        writer = DeliveryWriter(session_factory, make_session_factory(engine, readonly=True))
        writer.start()
        # A program that does not exist breaks its batch (foreign key); the batch is stored again one by one.
        batch = [_delivery(program_id, 1, clock), _delivery("prg_missing", 2, clock), _delivery(program_id, 3, clock)]

        async def deliver(deliveries: list[Delivery]) -> list[Any]:
            return await asyncio.gather(*(writer.store(d) for d in deliveries), return_exceptions=True)

        try:
            first, failed, third = asyncio.run(deliver(batch))
            (later,) = asyncio.run(deliver([_delivery(program_id, 4, clock)]))
        finally:
            writer.close()
        assert isinstance(failed, Exception)
        assert not first.duplicate and not third.duplicate and not later.duplicate
        with session_factory() as s:
            assert set(s.scalars(select(InboxItem.external_id))) == {"evt_1", "evt_3", "evt_4"}
            assert verify_chain(s)[1] == []


def test_on_sqlite_the_checkpointer_copies_the_writers_pages_into_the_database_file(
    session_factory: sessionmaker[Session], engine: Any, clock: FixedClock, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("a SQLite WAL matter")
    program_id = _program(session_factory, clock)
    writer = DeliveryWriter(session_factory, make_session_factory(engine, readonly=True))
    writer.start()
    path = str(engine.url.database)

    def in_file() -> int:
        # immutable=1 reads the database file alone, ignoring the WAL: what a checkpoint has copied there.
        with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
            return int(raw.execute("SELECT count(*) FROM inbox_items").fetchone()[0])

    async def deliver() -> list[Any]:
        return await asyncio.gather(*(writer.store(_delivery(program_id, n, clock)) for n in range(30)))

    try:
        asyncio.run(deliver())
        # Far below SQLite's 1,000-page mark: without the checkpointer these rows would stay in the WAL.
        deadline = time.monotonic() + 5
        while in_file() < 30:
            assert time.monotonic() < deadline, "no checkpoint within 5 s"
            time.sleep(0.05)
    finally:
        writer.close()
    with engine.connect() as conn:  # the connection the writer kept is back in the pool with SQLite's default
        raw = conn.connection.driver_connection
        assert raw is not None and raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_on_sqlite_answers_wait_for_the_wal_flush_and_the_pool_gets_flushing_commits_back(
    session_factory: sessionmaker[Session],
    engine: Any,
    clock: FixedClock,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL's commits flush themselves")
    program_id = _program(session_factory, clock)
    flushes: list[int] = []
    real = Flusher._flushed

    def flushed(self: Flusher) -> Any:
        error = real(self)
        flushes.append(1)  # after the flush: an answer that counts it came after a finished flush
        return error

    monkeypatch.setattr(Flusher, "_flushed", flushed)
    writer = DeliveryWriter(session_factory, make_session_factory(engine, readonly=True))
    writer.start()
    flushed_when_answered: list[int] = []

    async def one(n: int) -> Any:
        stored = await writer.store(_delivery(program_id, n, clock))
        flushed_when_answered.append(len(flushes))
        return stored

    async def deliver() -> list[Any]:
        return await asyncio.gather(*(one(n) for n in range(30)))

    try:
        answers = asyncio.run(deliver())
    finally:
        writer.close()
    # The lane's commits do not wait for the disk; the Flusher flushes, and only then are they answered.
    assert len(answers) == 30 and min(flushed_when_answered) >= 1
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(InboxItem)) == 30
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:  # every connection the pool holds, the writer's among them, flushes its own commits again
        # On the driver's connections: through SQLAlchemy each would BEGIN IMMEDIATE on SQLite, one at a time.
        found = [c.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0] for c in pooled]  # type: ignore[union-attr]
    finally:
        for conn in pooled:
            conn.close()
    assert found == [2] * len(pooled)  # FULL
