"""Building a partner's statement for a month from the ledger, and recording that it was issued.

The statement is the partner's payable account (what the program owes them) per currency: the balance at
the start of the month, every ledger entry on that account during the month (commission lines with their
explanation and plan citation, clawbacks, rejections, manual adjustments, payouts, and failed or returned
payouts coming back), and the balance at the end. A line counts from the moment it is posted (pending lines
included); the ledger is append-only, so the same month gives the same statement whenever it is asked for.

It ties out or it is refused: opening + movements must equal the closing balance summed from postings, and
that must equal the account's maintained balance less what was posted after the month.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.partners.models import Partner
from partnerpay.partners.service import get_partner
from partnerpay.payouts.models import PayoutSettings
from partnerpay.programs.models import Program
from partnerpay.statements.canonical import FORMAT, Period, content_hash, totals_of
from partnerpay.statements.models import IssuedStatement
from partnerpay.statements.rows import describe_rows

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class StatementDoesNotTie(Conflict):
    """Opening + movements ≠ closing: the statement is not issued (the ledger needs `partnerpay verify`)."""

    code = "statement_does_not_tie"


def parse_period(month: str, time_zone: str) -> Period:
    """'2026-11' in a time zone as its UTC bounds; 422 naming the field for anything else."""
    found = MONTH.match(month or "")
    if found is None or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2999:
        raise ValidationError(f"period must be a month such as 2026-11, got {month!r}", field="period")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {time_zone!r}", field="time_zone") from None
    year, mon = int(found.group(1)), int(found.group(2))
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
    return Period(month, time_zone, start.astimezone(UTC), end.astimezone(UTC))


def statement_time_zone(session: Session, program_id: str) -> str:
    """The program's time zone: the one its payout schedule runs in (UTC when it has none)."""
    zone = session.scalar(select(PayoutSettings.timezone).where(PayoutSettings.program_id == program_id))
    return str(zone or "UTC")


@dataclass(frozen=True)
class Statement:
    content: dict[str, Any]
    sha256: str

    @property
    def partner_id(self) -> str:
        return str(self.content["partner"]["id"])

    @property
    def period(self) -> str:
        return str(self.content["period"]["month"])

    @property
    def currencies(self) -> list[str]:
        return [str(s["currency"]) for s in self.content["currencies"]]


def partner_statement(
    session: Session, *, actor: Actor, partner_id: str, period: str, now: datetime, time_zone: str | None = None
) -> Statement:
    """The statement of one of the actor's partners for a month (404 for another program's or partner's).

    The month is in the program's time zone unless `time_zone` is given (verification uses the file's own).
    """
    partner = get_partner(session, actor, partner_id)
    zone = time_zone or statement_time_zone(session, partner.program_id)
    bounds = parse_period(period, zone)
    if bounds.start > now:
        raise ValidationError(f"period {period} has not started yet", field="period")
    return build_statement(session, partner, bounds)


def build_statement(session: Session, partner: Partner, period: Period) -> Statement:
    """The statement content from the ledger (no permission check: callers check who may see the partner)."""
    program = session.get(Program, partner.program_id)
    assert program is not None
    accounts = session.execute(
        select(LedgerAccount.id, LedgerAccount.currency, LedgerAccount.balance)
        .where(
            LedgerAccount.program_id == program.id,
            LedgerAccount.owner_id == partner.id,
            LedgerAccount.kind == AccountKind.PARTNER_PAYABLE.value,
        )
        .order_by(LedgerAccount.currency)
    ).all()
    at = LedgerTransaction.created_at
    sums = {
        acc: (int(before or 0), int(through or 0), int(after or 0))
        for acc, before, through, after in session.execute(
            select(
                LedgerPosting.account_id,
                func.sum(case((at < period.start, LedgerPosting.amount), else_=0)),
                func.sum(case((at < period.end, LedgerPosting.amount), else_=0)),
                func.sum(case((at >= period.end, LedgerPosting.amount), else_=0)),
            )
            .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
            .where(LedgerPosting.account_id.in_([a.id for a in accounts]))
            .group_by(LedgerPosting.account_id)
        )
    }
    rows = describe_rows(session, [a.id for a in accounts], period)
    sections = []
    for acc_id, currency, balance in accounts:
        before, through, after = sums.get(acc_id, (0, 0, 0))
        mine = rows.get(acc_id, [])
        if before == 0 and through == 0 and not mine:
            continue  # an account with nothing up to the month's end has no section
        # Payable is a credit balance: what the program owes the partner is its negation.
        opening, closing = -before, -through
        section = {
            "currency": currency,
            "opening": opening,
            "rows": mine,
            "totals": totals_of(mine),
            "closing": closing,
        }
        check_ties(section, maintained=-(int(balance) - after))
        sections.append(section)
    if not sections:
        sections.append({"currency": program.currency, "opening": 0, "rows": [], "totals": totals_of([]), "closing": 0})
    content = {
        "format": FORMAT,
        "program": {"id": program.id, "name": program.name},
        "partner": {"id": partner.id, "name": partner.name},
        "period": period.as_dict(),
        "currencies": sections,
    }
    return Statement(content, content_hash(content))


