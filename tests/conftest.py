"""Test databases: every test runs on a fresh, migrated database.

SQLite by default; PostgreSQL when PARTNERPAY_TEST_DATABASE_URL is set (CI runs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.engine import make_engine, make_session_factory, normalise_url
from partnerpay.db.migrate import upgrade
from partnerpay.db.models import Base
from partnerpay.kit.clock import FixedClock

PG_URL = os.environ.get("PARTNERPAY_TEST_DATABASE_URL")

# No per-example deadline: on a loaded 2-core CI machine a pure example can take longer than hypothesis's
# 200 ms by scheduling alone, and a timing failure there says nothing about the property.
settings.register_profile("partnerpay", deadline=None)
settings.load_profile("partnerpay")
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _pg_admin(sql: str) -> None:
    assert PG_URL
    admin = create_engine(make_url(normalise_url(PG_URL)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def _pg_worker_db() -> tuple[str, str]:
    """One database per xdist worker, created fresh for the session: (url, name)."""
    assert PG_URL
    url = make_url(normalise_url(PG_URL))
    name = f"{url.database}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


@pytest.fixture(scope="session")
def backend() -> str:
    return "postgresql" if PG_URL else "sqlite"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a file to copy (SQLite) or a database to truncate (PostgreSQL)."""
    if PG_URL:
        url, name = _pg_worker_db()
        upgrade(url)
        yield url
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    yield str(path)


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        engine = create_engine(_template)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            # TRUNCATE bypasses the append-only row triggers, which is what a test reset needs.
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield _template
        return
    path = tmp_path / "test.db"
    shutil.copyfile(_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for a test to call services with; the test commits what it wants kept."""
    s = session_factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)
