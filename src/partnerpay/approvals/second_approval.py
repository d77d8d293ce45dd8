"""Maker-checker on commission lines above a program's threshold: which lines of an approval are final, which
get their first approval, and who may give the second one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.approvals.models import LineFirstApproval
from partnerpay.approvals.policy import Policy, is_second_approver
from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.kit.errors import Forbidden
from partnerpay.kit.money import format_money


def split(
    session: Session,
    actor: Actor,
    lines: Sequence[CommissionLine],
    policies: Mapping[str, Policy],
    firsts: Mapping[str, LineFirstApproval],
) -> tuple[list[CommissionLine], list[CommissionLine], list[CommissionLine]]:
    """(final, first, held): lines this approval moves to approved, lines it gives a first approval, and
    clawbacks held back because their original still waits for a second approval. All or none: any line this
    actor may not approve raises Forbidden naming every such line and why."""
    final: list[CommissionLine] = []
    first: list[CommissionLine] = []
    refused: list[tuple[str, str]] = []
    second_ok = is_second_approver(session, actor)
    for line in lines:
        policy = policies[line.program_id]
        if not policy.line_needs_two(line.amount, line.currency):
            final.append(line)
            continue
        earlier = firsts.get(line.id)
        if earlier is None:
            first.append(line)
        elif earlier.approved_by == actor.id:
            refused.append(
                (
                    line.id,
                    f"you gave {line.id} its first approval at {earlier.approved_at:%Y-%m-%d %H:%M} UTC; the second "
                    "approval must come from a different finance or owner user",
                )
            )
        elif line.created_by is not None and line.created_by == actor.id:
            refused.append((line.id, f"you created {line.id}; you cannot give it the second approval"))
        elif not second_ok:
            threshold = format_money(policy.second_approval_above or 0, policy.currency)
            refused.append(
                (
                    line.id,
                    f"{line.id} ({format_money(line.amount, line.currency)}) is above {threshold}: its second approval "
                    f"needs a staff user with the finance or owner role (first approval: {earlier.approved_by} at "
                    f"{earlier.approved_at:%Y-%m-%d %H:%M} UTC)",
                )
            )
        else:
            final.append(line)
    if refused:
        raise Forbidden("; ".join(why for _, why in refused), field="ids", ids=[i for i, _ in refused])
    waiting = {line.id for line in first} | {i for i in firsts if i not in {x.id for x in final}}
    held = [line for line in final if line.reverses_line_id in waiting]
    return [line for line in final if line not in held], first, held


def record_first(
    session: Session, actor: Actor, lines: Sequence[CommissionLine], *, now: datetime, reason: str | None
) -> dict[str, LineFirstApproval]:
    """The first of two approvals: recorded (who, when, why) and audited; the lines stay pending."""
    rows = {
        line.id: LineFirstApproval(
            line_id=line.id, program_id=line.program_id, approved_by=actor.id, approved_at=now, reason=reason
        )
        for line in lines
    }
    session.add_all(rows.values())
    session.flush()
    audit.record_many(
        session,
        actor=actor,
        action="commission.first_approve",
        now=now,
        items=[
            (
                "commission_line",
                line.id,
                line.program_id,
                {"status": line.status},
                {"status": line.status, "awaiting": "second_approval", "amount": line.amount, "reason": reason},
            )
            for line in lines
        ],
    )
    return rows


def approval_note(snapshot: dict[str, Any], first: LineFirstApproval | None, reason: str | None) -> dict[str, Any]:
    """A line's audit "after" for its final approval: why, and whose first approval it completes."""
    out = dict(snapshot)
    if reason:
        out["reason"] = reason
    if first is not None:
        out["first_approved_by"] = first.approved_by
        out["first_approved_at"] = first.approved_at.isoformat()
    return out
