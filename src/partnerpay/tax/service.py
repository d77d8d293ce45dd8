"""A program's tax settings: the 1099-NEC threshold and self-billing invoices (issue 7, part 8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.eu import vat

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.db.chunks import in_chunks
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.partners.models import TaxProfile
from partnerpay.programs.service import get_program
from partnerpay.tax.models import NEC_THRESHOLD_USD, ProgramTaxSettings

# EU member states by ISO country code (stdnum knows them by VAT prefix; Greece's prefix is EL, its country GR).
EU_COUNTRIES = frozenset(c.upper() for c in vat.MEMBER_STATES if c != "xi")
FIELDS = (
    "nec_threshold",
    "self_billing",
    "invoice_prefix",
    "issuer_name",
    "issuer_address",
    "issuer_country",
    "issuer_vat_id",
)


@dataclass(frozen=True)
class TaxSettings:
    nec_threshold: int = NEC_THRESHOLD_USD
    self_billing: bool = False
    invoice_prefix: str = "SB"
    issuer_name: str | None = None
    issuer_address: str | None = None
    issuer_country: str | None = None
    issuer_vat_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def settings_of(session: Session, program_id: str) -> TaxSettings:
    row = session.get(ProgramTaxSettings, program_id)
    if row is None:
        return TaxSettings()
    return TaxSettings(**{name: getattr(row, name) for name in FIELDS})


def _check(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}", field=unknown[0])
    out = dict(data)
    if "nec_threshold" in out:
        value = out["nec_threshold"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(
                "nec_threshold is USD in cents, a whole number ≥ 0 (60000 = $600.00)", field="nec_threshold"
            )
    if "self_billing" in out and not isinstance(out["self_billing"], bool):
        raise ValidationError("self_billing is true or false", field="self_billing")
    prefix = out.get("invoice_prefix")
    if prefix is not None and (
        not isinstance(prefix, str) or not 1 <= len(prefix) <= 12 or not prefix.replace("-", "").isalnum()
    ):
        raise ValidationError(
            "invoice_prefix has 1 to 12 letters, digits or dashes, e.g. SB-2026", field="invoice_prefix"
        )
    for name, limit in (("issuer_name", 200), ("issuer_address", 500)):
        if out.get(name) is not None and (not isinstance(out[name], str) or len(out[name]) > limit):
            raise ValidationError(f"{name} is text of at most {limit} characters", field=name)
    country = out.get("issuer_country")
    if country is not None:
        if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
            raise ValidationError("issuer_country is a two-letter ISO country code, e.g. DE", field="issuer_country")
        out["issuer_country"] = country.upper()
    vat_id = out.get("issuer_vat_id")
    if vat_id is not None:
        if not isinstance(vat_id, str) or not vat.is_valid(vat_id):
            raise ValidationError(f"issuer_vat_id {vat_id!r} is not a valid EU VAT id", field="issuer_vat_id")
        out["issuer_vat_id"] = vat.compact(vat_id)
    return out


def set_settings(
    session: Session, *, actor: Actor, program_id: str, data: Mapping[str, Any], now: datetime
) -> TaxSettings:
    """Change some of the program's tax settings (finance or owner); the others keep their value."""
    if not actor.can("payouts"):
        raise Forbidden("changing tax settings needs the finance or owner role (scope 'payouts')")
    program = get_program(session, actor, program_id)
    checked = _check(data)
    row = session.get(ProgramTaxSettings, program.id)
    before = settings_of(session, program.id).as_dict()
    if row is None:
        row = ProgramTaxSettings(program_id=program.id, **TaxSettings().as_dict(), updated_by=actor.id, updated_at=now)
        session.add(row)
    for name, value in checked.items():
        setattr(row, name, value)
    row.updated_by, row.updated_at = actor.id, now
    if row.self_billing and not row.issuer_name:
        raise ValidationError("self-billing invoices need issuer_name (your company's legal name)", field="issuer_name")
    session.flush()
    after = settings_of(session, program.id)
    audit.record(
        session,
        actor=actor,
        action="tax_settings.set",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        now=now,
        before=before,
        after=after.as_dict(),
    )
    return after


def active_tax_profiles(session: Session, partner_ids: list[str]) -> dict[str, TaxProfile]:
    found: dict[str, TaxProfile] = {}
    for chunk in in_chunks(partner_ids):
        for profile in session.scalars(
            select(TaxProfile).where(TaxProfile.partner_id.in_(chunk), TaxProfile.active.is_(True))
        ):
            found[profile.partner_id] = profile
    return found


def profile_details(box: SecretBox, profile: TaxProfile) -> dict[str, Any]:
    """The clear fields of a tax profile; callers show them only where the role allows (never in logs)."""
    return box.decrypt(profile.details_encrypted)


def profile_country(profile: TaxProfile) -> str | None:
    """W-9: US; W-8BEN: its country; else the VAT id's prefix (EL is Greece)."""
    if profile.form == "w9":
        return "US"
    country = profile.masked.get("country")
    if isinstance(country, str) and country:
        return country.upper()
    vat_id = profile.masked.get("vat_id")
    if isinstance(vat_id, str) and len(vat_id) >= 2:
        prefix = vat_id[:2].upper()
        return "GR" if prefix == "EL" else prefix
    return None
