"""Plumbing shared by the console and portal pages: rendering, flash messages, form CSRF, login redirects."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from partnerpay.auth.actor import ROLE_SCOPES, Actor, ActorType
from partnerpay.kit.ratelimit import SlidingWindowLimiter
from partnerpay.web.nav_counts import unread_messages
from partnerpay.web.security import check_csrf, csrf_token, read_factory

FLASH_KEY = "flash"


class LoginRequired(Exception):
    """Raised by a page dependency when nobody is logged in; PageRoute turns it into a redirect."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageRoute(APIRoute):
    """A route whose LoginRequired becomes a 303 to the login page (or HX-Redirect for an HTMX request)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired as exc:
                if is_htmx(request):
                    # An XHR would follow a 303 and swap the login form into a table row.
                    return Response(status_code=204, headers={"HX-Redirect": exc.location})
                return RedirectResponse(exc.location, status_code=303)

        return route_handler


def login_location(request: Request, login_path: str) -> str:
    """The login page, remembering the page asked for (GET only: a POST cannot be replayed)."""
    if request.method != "GET":
        return login_path
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{login_path}?next={quote(target, safe='')}"


def safe_next(target: str | None, default: str) -> str:
    """Only a local path is followed after login or a form POST, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def now(request: Request) -> datetime:
    return request.app.state.clock.now()  # type: ignore[no-any-return]


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A session for a page's reads; writes go through unit_of_work and a service."""
    with read_factory(request)() as session:
        yield session


def check_form_csrf(request: Request, token: str | None) -> None:
    """A form carries csrf_token as a hidden field; HTMX also sends it as the X-CSRF-Token header."""
    check_csrf(request, token or request.headers.get("x-csrf-token"))


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page rendered (after a POST → redirect)."""
    messages = list(request.session.get(FLASH_KEY, []))
    messages.append({"kind": kind, "text": text})
    request.session[FLASH_KEY] = messages


def role_of(actor: Actor) -> str:
    for role, scopes in ROLE_SCOPES.items():
        if actor.scopes == scopes:
            return role
    return "staff"


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200) -> Response:
    """Render a page or fragment with the CSRF token, pending flash messages and the current time."""
    ctx: dict[str, Any] = {
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop(FLASH_KEY, []) if not name.rsplit("/", 1)[-1].startswith("_") else [],
        "now": now(request),
        **(context or {}),
    }
    me = ctx.get("me")
    if isinstance(me, Actor) and me.type is ActorType.STAFF:
        ctx.setdefault("role", role_of(me))
    if isinstance(me, Actor):
        ctx.setdefault("nav_unread", unread_messages(request, me))
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)  # type: ignore[no-any-return]


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def login_limiter(request: Request) -> SlidingWindowLimiter:
    return request.app.state.login_limiter  # type: ignore[no-any-return]


def login_keys(request: Request, realm: str, email: str) -> tuple[str, str]:
    """Limit guessing per account and per client address, whichever runs out first."""
    client = request.client.host if request.client else "unknown"
    return f"{realm}:email:{email.strip().lower()}", f"{realm}:ip:{client}"


def start_session(request: Request, key: str, user_id: str) -> None:
    """Log a user in; a fresh CSRF token per login makes any token seen before it worthless."""
    request.session.pop("csrf", None)
    request.session[key] = user_id


def end_session(request: Request, key: str) -> None:
    request.session.pop(key, None)
    request.session.pop("csrf", None)
    flash(request, "You are logged out.")
