"""Payout runs (set-based, in payouts/run.py), batch approval and marking a batch paid."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import Forbidden, NotFound
from partnerpay.kit.money import format_money
from partnerpay.kit.state import StateMachine
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutStatus

# The run lives in run.py; these names stay importable from here for callers written before the split.
from partnerpay.payouts.run import CrashHook, PayoutRow, RunResult, create_payout_run

BATCHES = StateMachine(
    "payout batch",
    {
        BatchStatus.DRAFT: {BatchStatus.APPROVED},
        BatchStatus.APPROVED: {BatchStatus.SENDING, BatchStatus.PAID},
        BatchStatus.SENDING: {BatchStatus.SENT},
        BatchStatus.SENT: {BatchStatus.PAID},
    },
)
PAYOUTS = StateMachine(
    "payout",
    {
        PayoutStatus.DRAFT: {PayoutStatus.APPROVED},
        PayoutStatus.APPROVED: {PayoutStatus.SENDING, PayoutStatus.PAID},
        PayoutStatus.SENDING: {PayoutStatus.SENT, PayoutStatus.FAILED},
        PayoutStatus.FAILED: {PayoutStatus.SENDING},
        PayoutStatus.SENT: {PayoutStatus.PAID, PayoutStatus.RETURNED},
    },
)


def get_batch(session: Session, actor: Actor, batch_id: str) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None or not actor.sees_program(batch.program_id):
        raise NotFound(f"payout batch {batch_id} not found", field="batch_id")
    return batch


def approve_batch(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    if not actor.can("payouts"):
        raise Forbidden("approving a payout batch needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    BATCHES.check(BatchStatus(batch.status), BatchStatus.APPROVED, object_id=batch.id)
    BATCHES.transition(
        session,
        PayoutBatch,
        [batch.id],
        src=BatchStatus.DRAFT,
        dst=BatchStatus.APPROVED,
        values={"approved_by": actor.id, "approved_at": now},
    )
    ids = list(session.scalars(select(Payout.id).where(Payout.batch_id == batch.id)))
    PAYOUTS.transition(session, Payout, ids, src=PayoutStatus.DRAFT, dst=PayoutStatus.APPROVED)
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.approve",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": "draft"},
        after={"status": batch.status},
    )
    return batch


def mark_batch_paid(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    """The bank confirmed the batch: payouts and their lines are paid, clearing → cash in the ledger."""
    if not actor.can("payouts"):
        raise Forbidden("marking a payout batch paid needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    src = BatchStatus(batch.status)
    BATCHES.check(src, BatchStatus.PAID, object_id=batch.id)
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.id)))
    BATCHES.transition(session, PayoutBatch, [batch.id], src=src, dst=BatchStatus.PAID, values={"paid_at": now})
    PAYOUTS.transition(
        session,
        Payout,
        [p.id for p in payouts if p.status == src.value],
        src=PayoutStatus(src.value),
        dst=PayoutStatus.PAID,
        values={"paid_at": now},
    )
    session.execute(
        update(CommissionLine)
        .where(
            CommissionLine.payout_id.in_([p.id for p in payouts]), CommissionLine.status == LineStatus.IN_BATCH.value
        )
        .values(status=LineStatus.PAID.value)
        .execution_options(synchronize_session=False)
    )
    ledger.post(
        session,
        program_id=batch.program_id,
        now=now,
        entries=[
            ledger.transfer(
                kind="payout_paid",
                ref_type="payout",
                ref_id=p.id,
                # Clearing holds what the lines summed to (payable → clearing at the run); a payout sent in
                # another currency leaves clearing at that same source amount.
                currency=p.source_currency or p.currency,
                amount=p.amount if p.source_amount is None else p.source_amount,
                debit=(batch.program_id, AccountKind.PAYOUT_CLEARING),
                credit=(batch.program_id, AccountKind.CASH),
            )
            for p in payouts
        ],
    )
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.mark_paid",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": src.value},
        after={"status": batch.status},
    )
    enqueue(
        session,
        "notify.partner",
        now=now,
        payloads=[
            {
                "partner_id": p.partner_id,
                "kind": "payout.paid",
                "text": f"Payout {p.id} of {format_money(p.amount, p.currency)} was paid",
            }
            for p in payouts
        ],
    )
    return batch


__all__ = [
    "BATCHES",
    "PAYOUTS",
    "CrashHook",
    "PayoutRow",
    "RunResult",
    "approve_batch",
    "create_payout_run",
    "get_batch",
    "mark_batch_paid",
]
