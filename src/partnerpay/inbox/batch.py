"""Set-based ingest of many events at once (CSV imports, API batches): the same rows, events, customers,
decisions, commission lines and ledger postings the one-event path would write, in a handful of bulk
statements instead of a dozen per event (batch_plan.py says which rows qualify; the rest go through
events.service.record_event one by one).

Everything is in the caller's transaction: a bad row raises naming its row, and nothing is written.
Rows already recorded with the same content, or repeated in the batch, are counted and write nothing,
so replaying a batch writes no row at all. One hash-chained audit row records the batch (its rows'
digest, and the ids of what it created), as the partner import does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.audit.service import canonical
from partnerpay.auth.actor import Actor
from partnerpay.commissions.service import LineDraft, commission_for, write_drafts
from partnerpay.db.base import canonical_json
from partnerpay.db.bulk import bulk_insert
from partnerpay.events.lifecycle import CustomerStatus, Fact, State, fold
from partnerpay.events.models import Customer
from partnerpay.events.schemas import PAYING
from partnerpay.events.service import record_event
from partnerpay.inbox.batch_plan import KnownCustomer, Plan, Row, at_row, checked_rows, named_partner, plan_batch
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import source_of
from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.tracking.attribution import NO_EVIDENCE, Evidence, add_months, company_domain, decide

Progress = Callable[[int, int], None]  # (rows done, rows)
PAYING_TYPES = frozenset(t.value for t in PAYING)
EVENT_COLUMNS = (
    "id", "program_id", "type", "external_id", "occurred_at", "customer_id", "partner_id", "amount", "currency",
    "product", "original_event_id", "metadata", "content_hash", "created_at", "attribution_id", "click_id",
    "unattributed_reason",
)  # fmt: skip
INBOX_COLUMNS = (
    "id", "program_id", "source", "provider", "external_id", "kind", "body", "headers", "received_at", "status",
    "attempts", "processed_at", "event_ids",
)  # fmt: skip
CUSTOMER_COLUMNS = (
    "id", "program_id", "external_id", "partner_id", "attribution", "created_at", "attribution_id",
    "attributed_until", "status", "lifetime_revenue", "first_paid_at", "last_event_at", "status_changed_at",
)  # fmt: skip
ATTRIBUTION_COLUMNS = (
    "id", "program_id", "customer_id", "partner_id", "rule", "reason", "decided_at", "expires_at", "event_id",
    "self_referral",
)  # fmt: skip
LINE_COLUMNS = LineDraft.__slots__


@dataclass
class BatchReport:
    rows: int
    created: int = 0
    duplicates: int = 0  # already recorded with the same content, or repeated in the batch
    lines: int = 0
    set_based: int = 0  # recorded by the bulk path
    one_by_one: int = 0  # recorded by record_event (history or judgement needed)
    event_ids: list[str] = field(default_factory=list)  # per row, in order: the event it is (new or earlier)
    new: list[bool] = field(default_factory=list)  # per row: whether this row created its event
    amounts: dict[str, int] = field(default_factory=dict)  # currency → total of the new events' amounts


@dataclass
class _Writes:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    inbox: list[tuple[Any, ...]] = field(default_factory=list)
    new_customers: list[tuple[Any, ...]] = field(default_factory=list)
    changed_customers: list[dict[str, Any]] = field(default_factory=list)
    attributions: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[LineDraft] = field(default_factory=list)  # made set-based
    line_ids: list[str] = field(default_factory=list)  # every line the batch made (one by one too)
    ids: dict[str, Iterator[str]] = field(default_factory=dict)  # drawn in bulk: one clock read, one random draw

    def new(self, prefix: str) -> str:
        return next(self.ids[prefix])


class _Paying:
    """What commission_for reads of an event, without an ORM object per row."""

    __slots__ = ("amount", "currency", "external_id", "id", "occurred_at")

    def __init__(self, event_id: str, row: Row) -> None:
        self.id, self.amount, self.currency = event_id, row.data.amount, row.data.currency
        self.external_id, self.occurred_at = row.data.external_id, row.data.occurred_at


def ingest_batch(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    rows: Sequence[Any],
    now: datetime,
    provider: str = "csv",
    progress: Progress | None = None,
    audited: bool = True,
) -> BatchReport:
    """Record `rows` (EventIn) for one program; see the module docstring. A caller that writes its own
    audit row for the whole operation (the CSV import) passes audited=False."""
    program = get_program(session, actor, program_id)
    checked = checked_rows(program, rows)
    plan = plan_batch(session, program, checked)
    report = BatchReport(rows=len(checked))
    ids: dict[int, str] = dict(plan.existing)
    writes = _Writes()
    fast_rows = sum(len(g) for g in plan.fast.values())
    writes.ids = {prefix: iter(new_ids(prefix, fast_rows)) for prefix in ("inb", "com", "cus", "att", "evt")}
    source = source_of(provider, program.id)
    for group in plan.fast.values():
        _customer_rows(program, plan, group, writes, ids, source, provider, now)
    _write(session, program, writes, now)
    report.set_based = sum(len(g) for g in plan.fast.values())
    if progress is not None:
        progress(report.set_based + len(plan.existing) + len(plan.repeats), len(checked))
    for done, row in enumerate(plan.slow, start=1):
        try:
            recorded = record_event(session, actor=actor, data=row.data, now=now)
        except PartnerpayError as exc:
            raise at_row(exc, row.number) from None
        ids[row.number] = recorded.event.id
        writes.line_ids += [line.id for line in recorded.commissions]
        inbox = _inbox(new_id("inb"), row, recorded.event.id, source, provider, now)
        bulk_insert(session, "inbox_items", INBOX_COLUMNS, [inbox])
        if progress is not None and (done % 500 == 0 or done == len(plan.slow)):
            progress(report.set_based + len(plan.existing) + len(plan.repeats) + done, len(checked))
    report.one_by_one = len(plan.slow)
    for number, earlier in plan.repeats.items():
        ids[number] = ids[earlier]
    report.event_ids = [ids[row.number] for row in checked]
    report.new = [row.number not in plan.existing and row.number not in plan.repeats for row in checked]
    report.duplicates = len(plan.existing) + len(plan.repeats)
    report.created = report.set_based + report.one_by_one
    report.lines = len(writes.line_ids)
    for row in [*(r for g in plan.fast.values() for r in g), *plan.slow]:
        if row.data.amount is not None and row.data.currency is not None:
            report.amounts[row.data.currency] = report.amounts.get(row.data.currency, 0) + row.data.amount
    if report.created and audited:
        _audit(session, actor, program, checked, report, writes, source, now)
    return report


def _customer_rows(
    program: Program,
    plan: Plan,
    group: list[Row],
    writes: _Writes,
    ids: dict[int, str],
    source: str,
    provider: str,
    now: datetime,
) -> None:
    """One customer's rows: its events (with their partner), its lifecycle, its decision and lines."""
    known = plan.customers.get(group[0].data.customer_external_id)
    for row in group:
        ids[row.number] = writes.new("evt")
    if known is not None:
        customer_id, partner_id, attribution_id, reason = known.id, known.partner_id, known.attribution_id, known.reason
        state = _state(known)
    else:
        customer_id, state = writes.new("cus"), State()
        partner_id, attribution_id, reason = _decide(program, plan, group, customer_id, ids, writes)
    partner = plan.partners.get(partner_id) if partner_id else None
    for row in sorted(group, key=lambda r: (r.data.occurred_at, r.data.external_id)):
        data, event_id = row.data, ids[row.number]
        state = fold(state, Fact(str(data.type), data.occurred_at, data.amount, data.metadata))
        writes.events.append(
            (event_id, program.id, str(data.type), data.external_id, data.occurred_at, customer_id, partner_id,
             data.amount, data.currency, data.product, None,
             canonical_json(data.metadata) if data.metadata is not None else None, row.digest, now, attribution_id,
             None, None if partner_id else NO_EVIDENCE)
        )  # fmt: skip
        writes.inbox.append(_inbox(writes.new("inb"), row, event_id, source, provider, now))
        if partner is not None and data.type in PAYING_TYPES and data.amount:
            line = commission_for(
                program, partner, customer_id=customer_id, customer_external_id=data.customer_external_id,
                event=_Paying(event_id, row), now=now, line_id=writes.new("com"), attributed=(partner.name, reason),
            )  # fmt: skip
            if line is not None:
                writes.lines.append(line)
                writes.line_ids.append(line.id)
    lifecycle = {
        "status": state.status.value, "lifetime_revenue": state.revenue, "first_paid_at": state.first_paid_at,
        "last_event_at": state.last_event_at, "status_changed_at": state.status_changed_at,
    }  # fmt: skip
    if known is not None:
        email, domain = known.email, known.domain
        for row in sorted(group, key=lambda r: r.number):  # the latest row that gives one wins, as one by one
            if row.data.customer_email is not None:
                email = row.data.customer_email
            domain = company_domain(row.data.customer_email, row.data.customer_domain) or domain
        writes.changed_customers.append({"customer_id": customer_id, "email": email, "domain": domain, **lifecycle})
    else:
        decided = writes.attributions[-1] if attribution_id else None
        writes.new_customers.append(
            (customer_id, program.id, group[0].data.customer_external_id, partner_id,
             reason[:200] if reason else None, now, attribution_id, decided[7] if decided else None,
             *lifecycle.values())
        )  # fmt: skip


