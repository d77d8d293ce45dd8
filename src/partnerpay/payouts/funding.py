"""A program's funding account: the bank account SEPA and ACH payouts are sent from.

`PUT /programs/{id}/funding-account` takes `{sepa: {name, iban, bic}}` and/or `{ach: {company_name,
company_id, odfi_routing, immediate_destination, immediate_origin}}`. Each part is validated (schwifty for
IBAN and BIC, the ABA check digit for routing numbers), sealed with the SecretBox like partners' payout
methods, read back masked, and every change is audited (masked on both sides). PayPal and Stripe pay from
the program's provider balance, configured through `PUT /programs/{id}/integrations/{provider}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.validation import check_bic, check_iban, check_routing_number, mask_iban, mask_tail
from partnerpay.payouts.exporters.nacha import ach_text
from partnerpay.payouts.exporters.rail_items import AchOriginator, SepaDebtor
from partnerpay.payouts.models import FundingAccount
from partnerpay.programs.service import get_program

KINDS = ("sepa", "ach")
SEPA_FIELDS = ("name", "iban", "bic")
ACH_FIELDS = (
    "company_name",
    "company_id",
    "odfi_routing",
    "immediate_destination",
    "immediate_origin",
    "immediate_destination_name",
    "immediate_origin_name",
)
_COMPANY_ID = re.compile(r"^[0-9A-Z]{1,10}$")
_ORIGIN = re.compile(r"^(\d{9}|[0-9A-Z]{10})$")


def _text(part: Mapping[str, Any], kind: str, name: str, *, max_length: int, required: bool = True) -> str | None:
    value = part.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{kind}.{name} is required", field=f"{kind}.{name}")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ValidationError(f"{kind}.{name} must be text of at most {max_length} characters", field=f"{kind}.{name}")
    return value.strip()


def _unknown(part: Mapping[str, Any], kind: str, known: tuple[str, ...]) -> None:
    for name in part:
        if name not in known:
            raise ValidationError(
                f"{kind}.{name} is not a known field; known: {', '.join(known)}", field=f"{kind}.{name}"
            )


def check_sepa(part: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clear details, masked) of a SEPA debtor account; the BIC is derived from the IBAN when schwifty knows it."""
    _unknown(part, "sepa", SEPA_FIELDS)
    name = _text(part, "sepa", "name", max_length=70)
    assert name is not None
    iban = check_iban(_text(part, "sepa", "iban", max_length=64) or "", field="sepa.iban")
    bic_text = _text(part, "sepa", "bic", max_length=16, required=False)
    bic = check_bic(bic_text, field="sepa.bic") if bic_text else iban.bic
    details = {"name": name, "iban": str(iban.compact), "bic": str(bic) if bic else None}
    masked: dict[str, Any] = {"name": name, "iban": mask_iban(str(iban.compact)), "bic": details["bic"]}
    if iban.bank_name:
        masked["bank_name"] = str(iban.bank_name)
    return details, masked


