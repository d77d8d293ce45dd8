"""Hash-chained audit log: every row chains to the one before; edits and deletions are detected."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.chain_status import START, verify_after
from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import (
    GENESIS,
    canonical,
    chain_hash,
    hashed_fields,
    hashed_text,
    record,
    record_many,
    row_intact,
    verify_chain,
    walk_chain,
)
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.db.base import canonical_json
from partnerpay.kit.clock import FixedClock

AuditItem = tuple[str, str, str | None, Any, Any]  # what record_many takes per row
ALICE = Actor(ActorType.STAFF, "usr_alice", frozenset({"approve"}))


def rows(session: Session) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def record_three(session: Session, clock: FixedClock) -> list[str]:
    """Three committed rows, one transaction each."""
    hashes = []
    for n in range(3):
        hashes.append(
            record(
                session,
                actor=ALICE,
                action="commission.approve",
                object_type="commission_line",
                object_id=f"com_{n}",
                program_id="prg_1",
                before={"status": "pending"},
                after={"status": "approved", "amount": 1000 + n},
                now=clock.now(),
            )
        )
        session.commit()
        clock.advance(timedelta(seconds=1))
    return hashes


def tamper(session: Session, engine: Engine, backend: str, statement: str, **params: Any) -> None:
    """Change the log behind the service's back, as someone with database access could."""
    # Every SQLite transaction here is BEGIN IMMEDIATE: the test's own one must end first.
    session.commit()
    with engine.begin() as conn:
        _set_append_only(conn, backend, enabled=False)
        conn.execute(text(statement), params)
        _set_append_only(conn, backend, enabled=True)


def _set_append_only(conn: Connection, backend: str, *, enabled: bool) -> None:
    if backend == "postgresql":
        # Re-enabled in the same transaction: the test database is shared by the tests that follow.
        verb = "ENABLE" if enabled else "DISABLE"
        conn.execute(text(f"ALTER TABLE audit_log {verb} TRIGGER audit_log_append_only"))
    elif not enabled:
        # Each SQLite test has its own database file, so the triggers need not come back.
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def json_param(backend: str, name: str) -> str:
    return f"CAST(:{name} AS json)" if backend == "postgresql" else f":{name}"


