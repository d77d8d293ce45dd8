"""Engine creation: SQLite in WAL with foreign keys and full sync, or PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.kit.errors import ConcurrentWrite

SQLITE_CACHE_KIB = 65536


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use psycopg 3 for both."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy so BEGIN IMMEDIATE below is what really starts one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: a committed money write survives power loss, not just a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        # 64 MiB of page cache (default is 2 MiB): index inserts of large ledgers stay in memory.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READONLY):
            # Readers take no lock: in WAL mode they see a consistent snapshot beside the writer.
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front, so two writers queue instead of failing on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


READONLY = "partnerpay_readonly"


def make_session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions for services (writers) or, with readonly, for pages and lists that only read."""
    bind = engine.execution_options(**{READONLY: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back everything when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if not is_unique_violation(exc):
            raise
        # Services check uniqueness first, so this is a race another request won: a clear 409, not a 500.
        raise ConcurrentWrite(
            "the same thing was saved by another request at the same moment; nothing was saved, try again"
        ) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_unique_violation(exc: IntegrityError) -> bool:
    original = exc.orig
    if type(original).__name__ == "UniqueViolation":  # psycopg
        return True
    return "UNIQUE constraint failed" in str(original)  # sqlite3


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
