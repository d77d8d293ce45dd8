"""Writing the inbox: storing a delivery (the only work a webhook request does), retrying, waking waiters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.ids import new_id

PROCESS_JOB = "inbox.process"
RECEIVE_ACTION = "inbox.receive"  # the audit action of a stored delivery (one, or a group commit's batch)
RETRYABLE = frozenset({InboxStatus.FAILED.value, InboxStatus.WAITING.value})
MAX_ERROR_CHARS = 2000


def source_of(provider: str, program_id: str) -> str:
    return f"{provider}:{program_id}"


def provider_actor(provider: str, program_id: str) -> Actor:
    """Who the audit log names for what a provider's delivery caused: the provider, bound to the program."""
    return Actor(
        ActorType.SYSTEM,
        f"webhook:{provider}",
        frozenset({"read", "write"}),
        program_id=program_id,
        label=f"{provider} webhook",
    )


def find(session: Session, source: str, external_id: str) -> InboxItem | None:
    return session.scalar(select(InboxItem).where(InboxItem.source == source, InboxItem.external_id == external_id))


def receive(
    session: Session,
    *,
    program_id: str,
    provider: str,
    external_id: str,
    kind: str,
    body: str,
    headers: dict[str, str],
    now: datetime,
    status: InboxStatus = InboxStatus.RECEIVED,
    error: str | None = None,
    note: str | None = None,
) -> tuple[InboxItem, bool]:
    """Store a delivery once (a redelivery returns the stored item and writes nothing) and queue its processing.

    Returns (item, created). A lost race on (source, external_id) surfaces as ConcurrentWrite at commit.
    """
    source = source_of(provider, program_id)
    existing = find(session, source, external_id)
    if existing is not None:
        return existing, False
    item = InboxItem(
        id=new_id("inb"),
        program_id=program_id,
        source=source,
        provider=provider,
        external_id=external_id[:200],
        kind=kind[:100],
        body=body,
        headers=headers,
        received_at=now,
        status=status.value,
        attempts=0,
        last_error=error,
        note=note,
        event_ids=[],
    )
    session.add(item)
    session.flush()
    if status is InboxStatus.RECEIVED:
        enqueue(session, PROCESS_JOB, [{"item_id": item.id}], now=now)
    audit.record(
        session,
        actor=provider_actor(provider, program_id),
        action=RECEIVE_ACTION,
        object_type="inbox_item",
        object_id=item.id,
        program_id=program_id,
        now=now,
        after={"source": source, "external_id": item.external_id, "kind": item.kind, "status": item.status},
    )
    return item, True


def wake(session: Session, *, program_id: str, keys: Sequence[str], now: datetime) -> list[str]:
    """Queue again the items waiting for any of `keys` (an invoice that just arrived, say)."""
    if not keys:
        return []
    ids = list(
        session.scalars(
            select(InboxItem.id).where(
                InboxItem.program_id == program_id,
                InboxItem.status == InboxStatus.WAITING.value,
                InboxItem.waiting_for.in_(list(keys)),
            )
        ).all()
    )
    if ids:
        enqueue(session, PROCESS_JOB, [{"item_id": i} for i in ids], now=now)
    return ids


def retry_items(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    item_ids: Sequence[str] = (),
    statuses: Sequence[str] = (),
    program_id: str | None = None,
) -> list[str]:
    """Queue failed or waiting items for another try: the named ones (all must be retryable, else none
    is), or every item in `statuses` (of one program, when given). One audit row per item."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("retrying inbox items needs the 'write' scope of a staff user or API key")
    if program_id is not None and not actor.sees_program(program_id):
        raise NotFound(f"program {program_id} not found", field="program_id")
    if not item_ids and not statuses:
        raise ValidationError("name the items to retry, or the statuses (failed, waiting) to retry", field="item_ids")
    bad = [s for s in statuses if s not in RETRYABLE]
    if bad:
        raise ValidationError(f"only failed or waiting items can be retried, not {', '.join(bad)}", field="status")
    stmt = select(InboxItem).with_for_update()
    if item_ids:
        stmt = stmt.where(InboxItem.id.in_(sorted(set(item_ids))))
    else:
        stmt = stmt.where(InboxItem.status.in_(list(statuses)))
    if program_id is not None:
        stmt = stmt.where(InboxItem.program_id == program_id)
    if actor.program_id is not None:
        stmt = stmt.where(InboxItem.program_id == actor.program_id)
    items = list(session.scalars(stmt.order_by(InboxItem.received_at, InboxItem.id)).all())
    if item_ids:
        missing = sorted(set(item_ids) - {i.id for i in items})
        if missing:
            raise NotFound(f"inbox item(s) not found: {', '.join(missing)}", field="item_ids")
        wrong = [i for i in items if i.status not in RETRYABLE]
        if wrong:
            raise InvalidTransition(
                "only failed or waiting items can be retried; nothing was retried: "
                + ", ".join(f"{i.id} is {i.status}" for i in wrong),
                field="item_ids",
            )
    before: dict[str, Any] = {i.id: {"status": i.status, "last_error": (i.last_error or "")[:300]} for i in items}
    for item in items:
        item.status = InboxStatus.RECEIVED.value
    session.flush()
    if items:
        enqueue(session, PROCESS_JOB, [{"item_id": i.id} for i in items], now=now)
        audit.record_many(
            session,
            actor=actor,
            action="inbox.retry",
            now=now,
            items=[
                ("inbox_item", i.id, i.program_id, before[i.id], {"status": InboxStatus.RECEIVED.value}) for i in items
            ],
        )
    return [i.id for i in items]


def cut_error(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 12] + " [truncated]"
