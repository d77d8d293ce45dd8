"""What a partner is told when a payout changes status: a portal notification and a transactional email.

Both go through the outbox in the caller's transaction, so nothing is sent for a change that rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import BASE_URL, EMAIL_SEND
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program

NOTIFY_PARTNER = "notify.partner"  # handled by jobs/handlers.py::notify_partner


class PayoutLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def program_id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


def _day(value: datetime) -> str:
    return value.strftime("%d %b %Y")


def describe(status: str, amount: str, at: datetime, reason: str | None) -> tuple[str, str]:
    """(subject-ish headline, body sentence) for one status change, in the partner's words."""
    if status == "paid":
        return f"Your payout of {amount} was paid", f"Your payout of {amount} was paid on {_day(at)}."
    if status == "failed":
        return (
            f"Your payout of {amount} could not be paid",
            f"Your payout of {amount} failed on {_day(at)}: {reason}. "
            "The amount is back in your balance and goes into the next payout; check your payout method.",
        )
    if status == "returned":
        return (
            f"Your payout of {amount} was returned by the bank",
            f"Your payout of {amount} was returned on {_day(at)}: {reason}. "
            "The amount is back in your balance and goes into the next payout; check your payout method.",
        )
    if status == "approved":
        return (
            f"Your payout of {amount} was approved",
            f"Your payout of {amount} was approved on {_day(at)}; it is sent with the program's next transfer.",
        )
    if status in ("sending", "sent"):
        return (
            f"Your payout of {amount} is on its way",
            f"Your payout of {amount} was sent on {_day(at)}; it is paid when the bank confirms the transfer.",
        )
    return f"Your payout of {amount} is {status}", f"Your payout of {amount} is {status} since {_day(at)}."


def notify_outcomes(
    session: Session, changes: Sequence[tuple[PayoutLike, str, datetime, str | None]], now: datetime
) -> None:
    """One portal notification and one email per change (payout, new status, when, reason).

    reconcile.record_results calls it for paid/failed/returned; batch approval and sending may call it for
    approved and sent, so the partner hears of every step."""
    if not changes:
        return
    partner_ids = sorted({p.partner_id for p, _, _, _ in changes})
    partners: dict[str, tuple[str, str]] = {}
    for start in range(0, len(partner_ids), 500):
        for pid, email, program_name in session.execute(
            select(Partner.id, Partner.email, Program.name)
            .join(Program, Program.id == Partner.program_id)
            .where(Partner.id.in_(partner_ids[start : start + 500]))
        ):
            partners[pid] = (email, program_name)
    payloads = []
    emails = []
    for payout, status, at, reason in changes:
        amount = format_money(payout.amount, payout.currency)
        headline, sentence = describe(status, amount, at, reason)
        payloads.append({"partner_id": payout.partner_id, "kind": f"payout.{status}", "text": sentence})
        email, program_name = partners[payout.partner_id]
        # One job list, not enqueue_email per payout: a settled batch may hold thousands; the addresses were
        # checked when the partners were created.
        emails.append(
            {
                "to": email,
                "subject": " ".join(f"{headline} ({program_name})".split())[:200],
                "text": (
                    f"{sentence}\n\nPayout {payout.id}: {BASE_URL}/portal/payouts/{payout.id}\n\n"
                    "This is a transactional message about money you are owed."
                ),
            }
        )
    enqueue(session, NOTIFY_PARTNER, payloads, now=now)
    enqueue(session, EMAIL_SEND, emails, now=now)
