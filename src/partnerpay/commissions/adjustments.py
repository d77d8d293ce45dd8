"""Manual adjustments: a staff member adds a positive or negative line to a partner, with a reason.

An adjustment is an ordinary commission line (kind "adjustment"): it starts pending, posts to the ledger
at once like any line (a negative one simply flows payable → expense), needs approval like any line, and
is payable as soon as it is approved (no refund window: nothing can be refunded). Whoever created it may
not approve it (maker-checker, enforced in `decisions.approve_lines`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.service import line_snapshot, post_lines
from partnerpay.events.models import Customer, Event
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import check_currency, check_minor_units, format_money
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program

KIND = "adjustment"
REASON_MAX = 500
# Far above any real correction, far below BIGINT: a typo of a few extra digits is refused, not stored.
AMOUNT_MAX = 10**12


def adjustment_explanation(*, who: str, amount: int, currency: str, reason: str) -> str:
    """ "Manual adjustment by ana@example.com: +€50.00 — 'missed referral Acme, see ticket 123'"."""
    sign = "+" if amount > 0 else "-"
    return f"Manual adjustment by {who}: {sign}{format_money(abs(amount), currency)} — '{reason}'"


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a reason is required: say why this adjustment is owed or taken back", field="reason")
    text = reason.strip()
    if len(text) > REASON_MAX:
        raise ValidationError(f"reason must be at most {REASON_MAX} characters, got {len(text)}", field="reason")
    return text


def check_amount(amount: object) -> int:
    value = check_minor_units(amount, field="amount", allow_negative=True)
    if value == 0:
        raise ValidationError("amount must not be zero: an adjustment adds or takes back money", field="amount")
    if abs(value) >= AMOUNT_MAX:
        raise ValidationError(f"amount {value} is implausibly large for an adjustment", field="amount")
    return value


def add_adjustment(
    session: Session,
    *,
    actor: Actor,
    partner_id: str,
    amount: int,
    currency: str,
    reason: str,
    customer_id: str | None = None,
    event_id: str | None = None,
    now: datetime,
) -> CommissionLine:
    """A pending adjustment line for the partner, posted to the ledger and audited in the caller's transaction."""
    if actor.type == ActorType.PARTNER or actor.partner_id is not None:
        raise Forbidden("partners cannot adjust commissions; ask the program team")
    if not actor.can("write"):
        raise Forbidden(f"adding an adjustment needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
    value = check_amount(amount)
    check_currency(currency, field="currency")
    text = check_reason(reason)
    partner = get_partner(session, actor, partner_id)
    program = session.get(Program, partner.program_id)
    assert program is not None
    if currency != program.currency:
        raise ValidationError(
            f"currency must be the program's currency {program.currency}, got {currency}", field="currency"
        )
    if customer_id is not None:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.program_id != program.id:
            raise NotFound(f"customer {customer_id} not found", field="customer_id")
    if event_id is not None:
        event = session.get(Event, event_id)
        if event is None or event.program_id != program.id:
            raise NotFound(f"event {event_id} not found", field="event_id")
    line = CommissionLine(
        id=new_id("com"),
        program_id=program.id,
        partner_id=partner.id,
        customer_id=customer_id,
        event_id=event_id,
        kind=KIND,
        amount=value,
        currency=currency,
        rounding="none",  # entered in minor units: nothing was rounded
        status=LineStatus.PENDING.value,
        hold_until=now,  # payable once approved: there is no refund window to wait out
        explanation=adjustment_explanation(who=actor.label or actor.id, amount=value, currency=currency, reason=text),
        created_by=actor.id,
        reason=text,
        created_at=now,
    )
    session.add(line)
    session.flush()
    post_lines(session, program.id, [line], now)
    audit.record(
        session,
        actor=actor,
        action="commission.adjust",
        object_type="commission_line",
        object_id=line.id,
        program_id=program.id,
        after={**line_snapshot(line), "kind": KIND, "reason": text, "customer_id": customer_id, "event_id": event_id},
        now=now,
    )
    return line
