"""Planning a batch of events: which rows are new, which repeat, and which can be recorded set-based.

A row can be recorded set-based when everything the one-event path (events.service.record_event) would
decide for it is already known from the batch and a few set reads: its customer is new and named (or
not named) by partner id or referral code only, or its customer belongs to a partner for good. Rows that
need history or judgement (clicks, coupons, deal domain claims, refunds, self-referral checks, terms not
accepted, a customer attributed once but no more, an event older than the customer's newest, an amount in
another currency than the program's, any row of a program with plan assignments) go through record_event
one by one, in file order, after the set-based part.
A customer's rows never straddle the two paths, so neither can see half of the other's work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import REVERSING, EventIn
from partnerpay.events.service import check_money, check_type, hash_of_dump
from partnerpay.kit.errors import Conflict, PartnerpayError, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.plans.resolve import has_assignments
from partnerpay.programs.models import Program
from partnerpay.programs.terms import needing_acceptance
from partnerpay.tracking.attribution_models import Attribution, Rule

CHUNK = 500  # ids per IN (...) read: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # 1-based position in the batch
    data: EventIn
    dump: dict[str, Any]
    digest: str


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    id: str
    partner_id: str | None
    attribution_id: str | None
    attributed_until: datetime | None
    reason: str | None  # why it is the partner's (the current decision's reason)
    self_referral: bool
    status: str
    revenue: int
    first_paid_at: datetime | None
    last_event_at: datetime | None
    status_changed_at: datetime | None
    email: str | None
    domain: str | None


@dataclass
class Plan:
    existing: dict[int, str] = field(default_factory=dict)  # row number → event id already recorded
    repeats: dict[int, int] = field(default_factory=dict)  # row number → the earlier row it repeats
    fast: dict[str, list[Row]] = field(default_factory=dict)  # customer external id → its rows
    slow: list[Row] = field(default_factory=list)
    customers: dict[str, KnownCustomer] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)  # by id
    by_code: dict[str, Partner] = field(default_factory=dict)


def at_row(exc: PartnerpayError, number: int) -> PartnerpayError:
    exc.extra.setdefault("row", number)
    if not exc.message.startswith("row "):
        exc.message = f"row {number}: {exc.message}"
    return exc


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def _read(session: Session, values: Sequence[str], query: Any) -> list[Any]:
    """Rows of `query(chunk)` for every chunk of values."""
    found: list[Any] = []
    for chunk in _chunks(sorted(set(values))):
        stmt: Select[Any] = query(chunk)
        found += session.execute(stmt).all()
    return found


def checked_rows(program: Program, rows: Sequence[EventIn]) -> list[Row]:
    """Each row's own checks (program, type, money) and its content hash; errors name the row."""
    out: list[Row] = []
    for number, data in enumerate(rows, start=1):
        try:
            if data.program_id != program.id:
                raise ValidationError(f"program_id must be {program.id}, got {data.program_id}", field="program_id")
            check_type(data, program)
            check_money(data)
        except PartnerpayError as exc:
            raise at_row(exc, number) from None
        dump = data.model_dump(mode="json")
        out.append(Row(number, data, dump, hash_of_dump(dump)))
    return out


def plan_batch(session: Session, program: Program, rows: list[Row]) -> Plan:
    plan = Plan()
    first: dict[str, Row] = {}
    fresh: list[Row] = []
    for row in rows:
        earlier = first.get(row.data.external_id)
        if earlier is None:
            first[row.data.external_id] = row
            fresh.append(row)
        elif earlier.digest == row.digest:
            plan.repeats[row.number] = earlier.number
        else:
            raise Conflict(
                f"row {row.number}: event {row.data.external_id} is also row {earlier.number}, with other content",
                field="external_id",
                row=row.number,
            )
    recorded = {
        ext: (event_id, digest)
        for ext, event_id, digest in _read(
            session,
            list(first),
            lambda chunk: select(Event.external_id, Event.id, Event.content_hash).where(
                Event.program_id == program.id, Event.external_id.in_(chunk)
            ),
        )
    }
    new: list[Row] = []
    for row in fresh:
        known = recorded.get(row.data.external_id)
        if known is None:
            new.append(row)
        elif known[1] == row.digest:
            plan.existing[row.number] = known[0]
        else:
            raise Conflict(
                f"row {row.number}: event {row.data.external_id} was already recorded with different content",
                field="external_id",
                row=row.number,
            )
    _load(session, program, new, plan)
    by_customer: dict[str, list[Row]] = defaultdict(list)
    for row in new:
        by_customer[row.data.customer_external_id].append(row)
    waiting_terms = needing_acceptance(
        session, program.id, [p.id for p in plan.partners.values() if p.program_id == program.id]
    )
    # A plan's rules read the partner's history event by event (tiers, caps, bonuses): those go one by one.
    on_plans = has_assignments(session, program.id)
    for external_id, group in by_customer.items():
        if not on_plans and _set_based(program, plan, plan.customers.get(external_id), group, waiting_terms):
            plan.fast[external_id] = group
        else:
            plan.slow += group
    plan.slow.sort(key=lambda r: r.number)
    return plan


