"""A chargeback the merchant won (`chargeback_reversed`, issue 6 §5): the money counts as paid again and the
chargeback's clawbacks are given back by "reinstatement" lines, as far as what still stands allows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.clawbacks import cancellation_claws, stopped_by
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.reversal import REJECTED, Rules, clawed_so_far, counter_line
from partnerpay.commissions.service import line_snapshot, post_lines
from partnerpay.events.models import Customer, Event, RefundAllocation
from partnerpay.events.schemas import EventType
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding, format_money, round_ratio
from partnerpay.plans.rules import Rule


def _canceled(session: Session, original: Event, rule: Rule | None, first_paid_at: datetime | None) -> bool:
    """Whether a recorded cancellation claims the rule's lines on `original` in full (then no won chargeback
    gives any of them back), even when a refund had already taken it all and it made no line itself."""
    cancellations = session.scalars(
        select(Event.occurred_at).where(
            Event.customer_id == original.customer_id, Event.type == EventType.SUBSCRIPTION_CANCELED.value
        )
    ).all()
    return any(
        cancellation_claws(rule, original.occurred_at, at)
        and stopped_by(rule, original_at=original.occurred_at, reversal_at=at, first_paid_at=first_paid_at,
                       cancellation=True) is None
        for at in cancellations
    )  # fmt: skip


def reinstate(
    session: Session, *, actor: Actor, reversal: Event, chargeback: Event, now: datetime
) -> list[CommissionLine]:
    """A chargeback the merchant won: the money counts as paid again (negative RefundAllocation rows under
    the reversal offset the chargeback's), and each clawback of the chargeback is given back by a positive
    "reinstatement" line reversing it, as far as the line's cumulative target now allows (a refund or
    cancellation that still stands keeps its share)."""
    if reversal.amount is not None and reversal.amount != chargeback.amount:
        raise ValidationError(
            f"a won chargeback gives back the whole chargeback {chargeback.external_id} "
            f"({format_money(chargeback.amount or 0, chargeback.currency or '')}), not "
            f"{format_money(reversal.amount, reversal.currency or chargeback.currency or '')}",
            field="amount",
        )
    earlier = session.scalar(
        select(Event.external_id).where(
            Event.original_event_id == chargeback.id,
            Event.type == EventType.CHARGEBACK_REVERSED.value,
            Event.id != reversal.id,
        )
    )
    if earlier is not None:
        raise ValidationError(
            f"chargeback {chargeback.external_id} was already reversed by {earlier}", field="original_external_id"
        )
    taken = session.execute(
        select(RefundAllocation.original_event_id, RefundAllocation.amount).where(
            RefundAllocation.refund_event_id == chargeback.id
        )
    ).all()
    for original_id, amount in taken:
        session.add(
            RefundAllocation(
                program_id=reversal.program_id,
                refund_event_id=reversal.id,
                original_event_id=original_id,
                amount=-int(amount),
            )
        )
    session.flush()
    return _give_back(session, actor=actor, reversal=reversal, chargeback=chargeback, original=None, now=now)


def give_back_recorded(
    session: Session, *, actor: Actor, reversal: Event, original: Event, now: datetime
) -> list[CommissionLine]:
    """A won chargeback's offset rows replayed against `original`'s lines (lines earned after the reversal was
    recorded: an adopted payment, a released fraud hold, a recalculation): the chargeback's clawbacks of those
    lines given back."""
    chargeback = session.get(Event, reversal.original_event_id) if reversal.original_event_id else None
    if chargeback is None:
        return []
    return _give_back(session, actor=actor, reversal=reversal, chargeback=chargeback, original=original, now=now)


def _give_back(
    session: Session, *, actor: Actor, reversal: Event, chargeback: Event, original: Event | None, now: datetime
) -> list[CommissionLine]:
    """Reinstatement lines for the chargeback's clawbacks (of `original`'s lines only, when given)."""
    stmt = (
        select(CommissionLine)
        .where(
            CommissionLine.event_id == chargeback.id,
            CommissionLine.kind == "clawback",
            CommissionLine.status != REJECTED,
        )
        .order_by(CommissionLine.id)
    )
    if original is not None:
        on_original = select(CommissionLine.id).where(CommissionLine.event_id == original.id)
        stmt = stmt.where(CommissionLine.reverses_line_id.in_(on_original))
    clawbacks = session.scalars(stmt).all()
    made: list[CommissionLine] = []
    rules = Rules(session)
    for clawback in clawbacks:
        line = session.get(CommissionLine, clawback.reverses_line_id)
        assert line is not None and line.event_id is not None
        paid = session.get(Event, line.event_id)
        assert paid is not None and paid.amount
        rule, cite = rules.of(line)
        customer = session.get(Customer, paid.customer_id)
        first_paid_at = customer.first_paid_at if customer is not None else None
        net = _clawable(session, paid, rule, first_paid_at)
        target = (
            line.amount
            if _canceled(session, paid, rule, first_paid_at)
            else min(line.amount, round_ratio(line.amount * max(net, 0), paid.amount, Rounding(line.rounding)))
        )
        # Back to the line's cumulative target (which may differ from this clawback by a rounding cent).
        back = clawed_so_far(session, line.id) - target
        if back <= 0:
            continue
        explanation = (
            f"Chargeback {chargeback.external_id} won ({reversal.external_id}): gives back "
            f"{format_money(back, line.currency)} of clawback {clawback.id} "
            f"({format_money(clawback.amount, line.currency)}) of line {line.id}"
        )
        made.append(
            counter_line(
                clawback, kind="reinstatement", amount=back, event_id=reversal.id,
                base=-(clawback.base_amount or 0),
                explanation=f"{explanation}, {cite}" if cite else explanation, now=now,
            )
        )  # fmt: skip
        # Flushed one by one: the next clawback of the same line reads this one in clawed_so_far.
        session.add(made[-1])
        session.flush()
    if made:
        post_lines(session, reversal.program_id, made, now)
        audit.record_many(
            session,
            actor=actor,
            action="commission.reinstate",
            now=now,
            items=[("commission_line", c.id, c.program_id, None, line_snapshot(c)) for c in made],
        )
    return made


def _clawable(session: Session, original: Event, rule: Rule | None, first_paid_at: datetime | None) -> int:
    """What the refunds and chargebacks that clawed under `rule` took of `original`, net of won chargebacks.

    A refund after the rule's window (or waived) took money but no commission, so giving a chargeback back
    must not count it; a won chargeback's offset row counts when the chargeback's own row did.
    """
    reversal, chargeback = aliased(Event), aliased(Event)
    rows = session.execute(
        select(RefundAllocation.amount, reversal.type, reversal.occurred_at, chargeback.occurred_at)
        .join(reversal, reversal.id == RefundAllocation.refund_event_id)
        .outerjoin(chargeback, chargeback.id == reversal.original_event_id)
        .where(RefundAllocation.original_event_id == original.id)
    ).all()
    total = 0
    for amount, kind, at, chargeback_at in rows:
        when = chargeback_at if kind == EventType.CHARGEBACK_REVERSED.value else at
        if stopped_by(rule, original_at=original.occurred_at, reversal_at=when, first_paid_at=first_paid_at) is None:
            total += int(amount)
    return total
