"""Tax reports over the API (issue 7, part 8): settings, the 1099-NEC report and its sealed export, invoices
and their credit notes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import ValidationError
from partnerpay.programs.service import get_program
from partnerpay.tax import nec
from partnerpay.tax.credit_notes import get_or_issue_credit_note
from partnerpay.tax.invoice_pdf import render_invoice
from partnerpay.tax.invoices import get_or_issue
from partnerpay.tax.sealed_file import seal
from partnerpay.tax.service import set_settings, settings_of
from partnerpay.web.api.v1.common import Caller, need, now, reader
from partnerpay.web.security import factory

router = APIRouter()


class TaxSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nec_threshold: StrictInt | None = Field(None, description="1099-NEC threshold in USD cents (default 60000)")
    self_billing: StrictBool | None = Field(None, description="issue self-billing invoices to EU partners")
    invoice_prefix: StrictStr | None = Field(None, description="invoice numbers are PREFIX-000001, …")
    issuer_name: StrictStr | None = None
    issuer_address: StrictStr | None = None
    issuer_country: StrictStr | None = Field(None, description="ISO country of the program's company, e.g. DE")
    issuer_vat_id: StrictStr | None = None


class NecExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year: StrictInt
    passphrase: StrictStr = Field(..., description="at least 12 characters; needed to open the file, never stored")


@router.get("/programs/{program_id}/tax-settings")
def read_tax_settings(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        program = get_program(s, actor, program_id)
        return settings_of(s, program.id).as_dict()


@router.put("/programs/{program_id}/tax-settings")
def put_tax_settings(request: Request, program_id: str, body: TaxSettingsIn, actor: Actor = Caller) -> dict[str, Any]:
    """Change the fields given (finance or owner); the others keep their value. Audited."""
    data = body.model_dump(exclude_unset=True)
    with unit_of_work(factory(request)) as s:
        return set_settings(s, actor=actor, program_id=program_id, data=data, now=now(request)).as_dict()


@router.get("/programs/{program_id}/tax/1099-nec", response_model=None)
def read_nec(
    request: Request,
    program_id: str,
    year: int = Query(..., description="calendar year of the payments (paid date, UTC)"),
    format: str = Query("json", description="json, or csv (TIN masked, cells formula-escaped)"),
    actor: Actor = Caller,
) -> dict[str, object] | Response:
    """US partners (W-9) paid at least the program's threshold in USD in the year; TIN masked."""
    if format not in ("json", "csv"):
        raise ValidationError(f"format must be json or csv, not {format!r}", field="format")
    with reader(request, actor) as s:
        report = nec.nec_report(s, actor=actor, program_id=program_id, year=year, now=now(request))
    if format == "json":
        return report.as_dict()
    return Response(
        report.masked_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="1099-nec-{year}-masked.csv"'},
    )


@router.post("/programs/{program_id}/tax/1099-nec/export")
def export_nec(request: Request, program_id: str, body: NecExportIn, actor: Actor = Caller) -> Response:
    """The full report (TIN and address in clear) as a passphrase-encrypted file, for finance or owner; audited.
    Open it with `partnerpay tax decrypt FILE` (docs/api-payouts-reconcile-tax.md shows a Python snippet too)."""
    need(actor, "payouts")
    filename = f"1099-nec-{body.year}.csv"
    with unit_of_work(factory(request)) as s:
        at = now(request)
        report = nec.nec_report(s, actor=actor, program_id=program_id, year=body.year, now=at)
        content = nec.full_csv(s, actor=actor, box=request.app.state.secret_box, report=report, now=at)
        sealed = seal(content.encode(), filename=filename, passphrase=body.passphrase)
    return Response(
        sealed,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}.sealed.json"', "Cache-Control": "no-store"},
    )


@router.get("/payouts/{payout_id}/invoice.pdf")
def invoice_pdf(request: Request, payout_id: str, actor: Actor = Caller) -> Response:
    """The payout's self-billing invoice, numbered on first request (same number and content afterwards)."""
    need(actor, "read")
    return invoice_response(request, actor, payout_id)


def invoice_response(request: Request, actor: Actor, payout_id: str) -> Response:
    """Shared with the portal's download: issue (or read) the invoice in one transaction, then render it."""
    with unit_of_work(factory(request)) as s:
        invoice = get_or_issue(s, actor=actor, box=request.app.state.secret_box, payout_id=payout_id, now=now(request))
        return _pdf(render_invoice(invoice), invoice.number)


@router.get("/payouts/{payout_id}/credit-note.pdf")
def credit_note_pdf(request: Request, payout_id: str, actor: Actor = Caller) -> Response:
    """The credit note cancelling a returned payout's self-billing invoice, numbered on first request in the
    invoices' sequence (404 when the payout has no invoice or was not returned)."""
    need(actor, "read")
    return credit_note_response(request, actor, payout_id)


def credit_note_response(request: Request, actor: Actor, payout_id: str) -> Response:
    """Shared with the portal's download, as invoice_response."""
    with unit_of_work(factory(request)) as s:
        note = get_or_issue_credit_note(s, actor=actor, payout_id=payout_id, now=now(request))
        return _pdf(render_invoice(note), note.number)


def _pdf(pdf: bytes, number: str) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"', "X-Invoice-Number": number},
    )
