"""A program's payout settings (schedule, minimums, gates) and partners' payout currencies: read and write.

Defaults. A program that never saved payout settings is paid by hand, as before issue 7: no schedule, no
minimum, paid in the lines' currency, and only the partner-status and changed-details gates apply
(`DEFAULTS`). Saving settings (PUT /programs/{id}/payout-schedule) turns on the verified-payout-method gate
unless the body says otherwise; the tax-form gate stays off until the program turns it on, because only a
program that collects W-9 / W-8BEN forms can meet it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.money import check_currency, check_minor_units
from partnerpay.partners.service import get_partner
from partnerpay.payouts.models import PartnerPayoutCurrency, PayoutRun, PayoutSettings, PayoutSkip
from partnerpay.payouts.schedules import Schedule, ScheduleKind, next_run, parse_schedule
from partnerpay.programs.service import get_program

_BOOLS = ("pay_in_partner_currency", "require_verified_method", "require_tax_form")
_FIELDS = {
    "schedule", "day_of_month", "second_day", "weekday", "net_days", "run_hour", "timezone", "minimums", *_BOOLS,
}  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The effective payout settings of a program (stored or DEFAULTS)."""

    schedule: Schedule
    minimums: dict[str, int] = field(default_factory=dict)
    pay_in_partner_currency: bool = False
    require_verified_method: bool = False
    require_tax_form: bool = False
    next_run_at: datetime | None = None
    stored: bool = False

    def as_dict(self) -> dict[str, Any]:
        s = asdict(self.schedule)
        return {
            "schedule": self.schedule.kind.value,
            **{k: s[k] for k in ("day_of_month", "second_day", "weekday", "net_days", "run_hour", "timezone")},
            "description": self.schedule.describe(),
            "minimums": dict(sorted(self.minimums.items())),
            "pay_in_partner_currency": self.pay_in_partner_currency,
            "require_verified_method": self.require_verified_method,
            "require_tax_form": self.require_tax_form,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
            "configured": self.stored,
        }


DEFAULTS = Settings(schedule=Schedule(ScheduleKind.MANUAL))


def _of_row(row: PayoutSettings) -> Settings:
    return Settings(
        schedule=Schedule(
            ScheduleKind(row.schedule),
            row.day_of_month,
            row.second_day,
            row.weekday,
            row.net_days,
            row.run_hour,
            row.timezone,
        ),
        minimums={str(k): int(v) for k, v in (row.minimums or {}).items()},
        pay_in_partner_currency=row.pay_in_partner_currency,
        require_verified_method=row.require_verified_method,
        require_tax_form=row.require_tax_form,
        next_run_at=row.next_run_at,
        stored=True,
    )


def settings_of(session: Session, program_id: str) -> Settings:
    """The program's effective settings, no permission check (the run and the scheduler read them)."""
    row = session.get(PayoutSettings, program_id)
    return _of_row(row) if row is not None else DEFAULTS


def read_settings(session: Session, actor: Actor, program_id: str) -> Settings:
    program = get_program(session, actor, program_id)
    return settings_of(session, program.id)


def parse_minimums(value: object) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError('minimums must be an object of currency → minor units, e.g. {"EUR": 5000}',
                              field="minimums")  # fmt: skip
    out: dict[str, int] = {}
    for currency, amount in value.items():
        code = check_currency(currency, field=f"minimums.{currency}")
        out[code] = check_minor_units(amount, field=f"minimums.{currency}")
    return out


def write_settings(
    session: Session, *, actor: Actor, program_id: str, data: Mapping[str, Any], now: datetime
) -> Settings:
    """Replace the program's payout settings (finance or owner); the next run is recomputed from now."""
    if not actor.can("payouts"):
        raise Forbidden("changing payout schedules and minimums needs the finance or owner role (scope 'payouts')")
    program = get_program(session, actor, program_id)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    schedule = parse_schedule(dict(data))
    minimums = parse_minimums(data.get("minimums"))
    flags: dict[str, bool] = {}
    for name in _BOOLS:
        value = data.get(name, name == "require_verified_method")
        if not isinstance(value, bool):
            raise ValidationError(f"{name} must be true or false, got {value!r}", field=name)
        flags[name] = value
    row = session.get(PayoutSettings, program.id)
    before = _of_row(row).as_dict() if row is not None else None
    if row is None:
        row = PayoutSettings(program_id=program.id)
        session.add(row)
    row.schedule = schedule.kind.value
    row.day_of_month, row.second_day = schedule.day_of_month, schedule.second_day
    row.weekday, row.net_days = schedule.weekday, schedule.net_days
    row.run_hour, row.timezone = schedule.run_hour, schedule.timezone
    row.next_run_at = next_run(schedule, now)
    row.minimums = minimums
    row.pay_in_partner_currency = flags["pay_in_partner_currency"]
    row.require_verified_method = flags["require_verified_method"]
    row.require_tax_form = flags["require_tax_form"]
    row.updated_by, row.updated_at = actor.id, now
    session.flush()
    result = _of_row(row)
    audit.record(
        session,
        actor=actor,
        action="payout_settings.set",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        now=now,
        before=before,
        after=result.as_dict(),
    )
    return result


