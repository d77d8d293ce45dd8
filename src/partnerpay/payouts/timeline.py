"""A payout's status timeline, as the partner sees it (issue 7, part 9): read-only, from the payout and its batch.

Each step has a date or says it has not happened yet, and the last one says what happens next, so a
partner never sees a bare status. Columns that other parts of issue 7 add (the batch's scheduled_for,
second approval, sent_at) are read when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from partnerpay.payouts.models import Payout, PayoutBatch, PayoutStatus


@dataclass(frozen=True)
class TimelineStep:
    key: str  # scheduled | created | approved | sent | paid | failed | returned
    label: str
    at: datetime | None
    done: bool
    note: str = ""


def _at(obj: object, name: str) -> datetime | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, datetime) else None


def timeline(payout: Payout, batch: PayoutBatch) -> list[TimelineStep]:
    status = PayoutStatus(payout.status)
    steps: list[TimelineStep] = []
    scheduled = _at(batch, "scheduled_for")
    if scheduled is not None:
        steps.append(TimelineStep("scheduled", "Scheduled payout run", scheduled, True))
    steps.append(TimelineStep("created", "In payout batch", payout.created_at, True, f"batch {batch.id}"))
    approved_at = _at(batch, "second_approved_at") or (batch.approved_at if status is not PayoutStatus.DRAFT else None)
    steps.append(
        TimelineStep(
            "approved",
            "Approved by finance",
            approved_at,
            status is not PayoutStatus.DRAFT,
            "" if status is not PayoutStatus.DRAFT else "waiting for finance to approve the batch",
        )
    )
    sent_at = _at(payout, "sent_at") or _at(batch, "sent_at")
    was_sent = status in (PayoutStatus.SENDING, PayoutStatus.SENT, PayoutStatus.RETURNED) or (
        status in (PayoutStatus.PAID, PayoutStatus.FAILED) and sent_at is not None
    )
    if was_sent or status in (PayoutStatus.DRAFT, PayoutStatus.APPROVED):
        pending_note = "sent to your account when the batch is paid out" if not was_sent else ""
        steps.append(TimelineStep("sent", "Sent", sent_at, was_sent, pending_note))
    if status is PayoutStatus.FAILED:
        steps.append(
            TimelineStep(
                "failed",
                "Failed",
                payout.failed_at,
                True,
                f"{payout.failure_reason}. The amount is back in your balance for the next payout.",
            )
        )
        return steps
    paid = status is PayoutStatus.PAID or (status is PayoutStatus.RETURNED and payout.paid_at is not None)
    steps.append(
        TimelineStep(
            "paid",
            "Paid",
            payout.paid_at if paid else None,
            paid,
            "" if paid or status is PayoutStatus.RETURNED else "when the bank confirms the transfer",
        )
    )
    if status is PayoutStatus.RETURNED:
        steps.append(
            TimelineStep(
                "returned",
                "Returned by the bank",
                payout.returned_at,
                True,
                f"{payout.failure_reason}. The amount is back in your balance for the next payout.",
            )
        )
    return steps


def headline(payout: Payout) -> str:
    """One sentence for the payout's current state."""
    status = PayoutStatus(payout.status)
    day = "%d %b %Y"
    if status is PayoutStatus.PAID and payout.paid_at:
        return f"Paid on {payout.paid_at:{day}}"
    if status is PayoutStatus.FAILED:
        when = f" on {payout.failed_at:{day}}" if payout.failed_at else ""
        return f"Failed{when}: {payout.failure_reason}; the amount goes into your next payout"
    if status is PayoutStatus.RETURNED:
        when = f" on {payout.returned_at:{day}}" if payout.returned_at else ""
        return f"Returned by the bank{when}: {payout.failure_reason}; the amount goes into your next payout"
    if status is PayoutStatus.DRAFT:
        return "Waiting for finance to approve the batch"
    if status is PayoutStatus.APPROVED:
        return "Approved; paid when the batch is sent and the bank confirms"
    return "Sent; paid when the bank confirms the transfer"
