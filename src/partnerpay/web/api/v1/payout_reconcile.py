"""Reconciliation over the API: the bank returns upload and a batch's tie-out (issue 7, part 6)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from partnerpay.auth.actor import Actor
from partnerpay.payouts.returns import COLUMNS, reconcile_file
from partnerpay.payouts.service import get_batch
from partnerpay.payouts.tieout import batch_tie_out
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now, reader
from partnerpay.web.api.v1.imports import read_csv_upload  # the partner import's form and size limit
from partnerpay.web.uploads import upload_body

router = APIRouter()

_UPLOAD = upload_body(
    f"UTF-8 CSV with a header row: {', '.join(COLUMNS)}. Each row names a payout by payout_id or end_to_end_id; "
    "status is paid, returned or failed."
)


@router.post("/payout-batches/{batch_id}/reconcile", openapi_extra=_UPLOAD)
async def reconcile_batch(
    request: Request,
    batch_id: str,
    dry_run: bool = Query(False, description="check every row and report what would change, writing nothing"),
    actor: Actor = Caller,
) -> JSONResponse:
    """Record the bank's answer for a batch's payouts from a CSV; any bad row rejects the whole file (422,
    naming row and column). A file uploaded again changes nothing (each result is idempotent)."""
    need(actor, "payouts")
    data, filename = await read_csv_upload(request)

    def work(session: Session) -> tuple[int, Any]:
        report = reconcile_file(
            session, actor=actor, batch_id=batch_id, data=data, filename=filename, now=now(request), dry_run=dry_run
        )
        return 200, report.as_dict()

    body = {"batch": batch_id, "file_sha256": hashlib.sha256(data).hexdigest(), "dry_run": dry_run}
    return await run_in_threadpool(idempotency.run, request, actor, body, work)


@router.get("/payout-batches/{batch_id}/tie-out")
def tie_out(request: Request, batch_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Lines = payouts = batch total = file control sums = ledger, per currency, with each figure's expectation."""
    with reader(request, actor) as s:
        return batch_tie_out(s, get_batch(s, actor, batch_id)).as_dict()
