"""Where a delivery attempt may connect. urls.check_url judges the URL's text when a subscription is saved,
but a name that resolved to a public address then can resolve to 127.0.0.1 or 169.254.169.254 later (DNS
rebinding), turning the worker into a probe of the network it runs in. So every attempt resolves the host
again, refuses (before any byte is sent) when any of its addresses is loopback, private, link-local,
multicast, reserved or otherwise not public, and then connects to an address it checked, not to whatever a
second lookup would answer: the URL's host is replaced by that address while the Host header and, for https,
the TLS server name (SNI, also what the certificate is checked against) keep the original name.

PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS=true lifts the address check (a receiver on this machine in
development and tests); the connection is pinned either way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) → the addresses it resolves to, as text, in the order to try them.
Resolver = Callable[[str, int], list[str]]
ALLOW_SETTING = "PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS"


class TargetRefused(Exception):
    """The host resolves to an address a webhook must not reach; no request was made."""


class TargetUnresolved(Exception):
    """The host does not resolve (now): a failed attempt like a connection error, retried later."""


def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), each address once, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def why_not_public(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("loopback", "private", …), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),  # not covered by is_global for IPv4
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),  # shared address space 100.64/10 and the like
    )
    return next((kind for kind, matches in kinds if matches), None)


@dataclass(frozen=True, slots=True)
class Target:
    """The subscription's URL and the checked addresses to connect to, in order."""

    url: str
    host: str
    addresses: tuple[str, ...]

    def pinned(self, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(URL with `address` as its host, the Host header, httpx request extensions) for one connection."""
        parts = urlsplit(self.url)
        literal = f"[{address}]" if ":" in address else address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        # check_url refuses user info, so the netloc is exactly host[:port], what Host must say.
        headers = {"Host": parts.netloc}
        extensions: dict[str, Any] = {}
        if parts.scheme == "https" and not _is_literal(self.host):
            extensions["sni_hostname"] = self.host  # TLS server name and certificate check use the real name
        return url, headers, extensions


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_target(url: str, *, allow_private: bool, resolve: Resolver = system_resolve) -> Target:
    """Resolve the URL's host now and check every address; TargetRefused or TargetUnresolved otherwise."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if _is_literal(host):
        found = [host]
    else:
        try:
            found = resolve(host, port)
        except OSError as exc:  # socket.gaierror: no such name, or no DNS answer now
            raise TargetUnresolved(f"could not resolve {host}: {exc}") from exc
        if not found:
            raise TargetUnresolved(f"could not resolve {host}: no address")
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]  # an IPv6 zone (%eth0) is not an address
    if not allow_private:
        # Any address counts, not only the first: a client that falls back to the next one would reach it.
        for address in addresses:
            kind = why_not_public(address)
            if kind is not None:
                raise TargetRefused(
                    f"refused, no request sent: {host} resolves to {address}, a {kind} address; outgoing "
                    f"webhooks go only to public addresses ({ALLOW_SETTING}=true allows others, for development)"
                )
    return Target(url=url, host=host, addresses=tuple(str(a) for a in addresses))
