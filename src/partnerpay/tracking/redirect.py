"""GET /r/{code}: a plain ASGI handler in front of the app, outside FastAPI's validation and the session.

Every request gets a 302, never an error page. The Location only ever comes from a stored, validated
link or from program settings (or the settings fallback): the code in the path is looked up, never
echoed, so no crafted code (//evil.com, %2F%2F…, backslashes, CRLF) can choose where a visitor goes.
A click is made in memory (id, app clock, keyed address hash) and handed to the ClickWriter.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio.to_thread
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.kit.clock import Clock
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from partnerpay.tracking import clicks
from partnerpay.tracking.click_buffer import ClickWriter
from partnerpay.tracking.link_cache import LinkCache, Target
from partnerpay.tracking.models import ReferralLink

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/r/"
CODE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")  # what referral and link codes are made of; anything else is unknown
DESTINATION_MAX = 2000
_SAFE_LOCATION = re.compile(r"^(https?://[\x21-\x7e]+|/)$")
_HEADER_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
_COUNTRY_HEADERS = (b"cf-ipcountry", b"x-country-code")


def with_params(url: str, params: dict[str, str]) -> tuple[str, str]:
    """(prefix, suffix) such that prefix + click_id + suffix is `url` with `params` and ref=<click id> in
    its query. The destination's own query is kept as it was written, minus keys the link sets itself."""
    parts = urlsplit(url)
    override = {*params, "ref"}
    kept = [p for p in parts.query.split("&") if p and unquote(p.split("=", 1)[0]) not in override]
    added = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items()]
    head = url.split("#", 1)[0].split("?", 1)[0]
    if not parts.path:
        head += "/"  # https://example.com?ref=… is legal, but https://example.com/?ref=… is what everyone expects
    query = "&".join([*kept, *added, "ref="])
    suffix = f"#{parts.fragment}" if parts.fragment else ""
    return f"{head}?{query}", suffix


def safe_location(url: str | None) -> str | None:
    """The URL if it can go into a Location header as it is (absolute http(s), printable ASCII), else None."""
    if not url:
        return None
    text = quote(url.strip(), safe=_HEADER_SAFE)
    return text if _SAFE_LOCATION.match(text) else None


class Resolver:
    """Looks a code up in the database: one query per code, run in a worker thread."""

    def __init__(self, sessions: sessionmaker[Session], *, fallback_url: str) -> None:
        self.sessions = sessions
        self.fallback_url = safe_location(fallback_url) or "/"

    def code(self, code: str) -> Target | None:
        with self.sessions() as session:
            if "." in code:
                return self._link(session, code)
            return self._default(session, code)

    def _link(self, session: Session, code: str) -> Target | None:
        row = session.execute(
            select(
                ReferralLink.id,
                ReferralLink.program_id,
                ReferralLink.partner_id,
                ReferralLink.destination_url,
                ReferralLink.params,
                ReferralLink.active,
                Partner.status,
                Program.site_url,
                Program.fallback_url,
                Program.cookie_days,
            )
            .join(Partner, Partner.id == ReferralLink.partner_id)
            .join(Program, Program.id == ReferralLink.program_id)
            .where(ReferralLink.code == code)
        ).first()
        if row is None:
            return None
        credited = bool(row.active) and row.status == PartnerStatus.ACTIVE
        destination = safe_location(row.destination_url or row.site_url or row.fallback_url)
        return self._target(
            row.program_id, row.partner_id, row.id, destination, dict(row.params or {}), credited, row.cookie_days
        )

    def _default(self, session: Session, code: str) -> Target | None:
        row = session.execute(
            select(
                Partner.id,
                Partner.program_id,
                Partner.status,
                Program.site_url,
                Program.fallback_url,
                Program.cookie_days,
            )
            .join(Program, Program.id == Partner.program_id)
            .where(Partner.referral_code == code)
        ).first()
        if row is None:
            return None
        destination = safe_location(row.site_url or row.fallback_url)
        credited = row.status == PartnerStatus.ACTIVE
        return self._target(row.program_id, row.id, None, destination, {}, credited, row.cookie_days)

    def _target(
        self,
        program_id: str,
        partner_id: str,
        link_id: str | None,
        destination: str | None,
        params: dict[str, str],
        credited: bool,
        cookie_days: int,
    ) -> Target:
        if destination is None:
            # A program without a site: the visitor still lands somewhere, and nobody is credited for it.
            return Target(program_id, None, link_id, self.fallback_url, False, self.fallback_url)
        prefix, suffix = with_params(destination, params)
        stored = prefix[: -len("?ref=")] + suffix  # "&ref=" and "?ref=" are the same length
        if not credited:
            # Still where the link pointed (with its params), but no ref, no cookie, no partner.
            return Target(program_id, None, link_id, stored[:DESTINATION_MAX], False, stored)
        return Target(program_id, partner_id, link_id, stored[:DESTINATION_MAX], True, prefix, suffix, cookie_days)

    def fallback(self) -> Target:
        """Where unknown codes go: the only program's fallback or site, else the settings fallback, else /."""
        with self.sessions() as session:
            programs = session.execute(select(Program.id, Program.fallback_url, Program.site_url).limit(2)).all()
        if len(programs) == 1:
            only = programs[0]
            url = safe_location(only.fallback_url) or safe_location(only.site_url)
            if url:
                return Target(only.id, None, None, url, False, url)
            return Target(only.id, None, None, self.fallback_url, False, self.fallback_url)
        return Target(None, None, None, self.fallback_url, False, self.fallback_url)


