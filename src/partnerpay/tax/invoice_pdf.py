"""The self-billing invoice (or its credit note) as a PDF (fpdf2: pure Python, no system libraries).

DejaVu Sans is used when the system has it (any name or address prints as written); otherwise the PDF core
font, with text outside Latin-1 transliterated.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF  # type: ignore[import-untyped]
from text_unidecode import unidecode

from partnerpay.kit.money import to_major_string
from partnerpay.tax.models import SelfBillingCreditNote, SelfBillingInvoice

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
KIND_LABELS = {
    "commission": "Commissions",
    "true_up": "True-ups",
    "bonus": "Bonuses",
    "two_tier": "Two-tier commissions",
    "clawback": "Clawbacks (refunds, chargebacks)",
    "adjustment": "Adjustments",
}


def _money(amount: int, currency: str) -> str:
    return f"{currency} {to_major_string(amount, currency)}"


# fpdf2 ships no type information, hence the ignore above and the Any below.
class _Pdf:
    """An FPDF document with the two helpers the invoice needs (composition: fpdf2 is untyped)."""

    def __init__(self) -> None:
        self.doc: Any = FPDF(format="A4")
        self.unicode = DEJAVU.is_file() and DEJAVU_BOLD.is_file()
        if self.unicode:
            self.doc.add_font("DejaVu", "", str(DEJAVU))
            self.doc.add_font("DejaVu", "B", str(DEJAVU_BOLD))
        self.family = "DejaVu" if self.unicode else "Helvetica"

    def text_of(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.unicode:
            return text
        try:
            text.encode("latin-1")
            return text
        except UnicodeEncodeError:
            return str(unidecode(text))

    def line_of(self, text: object, *, bold: bool = False, size: int = 10, h: float = 5) -> None:
        self.doc.set_font(self.family, "B" if bold else "", size)
        self.doc.multi_cell(0, h, self.text_of(text), new_x="LMARGIN", new_y="NEXT")


def _party(pdf: _Pdf, title: str, party: dict[str, Any]) -> None:
    pdf.line_of(title, bold=True)
    pdf.line_of(party.get("name") or "")
    for line in str(party.get("address") or "").splitlines():
        pdf.line_of(line)
    if party.get("country"):
        pdf.line_of(f"Country: {party['country']}")
    pdf.line_of(f"VAT id: {party['vat_id']}" if party.get("vat_id") else "VAT id: none on file")
    pdf.doc.ln(3)


def render_invoice(invoice: SelfBillingInvoice | SelfBillingCreditNote) -> bytes:
    """The invoice, or the credit note cancelling one (its content names the invoice it credits)."""
    c = invoice.content
    credits = c.get("credits")
    title = "Self-billing credit note" if credits else "Self-billing invoice"
    pdf = _Pdf()
    doc = pdf.doc
    doc.set_title(f"{title} {invoice.number}")
    doc.add_page()
    pdf.line_of(title.upper(), bold=True, size=16, h=9)
    pdf.line_of(f"{'Credit note' if credits else 'Invoice'} number: {invoice.number}")
    pdf.line_of(f"Issue date: {invoice.issued_at:%d %B %Y}")
    if credits:
        issued = datetime.fromisoformat(credits["issued_at"])
        pdf.line_of(f"Credits invoice: {credits['number']} of {issued:%d %B %Y}")
    if c.get("paid_at"):
        pdf.line_of(f"Payment date: {datetime.fromisoformat(c['paid_at']):%d %B %Y}")
    if credits and c.get("returned_at"):
        reason = f" ({c['reason']})" if c.get("reason") else ""
        pdf.line_of(f"Payment returned: {datetime.fromisoformat(c['returned_at']):%d %B %Y}{reason}")
    pdf.line_of(f"Payout: {invoice.payout_id} ({c.get('program', '')})")
    doc.ln(4)
    _party(pdf, "Supplier (partner)", c["supplier"])
    _party(pdf, "Customer (issued by the customer on the supplier's behalf)", c["customer"])
    pdf.line_of("Services: partner commissions", bold=True)
    doc.set_font(pdf.family, "", 10)
    for line in c.get("lines", []):
        label = KIND_LABELS.get(line["kind"], line["kind"])
        doc.cell(120, 6, pdf.text_of(f"{label} ({line['count']} line{'s' if line['count'] != 1 else ''})"))
        doc.cell(0, 6, _money(line["amount"], line["currency"]), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font(pdf.family, "B", 11)
    doc.cell(120, 8, "Total credited" if credits else "Total paid")
    doc.cell(0, 8, _money(c["amount"], c["currency"]), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    for note in c.get("notes", []):
        pdf.line_of(note, size=9, h=4.5)
        doc.ln(1)
    return bytes(doc.output())
