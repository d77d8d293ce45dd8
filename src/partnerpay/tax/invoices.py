"""Self-billing invoices: the program issues, on its EU partners' behalf, an invoice for each paid payout.

- Only where the program enables it (tax settings `self_billing`), for partners whose active tax profile
  places them in the EU, and for payouts that are paid: the invoice documents a payment made.
- Numbers follow one gap-free sequence per program (`{prefix}-{000001}`), taken under the settings row's
  lock when the invoice is first asked for; the invoice's content is frozen then, so a later change of the
  partner's address or VAT id never rewrites an issued invoice. Asking again returns the same invoice.
- Cross-border B2B (the partner has a VAT id and another EU country than the program's company) carries the
  reverse-charge note. A payout returned after its invoice was issued gets a credit note (credit_notes.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.engine import is_postgres
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.programs.models import Program
from partnerpay.tax.models import ProgramTaxSettings, SelfBillingCreditNote, SelfBillingInvoice
from partnerpay.tax.service import EU_COUNTRIES, active_tax_profiles, profile_country, profile_details, settings_of

SELF_BILLING_NOTE = (
    "Self-billing invoice: issued by the customer in the name and on behalf of the supplier "
    "(Article 224 of Council Directive 2006/112/EC), under the self-billing agreement in the program terms."
)
REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient of the services "
    "(Articles 44 and 196 of Council Directive 2006/112/EC)."
)


def _eu_profile_country(session: Session, payout: Payout) -> str | None:
    profile = active_tax_profiles(session, [payout.partner_id]).get(payout.partner_id)
    country = profile_country(profile) if profile is not None else None
    return country if country in EU_COUNTRIES else None


def invoice_applies(session: Session, payout: Payout) -> bool:
    """Whether this payout has (or may be given) a self-billing invoice."""
    if session.get(SelfBillingInvoice, payout.id) is not None:
        return True
    if payout.status != PayoutStatus.PAID.value or not settings_of(session, payout.program_id).self_billing:
        return False
    return _eu_profile_country(session, payout) is not None


def _why_not(session: Session, payout: Payout) -> str:
    if not settings_of(session, payout.program_id).self_billing:
        return "the program does not issue self-billing invoices"
    if payout.status != PayoutStatus.PAID.value:
        return f"the payout is {payout.status}; an invoice is issued once it is paid"
    return "the partner's tax profile does not place it in the EU"


def get_or_issue(
    session: Session, *, actor: Actor, box: SecretBox, payout_id: str, now: datetime
) -> SelfBillingInvoice:
    """The payout's invoice, issued with the program's next number on first request (404 for other partners)."""
    payout = visible_payout(session, actor, payout_id)
    existing = session.get(SelfBillingInvoice, payout.id)
    if existing is not None:
        return existing
    if not invoice_applies(session, payout):
        raise NotFound(
            f"no self-billing invoice for payout {payout.id}: {_why_not(session, payout)}", field="payout_id"
        )

    def make(settings: ProgramTaxSettings, sequence: int, number: str) -> SelfBillingInvoice:
        return SelfBillingInvoice(payout_id=payout.id, program_id=payout.program_id, sequence=sequence, number=number,
                                  content=_content(session, box, payout, settings, now), issued_at=now)  # fmt: skip

    after = {"amount": payout.amount, "currency": payout.currency}
    return issue_once(session, SelfBillingInvoice, payout, make, actor=actor, action="self_billing_invoice.issue",
                      after=after, now=now)  # fmt: skip


def visible_payout(session: Session, actor: Actor, payout_id: str) -> Payout:
    payout = session.get(Payout, payout_id)
    if payout is None or not actor.sees(payout.program_id, payout.partner_id):
        raise NotFound(f"payout {payout_id} not found", field="payout_id")
    return payout


Document = TypeVar("Document", SelfBillingInvoice, SelfBillingCreditNote)


def issue_once(
    session: Session,
    model: type[Document],
    payout: Payout,
    make: Callable[[ProgramTaxSettings, int, str], Document],
    *,
    actor: Actor,
    action: str,
    after: dict[str, Any],
    now: datetime,
) -> Document:
    """Under the settings row's lock: the payout's document if it was issued meanwhile (while this waited for
    the lock), else a new one with the program's next number, audited with its number and `after`."""
    settings = locked_settings(session, payout.program_id)
    existing = session.get(model, payout.id)
    if existing is not None:
        return existing
    sequence, number = take_number(settings)
    document = make(settings, sequence, number)
    session.add(document)
    session.flush()
    audit.record(session, actor=actor, action=action, object_type="payout", object_id=payout.id,
                 program_id=payout.program_id, now=now, after={"number": number, **after})  # fmt: skip
    return document


def locked_settings(session: Session, program_id: str) -> ProgramTaxSettings:
    """The program's tax settings row, locked on PostgreSQL (SQLite's writer already holds the one write lock):
    numbers are taken one at a time, with no gaps and no duplicates."""
    settings = session.get(ProgramTaxSettings, program_id)
    assert settings is not None  # the callers saw self_billing on, or an invoice issued under it
    if is_postgres(session):
        session.refresh(settings, with_for_update=True)
    return settings


def take_number(settings: ProgramTaxSettings) -> tuple[int, str]:
    """The next (sequence, number) of the program's invoices and credit notes: one gap-free sequence."""
    sequence = settings.next_invoice_number
    settings.next_invoice_number = sequence + 1
    return sequence, f"{settings.invoice_prefix}-{sequence:06d}"


def _content(
    session: Session, box: SecretBox, payout: Payout, settings: ProgramTaxSettings, now: datetime
) -> dict[str, Any]:
    partner = session.get(Partner, payout.partner_id)
    program = session.get(Program, payout.program_id)
    assert partner is not None and program is not None
    profile = active_tax_profiles(session, [partner.id])[partner.id]
    details = profile_details(box, profile)
    country = profile_country(profile)
    vat_id = details.get("vat_id")
    summary: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, currency, total, count in session.execute(
        select(CommissionLine.kind, CommissionLine.currency, func.sum(CommissionLine.amount), func.count())
        .where(CommissionLine.payout_id == payout.id)
        .group_by(CommissionLine.kind, CommissionLine.currency)
        .order_by(CommissionLine.kind)
    ):
        summary[f"{kind}|{currency}"][0] += int(total)
        summary[f"{kind}|{currency}"][1] += int(count)
    reverse_charge = bool(vat_id) and bool(settings.issuer_country) and country != settings.issuer_country
    return {
        "supplier": {
            "name": details.get("legal_name") or partner.legal_name or partner.name,
            "address": details.get("address") or "",
            "country": country,
            "vat_id": vat_id,
            "partner_id": partner.id,
        },
        "customer": {
            "name": settings.issuer_name or program.name,
            "address": settings.issuer_address or "",
            "country": settings.issuer_country,
            "vat_id": settings.issuer_vat_id,
        },
        "lines": [
            {"kind": key.split("|")[0], "currency": key.split("|")[1], "amount": v[0], "count": v[1]}
            for key, v in sorted(summary.items())
        ],
        "amount": payout.amount,
        "currency": payout.currency,
        "paid_at": payout.paid_at.isoformat() if payout.paid_at else None,
        "program": program.name,
        "reverse_charge": reverse_charge,
        "notes": [SELF_BILLING_NOTE, *([REVERSE_CHARGE_NOTE] if reverse_charge else [])],
    }