class ClickPath:
    """Pure ASGI middleware: answers /r/… itself and passes everything else to the app untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: Resolver,
        cache: LinkCache,
        writer: ClickWriter,
        clock: Clock,
        ip_hasher: clicks.IpHasher,
        cookie_domain: str = "",
        secure_cookie: bool = False,
    ) -> None:
        self.app = app
        self.resolver = resolver
        self.cache = cache
        self.writer = writer
        self.clock = clock
        self.ip_hash = ip_hasher
        self.cookie_tail = "; Path=/; SameSite=Lax"
        if cookie_domain:
            self.cookie_tail += f"; Domain={cookie_domain}"
        if secure_cookie:
            self.cookie_tail += "; Secure"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD")])
            return
        code = scope["path"][len(PREFIX) :]
        if code.endswith("/"):
            code = code[:-1]
        target = await self.target(code)
        if method == "HEAD":
            # Link checkers and previews: the same answer, but no click and no cookie.
            await _respond(send, 302, [(b"location", target.destination.encode("latin-1"))])
            return
        click_id = new_id("clk")
        headers = _headers(scope)
        client = scope.get("client")
        country_value = headers.get(_COUNTRY_HEADERS[0]) or headers.get(_COUNTRY_HEADERS[1])
        self.writer.add(
            (
                click_id,
                target.program_id,
                target.partner_id,
                target.link_id,
                code[:100],
                self.clock.now(),
                self.ip_hash(client[0] if client else None),
                clicks.ua_class(headers.get(b"user-agent")),
                clicks.referrer(headers.get(b"referer")),
                clicks.country(country_value),
                target.destination,
            )
        )
        response = [(b"location", target.location(click_id).encode("latin-1"))]
        if target.attributed:
            cookie = f"pp_ref={click_id}; Max-Age={target.cookie_days * 86400}{self.cookie_tail}"
            response.append((b"set-cookie", cookie.encode("latin-1")))
        await _respond(send, 302, response)

    async def target(self, code: str) -> Target:
        hit = self.cache.get(code)
        if hit is not None:
            return hit
        try:
            if CODE.match(code) and not self.cache.is_known_unknown(code):
                found = await anyio.to_thread.run_sync(self.resolver.code, code)
                self.cache.put(code, found)
                if found is not None:
                    return found
            fallback = self.cache.fallback()
            if fallback is None:
                fallback = await anyio.to_thread.run_sync(self.resolver.fallback)
                self.cache.put_fallback(fallback)
            return fallback
        except Exception:  # the database may be down: the visitor still goes somewhere
            log.exception("referral code lookup failed; sending to the fallback", code=code[:100])
            url = self.resolver.fallback_url
            return Target(None, None, None, url, False, url)


def _headers(scope: Scope) -> dict[bytes, str]:
    wanted = {b"user-agent", b"referer", *_COUNTRY_HEADERS}
    return {k: v.decode("latin-1") for k, v in scope["headers"] if k in wanted}


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    # no-store: a cached redirect would be a click nobody counted.
    headers.extend([(b"cache-control", b"no-store"), (b"content-length", b"0")])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
