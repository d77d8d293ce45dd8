"""HubSpot webhooks: the v3 signature check (PROVIDERS.md §4) and what each HubSpot event means to partnerpay.

Unlike the payment providers, a HubSpot event does not become an event row by itself: a deal-stage change moves
the linked partner deal (deals.service.move_deal), which writes its own audit row, timeline line and, for won,
the deal_won event the commission engine consumes. So this mapper writes, inside the inbox processor's nested
transaction (a failure rolls the move back with the item), and returns Facts only for what move_deal does not
record itself: demo_booked when a deal reaches the demo stage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.deals.models import Deal, DealActivity
from partnerpay.deals.rules import DealStatus, minor_units
from partnerpay.deals.service import deal_by_crm_id, move_deal
from partnerpay.events.schemas import EventType
from partnerpay.inbox.mapping import Facts, Ignore, Outcome, event_in
from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.inbox.service import provider_actor
from partnerpay.integrations import hubspot_client
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import ConcurrentWrite, InvalidTransition, ValidationError
from partnerpay.programs.models import Program
from partnerpay.settings import Settings

PROVIDER = "hubspot"
TOLERANCE_MS = 5 * 60 * 1000
DEMO_STAGE = "demo"
# HubSpot's default sales pipeline (internal stage ids) onto partnerpay's default stages; a program with its own
# pipeline sets stage_map in the integration config.
DEFAULT_STAGE_MAP = {
    "appointmentscheduled": "demo",
    "qualifiedtobuy": "qualified",
    "presentationscheduled": "demo",
    "decisionmakerboughtin": "proposal",
    "contractsent": "negotiation",
    "closedwon": "won",
    "closedlost": "lost",
}
# HubSpot decodes exactly these before signing (its request-validation page); any other %XX stays encoded.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ENCODED = re.compile("|".join(_DECODED), re.IGNORECASE)
KNOWN = frozenset({"deal.propertyChange", "deal.creation", "deal.deletion"})


def signed_uri(uri: str) -> str:
    return _ENCODED.sub(lambda m: _DECODED[m.group(0).upper()], uri)


def sign_v3(method: str, uri: str, body: bytes, timestamp: str, secret: str) -> str:
    """Base64 HMAC-SHA256 of method + uri + body + timestamp, keyed by the app's client secret."""
    source = method.encode() + signed_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def verify_signature_v3(
    method: str,
    uri: str,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    secrets: list[str],
    now: datetime,
) -> None:
    """Accept when the signature matches any current client secret and the timestamp is within 5 minutes."""
    if not secrets:
        raise SignatureRefused(
            "this program has no HubSpot client secret; set it as the integration's webhook_secret",
            field="webhook_secret",
        )
    if not signature_header:
        raise SignatureRefused("the X-HubSpot-Signature-v3 header is missing", field="X-HubSpot-Signature-v3")
    if not timestamp_header or not timestamp_header.strip().isdigit():
        raise SignatureRefused(
            "X-HubSpot-Request-Timestamp must be Unix milliseconds", field="X-HubSpot-Request-Timestamp"
        )
    timestamp = timestamp_header.strip()
    # HubSpot asks to refuse timestamps older than 5 minutes; one far in the future is refused too, as a
    # signature made ahead of time could otherwise be replayed for as long as it stays in the future.
    if abs(int(now.timestamp() * 1000) - int(timestamp)) > TOLERANCE_MS:
        raise SignatureRefused(
            "the request timestamp is more than 5 minutes from now", field="X-HubSpot-Request-Timestamp"
        )
    given = signature_header.strip()
    if not any(hmac.compare_digest(sign_v3(method, uri, body, timestamp, s), given) for s in secrets):
        raise SignatureRefused(
            "X-HubSpot-Signature-v3 matches none of this program's client secrets", field="X-HubSpot-Signature-v3"
        )


def classify(event: dict[str, Any]) -> tuple[InboxStatus, str | None]:
    """What an event needs on arrival: processing, or nothing (ignored, with the reason)."""
    kind = event.get("subscriptionType")
    if kind not in KNOWN:
        return InboxStatus.IGNORED, f"partnerpay does not use HubSpot {kind} events"
    if kind == "deal.creation":
        return InboxStatus.IGNORED, (
            "partnerpay deals come from partner registrations; a HubSpot deal is followed once a partner deal "
            "is linked to it (pushed to HubSpot, or its crm_id set)"
        )
    if kind == "deal.propertyChange" and event.get("propertyName") != "dealstage":
        return InboxStatus.IGNORED, f"partnerpay follows dealstage changes only, not {event.get('propertyName')}"
    return InboxStatus.RECEIVED, None


def _when(event: dict[str, Any], received_at: datetime) -> datetime:
    """When HubSpot says the change happened; never after partnerpay received it (a skewed clock)."""
    value = event.get("occurredAt")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return received_at
    return min(datetime.fromtimestamp(value / 1000, UTC), received_at)


def _last_move(session: Session, deal: Deal) -> datetime | None:
    """When the deal last changed stage (HubSpot moves are stamped with HubSpot's occurredAt)."""
    return session.scalar(
        select(func.max(DealActivity.at)).where(DealActivity.deal_id == deal.id, DealActivity.kind == "deal.stage")
    )


def secret_box() -> SecretBox:
    """The worker's key for sealed credentials: the same PARTNERPAY_SECRET_KEY the web process seals with."""
    try:
        return Settings().secret_box()
    except RuntimeError as exc:
        raise ValidationError(str(exc), field="access_token") from None


