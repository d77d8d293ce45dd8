"""Payout runs and batches: create a run, approve a batch, mark it paid, download its file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from partnerpay.approvals import batches as batch_approvals
from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.money import format_money
from partnerpay.payouts import rails, sending, service
from partnerpay.payouts.exporters import batch_files
from partnerpay.payouts.exporters.csv_file import export_csv
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.payout_reconcile import reconciliation_context, returned_payouts
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render, role_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)

SKIP_REASONS = {
    "negative_balance_carried": "clawbacks exceed earnings; carried to the next run",
    "nets_to_zero": "clawbacks cancel earnings exactly",
    # issue 7 parts 2, 3, 7, 8 (payouts/run_skips.py)
    "below_minimum": "below the program's minimum payout; carried to the next run",
    "no_verified_payout_method": "no verified payout method",
    "tax_form_missing": "tax form (W-9 / W-8BEN) missing",
    "no_fx_rate": "no exchange rate recorded for the partner's currency",
}


def _payouts_page(request: Request, me: Actor, *, error: str | None = None, status_code: int = 200) -> Response:
    at = now(request)
    with reading(request) as session:
        context = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "payouts",
            "programs": queries.programs(session),
            "payable": queries.payable_now(session, at),
            "batches": queries.batches(session),
            **returned_payouts(session),  # failed and returned payouts (issue 7 part 6)
            "program_names": queries.program_names(session),
            "error": error,
        }
    return render(request, "console/payouts.html", context, status_code=status_code)


@router.get("/payouts")
def payouts(request: Request, me: Actor = Staff) -> Response:
    return _payouts_page(request, me)


def _skipped_text(skipped: list[dict[str, object]]) -> str:
    reasons = [SKIP_REASONS.get(str(s["reason"]), str(s["reason"]).replace("_", " ")) for s in skipped]
    return f" {len(skipped)} partner(s) skipped: " + "; ".join(sorted(set(reasons))) + "." if skipped else ""


@router.post("/payouts/runs")
def create_run(
    request: Request,
    me: Actor = Staff,
    program_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            result = service.create_payout_run(session, actor=me, program_id=program_id, now=now(request))
    except PartnerpayError as exc:
        return _payouts_page(request, me, error=exc.message, status_code=exc.status)
    skipped = _skipped_text(result.skipped)
    if result.batch is None:
        flash(request, f"Payout run {result.run.id} found nothing to pay: no approved lines past their hold.{skipped}")
        return redirect("/payouts")
    if len(result.batches) > 1:  # one batch per currency (issue 7 part 7): totals per currency
        made = "; ".join(
            f"{b.id} {b.payout_count} payout(s) {format_money(b.total, b.currency)}" for b in result.batches
        )
        flash(request, f"Payout run {result.run.id} made {len(result.batches)} draft batches: {made}.{skipped}")
        return redirect("/payouts")
    batch = result.batch
    flash(
        request,
        f"Payout run {result.run.id} made draft batch {batch.id}: {batch.payout_count} payout(s), "
        f"{format_money(batch.total, batch.currency)}.{skipped} Check the tie-out, then approve the batch.",
    )
    return redirect(f"/payouts/batches/{batch.id}")


def _batch_page(
    request: Request, me: Actor, batch_id: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    with reading(request) as session:
        batch = service.get_batch(session, me, batch_id)
        context = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "payouts",
            "batch": batch,
            "program_names": queries.program_names(session),
            "payouts": queries.batch_payouts(session, batch.id),
            "tie_out": queries.tie_out(session, batch),
            "files": [rails.file_summary(f) for f in rails.stored_files(session, batch.id)],  # issue 7 parts 4-5
            "formats": rails.FILE_RAILS,
            **reconciliation_context(session, batch),  # ledger tie-out and returns upload (issue 7 part 6)
            "approvers": batch_approvals.approver_names(session, batch),  # issue 7 part 1
            "error": error,
        }
    return render(request, "console/batch.html", context, status_code=status_code)


@router.get("/payouts/batches/{batch_id}")
def batch_page(request: Request, batch_id: str, me: Actor = Staff) -> Response:
    return _batch_page(request, me, batch_id)


@router.post("/payouts/batches/{batch_id}/approve")
def approve(
    request: Request, batch_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            batch = batch_approvals.approve_batch(session, actor=me, batch_id=batch_id, now=now(request))
            waiting = batch_approvals.awaiting_second(batch)  # above the policy's limit (issue 7 part 1)
    except PartnerpayError as exc:
        return _batch_page(request, me, batch_id, error=exc.message, status_code=exc.status)
    if waiting:
        flash(request, f"First approval of batch {batch.id} recorded: a second finance user must approve it too.")
        return redirect(f"/payouts/batches/{batch_id}")
    flash(request, f"Batch {batch.id} approved. Send the file to the bank, then mark the batch paid.")
    return redirect(f"/payouts/batches/{batch_id}")


@router.post("/payouts/batches/{batch_id}/mark-paid")
def mark_paid(
    request: Request, batch_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            batch = service.mark_batch_paid(session, actor=me, batch_id=batch_id, now=now(request))
    except PartnerpayError as exc:
        return _batch_page(request, me, batch_id, error=exc.message, status_code=exc.status)
    flash(request, f"Batch {batch.id} marked paid: {format_money(batch.total, batch.currency)}. Partners are notified.")
    return redirect(f"/payouts/batches/{batch_id}")


@router.get("/payouts/batches/{batch_id}/export.csv")
def export(request: Request, batch_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        batch = service.get_batch(session, me, batch_id)
        file = export_csv(session, batch)
    return Response(
        file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "X-Control-Sum": str(file.control_sum),
            "X-Item-Count": str(file.count),
        },
    )


# --- issue 7 parts 4-5 (C): Pay all, and the batch's files in every format ---


@router.post("/payouts/batches/{batch_id}/send")
def pay_all(
    request: Request, batch_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    """Pay all: the payouts go out through their partners' rails in the background (payouts/sending.py)."""
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            batch = sending.start_send(
                session, actor=me, box=request.app.state.secret_box, batch_id=batch_id, now=now(request)
            )
    except PartnerpayError as exc:
        return _batch_page(request, me, batch_id, error=exc.message, status_code=exc.status)
    flash(
        request,
        f"Sending batch {batch.id}: {batch.payout_count} payout(s), {format_money(batch.total, batch.currency)}. "
        "Each payout's status updates here as its provider answers.",
    )
    return redirect(f"/payouts/batches/{batch_id}")


@router.get("/payouts/batches/{batch_id}/files/{fmt}")
def download_file(request: Request, batch_id: str, fmt: str, me: Actor = Staff) -> Response:
    """The batch's file in one format: the stored one, or made (and stored) now for the whole batch."""
    box = request.app.state.secret_box
    try:
        with unit_of_work(factory(request)) as session:
            batch = service.get_batch(session, me, batch_id)
            stored = rails.stored_file(session, batch.id, fmt)
            rows = batch_files.load_rows(session, box, batch, stored.payout_ids if stored is not None else None)
            file = rails.store_file(session, actor=me, box=box, batch=batch, fmt=fmt, rows=rows, now=now(request))
            content, media_type, filename, sha = file.content, file.media_type, file.filename, file.sha256
    except PartnerpayError as exc:
        return _batch_page(request, me, batch_id, error=exc.message, status_code=exc.status)
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-SHA256": sha},
    )
