"""Partner CSV import over the API: one multipart upload, all-or-nothing, every bad row named."""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from partnerpay.auth.actor import Actor
from partnerpay.partners.import_csv import COLUMNS, MAX_BYTES, PayloadTooLarge
from partnerpay.partners.importer import import_partners
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now
from partnerpay.web.uploads import UploadRule, read_form_file, upload_body

router = APIRouter()

_UPLOAD = upload_body(
    f"UTF-8 CSV with a header row; columns {', '.join(COLUMNS)} (name and email required). At most 50 MB."
)
_RESULT = {
    "description": "the import (201) or, with dry_run, what it would do (200)",
    "content": {
        "application/json": {
            "example": {
                "program_id": "prg_01…",
                "filename": "partners.csv",
                "rows": 2,
                "dry_run": False,
                "created": 2,
                "import_id": "imp_01…",
                "groups": {"Pilot Q1": 1},
                "with_owner": 2,
                "with_payout_email": 1,
                "errors": [],
                "error_count": 0,
            }
        }
    },
}
_REJECTED = {
    "description": "any bad row rejects the whole file; nothing is written",
    "content": {
        "application/json": {
            "example": {
                "error": {
                    "code": "validation_error",
                    "message": "partners.csv: nothing was imported. row 40000, column email: 'ann@' is not a valid "
                    "email address",
                    "field": "email",
                    "row": 40000,
                    "column": "email",
                    "errors": [{"row": 40000, "column": "email", "message": "'ann@' is not a valid email address"}],
                    "error_count": 1,
                    "rows": 50000,
                }
            }
        }
    },
}


async def read_csv_upload(request: Request) -> tuple[bytes, str]:
    """The uploaded CSV's bytes and name (partner and event imports, bank returns); 413 past MAX_BYTES."""
    limit = MAX_BYTES  # read per request, not at import time, so the module's limit is the one applied

    def too_large(declared: int | None) -> PayloadTooLarge:
        if declared is not None:
            return PayloadTooLarge(f"the upload has {declared:,} bytes; at most {limit:,} per import", field="file")
        return PayloadTooLarge(f"the file is larger than {limit:,} bytes, the limit per import", field="file")

    rule = UploadRule(
        limit=limit,
        too_large=too_large,
        what="the CSV",
        missing="file is required: the CSV in a multipart/form-data field named file",
        max_fields=10,
    )
    upload = await read_form_file(request, rule)
    return upload.data, PurePath(upload.filename or "upload.csv").name[:200]


@router.post(
    "/partners/import",
    status_code=201,
    openapi_extra=_UPLOAD,
    responses={201: _RESULT, 200: _RESULT, 413: {"description": "the file is over 50 MB"}, 422: _REJECTED},
)
async def import_partners_csv(
    request: Request,
    program_id: str = Query(..., description="the program the partners join"),
    dry_run: bool = Query(False, description="check every row and report, writing nothing"),
    actor: Actor = Caller,
) -> JSONResponse:
    """Create active partners from a CSV; any bad row rejects the file, listing every error by row and column."""
    need(actor, "write")
    data, filename = await read_csv_upload(request)
    box = request.app.state.secret_box

    def work(session: Session) -> tuple[int, Any]:
        report = import_partners(
            session,
            actor=actor,
            program_id=program_id,
            data=data,
            filename=filename,
            now=now(request),
            box=box,
            dry_run=dry_run,
        )
        return (200 if dry_run else 201), report.as_dict()

    body = {"file_sha256": hashlib.sha256(data).hexdigest(), "filename": filename}
    # The check and the write take seconds for a big file: off the event loop.
    return await run_in_threadpool(idempotency.run, request, actor, body, work)
