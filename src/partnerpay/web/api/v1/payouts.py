"""Payout runs and batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from partnerpay.approvals import batches as batch_approvals
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import ValidationError
from partnerpay.payouts import service
from partnerpay.payouts.exporters.csv_file import export_csv
from partnerpay.payouts.models import Payout
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import BatchOut, PayoutOut, PayoutRunIn, dump
from partnerpay.web.api.v1.common import Caller, now, reader

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
            }
            for p in result.payouts
        ],
        "skipped": result.skipped,
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
    format: str = Query("csv", description="csv (sepa and nacha come with the payouts issue)"),
) -> Response:
    with reader(request, actor) as s:
        batch = service.get_batch(s, actor, batch_id)
        if format != "csv":
            raise ValidationError(f"unknown export format {format!r}; available: csv", field="format")
        file = export_csv(s, batch)
        return Response(
            file.content,
            media_type=file.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{file.filename}"',
                "X-Control-Sum": str(file.control_sum),
                "X-Item-Count": str(file.count),
            },
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