class TestRecord:
    def test_the_first_row_chains_from_genesis_and_its_hash_covers_the_row(
        self, session: Session, clock: FixedClock
    ) -> None:
        digest = record(
            session,
            actor=SYSTEM,
            action="payout.create",
            object_type="payout",
            object_id="pay_1",
            program_id="prg_1",
            after={"amount": 1250, "currency": "EUR"},
            now=clock.now(),
        )
        session.commit()

        # Recomputed here from the documented canonical form, not with the module's own helper.
        expected_text = json.dumps(
            {
                "at": "2026-01-15T12:00:00.000000+00:00",
                "actor_type": "system",
                "actor_id": "system",
                "action": "payout.create",
                "object_type": "payout",
                "object_id": "pay_1",
                "program_id": "prg_1",
                "before": None,
                "after": {"amount": 1250, "currency": "EUR"},
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        assert digest == hashlib.sha256((GENESIS + expected_text).encode()).hexdigest()
        [row] = rows(session)
        assert row.prev_hash == GENESIS
        assert row.hash == digest

    def test_stores_who_did_what_to_which_object(self, session: Session, clock: FixedClock) -> None:
        record(
            session,
            actor=ALICE,
            action="commission.approve",
            object_type="commission_line",
            object_id="com_1",
            program_id="prg_1",
            before={"status": "pending"},
            after={"status": "approved", "note": "ok ✓"},
            now=clock.now(),
        )
        session.commit()

        [row] = rows(session)
        assert (row.actor_type, row.actor_id, row.action, row.object_type, row.object_id, row.program_id) == (
            "staff",
            "usr_alice",
            "commission.approve",
            "commission_line",
            "com_1",
            "prg_1",
        )
        assert row.before == {"status": "pending"}
        assert row.after == {"status": "approved", "note": "ok ✓"}
        assert row.at == clock.now()

    def test_each_row_chains_to_the_one_before_across_transactions(self, session: Session, clock: FixedClock) -> None:
        hashes = record_three(session, clock)

        stored = rows(session)
        assert [r.hash for r in stored] == hashes
        assert [r.prev_hash for r in stored] == [GENESIS, *hashes[:-1]]
        assert len(set(hashes)) == 3

    def test_another_session_continues_the_same_chain(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        first = record(session, actor=SYSTEM, action="a", object_type="t", object_id="1", now=clock.now())
        session.commit()

        with session_factory() as other:
            second = record(other, actor=SYSTEM, action="b", object_type="t", object_id="2", now=clock.now())
            other.commit()

        assert [r.prev_hash for r in rows(session)] == [GENESIS, first]
        assert rows(session)[1].hash == second

    def test_a_rolled_back_row_does_not_become_the_head_of_the_chain(self, session: Session, clock: FixedClock) -> None:
        kept = record(session, actor=SYSTEM, action="kept", object_type="t", object_id="1", now=clock.now())
        session.commit()
        record(session, actor=SYSTEM, action="lost", object_type="t", object_id="2", now=clock.now())
        session.rollback()

        record(session, actor=SYSTEM, action="next", object_type="t", object_id="3", now=clock.now())
        session.commit()

        stored = rows(session)
        assert [r.action for r in stored] == ["kept", "next"]
        assert stored[1].prev_hash == kept
        assert verify_chain(session) == (2, [])

    def test_a_time_with_another_offset_is_hashed_in_utc(self, session: Session) -> None:
        paris = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))

        record(session, actor=SYSTEM, action="a", object_type="t", object_id="1", now=paris)
        session.commit()

        [row] = rows(session)
        assert row.at == datetime(2026, 3, 1, 13, 30, 15, 123456, tzinfo=UTC)
        assert verify_chain(session) == (1, [])


class TestRecordMany:
    def test_rows_are_chained_in_the_order_given(self, session: Session, clock: FixedClock) -> None:
        items: list[AuditItem] = [("commission_line", f"com_{n}", "prg_1", None, {"n": n}) for n in range(5)]

        hashes = record_many(session, actor=ALICE, action="commission.approve", now=clock.now(), items=items)
        session.commit()

        stored = rows(session)
        assert [r.object_id for r in stored] == [f"com_{n}" for n in range(5)]
        assert [r.hash for r in stored] == hashes
        assert [r.prev_hash for r in stored] == [GENESIS, *hashes[:-1]]

    def test_continues_an_existing_chain(self, session: Session, clock: FixedClock) -> None:
        head = record_three(session, clock)[-1]

        hashes = record_many(
            session,
            actor=SYSTEM,
            action="payout.send",
            now=clock.now(),
            items=[("payout", "pay_1", "prg_1", None, None), ("payout", "pay_2", "prg_1", None, None)],
        )
        session.commit()

        stored = rows(session)
        assert [r.prev_hash for r in stored[3:]] == [head, hashes[0]]
        assert verify_chain(session) == (5, [])

    def test_a_large_batch_verifies(self, session: Session, clock: FixedClock) -> None:
        # 250 rows: above the bulk threshold (COPY on PostgreSQL).
        items: list[AuditItem] = [
            ("commission_line", f"com_{n}", "prg_1", {"status": "pending"}, {"n": n}) for n in range(250)
        ]

        record_many(session, actor=SYSTEM, action="commission.approve", now=clock.now(), items=items)
        session.commit()

        assert verify_chain(session) == (250, [])

    def test_no_items_writes_nothing(self, session: Session, clock: FixedClock) -> None:
        assert record_many(session, actor=SYSTEM, action="noop", now=clock.now(), items=[]) == []
        session.commit()

        assert rows(session) == []


class TestChainHash:
    FIELDS = hashed_fields(
        at=datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
        actor_type="system",
        actor_id="system",
        action="a",
        object_type="t",
        object_id="1",
        program_id=None,
        before=None,
        after={"b": 2, "a": [1, 2]},
    )

    def test_is_a_sha256_hex_digest_that_depends_on_the_previous_hash(self) -> None:
        digest = chain_hash(GENESIS, self.FIELDS)

        assert len(digest) == 64
        assert int(digest, 16) >= 0
        assert digest == chain_hash(GENESIS, dict(self.FIELDS))
        assert digest != chain_hash("1" * 64, self.FIELDS)

    def test_key_order_does_not_matter(self) -> None:
        reordered = dict(reversed(list(self.FIELDS.items())))
        reordered["after"] = {"a": [1, 2], "b": 2}

        assert chain_hash(GENESIS, reordered) == chain_hash(GENESIS, self.FIELDS)

    @pytest.mark.parametrize(
        ("key", "value"),
        [("action", "b"), ("after", {"b": 3, "a": [1, 2]}), ("after", {"b": 2, "a": [2, 1]}), ("program_id", "")],
    )
    def test_any_change_of_content_changes_the_hash(self, key: str, value: Any) -> None:
        changed = {**self.FIELDS, key: value}

        assert chain_hash(GENESIS, changed) != chain_hash(GENESIS, self.FIELDS)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# before/after are snapshots of an object: a JSON object (or nothing), with anything inside.
snapshots = st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=5)


