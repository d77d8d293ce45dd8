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
from partnerpay.inbox.delivery_writer import Delivery, store_one
from partnerpay.inbox.models import InboxStatus
from partnerpay.integrations import stripe_webhooks as stripe
from partnerpay.integrations.secret_cache import Known, SecretCache
from partnerpay.integrations.settings_store import count_bad_signature, usable
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.errors import PartnerpayError
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


def _known(request: Request, program_id: str, provider: str) -> Known:
    """The program's webhook secrets for this provider, from the cache or (one read) the database."""
    cache: SecretCache = request.app.state.webhook_secrets
    known = cache.get(program_id, provider)
    if known is None:
        # Only reads: on SQLite a writer session would take the write lock for it.
        with read_factory(request)() as session:
            known = cache.load(session, request.app.state.secret_box, program_id, provider)
    return known


def _verify(request: Request, program_id: str, body: bytes, spec: WebhookSpec, known: Known, now: datetime) -> None:
    """Refuse (400, counted on the integration) a delivery that is not provably signed."""
    url = public_url(request, known.config.get("base_url"))
    try:
        spec.verify(request.headers, body, usable(known.secrets, now), now, url)
    except spec.signature_error:
        with unit_of_work(factory(request)) as session:
            count_bad_signature(session, program_id=program_id, provider=spec.provider, now=now)
        raise


def check_delivery(request: Request, program_id: str, body: bytes, spec: WebhookSpec) -> datetime:
    """Refuse (400, counted) a delivery that is not provably signed; returns now. Blocking: run in a thread."""
    now: datetime = request.app.state.clock.now()
    _verify(request, program_id, body, spec, _known(request, program_id, spec.provider), now)
    return now


def _delivery(request: Request, program_id: str, body: bytes, spec: WebhookSpec, now: datetime) -> Delivery:
    return delivery_of(request.headers, program_id, body, spec, now)


def delivery_of(headers: Mapping[str, str], program_id: str, body: bytes, spec: WebhookSpec, now: datetime) -> Delivery:
    """What is stored of a verified delivery: the classified body and the headers worth keeping."""
    external_id, kind, status, error, note = spec.classify(headers, body)
    return Delivery(
        program_id=program_id,
        provider=spec.provider,
        external_id=external_id,
        kind=kind,
        body=body.decode("utf-8", errors="replace"),
        headers={k: headers[k][:500] for k in spec.kept_headers if k in headers},
        now=now,
        status=status,
        error=error,
        note=note,
    )


def receive_delivery(request: Request, program_id: str, body: bytes, spec: WebhookSpec) -> JSONResponse:
    """Verify, then store once in its own transaction. Blocking: run in a thread."""
    now = check_delivery(request, program_id, body, spec)
    stored = store_one(factory(request), read_factory(request), _delivery(request, program_id, body, spec, now))
    return JSONResponse(stored.answer(), status_code=200)


async def deliver(request: Request, program_id: str, spec: WebhookSpec) -> JSONResponse:
    """Read, verify and store a delivery in its own transaction. Served apps answer the common case
    (secrets cached, signature good) before FastAPI in web/webhook_path.py; this route is its fallback
    and gives every documented answer (404, 400 counted, 413, replays)."""
    body = await read_body(request)
    return await run_in_threadpool(receive_delivery, request, program_id, body, spec)


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
    return await deliver(request, program_id, STRIPE)