def check_ties(section: dict[str, Any], *, maintained: int | None = None) -> None:
    """Opening + every row = closing, the totals sum the rows, and (when given) the maintained balance agrees."""
    moved = sum(int(r["amount"]) for r in section["rows"])
    currency = section["currency"]
    if section["opening"] + moved != section["closing"]:
        raise StatementDoesNotTie(
            f"{currency}: opening {section['opening']} + movements {moved} ≠ closing {section['closing']}"
        )
    if sum(section["totals"].values()) != moved:
        raise StatementDoesNotTie(f"{currency}: totals sum to {sum(section['totals'].values())}, rows to {moved}")
    if maintained is not None and maintained != section["closing"]:
        raise StatementDoesNotTie(
            f"{currency}: closing {section['closing']} from postings, but the account's maintained balance "
            f"less later postings is {maintained}; run `partnerpay verify`"
        )


def issue(
    session: Session,
    *,
    actor: Actor,
    statement: Statement,
    now: datetime,
    pdf: bytes | None = None,
    csv: bytes | None = None,
) -> IssuedStatement:
    """Record that this content was handed out (once per content), with the file's hash; audited on first issue."""
    row = _issued(session, statement)
    if row is None:
        row = IssuedStatement(
            program_id=statement.content["program"]["id"],
            partner_id=statement.partner_id,
            period=statement.period,
            currencies=",".join(statement.currencies),
            sha256=statement.sha256,
            issued_at=now,
            issued_by=actor.id,
            issued_by_type=actor.type.value,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Another request issued the same content a moment ago: theirs is the issue.
            row = _issued(session, statement)
            if row is None:
                raise
        else:
            audit.record(
                session,
                actor=actor,
                action="statement.issue",
                object_type="partner",
                object_id=statement.partner_id,
                program_id=row.program_id,
                now=now,
                after={
                    "period": statement.period,
                    "sha256": statement.sha256,
                    "closing": {s["currency"]: s["closing"] for s in statement.content["currencies"]},
                },
            )
    if pdf is not None and row.pdf_sha256 is None:
        row.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    if csv is not None and row.csv_sha256 is None:
        row.csv_sha256 = hashlib.sha256(csv).hexdigest()
    session.flush()
    return row


def _issued(session: Session, statement: Statement) -> IssuedStatement | None:
    return session.scalar(
        select(IssuedStatement).where(
            IssuedStatement.partner_id == statement.partner_id,
            IssuedStatement.period == statement.period,
            IssuedStatement.sha256 == statement.sha256,
        )
    )


def issued_statements(session: Session, *, actor: Actor, partner_id: str, limit: int = 100) -> list[IssuedStatement]:
    """The partner's issued statements, newest period first (404 for another program's or partner's)."""
    partner = get_partner(session, actor, partner_id)
    return list(
        session.scalars(
            select(IssuedStatement)
            .where(IssuedStatement.partner_id == partner.id)
            .order_by(IssuedStatement.period.desc(), IssuedStatement.id.desc())
            .limit(limit)
        )
    )


def statement_months(session: Session, *, actor: Actor, partner_id: str, now: datetime) -> list[str]:
    """The months (newest first) from the partner's first ledger entry to now, in the program's time zone."""
    partner = get_partner(session, actor, partner_id)
    first = session.scalar(
        select(func.min(LedgerTransaction.created_at))
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(
            LedgerAccount.program_id == partner.program_id,
            LedgerAccount.owner_id == partner.id,
            LedgerAccount.kind == AccountKind.PARTNER_PAYABLE.value,
        )
    )
    if first is None:
        return []
    zone = ZoneInfo(statement_time_zone(session, partner.program_id))
    start, end = first.astimezone(zone), now.astimezone(zone)
    months: list[str] = []
    year, mon = start.year, start.month
    while (year, mon) <= (end.year, end.month) and len(months) < 240:
        months.append(f"{year:04d}-{mon:02d}")
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return months[::-1]
