"""A group commit of webhook deliveries on SQLite, on the driver's connection: the ORM's statement
building and SQLAlchemy's transaction events cost more than the rows. PostgreSQL's is inbox/delivery_pg.py.
Constant text only: no value is ever formatted into a statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from partnerpay.audit import service as audit
from partnerpay.db.bulk import sqlite_datetime
from partnerpay.inbox.delivery_batch import (
    Delivery,
    Stored,
    audit_rows,
    item_rows,
    job_rows,
    keys_by_source,
    plan,
)

FIND_CHUNK = 500  # external ids per lookup: well under SQLite's limit on bound values


def store_sqlite(raw: Any, deliveries: Sequence[Delivery]) -> tuple[list[Stored], str]:
    """Store a batch on the sqlite3 connection `raw`, in its transaction (BEGIN IMMEDIATE: the write lock,
    which is also the audit chain's); returns the answers in delivery order and the chain's head after."""
    cursor = raw.cursor()
    try:
        known: dict[tuple[str, str], Stored] = {}
        for source, external_ids in keys_by_source(deliveries).items():
            for start in range(0, len(external_ids), FIND_CHUNK):
                chunk = external_ids[start : start + FIND_CHUNK]
                marks = ", ".join("?" * len(chunk))  # only placeholders go into the text
                rows = cursor.execute(_FIND.format(marks), (source, *chunk)).fetchall()
                known.update({(source, ext): Stored(item_id, status, True) for ext, item_id, status in rows})
        planned = plan(deliveries, known)
        found = cursor.execute(audit.HEAD_SQL).fetchone()
        head = str(found[0]) if found else audit.GENESIS
        if not planned.new:
            return planned.answers, head
        cursor.executemany(_ITEMS, item_rows(planned.new, sqlite_datetime))  # one C loop over the rows
        cursor.executemany(_JOBS, [job[:5] for job in job_rows(planned.new, sqlite_datetime)])
        rows = audit_rows(planned.new, head)
        cursor.executemany(_AUDIT, [(sqlite_datetime(row[0]), *row[1:]) for row in rows])
        return planned.answers, rows[-1][-1]
    finally:
        cursor.close()


_FIND = "SELECT external_id, id, status FROM inbox_items WHERE source = ? AND external_id IN ({})"
_ITEMS = (
    "INSERT INTO inbox_items (id, program_id, source, provider, external_id, kind, body, headers, received_at, "
    "status, attempts, last_error, note, event_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '[]')"
)
_JOBS = (
    "INSERT INTO outbox_jobs (id, kind, payload, status, attempts, max_attempts, run_after, created_at) "
    "VALUES (?, ?, ?, 'pending', 0, 8, ?, ?)"
)
_AUDIT = "INSERT INTO audit_log (" + ", ".join(audit.COLUMNS) + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
