"""Statements over the API (issue 8 part 1): the list, the PDF and CSV of a month, and verifying a file.

GET /partners/{id}/statements/{YYYY-MM}.pdf|.csv builds the statement from the ledger, records it as issued
(once per content, audited) and returns the file with its hash in `X-Statement-SHA256`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import Forbidden, NotFound, PartnerpayError
from partnerpay.partners.models import Partner
from partnerpay.statements.csv_file import render_csv
from partnerpay.statements.pdf import render_pdf
from partnerpay.statements.service import issue, issued_statements, partner_statement, statement_months
from partnerpay.statements.verify import Verification, verify_file
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, now, reader
from partnerpay.web.security import factory
from partnerpay.web.uploads import UploadRule, check_declared_length, read_form_file, upload_body

router = APIRouter()
MAX_FILE_BYTES = 5 * 1024 * 1024  # a month of statement rows is far smaller; anything bigger is not ours
MEDIA = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}
_UPLOAD = upload_body("PDF or CSV")


def _file_responses(media: str) -> dict[int | str, dict[str, Any]]:
    header = {
        "X-Statement-SHA256": {
            "description": "SHA-256 of the statement's canonical content",
            "schema": {"type": "string"},
        }
    }
    return {
        200: {"content": {media: {}}, "headers": header},
        404: {"description": "no such partner for this caller"},
        409: {"description": "statement_does_not_tie: the ledger does not add up; nothing issued"},
        422: {"description": "period is not YYYY-MM or has not started"},
    }


class StatementFileTooLarge(PartnerpayError):
    code = "payload_too_large"
    status = 413


def statement_file(request: Request, actor: Actor, partner_id: str, period: str, fmt: str) -> Response:
    """Build, issue and render one statement; shared by the API, the portal and the console."""
    if not actor.can("read"):
        raise Forbidden("reading statements needs the 'read' scope")
    with unit_of_work(factory(request)) as s:
        at = now(request)
        statement = partner_statement(s, actor=actor, partner_id=partner_id, period=period, now=at)
        data = render_pdf(statement.content) if fmt == "pdf" else render_csv(statement.content)
        issue(s, actor=actor, statement=statement, now=at, **{fmt: data})
    return Response(
        data,
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="statement-{statement.partner_id}-{statement.period}.{fmt}"',
            "X-Statement-SHA256": statement.sha256,
            "Cache-Control": "no-store",
        },
    )


def months_page(
    session: Session, actor: Actor, partner_id: str, at: datetime, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Statement months newest first with what was issued for each; the cursor is the last month shown."""
    months = statement_months(session, actor=actor, partner_id=partner_id, now=at)
    if cursor:
        months = [m for m in months if m < cursor]
    shown, more = months[:limit], len(months) > limit
    issued: dict[str, list[dict[str, Any]]] = {}
    for row in issued_statements(session, actor=actor, partner_id=partner_id, limit=1000):
        issued.setdefault(row.period, []).append(
            {"sha256": row.sha256, "currencies": row.currencies.split(","), "issued_at": row.issued_at.isoformat()}
        )
    base = f"/api/v1/partners/{partner_id}/statements"
    data = [
        {"period": m, "pdf_url": f"{base}/{m}.pdf", "csv_url": f"{base}/{m}.csv", "issued": issued.get(m, [])}
        for m in shown
    ]
    return data, (shown[-1] if more and shown else None)


@router.get("/partners/{partner_id}/statements")
def list_statements(
    request: Request, partner_id: str, limit: int = Limit, cursor: str | None = CursorParam, actor: Actor = Caller
) -> dict[str, Any]:
    """Months from the partner's first ledger entry to now (program time zone), newest first, with the
    statements issued for each (hash, currencies, when)."""
    with reader(request, actor) as s:
        data, next_cursor = months_page(s, actor, partner_id, now(request), cursor=cursor, limit=limit)
    return {"data": data, "next_cursor": next_cursor}


@router.get(
    "/partners/{partner_id}/statements/{period}.pdf",
    response_class=Response,
    responses=_file_responses("application/pdf"),
)
def statement_pdf(request: Request, partner_id: str, period: str, actor: Actor = Caller) -> Response:
    """The month's statement as PDF: hash on every page, canonical content attached as statement.json."""
    return statement_file(request, actor, partner_id, period, "pdf")


@router.get(
    "/partners/{partner_id}/statements/{period}.csv", response_class=Response, responses=_file_responses("text/csv")
)
def statement_csv(request: Request, partner_id: str, period: str, actor: Actor = Caller) -> Response:
    """The month's statement as CSV: header lines, one row per ledger entry, totals, and a `sha256,…` trailer."""
    return statement_file(request, actor, partner_id, period, "csv")


def _too_large(declared: int | None) -> StatementFileTooLarge:
    if declared is not None:
        return StatementFileTooLarge(f"the upload has {declared:,} bytes; at most {MAX_FILE_BYTES:,}", field="file")
    return StatementFileTooLarge(f"the file is larger than {MAX_FILE_BYTES:,} bytes", field="file")


STATEMENT_UPLOAD = UploadRule(
    limit=MAX_FILE_BYTES,
    too_large=_too_large,
    what="the statement",
    missing="file is required: the statement PDF or CSV in a field named file",
)


def check_upload_length(request: Request) -> None:
    """A body declared larger than the limit is refused before anything of it is read."""
    check_declared_length(request, STATEMENT_UPLOAD)


async def read_statement_upload(request: Request) -> bytes:
    """The uploaded file (multipart field `file`), refused past the size limit before it is read whole."""
    return (await read_form_file(request, STATEMENT_UPLOAD)).data


def verification_out(result: Verification) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "message": result.headline(),
        "format": result.kind,
        "sha256": result.stated_sha256,
        "partner_id": result.partner_id,
        "period": result.period,
        "as_of": result.as_of.isoformat(),
        "issued_at": result.issued_at.isoformat() if result.issued_at else None,
        "differences": result.problems,
    }


@router.post(
    "/statements/verify",
    openapi_extra=_UPLOAD,
    responses={413: {"description": "file over 5 MB"}, 422: {"description": "not a statement PDF or CSV"}},
)
async def verify_statement(request: Request, actor: Actor = Caller) -> dict[str, Any]:
    """Recompute an uploaded statement from the ledger: `ok`, or every figure and row that differs."""
    if not actor.can("read"):
        raise Forbidden("verifying statements needs the 'read' scope")
    data = await read_statement_upload(request)
    with reader(request, actor) as s:
        result = verify_file(s, data, now=now(request))
        if result.partner_id is not None:
            partner = s.get(Partner, result.partner_id)
            if partner is not None and not actor.sees(partner.program_id, partner.id):
                raise NotFound(f"partner {result.partner_id} not found", field="file")
    return verification_out(result)
