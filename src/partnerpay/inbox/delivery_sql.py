"""The statements of a webhook group commit (inbox/delivery_writer.py), per database, sent to the driver
directly: the ORM's statement building cost more than the rows. Constant text only: no value is ever
formatted into a statement (hence the noqa on the concatenations)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def statements(dialect: str) -> Statements:
    return _PG if dialect == "postgresql" else _SQLITE


def _sqlite_time(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime writes (db/bulk.py), so these rows read back like the ORM's.
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _pg_time(value: datetime) -> datetime:
    return value


def _sqlite_insert(cursor: Any, items: list[tuple[Any, ...]], jobs: list[tuple[Any, ...]]) -> None:
    cursor.executemany(_SQLITE_ITEMS, items)  # one C loop over the rows
    if jobs:
        cursor.executemany(_SQLITE_JOBS, jobs)


def _pg_insert(cursor: Any, items: list[tuple[Any, ...]], jobs: list[tuple[Any, ...]]) -> None:
    # One statement over arrays (unnest), sent in binary (%b), items and jobs together in one round trip.
    # psycopg's executemany runs a pipelined statement per row, whose Python side cost ~60 µs a row, more than
    # all the rest of a delivery's writing; and text arrays are escaped element by element with a regex.
    columns = [list(column) for column in zip(*items, strict=True)]
    if not jobs:
        cursor.execute(_PG_ITEMS, columns)
        return
    cursor.execute(_PG_ITEMS_AND_JOBS, [*columns, *(list(column) for column in zip(*jobs, strict=True))])


def _sqlite_find(cursor: Any, source: str, external_ids: list[str]) -> list[tuple[str, str, str]]:
    marks = ", ".join("?" * len(external_ids))  # only placeholders go into the text
    query = "SELECT external_id, id, status FROM inbox_items WHERE source = ? AND external_id IN ({})"
    return list(cursor.execute(query.format(marks), (source, *external_ids)).fetchall())


def _pg_find(cursor: Any, source: str, external_ids: list[str]) -> list[tuple[str, str, str]]:
    # Never prepared: psycopg prepares a statement on its fifth use, and PostgreSQL's generic plan for it
    # searched the unique index by source alone, reading every item of the program (replays at 10,000 events
    # per run fell from ~4,000 to ~700 a second as the table grew).
    cursor.execute(
        "SELECT external_id, id, status FROM inbox_items WHERE source = %s AND external_id = ANY(%s)",
        (source, external_ids),
        prepare=False,
    )
    return list(cursor.fetchall())


_ITEM = (
    "INSERT INTO inbox_items (id, program_id, source, provider, external_id, kind, body, headers, received_at, "
    "status, attempts, last_error, note, event_ids) "
)
_JOB = "INSERT INTO outbox_jobs (id, kind, payload, status, attempts, max_attempts, run_after, created_at) "
_SQLITE_ITEMS = _ITEM + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '[]')"
_SQLITE_JOBS = _JOB + "VALUES (?, ?, ?, 'pending', 0, 8, ?, ?)"
_PG_ITEMS = (
    _ITEM  # noqa: S608
    + "SELECT i, p, s, pr, e, k, b, h::json, r, st, 0, le, n, '[]' FROM unnest(%b::text[], %b::text[], "
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::text[], "
    "%b::text[], %b::text[]) AS t(i, p, s, pr, e, k, b, h, r, st, le, n)"
)
_PG_ITEMS_AND_JOBS = (
    "WITH items AS ("  # noqa: S608
    + _PG_ITEMS
    + ") "
    + _JOB
    + "SELECT i, k, pl::json, 'pending', 0, 8, r, c FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[]) AS t(i, k, pl, r, c)"
)


@dataclass(frozen=True, slots=True)
class Statements:
    insert: Callable[[Any, list[tuple[Any, ...]], list[tuple[Any, ...]]], None]
    find: Callable[[Any, str, list[str]], list[tuple[str, str, str]]]
    time: Callable[[datetime], Any]


_SQLITE = Statements(insert=_sqlite_insert, find=_sqlite_find, time=_sqlite_time)
_PG = Statements(insert=_pg_insert, find=_pg_find, time=_pg_time)