def _load(session: Session, program: Program, rows: list[Row], plan: Plan) -> None:
    """Customers the rows name, their current decisions, and every partner involved, in set reads."""
    customer_rows = _read(
        session,
        [r.data.customer_external_id for r in rows],
        lambda chunk: select(
            Customer.external_id, Customer.id, Customer.partner_id, Customer.attribution_id,
            Customer.attributed_until, Customer.attribution, Customer.status, Customer.lifetime_revenue,
            Customer.first_paid_at, Customer.last_event_at, Customer.status_changed_at, Customer.email,
            Customer.domain,
        ).where(Customer.program_id == program.id, Customer.external_id.in_(chunk)),
    )  # fmt: skip
    decisions = {
        att_id: (reason, self_referral)
        for att_id, reason, self_referral in _read(
            session,
            [c.attribution_id for c in customer_rows if c.attribution_id],
            lambda chunk: select(Attribution.id, Attribution.reason, Attribution.self_referral).where(
                Attribution.id.in_(chunk)
            ),
        )
    }
    for c in customer_rows:
        reason, self_referral = decisions.get(c.attribution_id, (c.attribution, False))
        plan.customers[c.external_id] = KnownCustomer(
            c.id, c.partner_id, c.attribution_id, c.attributed_until, reason, bool(self_referral), c.status,
            c.lifetime_revenue, c.first_paid_at, c.last_event_at, c.status_changed_at, c.email, c.domain,
        )  # fmt: skip
    ids = {r.data.partner_id for r in rows if r.data.partner_id} | {
        c.partner_id for c in plan.customers.values() if c.partner_id
    }
    codes = {r.data.referral_code for r in rows if r.data.referral_code}
    found = _read(session, list(ids), lambda chunk: select(Partner).where(Partner.id.in_(chunk)))
    found += _read(
        session,
        list(codes),
        lambda chunk: select(Partner).where(Partner.program_id == program.id, Partner.referral_code.in_(chunk)),
    )
    for (partner,) in found:
        plan.partners[partner.id] = partner
        if partner.program_id == program.id:
            plan.by_code[partner.referral_code] = partner
    for row in rows:  # the one-event path refuses an unknown named partner even when it would not decide
        data = row.data
        if data.partner_id is not None:
            named = plan.partners.get(data.partner_id)
            if named is None or named.program_id != program.id:
                raise ValidationError(
                    f"row {row.number}: unknown partner {data.partner_id!r} in this program",
                    field="partner_id",
                    row=row.number,
                )
        elif data.referral_code is not None and data.referral_code not in plan.by_code:
            raise ValidationError(
                f"row {row.number}: unknown referral code {data.referral_code!r} in this program",
                field="referral_code",
                row=row.number,
            )


def named_partner(plan: Plan, data: EventIn) -> tuple[Partner, Rule] | None:
    if data.partner_id is not None:
        return plan.partners[data.partner_id], Rule.PARTNER_ID
    if data.referral_code is not None:
        return plan.by_code[data.referral_code], Rule.REFERRAL_CODE
    return None


def _set_based(
    program: Program, plan: Plan, known: KnownCustomer | None, group: list[Row], waiting_terms: set[str]
) -> bool:
    simple = all(
        r.data.click_id is None
        and r.data.coupon is None
        and r.data.original_external_id is None
        and r.data.type not in REVERSING
        # Another currency needs the program's rate of the event's day: read and converted one by one.
        and r.data.currency in (None, program.currency)
        for r in group
    )
    if not simple:
        return False
    if known is None:
        # A new customer: only a named partner may decide, and an email or domain could meet a deal's
        # domain claim or the partner's own address (self-referral), which need their own reads.
        if any(r.data.customer_email or r.data.customer_domain for r in group):
            return False
        named = {n[0].id for r in group if (n := named_partner(plan, r.data)) is not None}
        if len(named) > 1 or named & waiting_terms:
            return False
        # An expiring decision may end inside the batch: the one-event path judges each row then.
        return not (named and program.attribution_months)
    if known.partner_id is None or known.self_referral or known.partner_id in waiting_terms:
        return False
    newest = known.last_event_at
    for row in group:
        if known.attributed_until is not None and row.data.occurred_at >= known.attributed_until:
            return False
        if newest is not None and row.data.occurred_at <= newest:
            return False  # an older event: the lifecycle is recomputed from history by the one-event path
    return True
