"""Outgoing webhook subscriptions and their delivery log (docs/api-alerts-webhooks.md).

The secret is in the answer of POST /webhook-subscriptions and of /rotate-secret only: it is sealed at rest and
never read back; Idempotency-Key keeps a keyed fingerprint of these requests, never their answer's secret.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.paging import paginate
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out, dump, page
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader
from partnerpay.webhooks_out import delivery as deliveries
from partnerpay.webhooks_out import subscriptions as subs
from partnerpay.webhooks_out.models import WebhookDelivery
from partnerpay.webhooks_out.types import EVENT_TYPES

router = APIRouter()


class SubscriptionOut(Out):
    id: str
    program_id: str
    url: str
    event_types: list[str]
    description: str
    secret_hint: str
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None


class DeliveryOut(Out):
    id: str
    program_id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    replay_of: str | None
    created_at: datetime


class AttemptOut(Out):
    number: int
    at: datetime
    signed_at: int
    status_code: int | None
    response_excerpt: str
    error: str | None
    duration_ms: int


class SubscriptionIn(In):
    program_id: StrictStr
    url: StrictStr = Field(max_length=2000, examples=["https://example.com/partnerpay/webhooks"])
    event_types: list[StrictStr] = Field(min_length=1, examples=[list(EVENT_TYPES)])
    description: StrictStr | None = Field(default=None, max_length=500)


class SubscriptionPatch(In):
    url: StrictStr | None = Field(default=None, max_length=2000)
    event_types: list[StrictStr] | None = None
    description: StrictStr | None = Field(default=None, max_length=500)
    active: StrictBool | None = None


class RotateIn(In):
    previous_secret_hours: StrictInt = Field(default=subs.DEFAULT_GRACE_HOURS, ge=0, le=subs.MAX_GRACE_HOURS)


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


@router.get("/webhook-subscriptions")
def list_subscriptions(request: Request, actor: Actor = Caller, program_id: str | None = None) -> dict[str, Any]:
    with reader(request, actor) as s:
        return page(SubscriptionOut, list(subs.list_subscriptions(s, actor, program_id)), None)


def _with_secret(answer: JSONResponse, shown: dict[str, str]) -> JSONResponse:
    """Idempotency-Key stores the answer without the secret; only the request that made it returns it."""
    if "secret" not in shown or answer.headers.get("Idempotent-Replayed") == "true":
        return answer
    payload = json.loads(bytes(answer.body))
    return JSONResponse({**payload, "secret": shown["secret"]}, status_code=answer.status_code)


def private_targets(request: Request) -> bool:
    """Whether this server delivers to local and private addresses, so may save URLs pointing there."""
    return bool(request.app.state.settings.outgoing_webhook_allow_private_targets)


@router.post("/webhook-subscriptions", status_code=201)
def create_subscription(request: Request, body: SubscriptionIn, actor: Actor = Caller) -> JSONResponse:
    """The answer carries `secret` this once: store it; partnerpay keeps it sealed and shows only its last four.
    A replay of the same Idempotency-Key answers `"secret": null` (rotate the secret if it was lost)."""
    need(actor, "write")
    box, shown = _box(request), {}

    def work(session: Session) -> tuple[int, Any]:
        sub, shown["secret"] = subs.create_subscription(
            session, actor=actor, box=box, now=now(request), allow_private=private_targets(request), **body.model_dump()
        )
        return 201, {**dump(SubscriptionOut, sub), "secret": None}

    return _with_secret(idempotency.run(request, actor, body.model_dump(mode="json"), work), shown)


@router.get("/webhook-subscriptions/{subscription_id}")
def get_subscription(request: Request, subscription_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(SubscriptionOut, subs.get_subscription(s, actor, subscription_id))


@router.patch("/webhook-subscriptions/{subscription_id}")
def update_subscription(
    request: Request, subscription_id: str, body: SubscriptionPatch, actor: Actor = Caller
) -> JSONResponse:
    need(actor, "write")
    changes = body.model_dump(exclude_unset=True)

    def work(session: Session) -> tuple[int, Any]:
        sub = subs.update_subscription(
            session, actor=actor, subscription_id=subscription_id, changes=changes, now=now(request),
            allow_private=private_targets(request),
        )  # fmt: skip
        return 200, dump(SubscriptionOut, sub)

    return idempotency.run(request, actor, changes, work)


@router.post("/webhook-subscriptions/{subscription_id}/rotate-secret")
def rotate_secret(request: Request, subscription_id: str, body: RotateIn | None = None,
                  actor: Actor = Caller) -> JSONResponse:  # fmt: skip
    """A new secret, in this answer only; the previous one also signs for previous_secret_hours (default 24)."""
    need(actor, "write")
    hours, shown = (body or RotateIn()).previous_secret_hours, {}

    def work(session: Session) -> tuple[int, Any]:
        sub, shown["secret"] = subs.rotate_secret(session, actor=actor, box=_box(request),
                                                  subscription_id=subscription_id, previous_secret_hours=hours,
                                                  now=now(request))  # fmt: skip
        return 200, {**dump(SubscriptionOut, sub), "secret": None}

    answer = idempotency.run(request, actor, {"previous_secret_hours": hours}, work)
    return _with_secret(answer, shown)


@router.get("/webhook-subscriptions/{subscription_id}/deliveries")
def list_deliveries(
    request: Request,
    subscription_id: str,
    actor: Actor = Caller,
    status: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """The delivery log, oldest first (paged by cursor); `status` filters (pending, retrying, delivered, dead)."""
    with reader(request, actor) as s:
        sub = subs.get_subscription(s, actor, subscription_id)
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        result = paginate(s, stmt, WebhookDelivery.id, cursor=cursor, limit=limit)
        return page(DeliveryOut, result.data, result.next_cursor)


@router.get("/webhook-deliveries/{delivery_id}")
def get_delivery(request: Request, delivery_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """One delivery with every attempt (status code, the answer's first 500 characters, duration)."""
    with reader(request, actor) as s:
        found = deliveries.get_delivery(s, actor, delivery_id)
        attempts = [dump(AttemptOut, a) for a in deliveries.attempts_of(s, found.id)]
        return {**dump(DeliveryOut, found), "attempts": attempts}


@router.post("/webhook-deliveries/{delivery_id}/replay", status_code=201)
def replay(request: Request, delivery_id: str, actor: Actor = Caller) -> JSONResponse:
    """Send the same event (same id and body) again, newly signed, as a new delivery; audited."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        return 201, dump(DeliveryOut, deliveries.replay(session, actor=actor, delivery_id=delivery_id,
                                                         now=now(request)))  # fmt: skip

    return idempotency.run(request, actor, {}, work)