class TestVerifyChain:
    def test_an_empty_log_has_no_problems(self, session: Session) -> None:
        assert verify_chain(session) == (0, [])

    def test_an_intact_log_has_no_problems(self, session: Session, clock: FixedClock) -> None:
        record_three(session, clock)

        assert verify_chain(session) == (3, [])

    def test_a_small_batch_size_still_walks_the_whole_log(self, session: Session, clock: FixedClock) -> None:
        items: list[AuditItem] = [("t", str(n), None, None, {"n": n}) for n in range(7)]
        record_many(session, actor=SYSTEM, action="a", now=clock.now(), items=items)
        session.commit()

        assert verify_chain(session, batch=2) == (7, [])

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(before=snapshots, after=snapshots)
    def test_any_snapshot_is_stored_exactly_as_it_was_hashed(
        self, session: Session, clock: FixedClock, before: Any, after: Any
    ) -> None:
        record(
            session,
            actor=ALICE,
            action="partner.update",
            object_type="partner",
            object_id="ptn_1",
            before=before,
            after=after,
            now=clock.now(),
        )

        # Read back in the same transaction and rolled back, so each example starts from an empty log.
        try:
            assert verify_chain(session) == (1, [])
        finally:
            session.rollback()

    @pytest.mark.parametrize("value", [-0.0, 1e16, 2**63, 1.5, 7, "7", [1, 2.5], True])
    def test_a_bare_json_scalar_is_stored_exactly_as_it_was_hashed(
        self, request: pytest.FixtureRequest, session: Session, backend: str, clock: FixedClock, value: Any
    ) -> None:
        record(session, actor=SYSTEM, action="a", object_type="t", object_id="1", after=value, now=clock.now())
        session.commit()

        assert verify_chain(session) == (1, [])

    @pytest.mark.parametrize(
        ("column", "value"),
        [("action", "commission.reject"), ("actor_id", "usr_mallory"), ("object_id", "com_9")],
    )
    def test_a_changed_column_is_reported_on_that_row(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock, column: str, value: str
    ) -> None:
        record_three(session, clock)
        seq = rows(session)[1].seq

        tamper(session, engine, backend, f"UPDATE audit_log SET {column} = :v WHERE seq = :seq", v=value, seq=seq)

        checked, problems = verify_chain(session)
        assert checked == 3
        assert len(problems) == 1
        assert f"audit row {seq}:" in problems[0]
        assert "content" in problems[0]

    @pytest.mark.parametrize("column", ["after", "before"])
    def test_changed_json_is_reported_on_that_row(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock, column: str
    ) -> None:
        record_three(session, clock)
        seq = rows(session)[1].seq

        tamper(
            session,
            engine,
            backend,
            f'UPDATE audit_log SET "{column}" = {json_param(backend, "v")} WHERE seq = :seq',
            v=json.dumps({"status": "approved", "amount": 999_999}),
            seq=seq,
        )

        checked, problems = verify_chain(session)
        assert checked == 3
        assert len(problems) == 1
        assert f"audit row {seq}:" in problems[0]

    def test_the_same_json_written_differently_is_not_a_change(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        seq = rows(session)[1].seq

        # Same value as stored, other key order and spacing: the canonical form is what is hashed.
        tamper(
            session,
            engine,
            backend,
            f'UPDATE audit_log SET "after" = {json_param(backend, "v")} WHERE seq = :seq',
            v='{ "amount": 1001,  "status": "approved" }',
            seq=seq,
        )

        assert verify_chain(session) == (3, [])

    def test_a_row_rehashed_after_its_change_breaks_the_chain_at_the_next_row(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        middle, last = rows(session)[1:]
        forged = chain_hash(
            middle.prev_hash,
            hashed_fields(
                at=middle.at,
                actor_type=middle.actor_type,
                actor_id=middle.actor_id,
                action="commission.reject",
                object_type=middle.object_type,
                object_id=middle.object_id,
                program_id=middle.program_id,
                before=middle.before,
                after=middle.after,
            ),
        )

        tamper(
            session,
            engine,
            backend,
            "UPDATE audit_log SET action = 'commission.reject', hash = :h WHERE seq = :seq",
            h=forged,
            seq=middle.seq,
        )

        checked, problems = verify_chain(session)
        assert checked == 3
        assert len(problems) == 1
        assert f"audit row {last.seq}: chain broken" in problems[0]

    @pytest.mark.parametrize("batch", [5000, 1])
    def test_a_deleted_middle_row_is_reported_as_a_broken_chain(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock, batch: int
    ) -> None:
        record_three(session, clock)
        middle, last = rows(session)[1:]

        tamper(session, engine, backend, "DELETE FROM audit_log WHERE seq = :seq", seq=middle.seq)

        checked, problems = verify_chain(session, batch=batch)
        assert checked == 2
        assert len(problems) == 1
        assert f"audit row {last.seq}: chain broken" in problems[0]

    def test_reads_the_database_not_rows_already_loaded_in_the_session(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        loaded = rows(session)  # now in this session's identity map, kept across commits
        session.commit()

        tamper(session, engine, backend, "UPDATE audit_log SET action = 'x' WHERE seq = :seq", seq=loaded[0].seq)

        checked, problems = verify_chain(session)
        assert checked == 3
        assert len(problems) == 1
        assert f"audit row {loaded[0].seq}:" in problems[0]


class TestRowIntact:
    """One recipe for "does this row still give its hash", used by the full walk and the Audit page's check."""

    def stored_rows(self, session: Session) -> list[Any]:
        return list(session.execute(select(*AuditEntry.__table__.columns).order_by(AuditEntry.seq)).all())

    def test_untouched_rows_and_loaded_entries_are_intact(self, session: Session, clock: FixedClock) -> None:
        record_three(session, clock)

        assert [row_intact(r) for r in self.stored_rows(session)] == [True, True, True]
        assert all(row_intact(entry) for entry in rows(session))

    def test_a_tampered_row_is_not_intact_for_the_service_and_the_chain_check(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        seq = rows(session)[1].seq

        tamper(session, engine, backend, "UPDATE audit_log SET object_id = 'com_x' WHERE seq = :seq", seq=seq)

        assert [row_intact(r) for r in self.stored_rows(session)] == [True, False, True]
        content = f"audit row {seq}: content does not match its hash"
        assert verify_chain(session) == (3, [content])
        status = verify_after(session, START, clock.now())
        assert not status.ok and status.problems == (content,) and status.newly_checked == 3

    def test_a_tail_changed_after_the_chain_check_is_reported_on_the_next_look(
        self, session: Session, engine: Engine, backend: str, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        checked = verify_after(session, START, clock.now())
        assert checked.ok and checked.last_seq == rows(session)[-1].seq

        # The hash column is left alone: only the recipe can tell the row was changed.
        tamper(session, engine, backend, "UPDATE audit_log SET action = 'x' WHERE seq = :seq", seq=checked.last_seq)

        again = verify_after(session, checked, clock.now())
        assert again.problems == (f"audit row {checked.last_seq}: changed or removed after it was verified",)
        assert verify_chain(session)[1] == [f"audit row {checked.last_seq}: content does not match its hash"]


class TestWalkChain:
    """The one walk behind verify_chain (from the start) and the Audit page's check (from its checkpoint)."""

    def test_continuing_from_a_row_checks_only_the_rows_after_it(self, session: Session, clock: FixedClock) -> None:
        record_three(session, clock)
        first, _, last = rows(session)

        walk = walk_chain(session, after_seq=first.seq, prev_hash=first.hash)

        assert (walk.checked, walk.last_seq, walk.last_hash, walk.problems) == (2, last.seq, last.hash, [])
        assert walk_chain(session, after_seq=last.seq, prev_hash=last.hash).checked == 0

    def test_a_checkpoint_hash_the_next_row_does_not_chain_from_is_a_broken_chain(
        self, session: Session, clock: FixedClock
    ) -> None:
        record_three(session, clock)
        first, middle, _ = rows(session)

        walk = walk_chain(session, after_seq=first.seq, prev_hash="f" * 64)

        assert walk.problems == [f"audit row {middle.seq}: chain broken (prev_hash does not match row before)"]


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_log SET action = 'edited'",
            "UPDATE audit_log SET prev_hash = hash",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
        ],
    )
    def test_the_database_refuses_to_change_the_log(self, session: Session, clock: FixedClock, statement: str) -> None:
        hashes = record_three(session, clock)

        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()

        assert [r.hash for r in rows(session)] == hashes
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "edited")) == 0
        assert verify_chain(session) == (3, [])


class TestHashedText:
    @given(
        before=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=4),
        after=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8) | st.none()),
        object_id=st.text(min_size=1, max_size=12),
        program_id=st.none() | st.text(max_size=6),
    )
    def test_assembled_text_equals_the_canonical_dict_form(
        self, before: Any, after: Any, object_id: str, program_id: str | None
    ) -> None:
        at = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        fields = hashed_fields(
            at=at,
            actor_type="staff",
            actor_id="usr_ü",
            action="partner.create",
            object_type="partner",
            object_id=object_id,
            program_id=program_id,
            before=before,
            after=after,
        )
        assembled = hashed_text(
            at_iso=at.isoformat(timespec="microseconds"),
            actor_type="staff",
            actor_id="usr_ü",
            action="partner.create",
            object_type="partner",
            object_id=object_id,
            program_id=program_id,
            before_text=None if before is None else canonical_json(before),
            after_text=None if after is None else canonical_json(after),
        )
        assert assembled == canonical(fields)
