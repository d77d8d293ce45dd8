"""One event sent to partnerpay's own API: stored raw in the inbox like any webhook delivery (source
"api:{program}"), then processed at once, because the caller is waiting for the result. Many events
(a CSV file) go through the set-based inbox/batch.py instead. A bad event raises and the caller's
transaction writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.audit.service import canonical
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Event
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.inbox.mapping import Facts, Outcome, event_in
from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.inbox.service import find, source_of
from partnerpay.kit.ids import new_id

API = "api"
CSV = "csv"


@dataclass(frozen=True, slots=True)
class Ingested:
    event: Event
    commissions: list[CommissionLine]
    created: bool


def ingest_event(session: Session, *, actor: Actor, data: EventIn, now: datetime, provider: str = API) -> Ingested:
    """Store the event in the inbox and record it; the same external id again returns the first result."""
    recorded = record_event(session, actor=actor, data=data, now=now)
    source = source_of(provider, data.program_id)
    if recorded.created and find(session, source, data.external_id) is None:
        session.add(
            InboxItem(
                id=new_id("inb"),
                program_id=data.program_id,
                source=source,
                provider=provider,
                external_id=data.external_id,
                kind=str(data.type),
                body=canonical(data.model_dump(mode="json")),
                headers={},
                received_at=now,
                status=InboxStatus.PROCESSED.value,
                attempts=1,
                processed_at=now,
                event_ids=[recorded.event.id],
            )
        )
        session.flush()
    return Ingested(recorded.event, recorded.commissions, recorded.created)


def map_event(session: Session, item: InboxItem, body: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """A stored API or CSV event (retried from the inbox): its body is the event as sent."""
    return Facts([event_in(**body)])
