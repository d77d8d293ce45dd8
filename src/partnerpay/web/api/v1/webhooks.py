"""Provider webhooks: verify, store raw in the inbox, answer. Processing runs later in an outbox job.

Answers (Stripe retries anything but 2xx for up to 3 days):
- bad or missing signature → 400, nothing stored, counted on the program's integration;
- the same event id again → 200 {"duplicate": true}, nothing written;
- a body over 1 MiB → 413;
- a signed body that is not a JSON event → stored as failed with the reason, and 200: Stripe would
  resend the very same bytes, so a retry cannot help, and the inbox shows the failure to a person.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import find, receive, source_of
from partnerpay.integrations import stripe_webhooks as stripe
from partnerpay.integrations.settings_store import active_webhook_secrets, count_bad_signature, get_integration
from partnerpay.kit.errors import ConcurrentWrite, NotFound, PartnerpayError
from partnerpay.programs.models import Program
from partnerpay.web.security import factory, read_factory

router = APIRouter()
MAX_BODY_BYTES = 1024 * 1024
KEPT_HEADERS = ("stripe-signature", "content-type", "user-agent")


class PayloadTooLarge(PartnerpayError):
    code = "payload_too_large"
    status = 413


async def _body(request: Request) -> bytes:
    """The raw body, refused past MAX_BODY_BYTES without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body has {int(declared):,} bytes; at most {MAX_BODY_BYTES:,}", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES:,} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _receive_stripe(request: Request, program_id: str, body: bytes) -> JSONResponse:
    sessions, readers = factory(request), read_factory(request)
    box = request.app.state.secret_box
    now = request.app.state.clock.now()
    # Checking the signature only reads: on SQLite a writer session would take the write lock for it.
    with readers() as session:
        if session.get(Program, program_id) is None:
            raise NotFound(f"program {program_id} not found", field="program_id")
        integration = get_integration(session, program_id, stripe.PROVIDER)
        secrets = active_webhook_secrets(integration, box, now) if integration is not None else []
    try:
        stripe.verify_signature(request.headers.get("stripe-signature"), body, secrets, now=now)
    except stripe.SignatureRefused:
        with unit_of_work(sessions) as session:
            count_bad_signature(session, program_id=program_id, provider=stripe.PROVIDER, now=now)
        raise
    headers = {k: request.headers[k][:500] for k in KEPT_HEADERS if k in request.headers}
    text = body.decode("utf-8", errors="replace")
    external_id, kind, status, error, note = _classify(body)
    try:
        with unit_of_work(sessions) as session:
            item, created = receive(
                session,
                program_id=program_id,
                provider=stripe.PROVIDER,
                external_id=external_id,
                kind=kind,
                body=text,
                headers=headers,
                now=now,
                status=status,
                error=error,
                note=note,
            )
            answer = {"received": True, "id": item.id, "status": item.status, "duplicate": not created}
    except ConcurrentWrite:
        # Another delivery of the same event won the race: it is stored once, and this is a replay.
        with readers() as session:
            winner = find(session, source_of(stripe.PROVIDER, program_id), external_id)
            if winner is None:
                raise
            answer = {"received": True, "id": winner.id, "status": winner.status, "duplicate": True}
    return JSONResponse(answer, status_code=200)


def _classify(body: bytes) -> tuple[str, str, InboxStatus, str | None, str | None]:
    """(external id, kind, status, error, note) of a signed body, decided before anything is stored."""
    problem: str | None = None
    try:
        event: Any = json.loads(body)
    except ValueError as exc:
        event, problem = None, f"the body is not JSON: {exc}"
    else:
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("id"), str)
            or not isinstance(event.get("type"), str)
        ):
            problem = "the body is not a Stripe event: it needs a string id and type"
    if problem is not None or not isinstance(event, dict):
        # Keyed by the body's hash, so Stripe resending the same bytes is still a replay.
        digest = hashlib.sha256(body).hexdigest()[:40]
        return f"malformed:{digest}", "malformed", InboxStatus.FAILED, problem, None
    kind = event["type"]
    if not stripe.handles(kind):
        return event["id"], kind, InboxStatus.IGNORED, None, f"partnerpay does not use Stripe {kind} events"
    return event["id"], kind, InboxStatus.RECEIVED, None, None


@router.post(
    "/webhooks/stripe/{program_id}",
    responses={400: {"description": "bad or missing Stripe-Signature"}, 413: {"description": "body over 1 MiB"}},
)
async def stripe_webhook(request: Request, program_id: str) -> JSONResponse:
    """A Stripe event for one program: signature verified, stored once, processed by a background job."""
    body = await _body(request)
    return await run_in_threadpool(_receive_stripe, request, program_id, body)
