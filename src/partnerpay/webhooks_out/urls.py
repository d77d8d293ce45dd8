"""Which URLs a subscription may point at: https to a public host. Addresses of this machine, of private
networks and of cloud metadata services are refused, so a subscription cannot make partnerpay's worker
probe the network it runs in. With PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS=true (development,
tests, a receiver inside the same network) any host is accepted, over http or https: the same setting that
lets the worker deliver there (targets.py), so a URL that is saved is one the worker will call."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from partnerpay.kit.errors import ValidationError
from partnerpay.webhooks_out.targets import ALLOW_SETTING

MAX_URL = 2000
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _private_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def check_url(raw: str, *, allow_private: bool = False) -> str:
    """The URL, trimmed; ValidationError naming `url` otherwise."""
    url = (raw or "").strip()
    if not url or len(url) > MAX_URL:
        raise ValidationError(f"url must have 1 to {MAX_URL} characters", field="url")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise ValidationError(f"url {url!r} is not a valid URL: {exc}", field="url") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError(f"url must be an https:// URL with a host, got {url!r}", field="url")
    if parts.username or parts.password:
        raise ValidationError("url must not carry a user name or password; the signature authenticates", field="url")
    if parts.fragment:
        raise ValidationError("url must not have a #fragment", field="url")
    if allow_private:
        return url
    if host in LOCAL_HOSTS or _private_ip(host) or host.endswith(".local") or host.endswith(".internal"):
        raise ValidationError(
            f"url must point to a public host, not {host}; a receiver on this machine or a private network is "
            f"allowed only with {ALLOW_SETTING}=true",
            field="url",
        )
    if parts.scheme == "http":
        raise ValidationError(f"url must use https, got {url!r}", field="url")
    return url
