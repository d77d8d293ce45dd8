"""Credit notes for self-billing invoices whose payout came back.

An issued invoice is a tax document: it is never changed or deleted. When the bank or the provider returns
a payout that already has its invoice, the money was not paid after all, so the program issues a credit
note cancelling it: the next number of the program's one invoice sequence, the invoice's parties, lines and
total negated, the credited invoice's number and date, and the reason the payout came back. Like the
invoice it is issued on first request and frozen then; asking again returns the same credit note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.tax.invoices import issue_once, visible_payout
from partnerpay.tax.models import SelfBillingCreditNote, SelfBillingInvoice

CREDIT_NOTE_NOTE = (
    "Credit note: cancels the self-billing invoice named above in full; the payment it documented was "
    "returned and the amounts went back to the partner's balance, to be paid (and invoiced) again."
)


def credit_note_applies(session: Session, payout: Payout) -> bool:
    """Whether this payout has (or may be given) a credit note: returned, with an issued invoice."""
    if session.get(SelfBillingCreditNote, payout.id) is not None:
        return True
    return payout.status == PayoutStatus.RETURNED.value and session.get(SelfBillingInvoice, payout.id) is not None


def get_or_issue_credit_note(session: Session, *, actor: Actor, payout_id: str, now: datetime) -> SelfBillingCreditNote:
    """The payout's credit note, issued with the program's next number on first request (404 for other
    partners' payouts, and for a payout that has no invoice or was not returned)."""
    payout = visible_payout(session, actor, payout_id)
    existing = session.get(SelfBillingCreditNote, payout.id)
    if existing is not None:
        return existing
    invoice = session.get(SelfBillingInvoice, payout.id)
    if invoice is None:
        raise NotFound(f"no credit note for payout {payout.id}: it has no self-billing invoice", field="payout_id")
    if payout.status != PayoutStatus.RETURNED.value:
        raise NotFound(
            f"no credit note for payout {payout.id}: it is {payout.status}; a credit note is issued once a "
            "payout with an invoice is returned",
            field="payout_id",
        )

    def make(_settings: Any, sequence: int, number: str) -> SelfBillingCreditNote:
        return SelfBillingCreditNote(payout_id=payout.id, program_id=payout.program_id, sequence=sequence,
                                     number=number, invoice_number=invoice.number, content=_content(invoice, payout),
                                     issued_at=now)  # fmt: skip

    after = {"credits": invoice.number, "amount": -payout.amount, "currency": payout.currency}
    return issue_once(session, SelfBillingCreditNote, payout, make, actor=actor,
                      action="self_billing_credit_note.issue", after=after, now=now)  # fmt: skip


def _content(invoice: SelfBillingInvoice, payout: Payout) -> dict[str, Any]:
    """The invoice's content as issued, its amounts negated, with what it credits and why."""
    c = invoice.content
    return {
        **{k: c[k] for k in ("supplier", "customer", "currency", "program", "reverse_charge") if k in c},
        "lines": [{**line, "amount": -int(line["amount"])} for line in c.get("lines", [])],
        "amount": -int(c["amount"]),
        "paid_at": c.get("paid_at"),
        "credits": {"number": invoice.number, "issued_at": invoice.issued_at.isoformat()},
        "returned_at": payout.returned_at.isoformat() if payout.returned_at else None,
        "reason": payout.failure_reason,
        "notes": [CREDIT_NOTE_NOTE, *c.get("notes", [])],
    }
