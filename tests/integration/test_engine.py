"""SQLite: writers queue behind BEGIN IMMEDIATE; readers take no lock and see committed snapshots."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from partnerpay.db.engine import make_session_factory, unit_of_work
from partnerpay.kit.errors import ConcurrentWrite


class TestReadonlySessions:
    def test_a_reader_is_not_blocked_by_an_open_writer(self, engine: Engine) -> None:
        writer = make_session_factory(engine)()
        reader = make_session_factory(engine, readonly=True)()
        try:
            writer.execute(
                text(
                    "INSERT INTO staff_users (id, email, password_hash, role, created_at) "
                    "VALUES ('usr_w', 'w@example.com', 'x', 'viewer', '2026-01-01 00:00:00')"
                )
            )
            # The writer holds the write lock; a reader still answers at once, without the uncommitted row.
            assert reader.scalar(text("SELECT count(*) FROM staff_users")) == 0
            writer.commit()
            reader.rollback()
            assert reader.scalar(text("SELECT count(*) FROM staff_users")) == 1
        finally:
            writer.close()
            reader.close()


class TestUnitOfWork:
    def test_a_unique_key_taken_at_commit_is_a_clear_conflict_and_nothing_is_saved(self, engine: Engine) -> None:
        factory = make_session_factory(engine)
        insert = text(
            "INSERT INTO staff_users (id, email, password_hash, role, created_at) "
            "VALUES (:id, 'same@example.com', 'x', 'viewer', '2026-01-01 00:00:00')"
        )
        with pytest.raises(ConcurrentWrite) as caught, unit_of_work(factory) as session:
            session.execute(insert, {"id": "usr_a"})
            session.execute(insert, {"id": "usr_b"})
        assert caught.value.status == 409 and "nothing was saved" in caught.value.message
        with factory() as session:
            assert session.scalar(text("SELECT count(*) FROM staff_users")) == 0

    def test_other_integrity_errors_are_not_disguised_as_conflicts(self, engine: Engine) -> None:
        with pytest.raises(IntegrityError), unit_of_work(make_session_factory(engine)) as session:
            session.execute(
                text(
                    "INSERT INTO partners (id, program_id, name, email, referral_code, status, created_at, source)"
                    " VALUES ('ptn_x', 'prg_missing', 'X', 'x@example.com', 'x-1', 'active', '2026-01-01', 'staff')"
                )
            )
