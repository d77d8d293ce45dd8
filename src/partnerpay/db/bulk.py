"""Set-based inserts for batch jobs: COPY on PostgreSQL, one executemany on SQLite.

The ORM's unit of work costs several times the raw insert; ledger postings, payout runs and
imports write thousands of rows at once, so they come here instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.db.base import canonical_json

# Same text SQLAlchemy's SQLite DateTime writes, so rows from both paths read back alike.
_SQLITE_DT = "%Y-%m-%d %H:%M:%S.%f"
COPY_THRESHOLD = 200  # below this a plain executemany is as fast and simpler


def sqlite_datetime(value: datetime) -> str:
    """An aware time as the UTC text SQLAlchemy's SQLite DateTime writes, so raw rows read back like the ORM's."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime refused: store times with an offset")
    if offset:
        value = value.astimezone(UTC)
    # isoformat's first 26 characters are _SQLITE_DT's text (with a 4-digit year, as SQLAlchemy writes
    # it), at half strftime's cost: clicks are written at thousands a second, each at its own time.
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_value(value: Any) -> Any:
    return sqlite_datetime(value) if isinstance(value, datetime) else value


def _sqlite_rows(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """The rows with their datetimes as SQLite text; a batch shares a few times, so each is formatted once."""
    first = rows[0]
    # Rows of one insert share their column types; only a column that starts with None needs a scan.
    columns = [
        i for i, value in enumerate(first)
        if isinstance(value, datetime) or (value is None and any(isinstance(r[i], datetime) for r in rows))
    ]  # fmt: skip
    if not columns:
        return rows if isinstance(first, tuple) else [tuple(r) for r in rows]
    text: dict[datetime, str] = {}
    out: list[tuple[Any, ...]] = []
    for row in rows:
        converted = list(row)  # one copy per row, however many of its columns are times
        for i in columns:
            value = converted[i]
            if value is not None:
                converted[i] = text.get(value) or text.setdefault(value, _sqlite_value(value))
        out.append(tuple(converted))
    return out


def bulk_insert(session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows (tuples in `columns` order) in the session's current transaction."""
    if not rows:
        return
    conn = session.connection()
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608 - table/columns are ours
            _sqlite_rows(rows),
        )
        return
    marks = ", ".join("%s" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})", [tuple(r) for r in rows])  # noqa: S608


def json_value(session: Session, value: Any) -> Any:
    """A JSON column value for bulk_insert: psycopg's Json on PostgreSQL, compact text on SQLite."""
    if value is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        from psycopg.types.json import Json

        return Json(value)
    return canonical_json(value)
