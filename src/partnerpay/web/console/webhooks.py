"""Console Settings > Webhooks: a program's subscriptions (add, with the secret shown once on the answer page;
turn off or on; rotate the secret) and each subscription's delivery log with its attempts and "Replay"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import PartnerpayError
from partnerpay.web.api.v1.webhook_subscriptions import private_targets
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.partner_pages import write
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.webhooks_out import delivery as deliveries
from partnerpay.webhooks_out import subscriptions as subs
from partnerpay.webhooks_out.models import WebhookAttempt, WebhookDelivery
from partnerpay.webhooks_out.types import EVENT_TYPES

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Many = Annotated[list[str] | None, Form()]
SHOWN = 100


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


def list_page(
    request: Request, me: Actor, *, error: str | None = None, values: dict[str, Any] | None = None,
    secret: tuple[str, str] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    with reading(request) as session:
        context = {
            "area": "console",
            "me": me,
            "page": "settings",
            "rows": list(subs.list_subscriptions(session, me, None)),
            "programs": queries.program_names(session),
            "event_types": EVENT_TYPES,
            "error": error,
            "values": values or {},
            "secret": secret,
        }
    return render(request, "console/webhooks.html", context, status_code=status_code)


@router.get("/webhooks")
def show_subscriptions(request: Request, me: Actor = Staff) -> Response:
    return list_page(request, me)


@router.post("/webhooks")
def add_subscription(
    request: Request,
    me: Actor = Staff,
    program_id: Text = "",
    url: Text = "",
    event_types: Many = None,
    description: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    """Answered with the page itself (no redirect): the secret is on it once and in no cookie or flash."""
    check_form_csrf(request, csrf_token)
    made: dict[str, str] = {}

    def work(s: Session) -> str:
        sub, made["secret"] = subs.create_subscription(s, actor=me, box=_box(request), program_id=program_id,
                                                       url=url, event_types=event_types or [],
                                                       description=description, now=now(request),
                                                       allow_private=private_targets(request))  # fmt: skip
        made["id"] = sub.id
        return sub.id

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        values = {"program_id": program_id, "url": url, "event_types": event_types or [], "description": description}
        return list_page(request, me, error=result.message, values=values, status_code=result.status)
    return list_page(request, me, secret=(made["id"], made["secret"]))


def detail_page(
    request: Request, me: Actor, subscription_id: str, *, error: str | None = None,
    secret: str | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    with reading(request) as session:
        sub = subs.get_subscription(session, me, subscription_id)
        rows = list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == sub.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(SHOWN)
            )
        )
        attempts: dict[str, list[WebhookAttempt]] = {}
        if rows:
            stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in rows]))
            for attempt in session.scalars(stmt.order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)):
                attempts.setdefault(attempt.delivery_id, []).append(attempt)
        context = {
            "area": "console",
            "me": me,
            "page": "settings",
            "sub": sub,
            "program_name": queries.program_names(session).get(sub.program_id, sub.program_id),
            "rows": rows,
            "attempts": attempts,
            "error": error,
            "secret": secret,
        }
    return render(request, "console/webhook.html", context, status_code=status_code)


@router.get("/webhooks/{subscription_id}")
def show_subscription(request: Request, subscription_id: str, me: Actor = Staff) -> Response:
    return detail_page(request, me, subscription_id)


@router.post("/webhooks/{subscription_id}/toggle")
def toggle(request: Request, subscription_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        sub = subs.get_subscription(s, me, subscription_id)
        done = subs.update_subscription(s, actor=me, subscription_id=sub.id, changes={"active": not sub.active},
                                        now=now(request))  # fmt: skip
        return f"Subscription {'on' if done.active else 'off'}: {done.url}"

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return detail_page(request, me, subscription_id, error=result.message, status_code=result.status)
    flash(request, result)
    return redirect(f"/webhooks/{subscription_id}")


@router.post("/webhooks/{subscription_id}/rotate")
def rotate(request: Request, subscription_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)
    made: dict[str, str] = {}

    def work(s: Session) -> str:
        _, made["secret"] = subs.rotate_secret(s, actor=me, box=_box(request), subscription_id=subscription_id,
                                               now=now(request))  # fmt: skip
        return "rotated"

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return detail_page(request, me, subscription_id, error=result.message, status_code=result.status)
    return detail_page(request, me, subscription_id, secret=made["secret"])


@router.post("/webhooks/deliveries/{delivery_id}/replay")
def replay(request: Request, delivery_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)
    found: dict[str, str] = {}

    def work(s: Session) -> str:
        fresh = deliveries.replay(s, actor=me, delivery_id=delivery_id, now=now(request))
        found["subscription_id"] = fresh.subscription_id
        return f"Event {fresh.event_id} queued again as delivery {fresh.id}."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return list_page(request, me, error=result.message, status_code=result.status)
    flash(request, result)
    return redirect(f"/webhooks/{found['subscription_id']}")
