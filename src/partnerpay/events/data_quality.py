"""The data-quality figures of one program: revenue no partner was found for, inbox items that failed or
wait, and each integration's health (last delivery, error rate, bad signatures)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.events.customers import PAYING_TYPES
from partnerpay.events.models import Customer, Event
from partnerpay.inbox import queries as inbox_queries
from partnerpay.inbox.models import InboxItem, InboxStatus, ProgramIntegration
from partnerpay.kit.errors import Forbidden
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

UNATTRIBUTED_DAYS = 90
HEALTH_DAYS = 7
LIST_LIMIT = 100
FAILED_SHOWN = 10


@dataclass(frozen=True, slots=True)
class UnattributedRow:
    event: Event
    customer_external_id: str


@dataclass(frozen=True, slots=True)
class Unattributed:
    since: datetime
    count: int
    totals: dict[str, int]  # per currency, never mixed
    rows: list[UnattributedRow]  # the newest LIST_LIMIT


@dataclass(frozen=True, slots=True)
class InboxTrouble:
    failed: int
    waiting: int
    newest_failed: list[inbox_queries.ItemRow]


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: str
    connected: bool  # has credentials stored (program_integrations); api/csv never do
    last_delivery_at: datetime | None  # the newest inbox item from this provider
    deliveries: int  # received in the last HEALTH_DAYS days
    failed: int  # of those, failed now
    bad_signatures: int  # refused deliveries, counted (never stored as facts)
    last_bad_signature_at: datetime | None

    @property
    def error_rate(self) -> float | None:
        """Failed share of the window's deliveries (None: nothing delivered, no rate to speak of)."""
        return round(self.failed / self.deliveries, 4) if self.deliveries else None


@dataclass(frozen=True, slots=True)
class DataQuality:
    program: Program
    at: datetime
    unattributed: Unattributed
    inbox: InboxTrouble
    providers: list[ProviderHealth] = field(default_factory=list)


def data_quality(session: Session, actor: Actor, *, program_id: str, now: datetime) -> DataQuality:
    """Every figure of the data-quality page for one program, from the rows as they are now."""
    if actor.partner_id is not None:
        raise Forbidden("the data-quality figures are for staff")
    program = get_program(session, actor, program_id)
    return DataQuality(
        program=program,
        at=now,
        unattributed=unattributed(session, program.id, now=now),
        inbox=inbox_trouble(session, program.id),
        providers=provider_health(session, program.id, now=now),
    )


def unattributed(session: Session, program_id: str, *, now: datetime) -> Unattributed:
    """Paying events of the last UNATTRIBUTED_DAYS days that have no partner, newest first."""
    since = now - timedelta(days=UNATTRIBUTED_DAYS)
    where = (
        Event.program_id == program_id,
        Event.type.in_(PAYING_TYPES),
        Event.partner_id.is_(None),
        Event.occurred_at >= since,
    )
    count = 0
    totals: dict[str, int] = defaultdict(int)
    stmt = select(Event.currency, func.count(), func.coalesce(func.sum(Event.amount), 0)).where(*where)
    for currency, n, total in session.execute(stmt.group_by(Event.currency)).all():
        count += int(n)
        if currency:
            totals[currency] += int(total or 0)
    rows = session.execute(
        select(Event, Customer.external_id)
        .join(Customer, Customer.id == Event.customer_id)
        .where(*where)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    return Unattributed(since, count, dict(totals), [UnattributedRow(e, ext) for e, ext in rows])


def inbox_trouble(session: Session, program_id: str) -> InboxTrouble:
    counts = inbox_queries.counts(session, program_id=program_id)
    newest = inbox_queries.items(session, program_id=program_id, status=InboxStatus.FAILED.value, limit=FAILED_SHOWN)
    return InboxTrouble(counts[InboxStatus.FAILED.value], counts[InboxStatus.WAITING.value], newest)


def provider_health(session: Session, program_id: str, *, now: datetime) -> list[ProviderHealth]:
    """One row per provider that is connected or has ever delivered, by name."""
    since = now - timedelta(days=HEALTH_DAYS)
    failed = InboxStatus.FAILED.value
    last = dict(
        session.execute(
            select(InboxItem.provider, func.max(InboxItem.received_at))
            .where(InboxItem.program_id == program_id)
            .group_by(InboxItem.provider)
        ).all()
    )
    window = {
        provider: (int(total), int(bad or 0))
        for provider, total, bad in session.execute(
            select(InboxItem.provider, func.count(), func.sum(case((InboxItem.status == failed, 1), else_=0)))
            .where(InboxItem.program_id == program_id, InboxItem.received_at >= since)
            .group_by(InboxItem.provider)
        ).all()
    }
    connected = {
        i.provider: i
        for i in session.scalars(select(ProgramIntegration).where(ProgramIntegration.program_id == program_id))
    }
    found = []
    for provider in sorted(set(last) | set(connected)):
        integration = connected.get(provider)
        total, bad = window.get(provider, (0, 0))
        found.append(
            ProviderHealth(
                provider=provider,
                connected=integration is not None,
                last_delivery_at=last.get(provider),
                deliveries=total,
                failed=bad,
                bad_signatures=integration.bad_signatures if integration else 0,
                last_bad_signature_at=integration.last_bad_signature_at if integration else None,
            )
        )
    return found
