"""Delivering an outgoing webhook: the outbox jobs of an attempt, its retries, and replay.

An attempt is two jobs. `webhooks.deliver` (a short transaction) reads the delivery and its subscription as
they are now (a subscription turned off ends the delivery) and queues `webhooks.post` with the URL, the
event's stored body and the sealed secrets. `webhooks.post` signs for this moment and POSTs outside any
transaction (jobs.registry.External: a slow receiver never holds SQLite's write lock), connecting only to an
address it has just resolved and checked (targets.py: no loopback, private, link-local … address unless the
settings allow it), then records the attempt (status code, the first bytes of the answer, duration) and marks
the delivery delivered (2xx), queues the next `webhooks.deliver` after an exponential backoff, or gives up
(dead) after MAX_ATTEMPTS.

Delivery is at least once: should the worker die between the receiver's 2xx and the commit, the attempt is
made again. Receivers deduplicate on the Partnerpay-Event-Id header, which every attempt and replay of an
event carries unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import External, Handler, JobContext, PermanentJobError
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound
from partnerpay.kit.ids import new_id
from partnerpay.webhooks_out import signing
from partnerpay.webhooks_out.emit import DELIVER_JOB
from partnerpay.webhooks_out.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from partnerpay.webhooks_out.subscriptions import secrets_of
from partnerpay.webhooks_out.targets import (
    Resolver,
    Target,
    TargetRefused,
    TargetUnresolved,
    resolve_target,
    system_resolve,
)

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 6 * 3600
EXCERPT_CHARS = 500
USER_AGENT = "partnerpay-webhooks/1"
POST_JOB = "webhooks.post"
DEFAULT_TIMEOUT_SECONDS = 10.0

# (checked target, body, headers, timeout) → (status code, answer text); tests and the handler share the real one.
Poster = Callable[[Target, bytes, dict[str, str], float], tuple[int, str]]


def retry_delay(attempts: int) -> timedelta:
    """Wait after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min … doubling, at most 6 h (about 1 h in all
    before the 8th and last attempt)."""
    exponent = min(max(attempts - 1, 0), 20)
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2**exponent, MAX_RETRY_SECONDS))


def http_post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST to the target's checked addresses, the next one only when connecting to the previous failed (nothing
    was sent); no redirect is followed: a redirect is an answer that is not 2xx, never a new target."""
    # An explicit transport: httpx then ignores HTTP(S)_PROXY, whose proxy would resolve the name again itself
    # (and whose tunnel ignores sni_hostname); a delivery connects straight to the address it checked.
    with httpx.Client(timeout=timeout, follow_redirects=False, transport=httpx.HTTPTransport()) as client:
        for index, address in enumerate(target.addresses):
            url, host, extensions = target.pinned(address)
            try:
                response = client.post(url, content=body, headers={**headers, **host}, extensions=extensions)
            except httpx.ConnectError:
                if index + 1 == len(target.addresses):
                    raise
                continue
            return response.status_code, response.text[: EXCERPT_CHARS * 2]
    raise httpx.ConnectError(f"no address to connect to for {target.host}")


def _load(session: Session, delivery_id: Any) -> tuple[WebhookDelivery, WebhookSubscription, WebhookEvent]:
    if not isinstance(delivery_id, str):
        raise PermanentJobError(f"payload field 'delivery_id' must be a string, got {delivery_id!r}")
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise PermanentJobError(f"webhook delivery {delivery_id} does not exist")
    sub = session.get(WebhookSubscription, delivery.subscription_id)
    event = session.get(WebhookEvent, delivery.event_id)
    if sub is None or event is None:
        raise PermanentJobError(f"webhook delivery {delivery_id} lost its subscription or event")
    return delivery, sub, event


def _current(delivery: WebhookDelivery, context: JobContext) -> bool:
    """Whether this job is the delivery's next step (not delivered, not given up, not superseded)."""
    open_states = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)
    return delivery.status in open_states and delivery.job_id == context.job_id


