"""Deciding on commission lines: approval (maker-checker for manual adjustments and, by the program's approval
policy, for lines above a threshold) and rejection, each all or none, with the unpaid clawbacks of the chosen
lines following their decision. Who may decide is the program's approval policy (approvals/policy.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.approvals import second_approval
from partnerpay.approvals.models import LineFirstApproval
from partnerpay.approvals.policy import check_may_decide, policies_for
from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.service import LINES, UNPAID, line_snapshot
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.money import format_money
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.messaging import line_notices
from partnerpay.webhooks_out import emit as webhooks_out


def _load_for_decision(session: Session, actor: Actor, ids: Sequence[str]) -> list[CommissionLine]:
    if not ids:
        raise ValidationError("ids must name at least one commission line", field="ids")
    if len(set(ids)) != len(ids):
        raise ValidationError("ids must not repeat a line", field="ids")
    found = {
        line.id: line
        for line in session.scalars(select(CommissionLine).where(CommissionLine.id.in_(ids))).all()
        if actor.sees_program(line.program_id)
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"commission line(s) not found: {', '.join(missing)}", field="ids", ids=missing)
    return [found[i] for i in ids]


def _followers(session: Session, lines: Sequence[CommissionLine]) -> list[CommissionLine]:
    """Unpaid clawbacks of these lines, and unpaid reinstatements of those: they follow their original's decision."""
    found: list[CommissionLine] = []
    ids = [line.id for line in lines]
    for _ in range(2):  # a clawback reverses a line; a reinstatement (won chargeback) reverses a clawback
        more = session.scalars(
            select(CommissionLine).where(CommissionLine.reverses_line_id.in_(ids), CommissionLine.status.in_(UNPAID))
        ).all()
        found += more
        ids = [x.id for x in more]
        if not ids:
            break
    return list({x.id: x for x in found}.values())


@dataclass
class Approval:
    """What one approval did: `lines` as asked (in order, refreshed), which moved to approved (with their
    clawbacks) and which got their first of two approvals and stay pending."""

    lines: list[CommissionLine]
    approved: list[CommissionLine] = field(default_factory=list)
    awaiting: dict[str, LineFirstApproval] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # clawbacks that follow an original awaiting its second approval

    def state_of(self, line_id: str) -> str:
        waiting = line_id in self.awaiting or line_id in self.held
        return "awaiting_second_approval" if waiting else "approved"


def approve_lines(session: Session, *, actor: Actor, ids: Sequence[str], now: datetime) -> list[CommissionLine]:
    """Approve pending lines, all or none (see `approve`); returns the lines asked for."""
    return approve(session, actor=actor, ids=ids, now=now).lines


def approve(
    session: Session, *, actor: Actor, ids: Sequence[str], now: datetime, reason: str | None = None
) -> Approval:
    """Approve pending lines, all or none, as the programs' approval policies say (approvals/policy.py).

    A line above the policy's `second_approval_above` needs two people: the first approval is recorded and
    the line stays pending until a finance (or owner) user who neither created it nor gave the first approval
    approves it. Unpaid clawbacks of the lines are approved with them.
    """
    lines = _load_for_decision(session, actor, ids)
    policies = policies_for(session, {line.program_id for line in lines})
    check_may_decide(session, actor, policies.values(), "approve")
    # Maker-checker: a manual adjustment is money a person decided on, so a second person approves it.
    own = [line for line in lines if line.kind == "adjustment" and line.created_by == actor.id]
    if own:
        raise Forbidden(
            "you created these adjustments; someone else must approve them: " + ", ".join(line.id for line in own),
            field="ids",
            ids=[line.id for line in own],
        )
    wrong = [line for line in lines if line.status != LineStatus.PENDING.value]
    if wrong:
        raise InvalidTransition(
            "only pending lines can be approved: " + ", ".join(f"{line.id} is {line.status}" for line in wrong),
            field="ids",
            ids=[line.id for line in wrong],
        )
    chosen = set(ids)
    for line in lines:
        original = session.get(CommissionLine, line.reverses_line_id) if line.reverses_line_id else None
        if original is not None and original.status == LineStatus.PENDING.value and original.id not in chosen:
            raise InvalidTransition(
                f"clawback {line.id} is approved together with its original line {original.id}",
                field="ids",
                ids=[line.id],
            )
    firsts = {
        f.line_id: f
        for f in session.scalars(select(LineFirstApproval).where(LineFirstApproval.line_id.in_(list(chosen)))).all()
    }
    final, first, held = second_approval.split(session, actor, lines, policies, firsts)
    note = reason.strip()[:2000] if reason and reason.strip() else None
    result = Approval(lines, held=[line.id for line in held])
    if first:
        result.awaiting = second_approval.record_first(session, actor, first, now=now, reason=note)
    if final:
        followers = [f for f in _followers(session, final) if f.status == LineStatus.PENDING.value]
        every = final + [f for f in followers if f.id not in chosen]
        LINES.transition(
            session,
            CommissionLine,
            [line.id for line in every],
            src=LineStatus.PENDING,
            dst=LineStatus.APPROVED,
            values={"approved_by": actor.id, "approved_at": now},
        )
        for line in every:
            session.refresh(line)
        audit.record_many(
            session,
            actor=actor,
            action="commission.approve",
            now=now,
            items=[
                (
                    "commission_line",
                    x.id,
                    x.program_id,
                    {"status": "pending"},
                    second_approval.approval_note(line_snapshot(x), firsts.get(x.id), note),
                )
                for x in every
            ],
        )
        _notify(session, every, "commission.approved", "approved", now)
        line_notices.lines_approved(session, every, now)  # the partner's email (messaging/line_notices.py)
        webhooks_out.commission_lines(session, "commission.approved", every, now)  # outgoing webhooks (issue 8)
        result.approved = every
    return result


