"""Taking commission back in the database (issue 6 §5): refunds and chargebacks, and cancellations (early
churn); won chargebacks are commissions/reinstate.py. The arithmetic and the window rules are
commissions/clawbacks.py.

Every clawback line cites its original's plan version and rule, and reverses it (reverses_line_id). While
the original is unpaid the clawback shares its status and hold, so both are approved and paid (netted)
together; once it is in a batch or paid, the clawback is approved at once and nets against the partner's
next payouts (a carry-forward balance, never a silent loss). A reinstatement does the same for a clawback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.clawbacks import (
    CLAWED_KINDS,
    cancellation_claws,
    clawback_due,
    share_of_base,
    stop_note,
    stopped_by,
)
from partnerpay.commissions.explain import clawback_explanation
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.service import UNPAID, line_snapshot, post_lines
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import PAYING, EventType
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import format_money
from partnerpay.partners.activity import record_activity
from partnerpay.plans.models import Plan, PlanVersion
from partnerpay.plans.resolve import rules_of
from partnerpay.plans.rules import Rule

REJECTED = LineStatus.REJECTED.value


@dataclass
class Rules:
    """The rule behind a line (None: the program's default rate), read once per version."""

    session: Session
    seen: dict[str, tuple[str, int, list[Rule]]] = field(default_factory=dict)

    def of(self, line: CommissionLine) -> tuple[Rule | None, str]:
        """The line's rule and its citation ("plan Standard v2 rule 1"), or (None, "") for the default rate."""
        if line.plan_version_id is None or line.rule_number is None:
            return None, ""
        if line.plan_version_id not in self.seen:
            version = self.session.get(PlanVersion, line.plan_version_id)
            assert version is not None
            plan = self.session.get(Plan, version.plan_id)
            assert plan is not None
            self.seen[version.id] = (plan.name, version.version, rules_of(version))
        name, number, rules = self.seen[line.plan_version_id]
        return rules[line.rule_number - 1], f"plan {name} v{number} rule {line.rule_number}"

    def name(self, line: CommissionLine) -> tuple[str, int]:
        assert line.plan_version_id is not None
        self.of(line)
        name, number, _ = self.seen[line.plan_version_id]
        return name, number


def _originals(session: Session, event_ids: list[str]) -> list[CommissionLine]:
    """The lines a reversal may take back: commission and two-tier lines (see clawbacks.CLAWED_KINDS)."""
    if not event_ids:
        return []
    return list(
        session.scalars(
            select(CommissionLine)
            .where(
                CommissionLine.event_id.in_(event_ids),
                CommissionLine.kind.in_(CLAWED_KINDS),
                CommissionLine.status != REJECTED,
            )
            # Lines made together share created_at: "commission" then "two_tier", a fixed order.
            .order_by(CommissionLine.created_at, CommissionLine.kind, CommissionLine.id)
        ).all()
    )


def clawed_so_far(session: Session, line_id: str) -> int:
    """What has been taken back of a line and not given back (positive): its clawbacks less their reinstatements."""
    clawbacks = select(CommissionLine.id).where(
        CommissionLine.reverses_line_id == line_id, CommissionLine.status != REJECTED
    )
    taken = session.scalar(
        select(func.coalesce(func.sum(CommissionLine.amount), 0)).where(
            CommissionLine.status != REJECTED,
            (CommissionLine.reverses_line_id == line_id) | CommissionLine.reverses_line_id.in_(clawbacks),
        )
    )
    return -int(taken or 0)


def counter_line(
    line: CommissionLine, *, kind: str, amount: int, base: int, event_id: str, explanation: str, now: datetime
) -> CommissionLine:
    """A line reversing `line` (a clawback of an original, a reinstatement of a clawback), citing its rule."""
    unpaid = line.status in UNPAID
    return CommissionLine(
        id=new_id("com"),
        program_id=line.program_id,
        partner_id=line.partner_id,
        customer_id=line.customer_id,
        event_id=event_id,
        kind=kind,
        amount=amount,
        currency=line.currency,
        base_amount=base,
        rate_bp=line.rate_bp,
        rounding=line.rounding,
        status=line.status if unpaid else LineStatus.APPROVED.value,
        hold_until=line.hold_until if unpaid else now,
        reverses_line_id=line.id,
        approved_by=line.approved_by if unpaid else "system",
        approved_at=line.approved_at if unpaid else now,
        created_at=now,
        explanation=explanation,
        plan_version_id=line.plan_version_id,
        rule_number=line.rule_number,
    )


def _store(session: Session, *, actor: Actor, program_id: str, made: list[CommissionLine], now: datetime) -> None:
    if not made:
        return
    session.add_all(made)
    session.flush()
    post_lines(session, program_id, made, now)
    audit.record_many(
        session,
        actor=actor,
        action="commission.clawback",
        now=now,
        items=[("commission_line", c.id, c.program_id, None, {**line_snapshot(c), "kind": c.kind}) for c in made],
    )


def _kept(
    session: Session, *, actor: Actor, reversal: Event, notes: dict[tuple[str, str], list[str]], now: datetime
) -> None:
    """Say where people look (the partner's timeline, the reversal's audit) that a window or waiver kept a line."""
    if not notes:
        return
    for (partner_id, text), _ in sorted(notes.items()):
        record_activity(
            session,
            partner_id=partner_id,
            kind="commission.clawback_kept",
            text=text,
            actor=actor,
            now=now,
            ref_type="event",
            ref_id=reversal.id,
        )
    audit.record(
        session,
        actor=actor,
        action="commission.clawback_kept",
        object_type="event",
        object_id=reversal.id,
        program_id=reversal.program_id,
        now=now,
        after={
            "kept": sorted({text for _, text in notes}),
            "lines": sorted({i for ids in notes.values() for i in ids}),
        },
    )


def _note(
    rules: Rules, notes: dict[tuple[str, str], list[str]], line: CommissionLine, reversal: Event, why: str
) -> None:
    name, version = rules.name(line)
    assert line.rule_number is not None
    text = stop_note(
        kind=reversal.type, external_id=reversal.external_id, why=why, plan_name=name, version=version,
        rule_number=line.rule_number, line_kinds=[line.kind],
    )  # fmt: skip
    notes.setdefault((line.partner_id, text), []).append(line.id)


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
    """Negative lines for the part of `original` that `refund` (a refund or chargeback) took back,
    proportionally and never more than was earned; a rule's clawback window or waiver keeps its lines."""
    if refund.type == EventType.CHARGEBACK_REVERSED.value:
        # Recorded allocations replayed for lines earned later include a won chargeback's offset rows.
        from partnerpay.commissions import reinstate  # reinstate builds on this module

        return reinstate.give_back_recorded(session, actor=actor, reversal=refund, original=original, now=now)
    assert original.amount
    refunded_total = refunded_before + refunded
    customer = session.get(Customer, original.customer_id)
    first_paid_at = customer.first_paid_at if customer is not None else None
    rules = Rules(session)
    made: list[CommissionLine] = []
    notes: dict[tuple[str, str], list[str]] = {}
    for line in _originals(session, [original.id]):
        rule, cite = rules.of(line)
        why = stopped_by(
            rule, original_at=original.occurred_at, reversal_at=refund.occurred_at, first_paid_at=first_paid_at
        )
        if why is not None:
            _note(rules, notes, line, refund, why)
            continue
        clawed = clawed_so_far(session, line.id)
        amount = clawback_due(line.amount, clawed, refunded_total, original.amount, line.rounding)
        if amount == 0:
            continue
        text = clawback_explanation(
            kind=refund.type,
            refund_external_id=refund.external_id,
            refunded=refunded,
            refunded_total=refunded_total,
            original_amount=original.amount,
            currency=original.currency or line.currency,
            original_line_id=line.id,
            original_line_amount=line.amount,
            result=amount,
            chosen_newest_first=chosen_newest_first,
            line_currency=line.currency,
        )
        explanation = f"{text}, {cite}" if cite else text
        made.append(
            counter_line(
                line, kind="clawback", amount=amount, event_id=refund.id, explanation=explanation,
                base=-share_of_base(line.base_amount, refunded, original.amount, line.rounding),
                now=now,
            )
        )  # fmt: skip
    _store(session, actor=actor, program_id=refund.program_id, made=made, now=now)
    _kept(session, actor=actor, reversal=refund, notes=notes, now=now)
    return made


def cancel(
    session: Session, *, actor: Actor, cancellation: Event, customer: Customer, now: datetime
) -> list[CommissionLine]:
    """Early churn: the lines of rules WITH clawback_days on the customer's payments within that many days
    before the cancellation are taken back in full (what a refund has not taken already); other lines stay."""
    paying = {
        e.id: e
        for e in session.scalars(
            select(Event).where(
                Event.customer_id == customer.id,
                Event.type.in_([t.value for t in PAYING]),
                Event.occurred_at <= cancellation.occurred_at,
            )
        ).all()
    }
    rules = Rules(session)
    made: list[CommissionLine] = []
    notes: dict[tuple[str, str], list[str]] = {}
    for line in _originals(session, list(paying)):
        rule, cite = rules.of(line)
        event = paying[line.event_id or ""]
        if not cancellation_claws(rule, event.occurred_at, cancellation.occurred_at):
            continue
        why = stopped_by(
            rule, original_at=event.occurred_at, reversal_at=cancellation.occurred_at,
            first_paid_at=customer.first_paid_at, cancellation=True,
        )  # fmt: skip
        if why is not None:
            _note(rules, notes, line, cancellation, why)
            continue
        clawed = clawed_so_far(session, line.id)
        amount = clawback_due(line.amount, clawed, 1, 1, line.rounding)
        if amount == 0:
            continue
        assert rule is not None
        explanation = (
            f"Cancellation {cancellation.external_id} {rule.clawback_days} days or less after "
            f"{event.external_id} ({(cancellation.occurred_at - event.occurred_at).days} days): claws back "
            f"{format_money(-amount, line.currency)} of line {line.id} ({format_money(line.amount, line.currency)}"
            f"{', less ' + format_money(clawed, line.currency) + ' taken back before' if clawed else ''}) "
            f"= {format_money(amount, line.currency)}, {cite}"
        )
        made.append(
            counter_line(
                line, kind="clawback", amount=amount, base=0, event_id=cancellation.id, explanation=explanation,
                now=now,
            )
        )  # fmt: skip
    _store(session, actor=actor, program_id=cancellation.program_id, made=made, now=now)
    _kept(session, actor=actor, reversal=cancellation, notes=notes, now=now)
    return made
