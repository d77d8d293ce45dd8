"""Small helpers shared by the v1 routers."""

from __future__ import annotations

from datetime import datetime

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden
from partnerpay.web.security import api_actor, read_factory

Caller = Depends(api_actor)
Limit = Query(50, ge=1, le=500, description="page size, at most 500")
CursorParam = Query(None, description="next_cursor from the previous page")


def now(request: Request) -> datetime:
    return request.app.state.clock.now()  # type: ignore[no-any-return]


def reader(request: Request, actor: Actor) -> Session:
    if not actor.can("read"):
        raise Forbidden("this key has no 'read' scope")
    return read_factory(request)()


def need(actor: Actor, scope: str) -> None:
    if not actor.can(scope):
        raise Forbidden(f"this action needs the '{scope}' scope, which {actor.type.value} {actor.id} lacks")