def reject_lines(
    session: Session, *, actor: Actor, ids: Sequence[str], reason: str, now: datetime
) -> list[CommissionLine]:
    """Reject unpaid lines, all or none, reversing their ledger postings; their clawbacks go too."""
    if not reason.strip():
        raise ValidationError("a reason is required to reject a line", field="reason")
    lines = _load_for_decision(session, actor, ids)
    check_may_decide(session, actor, policies_for(session, {x.program_id for x in lines}).values(), "reject")
    wrong = [line for line in lines if line.status not in UNPAID]
    if wrong:
        raise InvalidTransition(
            "only pending or approved lines can be rejected: "
            + ", ".join(f"{line.id} is {line.status}" for line in wrong),
            field="ids",
            ids=[line.id for line in wrong],
        )
    every = lines + [f for f in _followers(session, lines) if f.id not in set(ids)]
    by_status: dict[str, list[str]] = defaultdict(list)
    for line in every:
        by_status[line.status].append(line.id)
    for status, line_ids in by_status.items():
        LINES.transition(
            session,
            CommissionLine,
            line_ids,
            src=LineStatus(status),
            dst=LineStatus.REJECTED,
            values={"rejected_reason": reason.strip()},
        )
    before = {line.id: line.status for line in every}
    for line in every:
        session.refresh(line)
    by_program: dict[str, list[CommissionLine]] = defaultdict(list)
    for line in every:
        by_program[line.program_id].append(line)
    for program_id, group in by_program.items():
        ledger.post(
            session,
            program_id=program_id,
            now=now,
            entries=[
                ledger.transfer(
                    kind="rejection",
                    ref_type="commission_line",
                    ref_id=line.id,
                    currency=line.currency,
                    amount=line.amount,
                    debit=(line.partner_id, AccountKind.PARTNER_PAYABLE),
                    credit=(program_id, AccountKind.COMMISSION_EXPENSE),
                    memo=reason.strip()[:500],
                )
                for line in group
            ],
        )
    audit.record_many(
        session,
        actor=actor,
        action="commission.reject",
        now=now,
        items=[
            (
                "commission_line",
                x.id,
                x.program_id,
                {"status": before[x.id]},
                {**line_snapshot(x), "reason": reason},
            )
            for x in every
        ],
    )
    _notify(session, lines, "commission.rejected", "rejected", now)
    return lines


def _notify(session: Session, lines: Sequence[CommissionLine], kind: str, verb: str, now: datetime) -> None:
    per_partner: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line in lines:
        per_partner[(line.partner_id, line.currency)].append(line.amount)
    enqueue(
        session,
        "notify.partner",
        now=now,
        payloads=[
            {
                "partner_id": partner_id,
                "kind": kind,
                "text": f"{len(amounts)} commission line(s) {verb}: {format_money(sum(amounts), currency)}",
            }
            for (partner_id, currency), amounts in sorted(per_partner.items())
        ],
    )
