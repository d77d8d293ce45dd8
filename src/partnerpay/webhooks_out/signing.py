"""The signature of an outgoing webhook, Stripe's scheme with our header name.

    Partnerpay-Signature: t=1764140400,v1=5257a869e7…[,v1=…]

`v1` is the hex HMAC-SHA256, keyed with the subscription's secret, of the text `"{t}.{body}"` (the exact body
bytes). While a rotated-out secret is still in its grace period a second `v1` signed with it follows, so a
receiver holding either secret verifies. Receivers compare in constant time and refuse an old `t` (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SIGNATURE_HEADER = "Partnerpay-Signature"
EVENT_ID_HEADER = "Partnerpay-Event-Id"
EVENT_TYPE_HEADER = "Partnerpay-Event-Type"
DELIVERY_ID_HEADER = "Partnerpay-Delivery-Id"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """32 random bytes, URL-safe: shown to the user once, then only sealed."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets_in_use: Sequence[str], timestamp: int) -> str:
    """The header value: one v1 per secret in use, the current secret first."""
    if not secrets_in_use:
        raise ValueError("a webhook is signed with at least one secret")
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_in_use)])


def parse(header: str) -> tuple[int | None, list[str]]:
    """(t, [v1 signatures]) of a header; t is None when missing or not a number."""
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            found.append(value)
    return timestamp, found


def verify(
    body: bytes, header: str, secret: str, *, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does (docs/api-alerts-webhooks.md has the same in a few lines of plain Python)."""
    timestamp, found = parse(header)
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in found)
