"""Alembic environment: batch mode on SQLite so ALTERs work there too."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from partnerpay.db.engine import make_engine
from partnerpay.db.models import Base

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    sqlite = url.startswith("sqlite")
    # SQLite batch mode rebuilds tables (copy, drop, rename); with foreign keys enforced the drop
    # would fail, so migrations run on a plain connection (keys off) and check the keys afterwards.
    engine = create_engine(url, poolclass=pool.NullPool) if sqlite else make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
    engine.dispose()


run_migrations_online()