def _won_amount(session: Session, deal: Deal, program: Program, crm_id: str) -> tuple[int, str]:
    """HubSpot sends only the stage: the partner deal's own amount, else the HubSpot deal's amount property."""
    if deal.amount is not None:
        return deal.amount, deal.currency or program.currency
    box = secret_box()
    if hubspot_client.access_token(session, deal.program_id, box) is None:
        raise ValidationError(
            f"HubSpot deal {crm_id} was won but deal {deal.id} has no amount: set the deal's amount in partnerpay, "
            "or an access_token so partnerpay can read it from HubSpot, then retry this item",
            field="amount",
        )
    try:
        with hubspot_client.client_for(session, deal.program_id, box) as client:
            props = client.get_deal(crm_id, ["amount", "deal_currency_code"])
    except hubspot_client.HubSpotError as exc:
        if exc.retryable:  # HubSpot down or busy: a plain error makes the outbox retry the job later
            raise RuntimeError(exc.message) from None
        raise
    currency = str(props.get("deal_currency_code") or deal.currency or program.currency).upper()
    text = props.get("amount")
    amount = minor_units(text, currency, field="amount") if isinstance(text, str) else None
    if amount is None:
        raise ValidationError(
            f"HubSpot deal {crm_id} was won but has no amount in HubSpot nor in partnerpay (deal {deal.id})",
            field="amount",
        )
    return amount, currency


def _deal_stage(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    crm_id, value = str(event.get("objectId") or ""), event.get("propertyValue")
    if not crm_id or not isinstance(value, str) or not value:
        raise ValidationError("a dealstage change needs objectId and propertyValue", field="propertyValue")
    deal = deal_by_crm_id(session, program_id=item.program_id, crm_id=crm_id)
    if deal is None:
        return Ignore(f"HubSpot deal {crm_id} is not linked to a partner deal")
    stage_map = config.get("stage_map") or DEFAULT_STAGE_MAP
    target = stage_map.get(value)
    if target is None:
        raise ValidationError(
            f"HubSpot stage {value!r} is not in the integration's stage_map; add it, then retry this item",
            field="stage_map",
        )
    if deal.status != DealStatus.OPEN:
        return Ignore(f"deal {deal.id} is already {deal.status}; HubSpot stage {value} changes nothing")
    program = session.get(Program, deal.program_id)
    assert program is not None
    actor, now = provider_actor(PROVIDER, item.program_id), _when(event, item.received_at)
    last = _last_move(session, deal)
    if last is not None and now < (last if last.tzinfo else last.replace(tzinfo=UTC)):
        # HubSpot does not promise order: a change older than the deal's last move must not undo it.
        return Ignore(f"HubSpot stage {value} (changed {now:%Y-%m-%d %H:%M:%S}) is older than the deal's last move")
    try:
        if target == DealStatus.WON:
            amount, currency = _won_amount(session, deal, program, crm_id)
            move_deal(session, actor=actor, deal_id=deal.id, status="won", amount=amount, currency=currency,
                      source="hubspot", now=now)  # fmt: skip
        elif target == DealStatus.LOST:
            move_deal(session, actor=actor, deal_id=deal.id, status="lost", source="hubspot", now=now,
                      reason=f"closed lost in HubSpot (deal {crm_id}, stage {value})")  # fmt: skip
        else:
            move_deal(session, actor=actor, deal_id=deal.id, stage=target, source="hubspot", now=now)
    except InvalidTransition as exc:  # closed meanwhile: a resend or a late change, not a failure to retry
        return Ignore(f"HubSpot stage {value} not applied: {exc.message}")
    except ConcurrentWrite as exc:
        # Someone moved the deal at the same moment: a plain error makes the outbox retry the whole job.
        raise RuntimeError(f"deal {deal.id} changed while applying HubSpot stage {value}; retrying") from exc
    item.note = f"deal {deal.id} moved to {target} (HubSpot stage {value})"
    if target != DEMO_STAGE:
        return Facts([])
    # move_deal records no event for stages; a demo is a conversion programs pay for (demo_booked).
    demo = event_in(
        program_id=item.program_id,
        type=EventType.DEMO_BOOKED,
        external_id=f"hubspot-demo:{crm_id}",
        occurred_at=now,
        customer_external_id=deal.customer_external_id or deal.domain or f"deal:{deal.id}",
        partner_id=deal.partner_id,
        metadata={"hubspot_deal": crm_id, "deal_id": deal.id, "hubspot_stage": value},
    )
    # lenient: a deal that reaches demo twice (moved back and forth) was booked once.
    return Facts([demo], lenient=True)


def _deal_deleted(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    crm_id = str(event.get("objectId") or "")
    deal = deal_by_crm_id(session, program_id=item.program_id, crm_id=crm_id) if crm_id else None
    if deal is None:
        return Ignore(f"HubSpot deal {crm_id} was deleted; it is not linked to a partner deal")
    return Ignore(
        f"HubSpot deal {crm_id} was deleted; partner deal {deal.id} stays {deal.status} at {deal.stage}: "
        "close it in partnerpay if it should"
    )


def map_event(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """What one stored HubSpot event means (the stored body is that one event of HubSpot's batch)."""
    if not isinstance(event.get("subscriptionType"), str) or event.get("eventId") is None:
        raise ValidationError("the event needs an eventId and a subscriptionType", field="subscriptionType")
    status, note = classify(event)
    if status is InboxStatus.IGNORED:
        return Ignore(note or "not used")
    if event.get("subscriptionType") == "deal.deletion":
        return _deal_deleted(session, item, event, config)
    return _deal_stage(session, item, event, config)
