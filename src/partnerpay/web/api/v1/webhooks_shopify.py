"""Shopify webhook endpoint (see webhooks.py for the answers every provider shares).

The inbox key is `X-Shopify-Webhook-Id`: Shopify keeps it on every retry of a delivery, so retries are
replays. A signed delivery without it (a hand-made one: Shopify always sends it) is keyed by a hash of
its topic and body instead, so the very same delivery again is still a replay; refusing it would only make
a sender retry what partnerpay can read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from partnerpay.inbox.models import InboxStatus
from partnerpay.integrations import shopify
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.web.api.v1.webhooks import Classified, WebhookSpec, deliver, malformed

router = APIRouter()
# Kept on the item: the topic and shop domain are read when processing; triggered-at tells a stale retry
# (Shopify retries with the original payload for 4 hours); the rest is for a person reading the inbox.
_KEPT = ("topic", "webhook-id", "shop-domain", "triggered-at", "api-version", "event-id", "hmac-sha256")


def _verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: datetime, url: str) -> None:
    shopify.verify_signature(shopify.header(headers, "hmac-sha256"), body, secrets)


def _classify(headers: Mapping[str, str], body: bytes) -> Classified:
    try:
        resource: Any = json.loads(body)
    except ValueError as exc:
        return malformed(body, f"the body is not JSON: {exc}")
    if not isinstance(resource, dict):
        return malformed(body, "the body is not a Shopify resource: a JSON object is expected")
    topic = shopify.header(headers, "topic")
    if topic is None:
        return malformed(body, "the X-Shopify-Topic header is missing: the delivery cannot be read without it")
    delivery = shopify.header(headers, "webhook-id")
    if delivery is None:
        delivery = "body:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()[:40]
    if not shopify.handles(topic):
        return delivery, topic, InboxStatus.IGNORED, None, f"partnerpay does not use Shopify {topic} deliveries"
    return delivery, topic, InboxStatus.RECEIVED, None, None


SHOPIFY = WebhookSpec(
    provider=shopify.PROVIDER,
    verify=_verify,
    classify=_classify,
    signature_error=SignatureRefused,
    kept_headers=(
        *(f"x-shopify-{name}" for name in _KEPT),
        *(f"shopify-{name}" for name in _KEPT),
        "content-type",
        "user-agent",
    ),
)


@router.post(
    "/webhooks/shopify/{program_id}",
    responses={400: {"description": "bad or missing X-Shopify-Hmac-Sha256"}, 413: {"description": "body over 1 MiB"}},
)
async def shopify_webhook(request: Request, program_id: str) -> JSONResponse:
    """A Shopify delivery for one program: HMAC verified, stored once, processed by a background job."""
    return await deliver(request, program_id, SHOPIFY)
