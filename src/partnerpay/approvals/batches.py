"""Approving a payout batch, with maker-checker above the program's `batch_second_approval_above`.

Below the threshold one approval by a user with the payouts scope moves the batch and its payouts from draft
to approved (as before policies). Above it, the first approval is recorded (`approved_by`, `approved_at`) and
the batch stays draft until a second staff user with the finance or owner role, who neither created the
payout run nor gave the first approval, approves it (`second_approved_by`, `second_approved_at`); only then
do the payouts move draft → approved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.approvals.policy import is_second_approver, policies_for
from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import Role, StaffUser
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import enqueue_email
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutRun, PayoutStatus
from partnerpay.payouts.notices import notify_outcomes
from partnerpay.payouts.service import BATCHES, PAYOUTS


def _batch(session: Session, actor: Actor, batch_id: str) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None or not actor.sees_program(batch.program_id):
        raise NotFound(f"payout batch {batch_id} not found", field="batch_id")
    return batch


def awaiting_second(batch: PayoutBatch) -> bool:
    return batch.status == BatchStatus.DRAFT.value and batch.approved_by is not None


def approval_state(batch: PayoutBatch) -> dict[str, Any]:
    """What the API adds to a batch: the second approval and whether the batch waits for it."""
    return {
        "second_approved_by": batch.second_approved_by,
        "second_approved_at": batch.second_approved_at.isoformat() if batch.second_approved_at else None,
        "awaiting_second_approval": awaiting_second(batch),
    }


def approve_batch(
    session: Session, *, actor: Actor, batch_id: str, now: datetime, reason: str | None = None
) -> PayoutBatch:
    """First or final approval of a draft batch (see the module docstring); refused with the reason."""
    if not actor.can("payouts"):
        raise Forbidden("approving a payout batch needs the finance or owner role (scope 'payouts')")
    batch = _batch(session, actor, batch_id)
    BATCHES.check(BatchStatus(batch.status), BatchStatus.APPROVED, object_id=batch.id)
    policy = policies_for(session, [batch.program_id])[batch.program_id]
    note = reason.strip()[:2000] if reason and reason.strip() else None
    if batch.approved_by is None and policy.batch_needs_two(batch.total, batch.currency):
        return _first_approval(session, actor, batch, now, note, policy.batch_second_approval_above or 0)
    if batch.approved_by is not None:
        _check_second(session, actor, batch)
        values = {"second_approved_by": actor.id, "second_approved_at": now}
    else:
        values = {"approved_by": actor.id, "approved_at": now}
    first = (batch.approved_by, batch.approved_at)
    BATCHES.transition(session, PayoutBatch, [batch.id], src=BatchStatus.DRAFT, dst=BatchStatus.APPROVED, values=values)
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.id)))
    PAYOUTS.transition(session, Payout, [p.id for p in payouts], src=PayoutStatus.DRAFT, dst=PayoutStatus.APPROVED)
    # The partner hears of every step of a payout (UX: "exactly when it will be paid"), approval included.
    notify_outcomes(session, [(p, PayoutStatus.APPROVED.value, now, None) for p in payouts], now)
    session.refresh(batch)
    after: dict[str, Any] = {"status": batch.status, "total": batch.total, "currency": batch.currency}
    if "second_approved_by" in values:
        after |= {"first_approved_by": first[0], "first_approved_at": first[1].isoformat() if first[1] else None}
    if note:
        after["reason"] = note
    audit.record(
        session,
        actor=actor,
        action="payout_batch.approve",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": "draft"},
        after=after,
    )
    return batch


def _first_approval(
    session: Session, actor: Actor, batch: PayoutBatch, now: datetime, note: str | None, threshold: int
) -> PayoutBatch:
    # Compare-and-set: of two first approvals at once, one wins and the other is told the batch moved on.
    moved = session.execute(
        update(PayoutBatch)
        .where(
            PayoutBatch.id == batch.id,
            PayoutBatch.status == BatchStatus.DRAFT.value,
            PayoutBatch.approved_by.is_(None),
        )
        .values(approved_by=actor.id, approved_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        raise InvalidTransition(f"payout batch {batch.id} changed meanwhile; reload it", field="status")
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.first_approve",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": "draft", "approved_by": None},
        after={
            "status": "draft",
            "awaiting": "second_approval",
            "approved_by": actor.id,
            "total": batch.total,
            "threshold": threshold,
            "reason": note,
        },
    )
    total = format_money(batch.total, batch.currency)
    others = session.scalars(
        select(StaffUser.email)
        .where(StaffUser.role.in_([Role.FINANCE.value, Role.OWNER.value]), StaffUser.id != actor.id)
        .order_by(StaffUser.email)
    ).all()
    for email in others:
        enqueue_email(
            session,
            to=email,
            subject=f"Payout batch {batch.id} ({total}) needs a second approval",
            text=(
                f"Payout batch {batch.id} of {total} is above the program's limit of "
                f"{format_money(threshold, batch.currency)} for one approver.\n"
                f"{actor.label or actor.id} gave the first approval at {now:%Y-%m-%d %H:%M} UTC.\n\n"
                f"Review and approve it: {{base_url}}/payouts/batches/{batch.id}\n"
            ),
            now=now,
        )
    return batch


def _check_second(session: Session, actor: Actor, batch: PayoutBatch) -> None:
    at = f"{batch.approved_at:%Y-%m-%d %H:%M} UTC" if batch.approved_at else "earlier"
    if actor.id == batch.approved_by:
        raise Forbidden(
            f"you gave batch {batch.id} its first approval at {at}; the second approval must come from a "
            "different finance or owner user",
            field="batch_id",
        )
    creator = session.scalar(select(PayoutRun.created_by).where(PayoutRun.id == batch.run_id))
    if creator is not None and creator == actor.id:
        raise Forbidden(
            f"you created the payout run of batch {batch.id}; the second approval must come from someone else",
            field="batch_id",
        )
    if not is_second_approver(session, actor):
        raise Forbidden(
            f"batch {batch.id} waits for a second approval by a staff user with the finance or owner role "
            f"(first: {batch.approved_by} at {at})",
            field="batch_id",
        )


def approver_names(session: Session, batch: PayoutBatch) -> dict[str, str]:
    """Staff emails of the batch's approvers (ids of API keys or the system stay as they are)."""
    ids = [i for i in (batch.approved_by, batch.second_approved_by) if i]
    if not ids:
        return {}
    found = {i: e for i, e in session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(ids)))}
    return {i: found.get(i, i) for i in ids}
