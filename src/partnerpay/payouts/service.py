"""Payout runs (set-based, in payouts/run.py), batch approval and marking a batch paid."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound
from partnerpay.kit.state import StateMachine
from partnerpay.payouts.models import BatchStatus, PayoutBatch, PayoutStatus

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
        # No FAILED → SENDING: a failed payout's lines went back to approved (payouts/reconcile.py), so the
        # "retry" of DESIGN.md is the next run paying them in a new payout; resending this one would pay twice.
        PayoutStatus.SENT: {PayoutStatus.PAID, PayoutStatus.RETURNED},
    },
)


def get_batch(session: Session, actor: Actor, batch_id: str) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None or not actor.sees_program(batch.program_id):
        raise NotFound(f"payout batch {batch_id} not found", field="batch_id")
    return batch


def approve_batch(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    """Approve a batch under its program's approval policy (approvals/batches.py: a second finance approver above
    the policy's threshold), the one place batches are approved."""
    from partnerpay.approvals.batches import approve_batch as approve  # approvals imports this module

    return approve(session, actor=actor, batch_id=batch_id, now=now)


def mark_batch_paid(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    """The bank confirmed the batch: each open payout is paid through reconcile.record_results (lines paid,
    clearing → cash, audit, partner told), the one place payouts get their outcome."""
    from partnerpay.payouts.reconcile import settle_batch_paid  # reconcile imports this module

    settle_batch_paid(session, actor=actor, batch_id=batch_id, now=now)
    batch = get_batch(session, actor, batch_id)
    session.refresh(batch)
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