def _state(known: KnownCustomer) -> State:
    return State(
        status=CustomerStatus(known.status),
        revenue=known.revenue,
        paid_ever=known.first_paid_at is not None,
        first_paid_at=known.first_paid_at,
        last_event_at=known.last_event_at,
        status_changed_at=known.status_changed_at,
    )


def _decide(
    program: Program, plan: Plan, group: list[Row], customer_id: str, ids: dict[int, str], writes: _Writes
) -> tuple[str | None, str | None, str | None]:
    """A new customer's partner: decided by its first row (in batch order) that names one, as record_event
    would; the rows before it are adopted (tracking/adoption.py), so every row gets the partner."""
    for row in sorted(group, key=lambda r: r.number):
        named = named_partner(plan, row.data)
        if named is None:
            continue
        evidence = Evidence(
            occurred_at=row.data.occurred_at, event_type=str(row.data.type), named=named[0], named_rule=named[1]
        )
        decision = decide(
            evidence,
            model=program.attribution_model,
            coupon_overrides_link=program.coupon_overrides_link,
            cookie_days=program.cookie_days,
        )
        assert decision is not None
        expires = add_months(row.data.occurred_at, program.attribution_months) if program.attribution_months else None
        attribution_id = writes.new("att")
        writes.attributions.append(
            (attribution_id, program.id, customer_id, decision.partner_id, decision.rule.value, decision.reason,
             row.data.occurred_at, expires, ids[row.number], False)
        )  # fmt: skip
        return decision.partner_id, attribution_id, decision.reason
    return None, None, None


