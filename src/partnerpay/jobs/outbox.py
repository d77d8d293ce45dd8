"""Adding side effects to the outbox, in the same transaction as the change that causes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.jobs.models import JobStatus
from partnerpay.kit.ids import new_ids


def enqueue(
    session: Session,
    kind: str,
    payloads: list[dict[str, Any]],
    *,
    now: datetime,
    run_after: datetime | None = None,
    max_attempts: int = 8,
) -> list[str]:
    """One job per payload; the worker runs them only after this transaction commits."""
    ids = new_ids("job", len(payloads))
    when = run_after or now
    bulk_insert(
        session,
        "outbox_jobs",
        ("id", "kind", "payload", "status", "attempts", "max_attempts", "run_after", "created_at"),
        [
            (i, kind, json_value(session, p), JobStatus.PENDING.value, 0, max_attempts, when, now)
            for i, p in zip(ids, payloads, strict=True)
        ],
    )
    return ids
