"""Console: the bank returns upload of a batch (check, then record), and what the batch page shows of it."""

from __future__ import annotations

import base64
import binascii
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.csv_import import ImportRejected
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutStatus
from partnerpay.payouts.returns import ReturnsReport, reconcile_file
from partnerpay.payouts.service import get_batch
from partnerpay.payouts.tieout import batch_tie_out
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render, role_of
from partnerpay.web.security import factory
from partnerpay.web.uploads import read_file

router = APIRouter(route_class=PageRoute)

MAX_RETURNS_BYTES = 5 * 1024 * 1024  # a bank's return file for one batch is small
CARRY_BYTES = 512 * 1024  # a checked file up to this size rides along in the "Record" form


def reconciliation_context(session: Session, batch: PayoutBatch) -> dict[str, Any]:
    """What console/_batch_reconcile.html needs: the tie-out and the failed or returned payouts."""
    returned = list(
        session.scalars(
            select(Payout)
            .where(
                Payout.batch_id == batch.id,
                Payout.status.in_([PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value]),
            )
            .order_by(Payout.id)
        )
    )
    return {"reconciliation": batch_tie_out(session, batch), "returned_payouts": returned}


async def _file(form: FormData) -> tuple[bytes, str]:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        limit_mb = MAX_RETURNS_BYTES // (1024 * 1024)
        data = await read_file(
            upload, MAX_RETURNS_BYTES, lambda: ValidationError(f"the file is larger than {limit_mb} MB", field="file")
        )
        return data, PurePath(upload.filename).name[:200]
    carried = form.get("carried")
    if isinstance(carried, str) and carried:
        try:
            data = base64.b64decode(carried, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("the checked file did not come back intact; choose it again", field="file") from exc
        return data, PurePath(str(form.get("filename") or "returns.csv")).name[:200]
    raise ValidationError("choose the bank's returns file (CSV) first", field="file")


def _page(
    request: Request,
    me: Actor,
    batch_id: str,
    *,
    report: ReturnsReport | None = None,
    carry: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with reading(request) as session:
        batch = get_batch(session, me, batch_id)
        context = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "payouts",
            "batch": batch,
            "report": report,
            "carry": carry,
            "error": error,
        }
    return render(request, "console/batch_reconcile.html", context, status_code=status_code)


@router.post("/payouts/batches/{batch_id}/reconcile")
async def reconcile(request: Request, batch_id: str, me: Actor = Staff) -> Response:
    form = await request.form(max_files=1, max_fields=10, max_part_size=CARRY_BYTES * 2)
    record = str(form.get("action") or "") == "record"
    try:
        check_form_csrf(request, str(form.get("csrf_token") or "") or None)
        try:
            data, filename = await _file(form)
        finally:
            await form.close()
        at = now(request)

        def work() -> ReturnsReport:
            with unit_of_work(factory(request)) as session:
                return reconcile_file(
                    session, actor=me, batch_id=batch_id, data=data, filename=filename, now=at, dry_run=not record
                )

        report = await run_in_threadpool(work)
    except ImportRejected as exc:
        rejected = exc.report
        assert isinstance(rejected, ReturnsReport)
        return _page(request, me, batch_id, report=rejected, status_code=422)
    except PartnerpayError as exc:
        return _page(request, me, batch_id, error=exc.message, status_code=exc.status)
    if not record:
        carry = base64.b64encode(data).decode() if len(data) <= CARRY_BYTES else None
        return _page(request, me, batch_id, report=report, carry=carry)
    settled = " Every payout of the batch now has the bank's answer." if report.settled else ""
    flash(
        request,
        f"Recorded {filename}: {report.paid} paid, {report.failed} failed, {report.returned} returned, "
        f"{report.unchanged} already recorded.{settled} Partners are told by email.",
    )
    return redirect(f"/payouts/batches/{batch_id}#reconciliation")


def returned_payouts(session: Session, *, limit: int = 50) -> dict[str, Any]:
    """For the Payouts page: the latest failed and returned payouts, with partner names and reasons."""
    rows = session.execute(
        select(Payout, Partner.name)
        .join(Partner, Partner.id == Payout.partner_id)
        .where(Payout.status.in_([PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value]))
        .order_by(Payout.id.desc())
        .limit(limit)
    ).all()
    return {"returned_items": [(p, name) for p, name in rows]}
