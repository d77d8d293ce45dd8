"""HubSpot webhook endpoint (see webhooks.py for the answers every provider gets).

HubSpot batches: one request carries a JSON array of events. Each event becomes its own inbox item (external id
= eventId, kind = subscriptionType), all stored in one transaction; an eventId already stored is skipped, so a
resent batch, or one overlapping an earlier batch, stores only what is new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.service import receive
from partnerpay.integrations import hubspot
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.errors import ConcurrentWrite
from partnerpay.web.api.v1.webhooks import Classified, WebhookSpec, check_delivery, malformed, read_body
from partnerpay.web.security import factory

router = APIRouter()
MAX_EVENTS = 1000  # HubSpot sends at most 100 per request; anything far beyond is not HubSpot
RACE_ATTEMPTS = 3
KEPT_HEADERS = ("x-hubspot-signature-v3", "x-hubspot-request-timestamp", "content-type", "user-agent")


def _verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime, url: str) -> None:
    # Webhooks are always POSTed; url is what HubSpot called (webhooks.public_url).
    hubspot.verify_signature_v3(
        "POST",
        url,
        body,
        headers.get("x-hubspot-request-timestamp"),
        headers.get("x-hubspot-signature-v3"),
        secrets,
        now,
    )


def _not_used(headers: Mapping[str, str], body: bytes) -> Classified:
    raise AssertionError("HubSpot bodies are classified per event (_events)")


HUBSPOT = WebhookSpec(
    provider=hubspot.PROVIDER,
    verify=_verify,
    classify=_not_used,
    signature_error=SignatureRefused,
    kept_headers=KEPT_HEADERS,
)


def _event_id(event: Any) -> str | None:
    value = event.get("eventId") if isinstance(event, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value if isinstance(value, str) and value.strip().isdigit() else None


def _events(body: bytes) -> list[tuple[Classified, str]]:
    """Each event of the batch as (what to store, its own JSON); a body partnerpay cannot read is one item."""
    try:
        parsed: Any = json.loads(body)
    except ValueError as exc:
        return [(malformed(body, f"the body is not JSON: {exc}"), body.decode("utf-8", errors="replace"))]
    if not isinstance(parsed, list) or not parsed or len(parsed) > MAX_EVENTS:
        problem = f"the body is not a HubSpot batch: a JSON array of 1 to {MAX_EVENTS} events"
        return [(malformed(body, problem), body.decode("utf-8", errors="replace"))]
    out: list[tuple[Classified, str]] = []
    for index, event in enumerate(parsed):
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        event_id = _event_id(event)
        kind = event.get("subscriptionType") if isinstance(event, dict) else None
        if event_id is None or not isinstance(kind, str) or not kind:
            problem = f"event [{index}] is not a HubSpot event: it needs an integer eventId and a subscriptionType"
            out.append((malformed(text.encode(), problem), text))
            continue
        assert isinstance(event, dict)
        status, note = hubspot.classify(event)
        out.append(((event_id, kind, status, None, note), text))
    return out


def _store(request: Request, program_id: str, body: bytes, now: datetime) -> list[dict[str, Any]]:
    headers = {k: request.headers[k][:500] for k in KEPT_HEADERS if k in request.headers}
    results: list[dict[str, Any]] = []
    with unit_of_work(factory(request)) as session:
        for (external_id, kind, status, error, note), text in _events(body):
            item, created = receive(
                session,
                program_id=program_id,
                provider=hubspot.PROVIDER,
                external_id=external_id,
                kind=kind,
                body=text,
                headers=headers,
                now=now,
                status=status,
                error=error,
                note=note,
            )
            results.append({"event_id": external_id, "id": item.id, "status": item.status, "duplicate": not created})
    return results


def receive_batch(request: Request, program_id: str, body: bytes) -> JSONResponse:
    """Verify once, then store every new event in one transaction. Runs in a worker thread."""
    now = check_delivery(request, program_id, body, HUBSPOT)
    for attempt in range(RACE_ATTEMPTS):
        try:
            results = _store(request, program_id, body, now)
            break
        except ConcurrentWrite:
            # A concurrent delivery stored one of these events first; storing again skips what it stored.
            if attempt == RACE_ATTEMPTS - 1:
                raise
    return JSONResponse({"received": True, "events": results}, status_code=200)


@router.post(
    "/webhooks/hubspot/{program_id}",
    responses={
        400: {"description": "bad or missing X-HubSpot-Signature-v3, or a timestamp over 5 minutes off"},
        413: {"description": "body over 1 MiB"},
    },
)
async def hubspot_webhook(request: Request, program_id: str) -> JSONResponse:
    """A batch of HubSpot events for one program: signature verified, each event stored once, processed later."""
    body = await read_body(request)
    return await run_in_threadpool(receive_batch, request, program_id, body)
