"""Console partner import: upload a CSV, check it (dry run) and see every bad row, then import it all at once."""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.csvsafe import write_csv
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners.import_csv import COLUMNS, MAX_BYTES, ImportRejected, ImportReport, PayloadTooLarge
from partnerpay.partners.importer import import_partners
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory
from partnerpay.web.uploads import read_file

router = APIRouter(route_class=PageRoute)
# A checked file up to this size rides along in the confirmation form, so "Import" needs no second upload.
CARRY_BYTES = 512 * 1024
FORM_SLACK = 64 * 1024
COLUMN_HELP = {
    "name": "required: the partner's or company's name",
    "email": "required: unique in the program (any case)",
    "group": "the name of an existing group or pilot of the program",
    "country": "ISO 3166 two-letter code, e.g. DE, US",
    "company": "company name",
    "website": "web address; https:// is added when missing",
    "payout_email": "PayPal email for payouts (stored encrypted)",
    "referral_code": "3 to 64 letters, digits, - or _; generated when empty",
    "owner_email": "email of the staff user who owns the partner; you, when empty",
}
EXAMPLE = [
    ["Acme Media", "hello@acme.example", "", "DE", "Acme Media GmbH", "https://acme.example", "pay@acme.example",
     "", ""],
    ["Beta Blog", "beta@blog.example", "", "US", "", "blog.example", "", "beta-blog", ""],
]  # fmt: skip


def _page(
    request: Request,
    me: Actor,
    *,
    form: dict[str, str] | None = None,
    report: ImportReport | None = None,
    error: str | None = None,
    carry: str | None = None,
    status_code: int = 200,
) -> Response:
    with reading(request) as session:
        programs = queries.programs(session)
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "partners",
        "programs": programs,
        "program_names": {p.id: p.name for p in programs},
        "can_import": me.can("write"),
        "columns": COLUMN_HELP,
        "max_mb": MAX_BYTES // (1024 * 1024),
        "form": form or {},
        "report": report,
        "error": error,
        "carry": carry,
    }
    return render(request, "console/import.html", context, status_code=status_code)


@router.get("/partners/import")
def import_page(request: Request, me: Actor = Staff) -> Response:
    return _page(request, me)


@router.get("/partners/import/template.csv")
def template(me: Actor = Staff) -> Response:
    """An empty file with the header and two example rows to fill in."""
    headers = {"Content-Disposition": 'attachment; filename="partners-import-template.csv"'}
    # The BOM makes Excel open the file as UTF-8; the import accepts it.
    body = "\ufeff" + write_csv(list(COLUMNS), EXAMPLE)
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


async def _file(form: FormData) -> tuple[bytes, str]:
    """The uploaded file, or the checked file carried by the confirmation form."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        limit_mb = MAX_BYTES // (1024 * 1024)
        data = await read_file(
            upload,
            MAX_BYTES,
            lambda: PayloadTooLarge(f"the file is larger than {limit_mb} MB, the limit", field="file"),
        )
        return data, PurePath(upload.filename).name[:200]
    carried = str(form.get("carried") or "")
    if carried:
        try:
            data = base64.b64decode(carried, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("the checked file did not come back intact; choose it again", field="file") from None
        if hashlib.sha256(data).hexdigest() != form.get("sha256"):
            raise ValidationError("the checked file did not come back intact; choose it again", field="file")
        return data, PurePath(str(form.get("filename") or "upload.csv")).name[:200]
    raise ValidationError("choose a CSV file first", field="file")


@router.post("/partners/import")
async def upload(request: Request, me: Actor = Staff) -> Response:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES + CARRY_BYTES * 2 + FORM_SLACK:
        return _page(request, me, error=f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.", status_code=413)
    form = await request.form(max_files=1, max_fields=20, max_part_size=CARRY_BYTES * 2)
    fields = {k: str(form.get(k) or "") for k in ("program_id", "action")}
    dry_run = fields["action"] != "import"
    try:
        check_form_csrf(request, str(form.get("csrf_token") or "") or None)
        try:
            data, filename = await _file(form)
        finally:
            await form.close()
        at, box = now(request), request.app.state.secret_box

        def work() -> ImportReport:
            with unit_of_work(factory(request)) as session:
                return import_partners(
                    session,
                    actor=me,
                    program_id=fields["program_id"],
                    data=data,
                    filename=filename,
                    now=at,
                    box=box,
                    dry_run=dry_run,
                )

        report = await run_in_threadpool(work)
    except ImportRejected as exc:
        return _page(request, me, form=fields, report=exc.report, status_code=422)
    except PartnerpayError as exc:
        return _page(request, me, form=fields, error=exc.message, status_code=exc.status)
    if dry_run:
        carry = base64.b64encode(data).decode() if len(data) <= CARRY_BYTES else None
        form_out = fields | {"filename": filename, "sha256": hashlib.sha256(data).hexdigest()}
        return _page(request, me, form=form_out, report=report, carry=carry)
    flash(
        request,
        f"Imported {report.created:,} partners from {filename} (import {report.import_id}); "
        "each has a referral code and a line on its timeline.",
    )
    return redirect("/partners")