def check_ach(part: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clear details, masked) of an ACH originator; the checks are those the NACHA file builder relies on."""
    _unknown(part, "ach", ACH_FIELDS)
    company_name = _text(part, "ach", "company_name", max_length=100) or ""
    if not ach_text(company_name, 16):
        raise ValidationError("ach.company_name needs Latin letters or digits", field="ach.company_name")
    company_id = (_text(part, "ach", "company_id", max_length=10) or "").upper()
    if not _COMPANY_ID.match(company_id):
        raise ValidationError(
            "ach.company_id must be 1 to 10 letters or digits, usually 1 followed by the EIN", field="ach.company_id"
        )
    odfi = check_routing_number(_text(part, "ach", "odfi_routing", max_length=16) or "", field="ach.odfi_routing")
    destination = check_routing_number(
        _text(part, "ach", "immediate_destination", max_length=16) or "", field="ach.immediate_destination"
    )
    origin = (_text(part, "ach", "immediate_origin", max_length=10) or "").upper()
    if not _ORIGIN.match(origin):
        raise ValidationError(
            "ach.immediate_origin must be a 9-digit routing number or the 10 characters the bank assigned",
            field="ach.immediate_origin",
        )
    details = {
        "company_name": company_name,
        "company_id": company_id,
        "odfi_routing": odfi,
        "immediate_destination": destination,
        "immediate_origin": origin,
        "immediate_destination_name": _text(part, "ach", "immediate_destination_name", max_length=23, required=False)
        or "",
        "immediate_origin_name": _text(part, "ach", "immediate_origin_name", max_length=23, required=False) or "",
    }
    # Routing numbers name banks, not accounts: they stay readable. The company id (1 + EIN) is a tax id.
    masked = {
        "company_name": company_name,
        "company_id": mask_tail(company_id),
        "odfi_routing": odfi,
        "immediate_destination": destination,
        "immediate_origin": mask_tail(origin),
    }
    return details, masked


CHECKS = {"sepa": check_sepa, "ach": check_ach}


def put_funding_account(
    session: Session, *, actor: Actor, box: SecretBox, program_id: str, body: Mapping[str, Any], now: datetime
) -> list[FundingAccount]:
    """Set the sepa and/or ach part (each replaced whole); a part left out keeps its value."""
    if actor.partner_id is not None or not actor.can("payouts"):
        raise Forbidden("changing the funding account needs the finance or owner role (scope 'payouts')")
    program = get_program(session, actor, program_id)
    for name in body:
        if name not in KINDS:
            raise ValidationError(f"{name} is not a funding account kind; send sepa and/or ach", field=name)
    parts = {kind: body[kind] for kind in KINDS if body.get(kind) is not None}
    if not parts:
        raise ValidationError("send {sepa: {name, iban, bic}} and/or {ach: {...}}", field="sepa")
    # Every part is checked before anything is written: a bad ach part leaves the sepa part unchanged too.
    checked = {}
    for kind, part in parts.items():
        if not isinstance(part, Mapping):
            raise ValidationError(f"{kind} must be an object", field=kind)
        checked[kind] = CHECKS[kind](part)
    rows = []
    for kind, (details, masked) in checked.items():
        row = funding_account(session, program.id, kind)
        before = dict(row.masked) if row is not None else None
        if row is None:
            row = FundingAccount(
                id=new_id("fund"), program_id=program.id, kind=kind, created_by=actor.id, created_at=now
            )
            session.add(row)
        row.details_encrypted = box.encrypt(details)
        row.masked = masked
        row.updated_at = now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="funding_account.set",
            object_type="funding_account",
            object_id=row.id,
            program_id=program.id,
            now=now,
            before=before,
            after={"kind": kind, **masked},
        )
        rows.append(row)
    return rows


def funding_account(session: Session, program_id: str, kind: str) -> FundingAccount | None:
    return session.scalar(
        select(FundingAccount).where(FundingAccount.program_id == program_id, FundingAccount.kind == kind)
    )


def masked_funding(session: Session, actor: Actor, program_id: str) -> dict[str, Any]:
    """`{program_id, sepa: {...masked} | null, ach: {...masked} | null}`: what the API and console show."""
    program = get_program(session, actor, program_id)
    out: dict[str, Any] = {"program_id": program.id}
    for kind in KINDS:
        row = funding_account(session, program.id, kind)
        out[kind] = {**row.masked, "updated_at": row.updated_at.isoformat()} if row is not None else None
    return out


def sepa_debtor(session: Session, box: SecretBox, program_id: str) -> SepaDebtor:
    """The program's SEPA debtor for a pain.001 file; refused (naming the fix) when none is set."""
    row = funding_account(session, program_id, "sepa")
    if row is None:
        raise ValidationError(
            "the program has no SEPA funding account: set it with PUT /programs/{id}/funding-account {sepa: ...}",
            field="funding_account.sepa",
        )
    d = box.decrypt(row.details_encrypted)
    return SepaDebtor(name=d["name"], iban=d["iban"], bic=d.get("bic"))


def ach_originator(session: Session, box: SecretBox, program_id: str) -> AchOriginator:
    """The program's ACH originator for a NACHA file; refused when none is set."""
    row = funding_account(session, program_id, "ach")
    if row is None:
        raise ValidationError(
            "the program has no ACH funding account: set it with PUT /programs/{id}/funding-account {ach: ...}",
            field="funding_account.ach",
        )
    d = box.decrypt(row.details_encrypted)
    return AchOriginator(
        company_name=d["company_name"],
        company_id=d["company_id"],
        odfi_routing=d["odfi_routing"],
        immediate_destination=d["immediate_destination"],
        immediate_origin=d["immediate_origin"],
        immediate_destination_name=d.get("immediate_destination_name", ""),
        immediate_origin_name=d.get("immediate_origin_name", ""),
    )
