"""The 1099-NEC report: US partners (W-9 on file) paid at least the threshold in a calendar year.

Amounts are payouts in USD whose money stayed paid (status paid) and whose paid date falls in the year
(UTC). A payout returned by the bank is not income paid. Payouts in other currencies are not converted
(no cross-currency arithmetic without a rate): they are counted and named in the report instead.

Everyone with read access sees the TIN masked; the full report (TIN and address in clear) leaves the
system only as a passphrase-encrypted file (tax/sealed_file.py), for finance or owner, and each export is
audited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.us import ein, itin, ssn

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.csvsafe import write_csv
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.money import to_major_string
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.programs.service import get_program
from partnerpay.tax.service import active_tax_profiles, profile_details, settings_of

MASKED_HEADER = ("partner_id", "legal_name", "tin_type", "tin", "amount", "currency", "amount_minor", "payouts")
FULL_HEADER = (
    "partner_id",
    "legal_name",
    "tin_type",
    "tin",
    "address",
    "email",
    "amount",
    "currency",
    "amount_minor",
    "payouts",
)


@dataclass(frozen=True)
class Recipient:
    partner_id: str
    legal_name: str
    tin_type: str
    tin_masked: str
    amount: int  # USD minor units
    payouts: int


@dataclass
class NecReport:
    program_id: str
    year: int
    threshold: int
    recipients: list[Recipient] = field(default_factory=list)
    below_threshold: int = 0  # US partners paid something, but less than the threshold
    without_w9: list[str] = field(default_factory=list)  # paid in USD in the year, no active W-9 (may be non-US)
    other_currencies: dict[str, int] = field(default_factory=dict)  # currency -> payouts not in the report

    @property
    def total(self) -> int:
        return sum(r.amount for r in self.recipients)

    def as_dict(self) -> dict[str, object]:
        return {
            "program_id": self.program_id,
            "year": self.year,
            "currency": "USD",
            "threshold": self.threshold,
            "total": self.total,
            "recipients": [
                {
                    "partner_id": r.partner_id,
                    "legal_name": r.legal_name,
                    "tin_type": r.tin_type,
                    "tin": r.tin_masked,
                    "amount": r.amount,
                    "payouts": r.payouts,
                }
                for r in self.recipients
            ],
            "below_threshold": self.below_threshold,
            "paid_without_w9": self.without_w9,
            "payouts_in_other_currencies": self.other_currencies,
        }

    def masked_csv(self) -> str:
        return write_csv(
            MASKED_HEADER,
            (
                (
                    r.partner_id,
                    r.legal_name,
                    r.tin_type,
                    r.tin_masked,
                    to_major_string(r.amount, "USD"),
                    "USD",
                    r.amount,
                    r.payouts,
                )
                for r in self.recipients
            ),
        )


def _formatted_tin(tin: str, tin_type: str) -> str:
    """As printed on the forms: EIN 12-3456789, SSN and ITIN 123-45-6789 (stored compact)."""
    formatter = {"ein": ein.format, "ssn": ssn.format, "itin": itin.format}.get(tin_type)
    try:
        return str(formatter(tin)) if formatter else tin
    except ValueError:
        return tin


def check_year(year: int, now: datetime) -> None:
    if not 2000 <= year <= now.year:
        raise ValidationError(f"year must be between 2000 and {now.year}, not {year}", field="year")


def nec_report(session: Session, *, actor: Actor, program_id: str, year: int, now: datetime) -> NecReport:
    if not actor.can("read"):
        raise Forbidden("the 1099-NEC report needs the 'read' scope")
    check_year(year, now)
    program = get_program(session, actor, program_id)
    threshold = settings_of(session, program.id).nec_threshold
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    paid = session.execute(
        select(Payout.partner_id, Payout.currency, func.sum(Payout.amount), func.count())
        .where(
            Payout.program_id == program.id,
            Payout.status == PayoutStatus.PAID.value,
            Payout.paid_at >= start,
            Payout.paid_at < end,
        )
        .group_by(Payout.partner_id, Payout.currency)
    ).all()
    usd: dict[str, tuple[int, int]] = {}
    others: dict[str, int] = defaultdict(int)
    for partner_id, currency, total, count in paid:
        if currency == "USD":
            usd[partner_id] = (int(total), int(count))
        else:
            others[currency] += int(count)
    report = NecReport(program.id, year, threshold, other_currencies=dict(sorted(others.items())))
    profiles = active_tax_profiles(session, sorted(usd))
    for partner_id, (amount, count) in sorted(usd.items()):
        profile = profiles.get(partner_id)
        if profile is None or profile.form != "w9":
            report.without_w9.append(partner_id)
        elif amount < threshold:
            report.below_threshold += 1
        else:
            m = profile.masked
            report.recipients.append(
                Recipient(
                    partner_id,
                    str(m.get("legal_name") or ""),
                    str(m.get("tin_type") or ""),
                    str(m.get("tin") or ""),
                    amount,
                    count,
                )
            )
    report.recipients.sort(key=lambda r: (r.legal_name.lower(), r.partner_id))
    return report


def full_csv(session: Session, *, actor: Actor, box: SecretBox, report: NecReport, now: datetime) -> str:
    """The report with TIN and address in clear, for finance or owner only; the export itself is audited."""
    if not actor.can("payouts"):
        raise Forbidden("the full 1099-NEC export (TINs in clear) needs the finance or owner role (scope 'payouts')")
    profiles = active_tax_profiles(session, [r.partner_id for r in report.recipients])
    emails = dict(
        session.execute(
            select(Partner.id, Partner.email).where(Partner.id.in_([r.partner_id for r in report.recipients]))
        ).all()
    )
    rows = []
    for r in report.recipients:
        details = profile_details(box, profiles[r.partner_id])
        rows.append(
            (
                r.partner_id,
                details.get("legal_name", r.legal_name),
                details.get("tin_type", r.tin_type),
                _formatted_tin(str(details.get("tin", "")), str(details.get("tin_type", ""))),
                details.get("address", ""),
                emails.get(r.partner_id, ""),
                to_major_string(r.amount, "USD"),
                "USD",
                r.amount,
                r.payouts,
            )
        )
    audit.record(
        session,
        actor=actor,
        action="tax.1099_nec_export",
        object_type="program",
        object_id=report.program_id,
        program_id=report.program_id,
        now=now,
        after={"year": report.year, "recipients": len(rows), "total": report.total, "threshold": report.threshold},
    )
    return write_csv(FULL_HEADER, rows)
