"""GET /r/{code}: a plain ASGI handler in front of the app, outside FastAPI's validation and the session.

Every request gets a 302, never an error page. The Location only ever comes from a stored, validated
link or from program settings (or the settings fallback): the code in the path is looked up, never
echoed, so no crafted code (//evil.com, %2F%2F…, backslashes, CRLF) can choose where a visitor goes.
A click is made in memory (id, app clock, keyed address hash) and handed to the ClickWriter.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
import structlog

from partnerpay.kit.clock import Clock
from partnerpay.tracking import clicks
from partnerpay.tracking.click_buffer import ClickWriter
from partnerpay.tracking.click_ids import ClickIds
from partnerpay.tracking.link_cache import LinkCache, Target
from partnerpay.tracking.resolver import Resolver

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/r/"
CODE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")  # what referral and link codes are made of; anything else is unknown
REFRESH_BATCH = 500
FREEZE_AT = 10_000
_COUNTRY_HEADERS = (b"cf-ipcountry", b"x-country-code")


class ClickPath:
    """The ASGI handler of /r/… requests; the app hands it those before anything of its own runs
    (see PartnerpayApp.__call__), so a redirect costs none of FastAPI's per-request work."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        cache: LinkCache,
        writer: ClickWriter,
        clock: Clock,
        ip_hasher: clicks.IpHasher,
        cookie_domain: str = "",
        secure_cookie: bool = False,
    ) -> None:
        self.resolver = resolver
        self.cache = cache
        self.writer = writer
        self.clock = clock
        self.ip_hash = ip_hasher
        self.new_click_id = ClickIds()
        self._stale: set[str] = set()
        self._refresher: asyncio.Task[None] | None = None
        self.cookie_tail = "; Path=/; SameSite=Lax"
        if cookie_domain:
            self.cookie_tail += f"; Domain={cookie_domain}"
        if secure_cookie:
            self.cookie_tail += "; Secure"

    def handles(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope["path"].startswith(PREFIX)  # type: ignore[no-any-return]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request handles() accepted."""
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
        click_id = self.new_click_id()
        headers = _headers(scope)
        client = scope.get("client")
        country_value = headers.get(_COUNTRY_HEADERS[0]) or headers.get(_COUNTRY_HEADERS[1])
        self.writer.add(
            (
                click_id,
                target.program_id,
                target.partner_id,
                target.link_id,
                code[:100] if CODE.match(code) else _printable(code[:100]),
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
        cached = self.cache.lookup(code)
        if cached is not None:
            target, fresh = cached
            if not fresh:
                self._refresh_later(code)
            return target
        try:
            if CODE.match(code) and not self.cache.is_known_unknown(code):
                generation = self.cache.generation
                found = await anyio.to_thread.run_sync(self.resolver.code, code)
                if generation == self.cache.generation:  # else a link changed meanwhile: what we read may be old
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

    def _refresh_later(self, code: str) -> None:
        self._stale.add(code)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        """Look stale codes up again in batches, off the event loop, while their old targets keep serving."""
        while self._stale:
            batch: dict[str, Target] = {}
            while self._stale and len(batch) < REFRESH_BATCH:
                code = self._stale.pop()
                cached = self.cache.lookup(code)
                if cached is not None:
                    batch[code] = cached[0]
            generation = self.cache.generation
            try:
                found = await anyio.to_thread.run_sync(self.resolver.codes, batch)
            except Exception:  # keep serving what we have; the next request for a stale code tries again
                log.exception("refreshing cached referral codes failed", codes=len(batch))
                return
            if generation == self.cache.generation:
                for code, target in found.items():
                    self.cache.put(code, target)


def fill_cache(cache: LinkCache, resolver: Resolver) -> None:
    """Fill the cache with the partners' codes and the newest links (in a thread at startup), so the first
    clicks on them do not each wait for a query. Stops if a link changes meanwhile: its entry could be old."""
    generation = cache.generation
    started = time.monotonic()
    try:
        for code, target in resolver.newest(cache.size):
            if cache.generation != generation:
                return
            cache.put(code, target)
    except Exception:  # an empty cache only costs a query per code
        log.exception("filling the referral code cache failed")
        return
    if len(cache) >= FREEZE_AT:
        # A hundred thousand long-lived targets would be walked by every full garbage collection, stalling
        # redirects for a tenth of a second each time: collect once, then move everything alive out of the
        # collector's sight (a small cache is not worth it, and tests create many apps in one process).
        gc.collect()
        gc.freeze()
    log.info("referral code cache filled", codes=len(cache), seconds=round(time.monotonic() - started, 2))


def _printable(code: str) -> str:
    # A crafted code may hold control characters (PostgreSQL refuses NUL in text): stored as "?".
    return "".join(c if c.isprintable() else "?" for c in code)


def _headers(scope: Scope) -> dict[bytes, str]:
    wanted = {b"user-agent", b"referer", *_COUNTRY_HEADERS}
    return {k: v.decode("latin-1") for k, v in scope["headers"] if k in wanted}


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    # no-store: a cached redirect would be a click nobody counted.
    headers.extend([(b"cache-control", b"no-store"), (b"content-length", b"0")])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
