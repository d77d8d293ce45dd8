"""Migrations are the only way schemas change: they match the models and upgrade existing data."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from partnerpay.db.engine import normalise_url
from partnerpay.db.migrate import upgrade
from partnerpay.db.models import Base
from tests.conftest import PG_URL, _pg_admin


class TestMigrations:
    def test_head_matches_the_models(self, engine: Engine) -> None:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"

    def test_upgrading_a_database_with_data_keeps_it_and_fills_new_columns(self, tmp_path: Path) -> None:
        if PG_URL:
            url, name = _pg_worker_db_named("migr")
        else:
            url, name = f"sqlite:///{tmp_path / 'old.db'}", ""
        try:
            upgrade(url, "0001")
            eng = create_engine(url)
            with eng.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO programs (id, name, currency, hold_days, default_percent_bp, cookie_days,"
                        " rounding, created_at)"
                        " VALUES ('prg_1', 'Old', 'EUR', 30, 2000, 30, 'half_even', '2026-01-01 00:00:00')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO partners (id, program_id, name, email, referral_code, status, created_at) VALUES"
                        " ('ptn_1', 'prg_1', 'Acme', 'a@example.com', 'acme-1', 'active', '2026-01-01 00:00:00')"
                    )
                )
            upgrade(url)
            with eng.connect() as conn:
                program = conn.execute(
                    text("SELECT brand_color, auto_approve, applications_open, payout_change_hold_days FROM programs")
                ).one()
                partner = conn.execute(text("SELECT name, source, owner_id FROM partners")).one()
            eng.dispose()
            assert tuple(program) == ("#1f2a44", False, True, 7)
            assert tuple(partner) == ("Acme", "staff", None)
        finally:
            if name:
                _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_worker_db_named(suffix: str) -> tuple[str, str]:
    """A separate, empty database beside the session's template, which stays untouched."""
    assert PG_URL
    url = make_url(normalise_url(PG_URL))
    name = f"{url.database}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{suffix}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name
