"""Processing a stored item into events: idempotent (a processed item is left alone, every event is
deduplicated by its external id) and order-independent (a fact whose prerequisite has not arrived waits,
and is woken when that prerequisite is processed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.events.models import Event
from partnerpay.events.service import record_event
from partnerpay.inbox import ingest
from partnerpay.inbox.mapping import Facts, Ignore, Outcome, Wait
from partnerpay.inbox.models import InboxItem, InboxStatus, ProgramIntegration, ProviderPayment
from partnerpay.inbox.service import PROCESS_JOB, cut_error, provider_actor, wake
from partnerpay.integrations import hubspot, shopify, stripe_webhooks
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.kit.errors import Conflict, PartnerpayError, ValidationError

Mapper = Callable[[Session, InboxItem, dict[str, Any], dict[str, Any]], Outcome]
# One mapper per provider; Shopify, HubSpot, the events API and CSV rows plug in here.
__all__ = ["PROCESS_JOB", "process_item", "process_job"]
MAPPERS: dict[str, Mapper] = {
    stripe_webhooks.PROVIDER: stripe_webhooks.map_event,
    shopify.PROVIDER: shopify.map_event,
    hubspot.PROVIDER: hubspot.map_event,
    ingest.API: ingest.map_event,
    ingest.CSV: ingest.map_event,
}
DONE = frozenset({InboxStatus.PROCESSED.value, InboxStatus.IGNORED.value})


def process_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Outbox handler of inbox.process {item_id}."""
    item_id = payload.get("item_id")
    if not isinstance(item_id, str):
        raise PermanentJobError(f"payload item_id must be a string, got {item_id!r}")
    process_item(session, item_id=item_id, now=context.now)


def _config(session: Session, item: InboxItem) -> dict[str, Any]:
    config = session.scalar(
        select(ProgramIntegration.config).where(
            ProgramIntegration.program_id == item.program_id, ProgramIntegration.provider == item.provider
        )
    )
    return dict(config or {})


def process_item(session: Session, *, item_id: str, now: datetime) -> InboxItem:
    """Turn one item into events, or mark it waiting, ignored or failed (with the reason). The caller commits.

    Errors a person can act on (a currency the program does not pay in, a refund larger than what is left)
    fail the item and roll back whatever it wrote; anything else raises, so the job is retried.
    """
    item = session.scalar(select(InboxItem).where(InboxItem.id == item_id).with_for_update())
    if item is None:
        raise PermanentJobError(f"inbox item {item_id} does not exist")
    if item.status in DONE:
        return item
    item.attempts += 1
    before = item.status
    try:
        with session.begin_nested():
            outcome = _outcome(session, item)
            if isinstance(outcome, Facts):
                _record(session, item, outcome, now)
    except PartnerpayError as exc:
        item.status = InboxStatus.FAILED.value
        where = f" (field {exc.field})" if exc.field else ""
        item.last_error = cut_error(f"{exc.code}: {exc.message}{where}")
    else:
        item.last_error = None
        item.waiting_for = None
        if isinstance(outcome, Wait):
            item.status, item.waiting_for, item.note = InboxStatus.WAITING.value, outcome.key[:200], outcome.reason
        elif isinstance(outcome, Ignore):
            item.status, item.note, item.processed_at = InboxStatus.IGNORED.value, outcome.note, now
        else:
            item.status, item.processed_at = InboxStatus.PROCESSED.value, now
    session.flush()
    audit.record(
        session,
        actor=provider_actor(item.provider, item.program_id),
        action="inbox.process",
        object_type="inbox_item",
        object_id=item.id,
        program_id=item.program_id,
        now=now,
        before={"status": before},
        after={
            "status": item.status,
            "event_ids": item.event_ids,
            "waiting_for": item.waiting_for,
            "error": (item.last_error or "")[:300] or None,
        },
    )
    return item


def _outcome(session: Session, item: InboxItem) -> Outcome:
    mapper = MAPPERS.get(item.provider)
    if mapper is None:
        raise ValidationError(f"no processor for provider {item.provider!r}", field="provider")
    try:
        event = json.loads(item.body)
    except ValueError as exc:
        raise ValidationError(f"the body is not JSON: {exc}", field="body") from None
    if not isinstance(event, dict):
        raise ValidationError("the body is not a JSON object", field="body")
    return mapper(session, item, event, _config(session, item))


def _record(session: Session, item: InboxItem, facts: Facts, now: datetime) -> None:
    actor = provider_actor(item.provider, item.program_id)
    ids: list[str] = []
    for data in facts.events:
        try:
            ids.append(record_event(session, actor=actor, data=data, now=now).event.id)
        except Conflict:
            existing = session.scalar(
                select(Event.id).where(Event.program_id == item.program_id, Event.external_id == data.external_id)
            )
            if not facts.lenient or existing is None:
                raise
            ids.append(existing)
            item.note = f"{data.type} {data.external_id} was already recorded from another delivery; kept as is"
    if facts.payment is not None:
        seen = facts.payment
        known = session.scalar(
            select(ProviderPayment.id).where(
                ProviderPayment.program_id == item.program_id,
                ProviderPayment.provider == seen.provider,
                ProviderPayment.payment_id == seen.payment_id,
            )
        )
        if known is None:
            session.add(
                ProviderPayment(
                    program_id=item.program_id,
                    provider=seen.provider,
                    payment_id=seen.payment_id,
                    charge_id=seen.charge_id,
                    payment_intent_id=seen.payment_intent_id,
                    event_external_id=seen.event_external_id,
                    gross=seen.gross,
                    net=seen.net,
                    currency=seen.currency,
                )
            )
            session.flush()
    item.event_ids = ids
    wake(session, program_id=item.program_id, keys=facts.wakes, now=now)
