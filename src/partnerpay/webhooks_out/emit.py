"""Emitting events to a program's subscriptions, in the caller's transaction (the outbox delivers them).

Services call one function at the place they make the change:

    from partnerpay.webhooks_out import emit
    emit.emit(session, program_id, "payout.paid", {"id": ..., ...}, now)

Without a matching active subscription this is one indexed query and nothing is written (nothing is cached
across requests, so a new subscription counts at once). With some, it writes one event row per item (its
exact body), one delivery row per matching subscription and one outbox job per delivery, all set-based.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.db.bulk import bulk_insert
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.ids import new_ids
from partnerpay.webhooks_out.models import DeliveryStatus, WebhookSubscription
from partnerpay.webhooks_out.types import EVENT_TYPES

DELIVER_JOB = "webhooks.deliver"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def event_body(event_id: str, event_type: str, program_id: str, data: dict[str, Any], now: datetime) -> str:
    """The exact text POSTed (and signed): every delivery and replay of the event sends these bytes."""
    envelope = {
        "id": event_id,
        "type": event_type,
        "created": now.astimezone(UTC).isoformat(),
        "program_id": program_id,
        "data": data,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def subscribers(session: Session, program_id: str, event_type: str) -> list[str]:
    """Ids of the program's active subscriptions to the type: one query on (program_id, active)."""
    rows = session.execute(
        select(WebhookSubscription.id, WebhookSubscription.event_types).where(
            WebhookSubscription.program_id == program_id, WebhookSubscription.active.is_(True)
        )
    ).all()
    return [sub_id for sub_id, types in rows if event_type in (types or [])]


def emit_many(
    session: Session, program_id: str, event_type: str, items: Sequence[dict[str, Any]], now: datetime
) -> list[str]:
    """One event per item for the program's subscribers; returns the event ids ([] when nobody listens)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not items:
        return []
    subs = subscribers(session, program_id, event_type)
    if not subs:
        return []
    event_ids = new_ids("whe", len(items))
    bulk_insert(
        session,
        "webhook_events",
        ("id", "program_id", "type", "body", "created_at"),
        [
            (i, program_id, event_type, event_body(i, event_type, program_id, d, now), now)
            for i, d in zip(event_ids, items, strict=True)
        ],
    )
    pairs = [(event_id, sub_id) for event_id in event_ids for sub_id in subs]
    delivery_ids = new_ids("whd", len(pairs))
    job_ids = enqueue(session, DELIVER_JOB, [{"delivery_id": d} for d in delivery_ids], now=now)
    bulk_insert(
        session,
        "webhook_deliveries",
        ("id", "program_id", "subscription_id", "event_id", "event_type", "status", "attempts", "job_id",
         "next_attempt_at", "created_at"),
        [(d, program_id, sub_id, event_id, event_type, DeliveryStatus.PENDING.value, 0, job, now, now)
         for d, job, (event_id, sub_id) in zip(delivery_ids, job_ids, pairs, strict=True)],
    )  # fmt: skip
    return event_ids


def emit(session: Session, program_id: str, event_type: str, data: dict[str, Any], now: datetime) -> str | None:
    """One event; its id, or None when no subscription of the program wants the type."""
    ids = emit_many(session, program_id, event_type, [data], now)
    return ids[0] if ids else None


# --- what each domain sends: one small function per call site ---------------------------------------------


class LineLike(Protocol):
    """A CommissionLine or a LineDraft (the batch ingest's lines before they are objects)."""

    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def hold_until(self) -> datetime: ...
    @property
    def explanation(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def line_data(line: LineLike, status: str | None = None) -> dict[str, Any]:
    return {
        "id": line.id,
        "object": "commission_line",
        "partner_id": line.partner_id,
        "kind": line.kind,
        "amount": line.amount,
        "currency": line.currency,
        "status": status or line.status,
        "event_id": line.event_id,
        "hold_until": line.hold_until,
        "explanation": line.explanation,
        "created_at": line.created_at,
    }


def commission_lines(
    session: Session, event_type: str, lines: Iterable[LineLike], now: datetime, *, status: str | None = None
) -> None:
    """commission.created (new lines, clawbacks included) or commission.approved, per program."""
    by_program: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_program[line.program_id].append(line_data(line, status))
    for program_id, items in sorted(by_program.items()):
        emit_many(session, program_id, event_type, items, now)


class PayoutLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def batch_id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


def payout_outcomes(
    session: Session, outcomes: Iterable[tuple[PayoutLike, str, datetime, str | None]], now: datetime
) -> None:
    """payout.paid, or payout.failed for a failed or returned payout (`status` says which), per program."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for payout, status, at, reason in outcomes:
        event_type = "payout.paid" if status == "paid" else "payout.failed"
        grouped[(payout.program_id, event_type)].append(
            {
                "id": payout.id,
                "object": "payout",
                "batch_id": payout.batch_id,
                "partner_id": payout.partner_id,
                "amount": payout.amount,
                "currency": payout.currency,
                "status": status,
                "at": at,
                "reason": reason if status != "paid" else None,
            }
        )
    for (program_id, event_type), items in sorted(grouped.items()):
        emit_many(session, program_id, event_type, items, now)


class DealLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def company(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def crm_id(self) -> str | None: ...


def deal_updated(session: Session, deal: DealLike, change: str, text: str, now: datetime) -> None:
    """deal.updated, from the deal's timeline (deals/timeline.add_line): every change to a deal passes there."""
    emit(
        session,
        deal.program_id,
        "deal.updated",
        {
            "id": deal.id,
            "object": "deal",
            "partner_id": deal.partner_id,
            "company": deal.company,
            "stage": deal.stage,
            "status": deal.status,
            "amount": deal.amount,
            "currency": deal.currency,
            "crm_id": deal.crm_id,
            "change": change,
            "text": text,
        },
        now,
    )


def dispute_updated(session: Session, *, program_id: str, dispute: dict[str, Any], now: datetime) -> str | None:
    """dispute.updated: the disputes package calls this with the dispute as its API shows it (id, status, …)."""
    return emit(session, program_id, "dispute.updated", {"object": "dispute", **dispute}, now)