def set_partner_currency(
    session: Session, *, actor: Actor, partner_id: str, currency: str, now: datetime
) -> PartnerPayoutCurrency:
    """The currency the partner is paid in when its program pays partners in their own currency."""
    if not actor.can("write"):
        raise Forbidden(f"changing a partner's payout currency needs the 'write' scope, which {actor.id} lacks")
    partner = get_partner(session, actor, partner_id)
    code = check_currency(currency, field="currency")
    row = session.get(PartnerPayoutCurrency, partner.id)
    before = {"currency": row.currency} if row is not None else None
    if row is None:
        row = PartnerPayoutCurrency(partner_id=partner.id, currency=code, updated_by=actor.id, updated_at=now)
        session.add(row)
    row.currency, row.updated_by, row.updated_at = code, actor.id, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner.payout_currency.set",
        object_type="partner",
        object_id=partner.id,
        program_id=partner.program_id,
        now=now,
        before=before,
        after={"currency": code},
    )
    return row


def partner_currency(session: Session, partner_id: str) -> str | None:
    return session.scalar(select(PartnerPayoutCurrency.currency).where(PartnerPayoutCurrency.partner_id == partner_id))


def carried_over(session: Session, partner_id: str, program_id: str) -> list[dict[str, Any]]:
    """Why the program's latest run left the partner's balance unpaid, per currency ([] when it paid or had none).

    Shown with the balance (API and portal): "below the 50.00 EUR minimum; it carries over to the next run".
    """
    latest = session.scalar(
        select(PayoutRun.id)
        .where(PayoutRun.program_id == program_id)
        .order_by(PayoutRun.created_at.desc(), PayoutRun.id.desc())
        .limit(1)
    )
    if latest is None:
        return []
    rows = session.scalars(
        select(PayoutSkip)
        .where(PayoutSkip.run_id == latest, PayoutSkip.partner_id == partner_id)
        .order_by(PayoutSkip.currency)
    )
    return [
        {"run_id": r.run_id, "reason": r.reason, "amount": r.amount, "currency": r.currency, **(r.detail or {})}
        for r in rows
    ]


REASON_TEXT = {
    "below_minimum": "below the program's minimum payout; it carries over to the next run",
    "negative_balance_carried": "clawbacks exceed earnings; the negative balance carries over",
    "nets_to_zero": "earnings and clawbacks cancel out",
    "payout_details_changed": "payout details changed recently and are held for review",
    "no_verified_payout_method": "no verified payout method on file",
    "tax_form_missing": "a tax form is missing",
    "no_fx_rate": "no exchange rate recorded for the payout currency",
}


def describe_skip(skip: dict[str, Any]) -> str:
    """A sentence for partners and staff: 'EUR 30.00 carried over: below the program's minimum (EUR 50.00)…'."""
    from partnerpay.kit.money import format_money

    reason = str(skip["reason"])
    text = REASON_TEXT.get(reason, "the partner is not active" if reason.startswith("partner_") else reason)
    amount = format_money(int(skip["amount"]), str(skip["currency"]))
    if reason == "below_minimum":
        minimum = format_money(int(skip["minimum"]), str(skip.get("minimum_currency", skip["currency"])))
        return f"{amount} not paid yet: below the minimum payout of {minimum}; it carries over to the next run."
    if reason == "tax_form_missing":
        needed = {"w9": "a W-9", "w8ben": "a W-8BEN", "w9_or_w8ben": "a W-9 or W-8BEN"}.get(str(skip.get("needed")), "")
        return f"{amount} not paid yet: {needed or 'a tax form'} is needed before payouts."
    if reason == "no_fx_rate":
        return f"{amount} not paid yet: no exchange rate {skip.get('pair', '')} is recorded."
    return f"{amount} not paid: {text}."
