"""The statement as CSV: a small header, one row per ledger entry per currency, totals, and the hash.

    statement,partnerpay.statement/1
    program,prg_…,<program name>
    partner,ptn_…,<partner name>
    period,2026-11,Europe/Berlin,<start UTC>,<end UTC>
    currency,date,type,reference,entry,description,plan,amount_minor,amount
    EUR,,opening,,,Opening balance,,12000,€120.00
    EUR,2026-11-03T10:00:00.000000+00:00,commission,com_…,ltx_…,<explanation>,<plan>,1000,€10.00
    EUR,,total,commissions,,Commissions,,1000,€10.00
    EUR,,closing,,,Closing balance,,13000,€130.00
    sha256,<hex of the canonical content>

Every value of the canonical content is in a cell, so the content (and its hash) is read back from the file
alone; cells are formula-escaped (kit/csvsafe.py) and unescaped when read. `amount` is for people; the
figures are `amount_minor`, integer minor units.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from partnerpay.kit.csvsafe import escape_cell
from partnerpay.kit.money import format_money
from partnerpay.statements.canonical import FORMAT, TOTAL_LABELS, TOTALS, content_hash

# What kit/csvsafe.escape_cell quotes: a cell starting with one of these had a quote put in front.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
COLUMNS = ("currency", "date", "type", "reference", "entry", "description", "plan", "amount_minor", "amount")


class UnreadableStatement(ValueError):
    """The file is a statement's type but its content cannot be read back (damaged or altered)."""


def render_csv(content: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def put(*cells: object) -> None:
        writer.writerow([escape_cell(c) for c in cells])

    program, partner, period = content["program"], content["partner"], content["period"]
    put("statement", content["format"])
    put("program", program["id"], program["name"])
    put("partner", partner["id"], partner["name"])
    put("period", period["month"], period["time_zone"], period["start"], period["end"])
    put(*COLUMNS)
    for section in content["currencies"]:
        cur = section["currency"]

        def money(amount: int, cur: str = cur) -> str:
            return format_money(amount, cur)

        put(cur, "", "opening", "", "", "Opening balance", "", section["opening"], money(section["opening"]))
        for r in section["rows"]:
            put(
                cur,
                r["at"],
                r["type"],
                r["reference"],
                r["entry"],
                r["description"],
                r["plan"],
                r["amount"],
                money(r["amount"]),
            )
        for name in TOTALS:
            value = section["totals"][name]
            put(cur, "", "total", name, "", TOTAL_LABELS[name], "", value, money(value))
        put(cur, "", "closing", "", "", "Closing balance", "", section["closing"], money(section["closing"]))
    put("sha256", content_hash(content))
    return buffer.getvalue().encode()


def _unescape(cell: str) -> str:
    # escape_cell prefixed a quote to text starting like a formula; take it off again.
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def _int(cell: str, what: str) -> int:
    body = cell[1:] if cell.startswith("-") else cell
    if not body.isdigit():
        raise UnreadableStatement(f"{what}: {cell!r} is not an amount in minor units")
    return int(cell)


def parse_csv(data: bytes) -> tuple[dict[str, Any], str]:
    """(content, the hash the file states); UnreadableStatement when it is not one of our statement CSVs."""
    try:
        text = data.decode("utf-8")
        records = [[_unescape(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableStatement(f"not a readable CSV ({exc})") from None
    try:
        head = records[:5]
        if head[0] != ["statement", FORMAT]:
            raise UnreadableStatement(f"line 1 must be 'statement,{FORMAT}'")
        (_, program_id, program_name), (_, partner_id, partner_name) = head[1], head[2]
        _, month, zone, start, end = head[3]
        if tuple(head[4]) != COLUMNS or head[1][0] != "program" or head[2][0] != "partner":
            raise UnreadableStatement("lines 2-5 must be program, partner, period and the column names")
        sections: list[dict[str, Any]] = []
        claimed = None
        for number, row in enumerate(records[5:], start=6):
            if row and row[0] == "sha256" and len(row) == 2:
                claimed = row[1]
                if number != len(records):
                    raise UnreadableStatement(f"line {number}: the sha256 line must be the last")
                break
            if len(row) != len(COLUMNS):
                raise UnreadableStatement(f"line {number}: {len(row)} cells, expected {len(COLUMNS)}")
            cur, at, kind, ref, entry, text_, plan, minor, _shown = row
            amount = _int(minor, f"line {number}")
            if kind == "opening":
                sections.append({"currency": cur, "opening": amount, "rows": [], "totals": {}, "closing": None})
                continue
            if not sections or sections[-1]["currency"] != cur:
                raise UnreadableStatement(f"line {number}: a {cur} row outside its currency's section")
            section = sections[-1]
            if kind == "total":
                section["totals"][ref] = amount
            elif kind == "closing":
                section["closing"] = amount
            else:
                section["rows"].append(
                    {
                        "at": at,
                        "type": kind,
                        "reference": ref,
                        "entry": entry,
                        "description": text_,
                        "plan": plan,
                        "amount": amount,
                    }
                )
    except (IndexError, ValueError) as exc:
        if isinstance(exc, UnreadableStatement):
            raise
        raise UnreadableStatement(f"the header lines are not a statement's ({exc})") from None
    if claimed is None:
        raise UnreadableStatement("the sha256 line at the end is missing")
    content = {
        "format": FORMAT,
        "program": {"id": program_id, "name": program_name},
        "partner": {"id": partner_id, "name": partner_name},
        "period": {"month": month, "time_zone": zone, "start": start, "end": end},
        "currencies": sections,
    }
    return content, claimed
