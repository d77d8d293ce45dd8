"""SQLite: writers queue behind BEGIN IMMEDIATE; readers take no lock and see committed snapshots."""

from __future__ import annotations

from sqlalchemy import Engine, text

from partnerpay.db.engine import make_session_factory


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
