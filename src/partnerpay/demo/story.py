"""The demo's six months as plain data: who joined when, every invoice and refund, and finance's decisions.

Pure: a `now` and a seed in, the same story out; writing it is build.py's job.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from partnerpay.demo.data import (
    CARRY_PARTNER,
    COMPANY_FIRST,
    COMPANY_SECOND,
    COMPANY_SUFFIX,
    NEW_PARTNERS,
    PARTNERS,
    PLANS,
    PORTAL_PARTNER,
    Plan,
)
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import ensure_utc

DAY = timedelta(days=1)
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Kind(StrEnum):
    ONBOARD = "onboard"  # a partner joins the program
    PORTAL_USER = "portal_user"  # the demo partner login
    EVENT = "event"  # from billing: signup, invoice_paid, refund, chargeback
    APPROVE = "approve"  # finance approves pending lines of events up to `cutoff`
    PAYOUT_RUN = "payout_run"
    APPROVE_BATCH = "approve_batch"
    MARK_PAID = "mark_paid"


IMPORTS = frozenset({Kind.ONBOARD, Kind.PORTAL_USER, Kind.EVENT})


@dataclass(frozen=True)
class PartnerSpec:
    index: int
    name: str
    email: str
    country: str
    referral_code: str
    joined_at: datetime


@dataclass(frozen=True)
class EventSpec:
    type: EventType
    external_id: str
    occurred_at: datetime
    customer_external_id: str
    partner: int
    referral_code: str | None = None
    amount: int | None = None
    product: str | None = None
    original_external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: Kind
    partner: int | None = None
    event: EventSpec | None = None
    cutoff: datetime | None = None


@dataclass(frozen=True)
class Step:
    """What one transaction writes."""

    title: str
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Story:
    now: datetime
    setup_at: datetime
    partners: tuple[PartnerSpec, ...]
    steps: tuple[Step, ...]


def slug(name: str) -> str:
    folded = name.lower().replace("ø", "o").replace("æ", "ae").replace("ß", "ss").replace("&", "and")
    ascii_only = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")[:24]


def add_months(at: datetime, months: int) -> datetime:
    """Same day and time `months` later; callers keep the day at 28 or less."""
    years, month = divmod(at.month - 1 + months, 12)
    return at.replace(year=at.year + years, month=month + 1)


class _Teller:
    def __init__(self, now: datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = ensure_utc(now).replace(microsecond=0)
        self.start = self.now - 183 * DAY
        self.invoices: list[EventSpec] = []
        self.actions: list[Action] = []
        self.used: set[str] = set()  # invoices already refunded

    def token(self, length: int) -> str:
        return "".join(self.rng.choice(_ID_CHARS) for _ in range(length))

    def during_day(self, day: datetime, first_hour: int = 8, last_hour: int = 18) -> datetime:
        return day + timedelta(hours=self.rng.randint(first_hour, last_hour), minutes=self.rng.randint(0, 59))

    def partners(self) -> list[PartnerSpec]:
        joined = {PORTAL_PARTNER: self.start - 12 * DAY, CARRY_PARTNER: self.start - 8 * DAY}
        joined.update(zip(NEW_PARTNERS, (self.now - 75 * DAY, self.now - 50 * DAY, self.now - 12 * DAY), strict=True))
        specs = []
        for index, (name, email, country) in enumerate(PARTNERS):
            day = joined.get(index, self.start - 10 * DAY + self.rng.randint(0, 50) * DAY)
            at = self.during_day(day.replace(hour=0, minute=0, second=0))
            code = f"{slug(name)}-{self.rng.getrandbits(16):04x}"
            specs.append(PartnerSpec(index, name, email, country, code, at))
            self.actions.append(Action(at, Kind.ONBOARD, partner=index))
        portal = specs[PORTAL_PARTNER]
        self.actions.append(Action(portal.joined_at + DAY, Kind.PORTAL_USER, partner=PORTAL_PARTNER))
        return specs

    def customers(self, partner: PartnerSpec) -> None:
        if partner.index == CARRY_PARTNER:
            # One enterprise customer, billed three times, long paid out: refunded after the payout below.
            self.customer(partner, self.start + 6 * DAY, plan=PLANS[-1], churn_after=3, extra=0)
            return
        if partner.index == NEW_PARTNERS[-1]:
            return  # joined last week, nothing referred yet
        count = 5 if partner.index == PORTAL_PARTNER else self.rng.choice((1, 2, 2, 2, 3, 3, 3, 4, 5, 6))
        earliest = max(self.start, partner.joined_at + 2 * DAY)
        latest = self.start + 60 * DAY if partner.index == PORTAL_PARTNER else self.now - 10 * DAY
        for _ in range(count):
            span = max(int((latest - earliest) / DAY), 0)
            self.customer(partner, earliest + self.rng.randint(0, span) * DAY)

    def customer(
        self,
        partner: PartnerSpec,
        day: datetime,
        *,
        plan: Plan | None = None,
        churn_after: int | None = None,
        extra: int | None = None,
    ) -> None:
        rng = self.rng
        plan = plan or rng.choices(PLANS, weights=[p.weight for p in PLANS])[0]
        seats = extra if extra is not None else (rng.randint(0, 6) if plan.seat_price else 0)
        if churn_after is None and rng.random() < 0.18:
            churn_after = rng.randint(2, 5)
        discounted = 3 if rng.random() < 0.12 else 0  # launch offer: 15 % off the first three months
        company = f"{rng.choice(COMPANY_FIRST)} {rng.choice(COMPANY_SECOND)} {COMPANY_SUFFIX[partner.country]}"
        customer_id = "cus_" + self.token(14)
        signup_at = self.during_day(day.replace(hour=0, minute=0, second=0))
        self.event(
            EventSpec(
                EventType.SIGNUP,
                "sig_" + self.token(20),
                signup_at,
                customer_id,
                partner.index,
                referral_code=partner.referral_code,
                metadata={"company": company, "plan": plan.product},
            )
        )
        first = signup_at + 14 * DAY  # after the free trial
        first = first.replace(day=min(first.day, 28), hour=6, minute=rng.randint(0, 59), second=rng.randint(0, 59))
        month = 0
        while (at := add_months(first, month)) <= self.now - timedelta(hours=1):
            if churn_after is not None and month >= churn_after:
                break
            amount = plan.base + seats * plan.seat_price
            if month < discounted:
                amount = amount * 85 // 100
            invoice = EventSpec(
                EventType.INVOICE_PAID,
                "in_" + self.token(24),
                at,
                customer_id,
                partner.index,
                amount=amount,
                product=plan.product,
                metadata={"company": company, "seats": plan.included_seats + seats},
            )
            self.event(invoice)
            self.invoices.append(invoice)
            if plan.seat_price and rng.random() < 0.12:
                seats += rng.randint(1, 3)  # the customer grew
            month += 1

    def event(self, spec: EventSpec) -> None:
        self.actions.append(Action(spec.occurred_at, Kind.EVENT, event=spec))

    def pick(self, test: Callable[[EventSpec], bool]) -> EventSpec | None:
        found = [i for i in self.invoices if i.external_id not in self.used and test(i)]
        if not found:
            return None
        chosen = self.rng.choice(found)
        self.used.add(chosen.external_id)
        return chosen

    def reverse(
        self,
        invoice: EventSpec | None,
        at: datetime,
        amount: int,
        *,
        reason: str,
        kind: EventType = EventType.REFUND,
        name_original: bool = True,
    ) -> None:
        if invoice is None:
            return
        self.event(
            EventSpec(
                kind,
                ("dp_" if kind == EventType.CHARGEBACK else "re_") + self.token(24),
                at,
                invoice.customer_external_id,
                invoice.partner,
                amount=amount,
                original_external_id=invoice.external_id if name_original else None,
                metadata={"reason": reason},
            )
        )

    def refunds(self, paid_at: datetime) -> None:
        now = self.now

        def ordinary(invoice: EventSpec) -> bool:
            return invoice.partner not in (CARRY_PARTNER, PORTAL_PARTNER)

        paid_out = now - 52 * DAY  # invoices this old were in the payout run (hold 30 days)
        # Partial, before any approval: the clawback follows its line and the payout nets them.
        early = self.pick(lambda i: ordinary(i) and now - 120 * DAY <= i.occurred_at <= now - 60 * DAY)
        if early:
            self.reverse(early, early.occurred_at + 5 * DAY, (early.amount or 0) * 2 // 5, reason="downgrade credit")
        # After the payout: the clawbacks are payable at once and net against the next payout.
        credit = self.pick(lambda i: i.partner == PORTAL_PARTNER and i.occurred_at <= paid_out)
        if credit:
            self.reverse(credit, paid_at + 4 * DAY, (credit.amount or 0) // 2, reason="service credit")
        full = self.pick(lambda i: ordinary(i) and i.occurred_at <= paid_out)
        if full:
            self.reverse(full, paid_at + 6 * DAY, full.amount or 0, reason="cancelled within the contract term")
        carried = sorted((i for i in self.invoices if i.partner == CARRY_PARTNER), key=lambda i: i.occurred_at)
        if len(carried) >= 2:
            self.used.update(i.external_id for i in carried[-2:])
            self.reverse(carried[-1], paid_at + 5 * DAY, carried[-1].amount or 0, reason="billing dispute")
            self.reverse(
                carried[-2],
                paid_at + 7 * DAY,
                carried[-2].amount or 0,
                reason="card dispute",
                kind=EventType.CHARGEBACK,
            )
        # Recent, still pending: one refunded in full, one partly with no invoice named (newest first).
        recent = self.pick(lambda i: ordinary(i) and now - 19 * DAY < i.occurred_at <= now - 6 * DAY)
        if recent:
            self.reverse(recent, recent.occurred_at + 3 * DAY, recent.amount or 0, reason="duplicate charge")
        other = self.pick(
            lambda i: (
                ordinary(i)
                and now - 19 * DAY < i.occurred_at <= now - 4 * DAY
                and (recent is None or i.customer_external_id != recent.customer_external_id)
            )
        )
        if other:
            self.reverse(
                other,
                other.occurred_at + 2 * DAY,
                (other.amount or 0) // 4,
                reason="goodwill credit",
                name_original=False,
            )


def tell(now: datetime, seed: int) -> Story:
    """The same `now` and seed always give the same story."""
    teller = _Teller(now, seed)
    now = teller.now
    partners = teller.partners()
    for partner in partners:
        teller.customers(partner)
    run_at, paid_at = now - 21 * DAY, now - 18 * DAY
    teller.actions += [
        Action(now - 22 * DAY, Kind.APPROVE, cutoff=now - 45 * DAY),
        Action(run_at, Kind.PAYOUT_RUN),
        Action(run_at + timedelta(hours=3), Kind.APPROVE_BATCH),
        Action(paid_at, Kind.MARK_PAID),
        Action(now - 4 * DAY, Kind.APPROVE, cutoff=now - 20 * DAY),
    ]
    teller.refunds(paid_at)
    order = list(Kind)
    actions = sorted(teller.actions, key=lambda a: (a.at, order.index(a.kind)))
    return Story(now=now, setup_at=teller.start - 14 * DAY, partners=tuple(partners), steps=tuple(_steps(actions)))


def _steps(actions: Iterable[Action]) -> list[Step]:
    """Billing imports one transaction per calendar month; each decision of finance its own transaction."""
    steps: list[Step] = []
    batch: list[Action] = []

    def flush() -> None:
        if batch:
            steps.append(Step(f"activity of {batch[0].at:%B %Y}", tuple(batch)))
            batch.clear()

    for action in actions:
        if action.kind in IMPORTS:
            if batch and (batch[0].at.year, batch[0].at.month) != (action.at.year, action.at.month):
                flush()
            batch.append(action)
        else:
            flush()
            steps.append(Step(f"{action.kind.value.replace('_', ' ')} on {action.at:%d %B %Y}", (action,)))
    flush()
    return steps
