"""Shared benchmark plumbing: a fresh migrated database, medians, and the RESULT line."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from partnerpay.db.engine import normalise_url
from partnerpay.db.migrate import upgrade

SIZES = {"ci": "ci", "full": "full"}


@contextmanager
def fresh_database(db: str) -> Iterator[str]:
    """A new, migrated database for one benchmark run; dropped afterwards."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            yield url
        return
    base = os.environ.get("PARTNERPAY_BENCH_DATABASE_URL")
    if not base:
        raise SystemExit("set PARTNERPAY_BENCH_DATABASE_URL=postgresql://user@host:5432/dbname")
    server = make_url(normalise_url(base))
    name = f"partnerpay_bench_{os.getpid()}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    target = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(target)
        yield target
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def median_rate(runs: list[tuple[int, float]]) -> float:
    """Median of items/second over repeated (items, seconds) runs."""
    return statistics.median(items / seconds for items, seconds in runs)


def result_line(bench: str, db: str, ours: float, limit: float, target: float, unit: str = "/s") -> str:
    ratio = ours / limit if limit else 0.0
    return (
        f"RESULT bench={bench} db={db} ours={ours:.0f}{unit} limit={limit:.0f}{unit} "
        f"ratio={ratio:.2f} target={target:.2f}"
    )


def alternate(
    times: int,
    first: Callable[[], tuple[int, float]],
    second: Callable[[], tuple[int, float]],
    *,
    warm_up: bool = True,
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Interleave the two measurements so that table growth and cache warmth favour neither.

    One untimed round first: module imports, compiled statements and a cold page cache are paid once
    by a running server, not on every request, and would otherwise land on whichever side runs first.
    `warm_up=False` skips it where one pass takes minutes and those costs are lost in it (full sizes).
    """
    a: list[tuple[int, float]] = []
    b: list[tuple[int, float]] = []
    if warm_up:
        first()
        second()
    for _ in range(times):
        a.append(first())
        b.append(second())
    return a, b
