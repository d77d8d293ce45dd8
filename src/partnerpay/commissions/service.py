"""Writing commission lines: creation from events and clawbacks (approval and rejection: decisions.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Protocol

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.explain import commission_explanation
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert
from partnerpay.events.models import Customer, Event
from partnerpay.fx.service import Converted, to_program_currency
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, format_money, percent_of
from partnerpay.kit.state import StateMachine
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs import terms
from partnerpay.programs.models import Program
from partnerpay.webhooks_out import emit as webhooks_out

LINES = StateMachine(
    "commission line",
    {
        LineStatus.PENDING: {LineStatus.APPROVED, LineStatus.REJECTED},
        LineStatus.APPROVED: {LineStatus.IN_BATCH, LineStatus.REJECTED},
        LineStatus.IN_BATCH: {LineStatus.PAID},
    },
)
UNPAID = (LineStatus.PENDING.value, LineStatus.APPROVED.value)


def line_snapshot(line: CommissionLine) -> dict[str, object]:
    return {
        "status": line.status,
        "amount": line.amount,
        "currency": line.currency,
        "partner_id": line.partner_id,
    }


def post_lines(session: Session, program_id: str, lines: Sequence[CommissionLine], now: datetime) -> None:
    """Expense → partner payable for each new line (a negative line simply flows the other way)."""
    ledger.post(
        session,
        program_id=program_id,
        now=now,
        entries=[
            ledger.transfer(
                kind=line.kind,
                ref_type="commission_line",
                ref_id=line.id,
                currency=line.currency,
                amount=line.amount,
                debit=(program_id, AccountKind.COMMISSION_EXPENSE),
                credit=(line.partner_id, AccountKind.PARTNER_PAYABLE),
            )
            for line in lines
        ],
    )
    webhooks_out.commission_lines(session, "commission.created", lines, now)  # outgoing webhooks (issue 8)


def write_drafts(session: Session, program_id: str, drafts: Sequence[LineDraft], now: datetime) -> None:
    """New lines written set-based (the batch ingest, a replay's output): one insert, then their ledger
    entries (expense → partner payable, as post_lines) in one call, all in the caller's transaction."""
    if not drafts:
        return
    bulk_insert(session, "commission_lines", LineDraft.__slots__, [d.row() for d in drafts])
    ledger.post_transfers(
        session,
        program_id=program_id,
        ref_type="commission_line",
        debit_kind=AccountKind.COMMISSION_EXPENSE,
        credit_kind=AccountKind.PARTNER_PAYABLE,
        transfers=[(d.kind, d.id, d.currency, d.amount, program_id, d.partner_id) for d in drafts],
        now=now,
    )
    webhooks_out.commission_lines(session, "commission.created", drafts, now)  # outgoing webhooks (issue 8)


class PayingEvent(Protocol):
    """What a commission reads of its event (an Event, or a batch row not yet stored)."""

    @property
    def id(self) -> str: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def external_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class LineDraft:
    """A new commission line before it is stored: the batch ingest writes thousands of these in one
    statement, where building an ORM object each would cost more than the insert."""

    id: str
    program_id: str
    partner_id: str
    customer_id: str
    event_id: str
    kind: str
    amount: int
    currency: str
    base_amount: int
    rate_bp: int
    rounding: str
    status: str
    hold_until: datetime
    explanation: str
    created_at: datetime
    plan_version_id: str | None = None  # the plan version and rule (from 1) that made it, when a plan did
    rule_number: int | None = None

    def model(self) -> CommissionLine:
        return CommissionLine(**{name: getattr(self, name) for name in self.__slots__})

    def row(self) -> tuple[object, ...]:
        return _LINE_ROW(self)


_LINE_ROW = attrgetter(*LineDraft.__slots__)  # every column in one call: a batch has thousands of lines


def commission_for(
    program: Program,
    partner: Partner,
    *,
    customer_id: str,
    customer_external_id: str,
    event: PayingEvent,
    now: datetime,
    line_id: str | None = None,
    converted: Converted | None = None,
    attributed: tuple[str, str | None] | None = None,
) -> LineDraft | None:
    """The line the program's default rate makes on a paying event, not yet stored; None when nothing is owed.

    Pure (no database): the one-event path and the set-based batch ingest (inbox/batch.py) both use it,
    so a line is the same whichever path made it. An event in another currency needs `converted`
    (fx.service.to_program_currency): the line's base is then the converted amount, in the program currency.
    `attributed` (partner name, attribution reason) adds why the customer is the partner's to the explanation
    (the batch ingest writes thousands of lines: built once, not copied with it afterwards).
    """
    assert event.amount is not None and event.currency is not None
    if partner.status != PartnerStatus.ACTIVE.value or program.default_percent_bp == 0:
        return None
    base = _program_base(program, event, converted)
    rounding = Rounding(program.rounding)
    amount = percent_of(base, program.default_percent_bp, rounding)
    if amount == 0:
        return None
    hold_until = event.occurred_at + timedelta(days=program.hold_days)
    return LineDraft(
        id=line_id or new_id("com"),
        program_id=program.id,
        partner_id=partner.id,
        customer_id=customer_id,
        event_id=event.id,
        kind="commission",
        amount=amount,
        currency=program.currency,
        base_amount=base,
        rate_bp=program.default_percent_bp,
        rounding=rounding.value,
        status=LineStatus.PENDING.value,
        hold_until=hold_until,
        created_at=now,
        explanation=commission_explanation(
            bp=program.default_percent_bp,
            base=base,
            currency=program.currency,
            event_external_id=event.external_id,
            customer_external_id=customer_external_id,
            result=amount,
            rounding=rounding.value,
            hold_until=hold_until,
            hold_days=program.hold_days,
            converted=_conversion_text(converted),
            attributed=attributed,
        ),
    )


def _conversion_text(converted: Converted | None) -> str | None:
    """'€1,000.00 at 1 EUR = 1.0842 USD (ECB reference rate, 2 Mar 2026)', as the plan engine says it."""
    if converted is None or converted.rate is None:
        return None
    return f"{format_money(converted.from_amount, converted.from_currency)} at {converted.rate.describe()}"


def _program_base(program: Program, event: PayingEvent, converted: Converted | None) -> int:
    assert event.amount is not None
    if converted is None:
        if event.currency != program.currency:
            raise ValidationError(
                f"event {event.external_id} is in {event.currency}, the program in {program.currency}: "
                "convert the amount first (fx.service.to_program_currency)",
                field="currency",
            )
        return event.amount
    if (converted.from_amount, converted.from_currency, converted.currency) != (
        event.amount,
        event.currency,
        program.currency,
    ):
        raise ValidationError(
            f"the conversion given is of {converted.from_amount} {converted.from_currency} to {converted.currency}, "
            f"not of this event's {event.amount} {event.currency} to the program's {program.currency}",
            field="currency",
        )
    return converted.amount


def earn_on_payment(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    partner: Partner,
    customer: Customer,
    event: Event,
    now: datetime,
) -> list[CommissionLine]:
    """The program's default rate on a paying event; nothing for a partner who may not earn."""
    if partner.status != PartnerStatus.ACTIVE.value or program.default_percent_bp == 0:
        return []
    if not terms.may_earn(session, actor=actor, partner=partner, event=event, now=now):
        return []
    converted = to_program_currency(
        session, program, amount=event.amount, currency=event.currency, at=event.occurred_at
    )
    draft = commission_for(
        program,
        partner,
        customer_id=customer.id,
        customer_external_id=customer.external_id,
        event=event,
        now=now,
        converted=converted,
    )
    if draft is None:
        return []
    line = draft.model()
    session.add(line)
    session.flush()
    post_lines(session, program.id, [line], now)
    audit.record(
        session,
        actor=actor,
        action="commission.create",
        object_type="commission_line",
        object_id=line.id,
        program_id=program.id,
        after=line_snapshot(line),
        now=now,
    )
    return [line]


def claw_back(
    session: Session,
    *,
    actor: Actor,
    refund: Event,
    original: Event,
    refunded: int,
    refunded_before: int,
    chosen_newest_first: bool,
    now: datetime,
) -> list[CommissionLine]:
    """Negative lines for the part of `original` that `refund` took back, never more than was earned
    (commissions/reversal.py: proportional, citing the rule, within the rule's clawback window)."""
    # Imported here: reversal builds on this module's posting and snapshot helpers.
    from partnerpay.commissions import reversal

    return reversal.claw_back(
        session,
        actor=actor,
        refund=refund,
        original=original,
        refunded=refunded,
        refunded_before=refunded_before,
        chosen_newest_first=chosen_newest_first,
        now=now,
    )