def _inbox(inbox_id: str, row: Row, event_id: str, source: str, provider: str, now: datetime) -> tuple[Any, ...]:
    return (
        inbox_id, row.data.program_id, source, provider, row.data.external_id, str(row.data.type),
        canonical(row.dump), "{}", now, InboxStatus.PROCESSED.value, 1, now, f'["{event_id}"]',
    )  # fmt: skip


def _write(session: Session, program: Program, writes: _Writes, now: datetime) -> None:
    """Parents before children: customers, events, decisions (they name events), inbox, lines, ledger."""
    bulk_insert(session, "customers", CUSTOMER_COLUMNS, writes.new_customers)
    bulk_insert(session, "events", EVENT_COLUMNS, writes.events)
    bulk_insert(session, "attributions", ATTRIBUTION_COLUMNS, writes.attributions)
    bulk_insert(session, "inbox_items", INBOX_COLUMNS, writes.inbox)
    if writes.changed_customers:
        table = Customer.__table__
        session.connection().execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("customer_id"))
            .values({name: bindparam(name) for name in writes.changed_customers[0] if name != "customer_id"}),
            writes.changed_customers,
        )
    write_drafts(session, program.id, writes.lines, now)
    if writes.events:
        # Rows written around the ORM: objects it has loaded must not shadow them with stale values.
        session.expire_all()


def _audit(
    session: Session,
    actor: Actor,
    program: Program,
    rows: list[Row],
    report: BatchReport,
    writes: _Writes,
    source: str,
    now: datetime,
) -> None:
    """One row for the batch: what was asked (digest of every row's content) and what it made."""
    asked = hashlib.sha256("\n".join(r.digest for r in rows).encode()).hexdigest()
    made = hashlib.sha256(
        ("\n".join(report.event_ids) + "\n" + "\n".join(sorted(writes.line_ids))).encode()
    ).hexdigest()
    audit.record(
        session,
        actor=actor,
        action="events.ingest",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        now=now,
        after={
            "source": source,
            "rows": report.rows,
            "created": report.created,
            "duplicates": report.duplicates,
            "lines": report.lines,
            "set_based": report.set_based,
            "one_by_one": report.one_by_one,
            "rows_sha256": asked,
            "made_sha256": made,
            "amounts": report.amounts,
        },
    )


__all__ = ["BatchReport", "ingest_batch"]
