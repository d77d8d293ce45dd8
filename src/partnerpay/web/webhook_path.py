"""Signed webhook deliveries answered before FastAPI, like the click path (tracking/redirect.py).

A verified delivery's own work is small (an HMAC, a JSON parse, a place in the delivery writer's next
group commit); FastAPI's routing, middleware (the session cookie) and error layers cost more than it.
This handler takes the common case only: a declared body size within the limit, the program's secrets
cached, a valid signature and the writer running. Anything else (an unknown program, a bad signature to
count, a cold cache, an error) goes to the FastAPI route with the body it already read, which gives
every answer the route documents.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import URL
from starlette.types import Message, Receive, Scope, Send

from partnerpay.inbox.delivery_writer import DeliveryWriter, Stored
from partnerpay.inbox.durable import NotDurable
from partnerpay.integrations.secret_cache import SecretCache
from partnerpay.integrations.settings_store import usable
from partnerpay.kit.clock import Clock
from partnerpay.web.api.v1.webhooks import MAX_BODY_BYTES, WebhookSpec, delivery_of

PREFIX = "/api/v1/webhooks/"
App = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_URLS = 4096


class WebhookPath:
    def __init__(
        self, *, specs: dict[str, WebhookSpec], cache: SecretCache, writer: DeliveryWriter, clock: Clock
    ) -> None:
        self.specs, self.cache, self.writer, self.clock = specs, cache, writer, clock
        self.answered = 0  # deliveries this path stored itself (the rest went to the route)
        self._urls: dict[tuple[Any, ...], str] = {}  # public URLs by what they are made of (a provider's few)

    def handles(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(PREFIX):
            return False
        provider, _, program_id = scope["path"][len(PREFIX) :].partition("/")
        return provider in self.specs and bool(program_id) and "/" not in program_id

    def _public_url(self, scope: Scope, host: str | None, base_url: Any) -> str:
        """webhooks.public_url for this request, built once per distinct URL: Starlette's URL costs ~10 µs."""
        server = scope.get("server")
        key = (scope.get("scheme"), tuple(server) if server else None, scope["path"], scope.get("query_string"),
               host, base_url if isinstance(base_url, str) else None)  # fmt: skip
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_URLS:
                self._urls.clear()
            url = self._urls[key] = _public_url(scope, base_url)
        return url

    async def __call__(self, scope: Scope, receive: Receive, send: Send, fallback: App) -> None:
        headers = _headers(scope)
        declared = headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES or not self.writer.running:
            await fallback(scope, receive, send)  # the route streams, limits and answers 413
            return
        body = await _read(receive)
        provider, _, program_id = scope["path"][len(PREFIX) :].partition("/")
        spec = self.specs[provider]
        known = self.cache.get(program_id, provider)
        if known is None:
            await fallback(scope, _replay(body, receive), send)
            return
        now = self.clock.now()
        try:
            url = self._public_url(scope, headers.get("host"), known.config.get("base_url"))
            spec.verify(headers, body, usable(known.secrets, now), now, url)
            stored = await self.writer.store(delivery_of(headers, program_id, body, spec, now))
        except NotDurable as exc:  # stored perhaps, but not provably on disk: the provider must send it again
            await _send(send, exc.status, json.dumps({"error": exc.to_dict()}).encode())
            return
        except Exception:
            await fallback(scope, _replay(body, receive), send)
            return
        self.answered += 1
        await _send(send, 200, _answer(stored))


async def _send(send: Send, status: int, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _answer(stored: Stored) -> bytes:
    """json.dumps(stored.answer()) without the encoder: ids and statuses are plain ASCII words."""
    duplicate = b"true" if stored.duplicate else b"false"
    return b'{"received":true,"id":"%s","status":"%s","duplicate":%s}' % (
        stored.id.encode(),
        stored.status.encode(),
        duplicate,
    )


def _public_url(scope: Scope, base_url: Any) -> str:
    url = URL(scope=scope)
    if not isinstance(base_url, str) or not base_url.strip():
        return str(url)
    query = f"?{url.query}" if url.query else ""
    return base_url.strip().rstrip("/") + url.path + query


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's body again for the FastAPI route, then the connection's own messages (disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers as a plain dict (names are lower case in ASGI); the first of a repeated one wins,
    as with Starlette's Headers, whose every lookup scans and decodes the whole list again."""
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1")
        if name not in found:
            found[name] = value.decode("latin-1")
    return found
