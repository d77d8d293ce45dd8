"""Provider webhooks: verify, store raw in the inbox, answer. Processing runs later in an outbox job.

Every provider gets the same answers (providers retry anything but 2xx, Stripe for up to 3 days):
- bad or missing signature → 400, nothing stored, counted on the program's integration;
- the same delivery id again → 200 {"duplicate": true}, nothing written;
- a body over 1 MiB → 413;
- a signed body that is not an event of the provider → stored as failed with the reason, and 200: the
  provider would resend the very same bytes, so a retry cannot help, and the inbox shows the failure.

A provider plugs in with a WebhookSpec: how its signature is checked and how a signed body is classified.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import find, receive, source_of
from partnerpay.integrations import stripe_webhooks as stripe
from partnerpay.integrations.settings_store import active_webhook_secrets, count_bad_signature, get_integration
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.errors import ConcurrentWrite, NotFound, PartnerpayError
from partnerpay.programs.models import Program
from partnerpay.web.security import factory, read_factory

router = APIRouter()
MAX_BODY_BYTES = 1024 * 1024

# (external id, kind, status, error, note) of a signed delivery, decided before anything is stored.
Classified = tuple[str, str, InboxStatus, str | None, str | None]


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    provider: str
    # Raises a PartnerpayError with status 400 (SignatureRefused) when the delivery is not provably signed.
    verify: Callable[[Mapping[str, str], bytes, list[str], datetime, str], None]
    classify: Callable[[Mapping[str, str], bytes], Classified]
    signature_error: type[PartnerpayError]
    kept_headers: tuple[str, ...]


class PayloadTooLarge(PartnerpayError):
    code = "payload_too_large"
    status = 413


async def read_body(request: Request) -> bytes:
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


def malformed(body: bytes, problem: str) -> Classified:
    """A signed body partnerpay cannot read: keyed by its hash, so the same bytes again are a replay."""
    digest = hashlib.sha256(body).hexdigest()[:40]
    return f"malformed:{digest}", "malformed", InboxStatus.FAILED, problem, None


def public_url(request: Request, base_url: Any) -> str:
    """The URL the provider called: behind a proxy, the integration's base_url replaces the scheme and host
    (and a path prefix the proxy strips) of the URL partnerpay sees; path and query string stay as received."""
    if not isinstance(base_url, str) or not base_url.strip():
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base_url.strip().rstrip("/") + request.url.path + query


def check_delivery(request: Request, program_id: str, body: bytes, spec: WebhookSpec) -> datetime:
    """Refuse (400, counted on the integration) a delivery that is not provably signed; returns now."""
    sessions, readers = factory(request), read_factory(request)
    box = request.app.state.secret_box
    now: datetime = request.app.state.clock.now()
    # Checking the signature only reads: on SQLite a writer session would take the write lock for it.
    with readers() as session:
        integration = get_integration(session, program_id, spec.provider)
        # An integration row implies its program (foreign key): the program is only looked up without one.
        if integration is None and session.get(Program, program_id) is None:
            raise NotFound(f"program {program_id} not found", field="program_id")
        secrets = active_webhook_secrets(integration, box, now) if integration is not None else []
        url = public_url(request, integration.config.get("base_url") if integration is not None else None)
    try:
        spec.verify(request.headers, body, secrets, now, url)
    except spec.signature_error:
        with unit_of_work(sessions) as session:
            count_bad_signature(session, program_id=program_id, provider=spec.provider, now=now)
        raise
    return now


def receive_delivery(request: Request, program_id: str, body: bytes, spec: WebhookSpec) -> JSONResponse:
    """Verify, then store once. Runs in a worker thread (database work)."""
    sessions, readers = factory(request), read_factory(request)
    now = check_delivery(request, program_id, body, spec)
    headers = {k: request.headers[k][:500] for k in spec.kept_headers if k in request.headers}
    text = body.decode("utf-8", errors="replace")
    external_id, kind, status, error, note = spec.classify(request.headers, body)
    try:
        with unit_of_work(sessions) as session:
            item, created = receive(
                session,
                program_id=program_id,
                provider=spec.provider,
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
            winner = find(session, source_of(spec.provider, program_id), external_id)
            if winner is None:
                raise
            answer = {"received": True, "id": winner.id, "status": winner.status, "duplicate": True}
    return JSONResponse(answer, status_code=200)


def _stripe_verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime, url: str) -> None:
    stripe.verify_signature(headers.get("stripe-signature"), body, secrets, now=now)


def _stripe_classify(headers: Mapping[str, str], body: bytes) -> Classified:
    try:
        event: Any = json.loads(body)
    except ValueError as exc:
        return malformed(body, f"the body is not JSON: {exc}")
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        return malformed(body, "the body is not a Stripe event: it needs a string id and type")
    kind = event["type"]
    if not stripe.handles(kind):
        return event["id"], kind, InboxStatus.IGNORED, None, f"partnerpay does not use Stripe {kind} events"
    return event["id"], kind, InboxStatus.RECEIVED, None, None


STRIPE = WebhookSpec(
    provider=stripe.PROVIDER,
    verify=_stripe_verify,
    classify=_stripe_classify,
    signature_error=SignatureRefused,
    kept_headers=("stripe-signature", "content-type", "user-agent"),
)


@router.post(
    "/webhooks/stripe/{program_id}",
    responses={400: {"description": "bad or missing Stripe-Signature"}, 413: {"description": "body over 1 MiB"}},
)
async def stripe_webhook(request: Request, program_id: str) -> JSONResponse:
    """A Stripe event for one program: signature verified, stored once, processed by a background job."""
    body = await read_body(request)
    return await run_in_threadpool(receive_delivery, request, program_id, body, STRIPE)
