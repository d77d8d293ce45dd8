"""Events sent to partnerpay's own API or in a CSV file: stored raw in the inbox like any webhook
delivery (source "api:{program}" or "csv:{program}"), then processed at once, because the caller is
waiting for the result. A bad row raises and the caller's transaction writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.ids import new_id

API = "api"
CSV = "csv"
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class Ingested:
    event: Event
    commissions: list[CommissionLine]
    created: bool


def ingest_event(session: Session, *, actor: Actor, data: EventIn, now: datetime, provider: str = API) -> Ingested:
    """One event: stored in the inbox and recorded; the same external id again returns the first result."""
    return ingest_events(session, actor=actor, rows=[data], now=now, provider=provider)[0]


def ingest_events(
    session: Session,
    *,
    actor: Actor,
    rows: Sequence[EventIn],
    now: datetime,
    provider: str = CSV,
    progress: Progress | None = None,
) -> list[Ingested]:
    """Many events in one transaction, in order; one result per row. Errors name the row (1-based) and
    leave the transaction for the caller to roll back."""
    results: list[Ingested] = []
    for number, data in enumerate(rows, start=1):
        try:
            recorded = record_event(session, actor=actor, data=data, now=now)
        except PartnerpayError as exc:
            if len(rows) > 1:
                exc.extra.setdefault("row", number)
                exc.message = f"row {number}: {exc.message}"
            raise
        source = source_of(provider, data.program_id)
        if recorded.created and find(session, source, data.external_id) is None:
            session.add(
                InboxItem(
                    id=new_id("inb"),
                    program_id=data.program_id,
                    source=source,
                    provider=provider,
                    external_id=data.external_id,
                    kind=data.type,
                    body=canonical(data.model_dump(mode="json")),
                    headers={},
                    received_at=now,
                    status=InboxStatus.PROCESSED.value,
                    attempts=1,
                    processed_at=now,
                    event_ids=[recorded.event.id],
                )
            )
        results.append(Ingested(recorded.event, recorded.commissions, recorded.created))
        if progress is not None and (number % 500 == 0 or number == len(rows)):
            progress(number, len(rows))
    session.flush()
    return results


def map_event(session: Session, item: InboxItem, body: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """A stored API or CSV event (retried from the inbox): its body is the event as sent."""
    return Facts([event_in(**body)])
