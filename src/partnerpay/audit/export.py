"""Audit exports, streamed: CSV (formula-escaped, kit/csvsafe.py) and JSON lines, newest first.

Each yields text chunks of a few hundred rows so a response of millions of rows starts at once and stays
flat in memory; the rows come from audit.queries.iterate (keyset batches).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC

from partnerpay.audit.models import AuditEntry
from partnerpay.db.base import canonical_json
from partnerpay.kit.csvsafe import escape_cell

COLUMNS = (
    "seq",
    "at",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "program_id",
    "before",
    "after",
    "hash",
)
CHUNK = 500


def _row(entry: AuditEntry, names: dict[str, str]) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "actor": names.get(entry.actor_id, ""),
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "program_id": entry.program_id,
        "before": entry.before,
        "after": entry.after,
        "hash": entry.hash,
    }


def csv_chunks(entries: Iterable[AuditEntry], names: dict[str, str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, entry in enumerate(entries, 1):
        row = _row(entry, names)
        for key in ("before", "after"):
            row[key] = "" if row[key] is None else canonical_json(row[key])
        # Every cell escaped: an actor name, an object id or a JSON value may start with = + - @.
        writer.writerow([escape_cell(row[c]) for c in COLUMNS])
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(entries: Iterable[AuditEntry], names: dict[str, str]) -> Iterator[str]:
    lines: list[str] = []
    for entry in entries:
        lines.append(json.dumps(_row(entry, names), ensure_ascii=False, sort_keys=True, default=str))
        if len(lines) >= CHUNK:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"
