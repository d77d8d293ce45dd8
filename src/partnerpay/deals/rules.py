"""Pure rules of leads and deals: name and domain keys, the state machines, and what counts as a conflict."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import check_currency, exponent
from partnerpay.kit.state import StateMachine
from partnerpay.programs.tracking_settings import HOSTNAME, normalise_host

# Trailing words that name a company's legal form, not the company: "Acme GmbH" and "ACME, Inc." are one prospect.
LEGAL_SUFFIXES = frozenset(
    {"inc", "llc", "ltd", "gmbh", "ag", "sa", "sas", "bv", "oy", "ab", "srl", "plc", "corp", "co"}
)
_NOT_WORD = re.compile(r"[^\w\s]+")
MAX_REMINDERS = 3


class LeadState(StrEnum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ConflictKind(StrEnum):
    EXISTING_CUSTOMER = "existing_customer"
    OTHER_PARTNER_LEAD = "other_partner_lead"
    OTHER_PARTNER_DEAL = "other_partner_deal"
    CRM_DEAL = "crm_deal"
    OWN_DUPLICATE = "own_duplicate"


# DESIGN: deal `registered → accepted → (stages…) → won | lost`; `registered → rejected`.
LEAD_MACHINE = StateMachine("lead", {LeadState.REGISTERED: [LeadState.ACCEPTED, LeadState.REJECTED]})
DEAL_MACHINE = StateMachine("deal", {DealStatus.OPEN: [DealStatus.WON, DealStatus.LOST]})


def company_key(name: str) -> str:
    """'ACME, Inc.' → 'acme': lower case, no punctuation, no trailing legal form (the name itself is kept)."""
    words = _NOT_WORD.sub(" ", name.lower()).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def domain_of(value: str | None) -> str | None:
    """The host of a domain, URL or email address ('jane@www.Acme.com' → 'acme.com'); None when blank."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if "@" in text and "://" not in text:
        text = text.rsplit("@", 1)[1]
    host = normalise_host(text)
    if not HOSTNAME.match(host):
        raise ValidationError(
            f"{value!r} is not a domain: give a host such as acme.com, a web address or an email address",
            field="domain",
        )
    return host


def protection_active(protected_until: datetime | None, at: datetime) -> bool:
    """An accepted lead owns its domain until protected_until; at that instant the window is over."""
    return protected_until is not None and at < protected_until


def conflict(
    kind: ConflictKind, ref_type: str, ref_id: str, partner_id: str | None, detail: str
) -> dict[str, str | None]:
    return {"kind": kind.value, "ref_type": ref_type, "ref_id": ref_id, "partner_id": partner_id, "detail": detail}


def minor_units(text: str, currency: str, *, field: str) -> int | None:
    """'12,500.50' EUR → 1250050 for forms; blank → None. Exact decimals only, never a float."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned:
        return None
    digits = exponent(check_currency(currency))
    try:
        value = Decimal(cleaned) * (10**digits)
    except InvalidOperation:
        raise ValidationError(f"{field} must be an amount such as 12500.00, got {text!r}", field=field) from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise ValidationError(
            f"{field} must be 0 or more with at most {digits} decimals in {currency}, got {text!r}", field=field
        )
    return int(value)
