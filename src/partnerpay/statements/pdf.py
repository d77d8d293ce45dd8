"""The statement as a PDF (fpdf2, as tax/invoice_pdf.py): the same figures for people, the content for machines.

- every page's footer prints the statement's SHA-256;
- the canonical content is attached as `statement.json` (uncompressed, byte for byte what is hashed), so
  `pdfdetach -save 1 FILE` and `sha256sum statement.json` check it without partnerpay;
- the document's dates are the period's end and nothing else varies: the same content gives the same bytes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF  # type: ignore[import-untyped]
from fpdf.fonts import FontFace  # type: ignore[import-untyped]
from text_unidecode import unidecode

from partnerpay.kit.money import format_money
from partnerpay.statements.canonical import TOTAL_LABELS, TOTALS, TYPE_LABELS, canonical_bytes, content_hash
from partnerpay.statements.csv_file import UnreadableStatement

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
ATTACHMENT = "statement.json"
# The attached file's stream as fpdf2 writes it: its length, its dates, then the raw bytes.
_EMBEDDED = re.compile(rb"<<\s*/Length (\d+)\s*/Params <<[^>]*>>\s*/Type /EmbeddedFile\s*>>\s*stream\r?\n")
_SUBJECT = re.compile(rb"/Subject \(Statement SHA-256 ([0-9a-f]{64})\)")


class _Document(FPDF):  # type: ignore[misc]  # fpdf2 is untyped
    """An A4 page whose footer carries the hash (fpdf2 calls footer() for every page)."""

    def __init__(self, sha256: str, family: str) -> None:
        super().__init__(format="A4")
        self.sha256 = sha256
        self.family = family

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.family, "", 7)
        self.cell(0, 4, f"Statement SHA-256 {self.sha256}", new_x="LMARGIN", new_y="NEXT")
        self.cell(
            0,
            4,
            f"Check it: partnerpay statements verify FILE, or the statement check page.  "
            f"Page {self.page_no()} of {{nb}}",
        )


class _Writer:
    def __init__(self, sha256: str) -> None:
        self.unicode = DEJAVU.is_file() and DEJAVU_BOLD.is_file()
        family = "DejaVu" if self.unicode else "Helvetica"
        self.doc = _Document(sha256, family)
        if self.unicode:
            self.doc.add_font("DejaVu", "", str(DEJAVU))
            self.doc.add_font("DejaVu", "B", str(DEJAVU_BOLD))
        self.family = family

    def text(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.unicode:
            return text
        try:
            text.encode("latin-1")
            return text
        except UnicodeEncodeError:
            return str(unidecode(text))

    def line(self, text: object, *, bold: bool = False, size: int = 10, h: float = 5) -> None:
        self.doc.set_font(self.family, "B" if bold else "", size)
        self.doc.multi_cell(0, h, self.text(text), new_x="LMARGIN", new_y="NEXT")


def _day(at: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(at).astimezone(zone).strftime("%d %b %Y")


def render_pdf(content: dict[str, Any]) -> bytes:
    sha256 = content_hash(content)
    period, partner, program = content["period"], content["partner"], content["program"]
    zone = ZoneInfo(period["time_zone"])
    start = datetime.fromisoformat(period["start"]).astimezone(zone)
    end = datetime.fromisoformat(period["end"])
    last_day = (end.astimezone(zone) - timedelta(days=1)).strftime("%d %b %Y")
    w = _Writer(sha256)
    doc = w.doc
    doc.set_creation_date(end)  # the period's end, never "now": regenerating gives the same bytes
    doc.set_title(w.text(f"Statement {period['month']} - {partner['name']}"))
    doc.set_subject(f"Statement SHA-256 {sha256}")
    doc.set_keywords(f"partnerpay statement sha256:{sha256}")
    doc.set_author(w.text(program["name"]))
    doc.set_creator("partnerpay")
    doc.set_producer("partnerpay")
    doc.set_auto_page_break(True, margin=20)
    doc.add_page()
    w.line("STATEMENT", bold=True, size=16, h=9)
    w.line(partner["name"], bold=True, size=13, h=7)
    w.line(f"Partner {partner['id']} of {program['name']}")
    w.line(f"Period: {start:%B %Y}, {start:%d %b %Y} to {last_day} ({period['time_zone']})")
    w.line(
        "What the program owes you, from its ledger: every line counts from the day it was recorded (lines "
        "awaiting approval included), payouts take it out, and failed or returned payouts put it back.",
        size=8,
        h=4,
    )
    for section in content["currencies"]:
        _section(w, section, zone)
    doc.embed_file(
        bytes=canonical_bytes(content),
        basename=ATTACHMENT,
        modification_date=end,
        creation_date=end,
        desc="canonical statement content; its SHA-256 is the statement hash",
        compress=False,
    )
    return bytes(doc.output())


def _section(w: _Writer, section: dict[str, Any], zone: ZoneInfo) -> None:
    doc, cur = w.doc, section["currency"]

    def money(amount: int) -> str:
        return format_money(amount, cur)

    doc.ln(4)
    w.line(f"{cur}", bold=True, size=12, h=7)
    doc.set_font(w.family, "", 8)
    bold = FontFace(emphasis="BOLD")
    with doc.table(
        col_widths=(22, 24, 114, 30),
        text_align=("LEFT", "LEFT", "LEFT", "RIGHT"),
        line_height=4,
        borders_layout="HORIZONTAL_LINES",
        first_row_as_headings=True,
    ) as table:
        head = table.row()
        for cell in ("Date", "Type", "Description", "Amount"):
            head.cell(cell)
        row = table.row(style=bold)
        for cell in ("", "", "Opening balance", money(section["opening"])):
            row.cell(cell)
        for r in section["rows"]:
            row = table.row()
            text = r["description"] + (f"\nPlan: {r['plan']}" if r["plan"] else "") + f"\n{r['reference']}"
            row.cell(_day(r["at"], zone))
            row.cell(TYPE_LABELS.get(r["type"], r["type"].replace("_", " ")))
            row.cell(w.text(text))
            row.cell(money(r["amount"]))
    doc.ln(2)
    for name in TOTALS:
        value = section["totals"].get(name, 0)
        if value or name in ("commissions", "payouts"):
            doc.set_font(w.family, "", 9)
            doc.cell(160, 5, TOTAL_LABELS[name])
            doc.cell(30, 5, money(value), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(w.family, "B", 10)
    doc.cell(160, 6, f"Closing balance {cur}")
    doc.cell(30, 6, money(section["closing"]), align="R", new_x="LMARGIN", new_y="NEXT")


def read_pdf(data: bytes) -> tuple[dict[str, Any], str]:
    """(content, the hash the file states) from one of our statement PDFs; UnreadableStatement otherwise."""
    found = _EMBEDDED.search(data)
    if found is None:
        raise UnreadableStatement(f"the PDF has no attached {ATTACHMENT}: not a partnerpay statement, or damaged")
    length, begin = int(found.group(1)), found.end()
    raw = data[begin : begin + length]
    if len(raw) != length or not data[begin + length :].lstrip(b"\r\n").startswith(b"endstream"):
        raise UnreadableStatement(f"the attached {ATTACHMENT} is cut or its length was altered")
    subject = _SUBJECT.search(data)
    if subject is None:
        raise UnreadableStatement("the PDF does not state its statement SHA-256 (document subject)")
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableStatement(f"the attached {ATTACHMENT} is not readable JSON ({exc})") from None
    if not isinstance(content, dict):
        raise UnreadableStatement(f"the attached {ATTACHMENT} is not a statement")
    return content, subject.group(1).decode()
