"""Payout runs and batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from partnerpay.approvals import batches as batch_approvals
from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import ValidationError
from partnerpay.payouts import rails, sending, service
from partnerpay.payouts.exporters import batch_files
from partnerpay.payouts.models import Payout
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import BatchOut, PayoutOut, PayoutRunIn, dump
from partnerpay.web.api.v1.common import Caller, now, reader
from partnerpay.web.security import factory

router = APIRouter()


def run_payload(result: service.RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run.id,
        "batch_id": result.batch.id if result.batch else None,
        "payouts": [
            {
                "id": p.id,
                "partner_id": p.partner_id,
                "amount": p.amount,
                "currency": p.currency,
                "line_count": p.line_count,
                # Issue 7 part 7: what the lines summed to when the partner is paid in another currency.
                "source_amount": p.source_amount,
                "source_currency": p.source_currency,
                "fx_rate": p.fx_rate,
            }
            for p in result.payouts
        ],
        "skipped": result.skipped,
        # One draft batch per currency sent (batch_id above is the first), and the totals per currency.
        "batches": [
            {
                "id": b.id,
                "currency": b.currency,
                "total": b.total,
                "payout_count": b.payout_count,
                "source_currency": b.source_currency,
                "source_total": b.source_total,
                "fx_rate": b.fx_rate,
            }
            for b in result.batches
        ],
        "totals": result.totals,
        "skipped_by_reason": result.skipped_by_reason,
    }


@router.post("/payout-runs", status_code=201)
def create_run(request: Request, body: PayoutRunIn, actor: Actor = Caller) -> JSONResponse:
    """Pay what is approved and past hold; a line is in at most one payout, so a re-run pays only what is new."""
    return idempotency.run(
        request,
        actor,
        body.model_dump(mode="json"),
        lambda s: (
            201,
            run_payload(
                service.create_payout_run(
                    s, actor=actor, program_id=body.program_id, as_of=body.as_of, now=now(request)
                )
            ),
        ),
    )


def batch_payload(session: Any, batch: Any) -> dict[str, Any]:
    payouts = session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.partner_id))
    return {
        **dump(BatchOut, batch),
        **batch_approvals.approval_state(batch),  # second approval (issue 7 part 1)
        "payouts": [dump(PayoutOut, p) for p in payouts],
    }


@router.get("/payout-batches/{batch_id}")
def read_batch(request: Request, batch_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return batch_payload(s, service.get_batch(s, actor, batch_id))


@router.get("/payout-batches/{batch_id}/export")
def export(
    request: Request,
    batch_id: str,
    actor: Actor = Caller,
    format: str = Query("csv", description="csv, wise, paypal_csv, sepa or nacha (docs/api-payout-files.md)"),
    schema: str = Query("pain.001.001.03", description="sepa only: pain.001.001.03 or pain.001.001.09"),
) -> Response:
    """The batch as a file, stored the first time with its SHA-256 so a re-export is byte for byte the same;
    a payout that cannot go in the file (no IBAN, wrong method...) refuses it with 422 naming every partner."""
    if format not in rails.FILE_RAILS:
        raise ValidationError(
            f"unknown export format {format!r}; available: {', '.join(rails.FILE_RAILS)}", field="format"
        )
    if schema not in rails.SEPA_SCHEMAS:
        raise ValidationError(f"schema must be one of {', '.join(rails.SEPA_SCHEMAS)}", field="schema")
    box = request.app.state.secret_box
    with unit_of_work(factory(request)) as s:
        batch = service.get_batch(s, actor, batch_id)
        rows = batch_files.load_rows(s, box, batch)
        stored = rails.stored_file(s, batch.id, format)
        # A re-export returns the stored file: the payouts it listed when it was first made.
        rows_in = rows if stored is None else [r for r in rows if r.payout_id in set(stored.payout_ids)]
        file = rails.store_file(
            s, actor=actor, box=box, batch=batch, fmt=format, rows=rows_in, now=now(request), schema=schema
        )
        return Response(
            file.content,
            media_type=file.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{file.filename}"',
                "X-Control-Sum": str(file.control_sum),
                "X-Item-Count": str(file.item_count),
                "X-Content-SHA256": file.sha256,
            },
        )


@router.post("/payout-batches/{batch_id}/send", status_code=202)
def send_batch(request: Request, batch_id: str, actor: Actor = Caller) -> JSONResponse:
    """Pay all: every payout goes out through its partner's rail, by a background job (docs/api-payout-sending.md)."""
    box = request.app.state.secret_box
    return idempotency.run(
        request,
        actor,
        {"batch": batch_id},
        lambda s: (
            202,
            batch_payload(s, sending.start_send(s, actor=actor, box=box, batch_id=batch_id, now=now(request))),
        ),
    )


@router.post("/payout-batches/{batch_id}/approve")
def approve_batch(request: Request, batch_id: str, actor: Actor = Caller) -> JSONResponse:
    """First or final approval (approvals/batches.py): above the program's batch_second_approval_above the batch
    stays draft with `awaiting_second_approval: true` until a different finance user approves it."""
    return idempotency.run(
        request,
        actor,
        {"batch": batch_id},
        lambda s: (
            200,
            batch_payload(s, batch_approvals.approve_batch(s, actor=actor, batch_id=batch_id, now=now(request))),
        ),
    )


@router.post("/payout-batches/{batch_id}/mark-paid")
def mark_paid(request: Request, batch_id: str, actor: Actor = Caller) -> JSONResponse:
    return idempotency.run(
        request,
        actor,
        {"batch": batch_id},
        lambda s: (200, batch_payload(s, service.mark_batch_paid(s, actor=actor, batch_id=batch_id, now=now(request)))),
    )
