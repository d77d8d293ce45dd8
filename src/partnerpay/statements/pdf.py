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
        self.char_widths: dict[str, float] = {}  # at the table's one font and size

    def text(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.unicode:
            # Characters DejaVu has no glyph for (CJK, for one) are spelled in Latin rather than dropped;
            # the attached statement.json keeps them as written.
            cmap = self.doc.fonts["dejavu"].cmap
            if all(ord(ch) in cmap or ch in "\n" for ch in text):
                return text
            return "".join(ch if ord(ch) in cmap or ch in "\n" else str(unidecode(ch)) for ch in text)
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


COLUMNS = ((22, "Date", ""), (24, "Type", ""), (114, "Description", ""), (30, "Amount", "R"))
LINE_H = 4.0


def _wrap(w: _Writer, text: str, width: float) -> list[str]:
    """Greedy word wrap by measured character widths (fpdf2's multi_cell re-measures every candidate line)."""
    w.doc.set_font(w.family, "", 8)  # the rows' font, which the widths below are cached for
    widths: dict[str, float] = w.char_widths

    def measure(chunk: str) -> float:
        total = 0.0
        for ch in chunk:
            if ch not in widths:
                widths[ch] = w.doc.get_string_width(ch)
            total += widths[ch]
        return total

    space = measure(" ")
    lines: list[str] = []
    for paragraph in w.text(text).split("\n"):
        line, used = "", 0.0
        for word in paragraph.split(" "):
            size = measure(word)
            if line and used + space + size <= width:
                line, used = f"{line} {word}", used + space + size
                continue
            if line:
                lines.append(line)
            line, used = "", 0.0
            while size > width:  # a word longer than the column: cut it where it fills a line
                taken, cut = 0.0, 0
                while cut < len(word) and taken + widths[word[cut]] <= width:
                    taken += widths[word[cut]]
                    cut += 1
                cut = max(cut, 1)
                lines.append(word[:cut])
                word = word[cut:]
                size = measure(word)
            line, used = word, size
        lines.append(line)
    return lines


def _row(w: _Writer, cells: tuple[str, str, list[str], str], *, bold: bool = False) -> None:
    """One table row; a new page (with the column heads again) when it does not fit on this one."""
    doc = w.doc
    height = max(1, len(cells[2])) * LINE_H
    if doc.get_y() + height + 1 > doc.page_break_trigger:
        doc.add_page()
        _heads(w)
    doc.set_font(w.family, "B" if bold else "", 8)
    x, y = doc.l_margin, doc.get_y()
    for (width, _, align), value in zip(COLUMNS, cells, strict=True):
        for n, text in enumerate(value if isinstance(value, list) else [value]):
            doc.set_xy(x, y + n * LINE_H)
            doc.cell(width, LINE_H, w.text(text), align=align)
        x += width
    doc.set_y(y + height + 0.6)
    doc.set_draw_color(200, 200, 200)
    doc.line(doc.l_margin, doc.get_y() - 0.3, doc.l_margin + 190, doc.get_y() - 0.3)


def _heads(w: _Writer) -> None:
    _row(w, (COLUMNS[0][1], COLUMNS[1][1], [COLUMNS[2][1]], COLUMNS[3][1]), bold=True)


def _section(w: _Writer, section: dict[str, Any], zone: ZoneInfo) -> None:
    doc, cur = w.doc, section["currency"]

    def money(amount: int) -> str:
        return format_money(amount, cur)

    doc.ln(4)
    w.line(f"{cur}", bold=True, size=12, h=7)
    doc.set_auto_page_break(False, margin=20)  # rows break pages themselves, each row whole, above the footer
    doc.set_font(w.family, "", 8)
    _heads(w)
    _row(w, ("", "", ["Opening balance"], money(section["opening"])), bold=True)
    for r in section["rows"]:
        text = r["description"] + (f"\nPlan: {r['plan']}" if r["plan"] else "") + f"\n{r['reference']}"
        kind = TYPE_LABELS.get(r["type"], r["type"].replace("_", " "))
        _row(w, (_day(r["at"], zone), w.text(kind), _wrap(w, text, COLUMNS[2][0] - 2), money(r["amount"])))
    doc.set_auto_page_break(True, margin=20)
    doc.ln(2)
    for name in TOTALS:
        value = section["totals"].get(name, 0)
        if value or name in ("commissions", "payouts"):
            doc.set_font(w.family, "", 9)
            doc.cell(160, 5, TOTAL_LABELS[name])
            doc.cell(30, 5, w.text(money(value)), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(w.family, "B", 10)
    doc.cell(160, 6, f"Closing balance {cur}")
    doc.cell(30, 6, w.text(money(section["closing"])), align="R", new_x="LMARGIN", new_y="NEXT")


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
