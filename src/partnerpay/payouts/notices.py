"""What a partner is told when a payout changes status: a portal notification and a transactional email.

Both go through the outbox in the caller's transaction, so nothing is sent for a change that rolls back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import BASE_URL
from partnerpay.messaging.notify import notify_partners

NOTIFY_PARTNER = "notify.partner"  # handled by jobs/handlers.py::notify_partner
EMAIL_KINDS = {"sending": "payout.sent"}  # the email kind of a status, when it is not payout.<status>


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
    payloads = []
    # The emails use the program's template for the kind (messaging/templates.py; the default is the sentence
    # below), grouped by kind so a settled batch of thousands is a few bulk inserts.
    emails: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for payout, status, at, reason in changes:
        amount = format_money(payout.amount, payout.currency)
        _, sentence = describe(status, amount, at, reason)
        payloads.append({"partner_id": payout.partner_id, "kind": f"payout.{status}", "text": sentence})
        context = {
            "amount": amount,
            "date": _day(at),
            "reason": reason or "",
            "payout": payout.id,
            "link": f"{BASE_URL}/portal/payouts/{payout.id}",
        }
        emails[EMAIL_KINDS.get(status, f"payout.{status}")].append((payout.partner_id, context))
    enqueue(session, NOTIFY_PARTNER, payloads, now=now)
    for kind, items in sorted(emails.items()):
        notify_partners(session, kind=kind, items=items, now=now, portal=False)
