"""Checking a statement file against the ledger: `partnerpay statements verify FILE` and the public page.

1. Read the content and the hash the file states (PDF: the attached statement.json; CSV: its cells).
2. The content must hash to the stated hash, else it was altered.
3. The statement is rebuilt from the ledger for the file's partner, month and time zone; every figure and
   row that differs is named (a late clawback in the month shows as a row the file lacks and as changed
   clawback and closing figures).
4. The file itself must be exactly what partnerpay renders for that content (or a file recorded when the
   statement was issued), so one changed byte anywhere, in the printed text too, fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner
from partnerpay.statements.canonical import FORMAT, TOTAL_LABELS, TOTALS, content_hash
from partnerpay.statements.csv_file import UnreadableStatement, parse_csv, render_csv
from partnerpay.statements.models import IssuedStatement
from partnerpay.statements.pdf import read_pdf, render_pdf
from partnerpay.statements.service import build_statement, parse_period


class NotAStatementFile(ValidationError):
    """Neither a PDF nor a CSV: 422 on the page and the API."""

    code = "not_a_statement_file"


@dataclass
class Verification:
    kind: str  # pdf | csv
    as_of: datetime
    stated_sha256: str | None = None
    partner_id: str | None = None
    period: str | None = None
    issued_at: datetime | None = None
    issued_by: str | None = None
    problems: list[str] = field(default_factory=list)
    # Whether the problems may be shown to anyone holding the file (public page): only when the file is a
    # statement issued here or its figures match; a made-up file learns nothing about the ledger.
    disclose: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def headline(self) -> str:
        when = f"{self.as_of:%Y-%m-%d %H:%M:%S} UTC"
        if self.ok:
            issued = f"; issued on {self.issued_at:%Y-%m-%d %H:%M} UTC" if self.issued_at else ""
            return f"matches the ledger as of {when} (statement {self.stated_sha256}{issued})"
        return f"does not match the ledger as of {when}: {len(self.problems)} difference(s)"


def file_kind(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"statement,"):
        return "csv"
    raise NotAStatementFile("the file must be a statement PDF or CSV as partnerpay issues them", field="file")


def verify_file(session: Session, data: bytes, *, now: datetime) -> Verification:
    kind = file_kind(data)
    result = Verification(kind=kind, as_of=now)
    try:
        content, stated = read_pdf(data) if kind == "pdf" else parse_csv(data)
    except UnreadableStatement as exc:
        result.problems.append(f"the file cannot be read as a statement: {exc}")
        return result
    result.stated_sha256 = stated
    if content.get("format") != FORMAT:
        result.problems.append(f"unknown statement format {content.get('format')!r}")
        return result
    actual = content_hash(content)
    if actual != stated:
        result.problems.append(f"the statement content was altered: it hashes to {actual}, the file states {stated}")
        return result
    try:
        partner_id, period = str(content["partner"]["id"]), content["period"]
        result.partner_id, result.period = partner_id, str(period["month"])
        bounds = parse_period(str(period["month"]), str(period["time_zone"]))
    except (KeyError, TypeError, ValidationError) as exc:
        result.problems.append(f"the statement's partner or period cannot be read ({exc})")
        return result
    file_hash = hashlib.sha256(data).hexdigest()
    issued = session.scalar(
        select(IssuedStatement)
        .where(IssuedStatement.partner_id == partner_id, IssuedStatement.period == bounds.month)
        .where(
            or_(
                IssuedStatement.sha256 == stated,
                IssuedStatement.pdf_sha256 == file_hash,
                IssuedStatement.csv_sha256 == file_hash,
            )
        )
        .order_by(IssuedStatement.id)
        .limit(1)
    )
    if issued is not None:
        result.issued_at, result.issued_by = issued.issued_at, issued.issued_by
    partner = session.get(Partner, partner_id)
    if partner is None:
        result.problems.append(f"partner {partner_id} is not in this ledger")
        result.disclose = False
        return result
    fresh = build_statement(session, partner, bounds).content
    try:
        result.problems += differences(content, fresh)
        rendered = render_pdf(content) if kind == "pdf" else render_csv(content)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Content that hashes to what the file states but is not in our shape was made by hand.
        result.problems.append(f"the statement content is not in partnerpay's shape ({exc!r})")
        result.disclose = False
        return result
    result.disclose = issued is not None or not result.problems
    recorded = issued is not None and file_hash in (issued.pdf_sha256, issued.csv_sha256)
    if not recorded and rendered != data:
        at = next((i for i, (a, b) in enumerate(zip(rendered, data, strict=False)) if a != b), None)
        where = f"byte {at}" if at is not None else f"its length ({len(data)} bytes, expected {len(rendered)})"
        result.problems.append(
            f"the file was altered: it differs from the statement's own rendering at {where}, although the "
            "content it carries is intact"
        )
    return result


def _money(amount: object, currency: str) -> str:
    return format_money(int(amount), currency) if isinstance(amount, int) else repr(amount)


def _row_text(row: dict[str, Any], currency: str) -> str:
    return f"{row['type']} {row['reference']} of {row['at'][:10]}, {_money(row['amount'], currency)}"


def differences(claimed: dict[str, Any], ledger: dict[str, Any]) -> list[str]:
    """Every figure, name and row in which the file's content and the ledger's differ, in words."""
    out = []
    for part, label in (("program", "program name"), ("partner", "partner name")):
        if claimed[part].get("name") != ledger[part]["name"]:
            out.append(f"{label}: the file says {claimed[part].get('name')!r}, the ledger {ledger[part]['name']!r}")
    mine = {s["currency"]: s for s in claimed["currencies"]}
    theirs = {s["currency"]: s for s in ledger["currencies"]}
    for cur in sorted(set(mine) - set(theirs)):
        out.append(f"{cur}: the file has a section the ledger does not")
    for cur in sorted(set(theirs) - set(mine)):
        out.append(f"{cur}: the ledger has entries in the period the file does not show at all")
    for cur in sorted(set(mine) & set(theirs)):
        a, b = mine[cur], theirs[cur]
        for name, label in [("opening", "opening balance"), ("closing", "closing balance")]:
            if a.get(name) != b[name]:
                shown = _money(a.get(name), cur)
                out.append(f"{cur} {label}: the file says {shown}, the ledger {_money(b[name], cur)}")
        for name in TOTALS:
            stated = a.get("totals", {}).get(name)
            if stated != b["totals"][name]:
                out.append(
                    f"{cur} {TOTAL_LABELS[name].lower()}: the file says {_money(stated, cur)}, "
                    f"the ledger {_money(b['totals'][name], cur)}"
                )
        out += _row_differences(cur, a.get("rows", []), b["rows"])
    return out


def _row_differences(cur: str, claimed: list[dict[str, Any]], ledger: list[dict[str, Any]]) -> list[str]:
    out = []
    by_entry = {r["entry"]: r for r in ledger}
    seen = set()
    for row in claimed:
        other = by_entry.get(row.get("entry"))
        if other is None:
            out.append(f"{cur} row {row.get('entry')} ({_row_text(row, cur)}) is not in the ledger for this period")
            continue
        seen.add(other["entry"])
        for key in ("at", "type", "reference", "description", "plan", "amount"):
            if row.get(key) != other[key]:
                if key == "amount":
                    shown = (_money(row.get(key), cur), _money(other[key], cur))
                else:
                    shown = (repr(row.get(key)), repr(other[key]))
                out.append(f"{cur} row {row['entry']} {key}: the file says {shown[0]}, the ledger {shown[1]}")
    for row in ledger:
        if row["entry"] not in seen:
            out.append(f"{cur}: the ledger has a row the file lacks: {_row_text(row, cur)} ({row['description']})")
    if not out and [r["entry"] for r in claimed] != [r["entry"] for r in ledger]:
        out.append(f"{cur}: the rows are in another order than the ledger's")
    return out
