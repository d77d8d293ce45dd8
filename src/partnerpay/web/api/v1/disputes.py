"""Disputes over the API (docs/api-disputes.md).

Staff sessions and API keys see every dispute of their programs; a logged-in partner (portal session, writes
with X-CSRF-Token) uses the same endpoints for its own disputes only: another partner's is 404.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from partnerpay.auth.actor import Actor
from partnerpay.disputes import queries, service
from partnerpay.disputes.access import get_dispute
from partnerpay.disputes.evidence import add_evidence
from partnerpay.disputes.schemas import DisputeIn, EvidenceOut, ResolveIn, SlaIn, dispute_out
from partnerpay.messaging.attachments import AttachmentStore, too_large
from partnerpay.programs.service import get_program
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import CursorParam, Limit, now, reader
from partnerpay.web.api.v1.deals import Caller
from partnerpay.web.uploads import UploadRule, read_form_file, upload_body

router = APIRouter(tags=["disputes"])


def store_of(request: Request) -> AttachmentStore:
    return AttachmentStore.from_settings(request.app.state.settings)


@router.post("/disputes", status_code=201)
def open_dispute(request: Request, body: DisputeIn, actor: Actor = Caller) -> JSONResponse:
    """A partner disputes its line (`wrong_amount` with the `amount` it expected) or claims a missing commission
    (`customer_ref`, `event_date`, optional `amount`); staff and keys open either for `partner_id`."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        dispute = service.open_dispute(s, actor=actor, now=now(request), **data)
        return 201, dispute_out(dispute, now=now(request), evidence=[])

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/disputes")
def list_disputes(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = Query(None, description="open, in_review, resolved_adjusted, rejected or withdrawn"),
    overdue: bool | None = Query(None, description="true: still waiting after the due date"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    at = now(request)
    with reader(request, actor) as s:
        page = queries.list_disputes(s, actor, now=at, program_id=program_id, partner_id=partner_id, status=status,
                                     overdue=overdue, cursor=cursor, limit=limit)  # fmt: skip
        return {"data": [dispute_out(d, now=at) for d in page.data], "next_cursor": page.next_cursor}


@router.get("/disputes/{dispute_id}")
def show_dispute(request: Request, dispute_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        dispute = get_dispute(s, actor, dispute_id)
        return dispute_out(dispute, now=now(request), evidence=queries.evidence(s, dispute.id))


@router.post("/disputes/{dispute_id}/review")
def review(request: Request, dispute_id: str, actor: Actor = Caller) -> JSONResponse:
    """A team member takes the dispute: `in_review`, owned by the caller."""

    def work(s: Session) -> tuple[int, Any]:
        return 200, dispute_out(service.start_review(s, actor=actor, dispute_id=dispute_id, now=now(request)),
                                now=now(request))  # fmt: skip

    return idempotency.run(request, actor, {}, work)


@router.post("/disputes/{dispute_id}/resolve")
def resolve(request: Request, dispute_id: str, body: ResolveIn, actor: Actor = Caller) -> JSONResponse:
    """`adjust`: a pending adjustment line linked to the dispute (approved like any line); `reject` with a reason."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        dispute = service.resolve(s, actor=actor, dispute_id=dispute_id, now=now(request), **data)
        return 200, dispute_out(dispute, now=now(request), evidence=queries.evidence(s, dispute.id))

    return idempotency.run(request, actor, data, work)


@router.post("/disputes/{dispute_id}/withdraw")
def withdraw(request: Request, dispute_id: str, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        return 200, dispute_out(service.withdraw(s, actor=actor, dispute_id=dispute_id, now=now(request)),
                                now=now(request))  # fmt: skip

    return idempotency.run(request, actor, {}, work)


async def read_upload(request: Request, store: AttachmentStore) -> tuple[bytes, str, str]:
    """The file's bytes, name and declared type; over the limit is a 413 naming it, before the body is read."""
    rule = UploadRule(
        limit=store.max_bytes,
        too_large=lambda _declared: too_large(store),  # the same words whether declared or read: the limit
        what="the file",
        missing="file is required: multipart/form-data with a field named file",
    )
    upload = await read_form_file(request, rule)
    return upload.data, upload.filename or "evidence", upload.content_type


_EVIDENCE_BODY = upload_body(
    "PDF, PNG, JPEG, plain text or CSV, at most the configured limit (PARTNERPAY_ATTACHMENT_MAX_BYTES, default 10 MB)"
)


@router.post("/disputes/{dispute_id}/evidence", status_code=201, openapi_extra=_EVIDENCE_BODY,
             responses={413: {"description": "the file is over the size limit (named in the error)"},
                        422: {"description": "not an accepted type (the error lists `allowed`)"}})  # fmt: skip
async def upload_evidence(request: Request, dispute_id: str, actor: Actor = Caller) -> JSONResponse:
    """One evidence file (multipart field `file`): PDF, PNG, JPEG, plain text or CSV, stored with its SHA-256."""
    store = store_of(request)
    data, filename, declared = await read_upload(request, store)

    def work(s: Session) -> tuple[int, Any]:
        item = add_evidence(s, store, actor=actor, dispute_id=dispute_id, filename=filename, declared_type=declared,
                            data=data, now=now(request))  # fmt: skip
        return 201, EvidenceOut.model_validate(item).model_dump(mode="json")

    # Idempotency-Key compares the file by its hash, not its bytes.

    body = {"filename": filename, "sha256": hashlib.sha256(data).hexdigest()}
    return await run_in_threadpool(idempotency.run, request, actor, body, work)


@router.put("/programs/{program_id}/dispute-settings")
def put_settings(request: Request, program_id: str, body: SlaIn, actor: Actor = Caller) -> JSONResponse:
    """`{sla_days}`: how many days the team has to answer a new dispute (default 10)."""

    def work(s: Session) -> tuple[int, Any]:
        settings = service.set_sla_days(s, actor=actor, program_id=program_id, days=body.sla_days, now=now(request))
        return 200, {"program_id": settings.program_id, "sla_days": settings.sla_days}

    return idempotency.run(request, actor, body.model_dump(), work)


@router.get("/programs/{program_id}/dispute-settings")
def get_settings(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        program = get_program(s, actor, program_id)
        return {"program_id": program.id, "sla_days": service.sla_days(s, program.id)}
