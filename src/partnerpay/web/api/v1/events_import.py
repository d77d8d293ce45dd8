"""Events CSV import over the API: one multipart upload, all-or-nothing, every bad row named."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from partnerpay.auth.actor import Actor
from partnerpay.events.import_csv import COLUMNS, REQUIRED
from partnerpay.events.importer import import_events
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now
from partnerpay.web.api.v1.imports import read_csv_upload  # the partner import's form and size limit
from partnerpay.web.uploads import upload_body

router = APIRouter()

_UPLOAD = upload_body(
    f"UTF-8 CSV with a header row; the columns of POST /events: {', '.join(COLUMNS)} ({', '.join(REQUIRED)} "
    "required). At most 50 MB."
)
_RESULT = {
    "description": "the import (201) or, with dry_run, what it would do (200)",
    "content": {
        "application/json": {
            "example": {
                "program_id": "prg_01…",
                "filename": "events.csv",
                "rows": 3,
                "dry_run": False,
                "created": 2,
                "duplicates": 1,
                "by_type": {"invoice_paid": 1, "signup": 1},
                "amounts": {"EUR": 4900},
                "commissions": 1,
                "import_id": "imp_01…",
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
                    "message": "events.csv: nothing was imported. row 7, column amount: '12.50' is not a whole "
                    "number of minor units: write 1250 for 12.50 (no decimals, exponents, signs or thousands "
                    "separators)",
                    "field": "amount",
                    "row": 7,
                    "column": "amount",
                    "errors": [{"row": 7, "column": "amount", "message": "'12.50' is not a whole number of …"}],
                    "error_count": 1,
                    "rows": 120,
                }
            }
        }
    },
}


@router.post(
    "/events/import",
    status_code=201,
    openapi_extra=_UPLOAD,
    responses={201: _RESULT, 200: _RESULT, 413: {"description": "the file is over 50 MB"}, 422: _REJECTED},
)
async def import_events_csv(
    request: Request,
    program_id: str = Query(..., description="the program the events belong to"),
    dry_run: bool = Query(False, description="check and record every row, then roll it all back"),
    actor: Actor = Caller,
) -> JSONResponse:
    """Record events from a CSV (each through the inbox, as POST /events); any bad row rejects the file,
    listing every error by row and column. Rows already recorded are counted as duplicates, not again."""
    need(actor, "write")
    data, filename = await read_csv_upload(request)

    def work(session: Session) -> tuple[int, Any]:
        report = import_events(
            session,
            actor=actor,
            program_id=program_id,
            data=data,
            filename=filename,
            now=now(request),
            dry_run=dry_run,
        )
        return (200 if dry_run else 201), report.as_dict()

    body = {"file_sha256": hashlib.sha256(data).hexdigest(), "filename": filename}
    # Recording thousands of events takes seconds: off the event loop.
    return await run_in_threadpool(idempotency.run, request, actor, body, work)