def prepare(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Job `webhooks.deliver` {delivery_id}: a short transaction that reads the subscription as it is now and
    queues the HTTP attempt (`webhooks.post`) with what it needs: the URL, the body, the sealed secrets."""
    delivery, sub, event = _load(session, payload.get("delivery_id"))
    if not _current(delivery, context):
        return  # delivered, given up, or this job was superseded: nothing to do
    if not sub.active:
        delivery.status, delivery.job_id, delivery.next_attempt_at = DeliveryStatus.DEAD.value, None, None
        delivery.last_error = "the subscription was disabled before this attempt"
        return
    step = {"delivery_id": delivery.id, "url": sub.url, "sealed": sub.sealed, "event_id": event.id,
            "event_type": event.type, "body": event.body}  # fmt: skip
    [delivery.job_id] = enqueue(session, POST_JOB, [step], now=context.now, max_attempts=3)


# What an attempt found, from the HTTP step (no database) to the step that records it (same worker, same run).
_outcomes: dict[str, tuple[int, int | None, str, str | None, int]] = {}


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise PermanentJobError(f"payload field {name!r} must be a string")
    return value


def post_handler(
    box: Callable[[], SecretBox],
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    post: Poster = http_post,
    allow_private_targets: bool = False,
    resolve: Resolver = system_resolve,
) -> External:
    """Job `webhooks.post`: the POST runs outside the worker's transaction (jobs.registry.External), so a slow
    receiver never holds SQLite's write lock; then the attempt is recorded and, after a failure, the next
    `webhooks.deliver` is queued after the backoff (or the delivery given up). A host that resolves to a
    non-public address fails the attempt without a request (targets.py), unless `allow_private_targets`."""

    def attempt(payload: dict[str, Any], context: JobContext) -> None:
        body = _text(payload, "body").encode()
        timestamp = int(context.now.timestamp())
        secrets = secrets_of(_text(payload, "sealed"), box(), context.now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.SIGNATURE_HEADER: signing.sign(body, secrets, timestamp),
            signing.EVENT_ID_HEADER: _text(payload, "event_id"),
            signing.EVENT_TYPE_HEADER: _text(payload, "event_type"),
            signing.DELIVERY_ID_HEADER: _text(payload, "delivery_id"),
        }
        started = time.monotonic()
        status: int | None
        try:
            target = resolve_target(_text(payload, "url"), allow_private=allow_private_targets, resolve=resolve)
            status, text = post(target, body, headers, timeout_seconds)
            error = None if 200 <= status < 300 else f"the receiver answered HTTP {status}"
        except (TargetRefused, TargetUnresolved) as exc:
            # Recorded and retried like a connection error: each retry resolves and checks again.
            status, text, error = None, "", str(exc)[:500]
        except httpx.TimeoutException:
            status, text, error = None, "", f"no answer within {timeout_seconds:g} s (timeout)"
        except httpx.HTTPError as exc:
            status, text, error = None, "", f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.monotonic() - started) * 1000)
        _outcomes[context.job_id] = (timestamp, status, text[:EXCERPT_CHARS], error, duration_ms)

    def record(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        outcome = _outcomes.pop(context.job_id, None)
        if outcome is None:
            raise RuntimeError("the attempt's outcome is missing (the HTTP step did not run in this process)")
        timestamp, status, text, error, duration_ms = outcome
        delivery = session.get(WebhookDelivery, _text(payload, "delivery_id"))
        if delivery is None or not _current(delivery, context):
            return
        now = context.now
        delivery.attempts += 1
        session.add(
            WebhookAttempt(delivery_id=delivery.id, number=delivery.attempts, at=now, signed_at=timestamp,
                           status_code=status, response_excerpt=text, error=error, duration_ms=duration_ms)
        )  # fmt: skip
        delivery.last_status_code, delivery.last_error = status, error
        if error is None:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED.value, now
            delivery.job_id, delivery.next_attempt_at = None, None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status, delivery.job_id, delivery.next_attempt_at = DeliveryStatus.DEAD.value, None, None
        else:
            when = now + retry_delay(delivery.attempts)
            [job_id] = enqueue(session, DELIVER_JOB, [{"delivery_id": delivery.id}], now=now, run_after=when)
            delivery.status, delivery.job_id, delivery.next_attempt_at = DeliveryStatus.RETRYING.value, job_id, when
        session.flush()

    return External(effect=attempt, record=record)


def handlers(
    box: Callable[[], SecretBox],
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    post: Poster = http_post,
    allow_private_targets: bool = False,
    resolve: Resolver = system_resolve,
) -> list[tuple[str, Handler]]:
    """The two jobs of a delivery attempt, for jobs.handlers.build_registry."""
    poster = post_handler(box, timeout_seconds=timeout_seconds, post=post, allow_private_targets=allow_private_targets,
                          resolve=resolve)  # fmt: skip
    return [(DELIVER_JOB, prepare), (POST_JOB, poster)]


def get_delivery(session: Session, actor: Actor, delivery_id: str) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or actor.partner_id is not None or not actor.sees_program(delivery.program_id):
        raise NotFound(f"webhook delivery {delivery_id} not found", field="delivery_id")
    return delivery


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.number)
    return list(session.scalars(stmt))


def replay(session: Session, *, actor: Actor, delivery_id: str, now: datetime) -> WebhookDelivery:
    """Send the delivery's event again (same event id, same body, a new timestamp and signature) as a new
    delivery with its own attempts and retries; audited."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("replaying a webhook needs the 'write' scope of a staff user or API key")
    original = get_delivery(session, actor, delivery_id)
    sub = session.get(WebhookSubscription, original.subscription_id)
    if sub is None or not sub.active:
        raise InvalidTransition(
            f"subscription {original.subscription_id} is disabled; enable it to replay", field="delivery_id"
        )
    fresh_id = new_id("whd")
    [job_id] = enqueue(session, DELIVER_JOB, [{"delivery_id": fresh_id}], now=now)
    fresh = WebhookDelivery(
        id=fresh_id,
        program_id=original.program_id,
        subscription_id=original.subscription_id,
        event_id=original.event_id,
        event_type=original.event_type,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        job_id=job_id,
        next_attempt_at=now,
        replay_of=original.replay_of or original.id,
        created_at=now,
    )
    session.add(fresh)
    session.flush()
    audit.record(session, actor=actor, action="webhook_delivery.replay", object_type="webhook_delivery",
                 object_id=fresh.id, program_id=fresh.program_id, now=now,
                 before={"delivery_id": original.id, "status": original.status},
                 after={"event_id": fresh.event_id, "subscription_id": fresh.subscription_id,
                        "replay_of": fresh.replay_of})  # fmt: skip
    return fresh
