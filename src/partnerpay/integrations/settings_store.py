"""Per-program provider credentials: sealed with SecretBox, shown only masked, audited on every change.

Webhook secrets rotate without lost deliveries: setting a new `webhook_secret` keeps the previous one
valid for `previous_secret_hours` (Stripe keeps an old secret up to 24 h and signs with both meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.inbox.models import ProgramIntegration
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.programs.service import get_program
from partnerpay.programs.tracking_settings import deal_stages

PROVIDERS = ("stripe", "shopify", "hubspot", "paypal", "google_calendar", "smtp")
LIVE_PROVIDERS = ("stripe", "shopify", "hubspot", "paypal", "google_calendar")  # paypal: issue 7; smtp: issue 8
# access_token: HubSpot private-app or OAuth token; refresh_token: Google Calendar OAuth (stored by
# calendars/google_sync.py after consent, or pasted by an operator).
SECRET_FIELDS: tuple[str, ...] = ("api_key", "client_secret", "access_token", "refresh_token")
# calendar_id: the Google calendar events go to (default: primary).
CONFIG_FIELDS: tuple[str, ...] = (
    "client_id", "base_url", "net_of_tax", "stage_map", "pipeline", "deal_stage_on_push", "calendar_id",
)  # fmt: skip
MAX_STAGE_MAP = 50
DEFAULT_GRACE_HOURS = 24
MAX_SECRETS = 5


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    secret: str
    expires_at: datetime | None  # None: current; else an old secret kept for rotation until then


def mask(value: str) -> str:
    """Last four characters only; shorter values are not shown at all."""
    return "••••" + value[-4:] if len(value) >= 12 else "••••"


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _secrets(opened: dict[str, Any]) -> list[WebhookSecret]:
    return [WebhookSecret(s["secret"], _parse_time(s.get("expires_at"))) for s in opened.get("webhook_secrets", [])]


def get_integration(session: Session, program_id: str, provider: str) -> ProgramIntegration | None:
    return session.scalar(
        select(ProgramIntegration).where(
            ProgramIntegration.program_id == program_id, ProgramIntegration.provider == provider
        )
    )


def webhook_secrets(integration: ProgramIntegration, box: SecretBox) -> list[WebhookSecret]:
    """Every stored webhook secret with its expiry (decrypted): web/api/v1/webhooks.py caches these."""
    return _secrets(box.decrypt(integration.sealed))


def usable(secrets: list[WebhookSecret], now: datetime) -> list[str]:
    return [s.secret for s in secrets if s.expires_at is None or s.expires_at > now]


def active_webhook_secrets(integration: ProgramIntegration, box: SecretBox, now: datetime) -> list[str]:
    """The secrets a delivery may be signed with now: the current ones and old ones still in their grace."""
    return usable(webhook_secrets(integration, box), now)


def _check_text(body: dict[str, Any], name: str, max_length: int = 500) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ValidationError(f"{name} must be a non-empty string of at most {max_length} characters", field=name)
    return value.strip()


def _check_body(body: dict[str, Any]) -> None:
    known = {"webhook_secret", "webhook_secrets", "previous_secret_hours", *SECRET_FIELDS, *CONFIG_FIELDS}
    for name in body:
        if name not in known:
            raise ValidationError(f"{name} is not a known field; known: {', '.join(sorted(known))}", field=name)
    if "webhook_secret" in body and "webhook_secrets" in body:
        raise ValidationError(
            "send webhook_secret (rotates) or webhook_secrets (replaces all), not both", field="webhook_secrets"
        )
    if "net_of_tax" in body and not isinstance(body["net_of_tax"], bool):
        raise ValidationError("net_of_tax must be true or false", field="net_of_tax")
    stage_map = body.get("stage_map")
    if stage_map is not None and (
        not isinstance(stage_map, dict)
        or not 1 <= len(stage_map) <= MAX_STAGE_MAP
        or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 100 for k, v in stage_map.items())
    ):
        raise ValidationError(
            f"stage_map must map 1 to {MAX_STAGE_MAP} CRM stage ids to partnerpay stage names (or won, lost)",
            field="stage_map",
        )
    hours = body.get("previous_secret_hours", DEFAULT_GRACE_HOURS)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 0 <= hours <= 168:
        raise ValidationError("previous_secret_hours must be an integer from 0 to 168", field="previous_secret_hours")
    listed = body.get("webhook_secrets")
    if listed is not None and (
        not isinstance(listed, list)
        or not 1 <= len(listed) <= MAX_SECRETS
        or not all(isinstance(s, str) and s.strip() for s in listed)
    ):
        raise ValidationError(
            f"webhook_secrets must be a list of 1 to {MAX_SECRETS} non-empty strings", field="webhook_secrets"
        )


def _check_stage_map(value: dict[str, str], stages: list[str]) -> dict[str, str]:
    """CRM stage id → one of the program's deal stages, won or lost (names as deal_stages stores them)."""
    wanted = {k.strip(): v.strip().lower() for k, v in value.items()}
    wrong = sorted(f"{k} → {v!r}" for k, v in wanted.items() if v not in stages)
    if wrong:
        raise ValidationError(
            f"stage_map: {', '.join(wrong)}: each value must be one of {', '.join(stages)}", field="stage_map"
        )
    return wanted


def _rotate(old: list[WebhookSecret], body: dict[str, Any], now: datetime) -> list[WebhookSecret]:
    if "webhook_secrets" in body:
        return [WebhookSecret(s.strip(), None) for s in body["webhook_secrets"]]
    new = _check_text(body, "webhook_secret")
    if new is None:
        return [s for s in old if s.expires_at is None or s.expires_at > now]
    grace = timedelta(hours=body.get("previous_secret_hours", DEFAULT_GRACE_HOURS))
    kept = [
        WebhookSecret(s.secret, s.expires_at if s.expires_at is not None else now + grace)
        for s in old
        if s.secret != new and (s.expires_at is None or s.expires_at > now) and grace
    ]
    return [WebhookSecret(new, None), *kept][:MAX_SECRETS]


def masked(integration: ProgramIntegration, box: SecretBox, now: datetime) -> dict[str, Any]:
    """What the API and console show: which fields are set, secrets by their last four, never in clear."""
    opened = box.decrypt(integration.sealed)
    return {
        "program_id": integration.program_id,
        "provider": integration.provider,
        "webhook_secrets": [
            {"secret": mask(s.secret), "expires_at": s.expires_at.isoformat() if s.expires_at else None}
            for s in _secrets(opened)
            if s.expires_at is None or s.expires_at > now
        ],
        **{name: (mask(opened[name]) if opened.get(name) else None) for name in SECRET_FIELDS},
        "config": {"net_of_tax": True, **integration.config},
        "bad_signatures": integration.bad_signatures,
        "last_bad_signature_at": integration.last_bad_signature_at,
        "updated_at": integration.updated_at,
    }


def put_integration(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    program_id: str,
    provider: str,
    body: dict[str, Any],
    now: datetime,
) -> ProgramIntegration:
    """Set a program's credentials and settings for a provider; omitted fields keep their value."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("changing integrations needs the 'write' scope of a staff user or API key")
    program = get_program(session, actor, program_id)
    if provider not in PROVIDERS:
        raise NotFound(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}", field="provider")
    if provider not in LIVE_PROVIDERS:
        raise ValidationError(f"the {provider} integration is not available yet", field="provider")
    _check_body(body)
    row = get_integration(session, program.id, provider)
    opened = box.decrypt(row.sealed) if row is not None else {}
    before = masked(row, box, now) if row is not None else None
    secrets = _rotate(_secrets(opened), body, now)
    sealed: dict[str, Any] = {
        "webhook_secrets": [
            {"secret": s.secret, "expires_at": s.expires_at.isoformat() if s.expires_at else None} for s in secrets
        ]
    }
    for name in SECRET_FIELDS:
        value = _check_text(body, name) if name in body else opened.get(name)
        if value is not None:
            sealed[name] = value
    config = dict(row.config) if row is not None else {}
    for name in CONFIG_FIELDS:
        if name == "stage_map" and body.get(name) is not None:
            config[name] = _check_stage_map(body[name], [*deal_stages(program), "won", "lost"])
        elif name in body:
            config[name] = body[name] if name == "net_of_tax" else _check_text(body, name)
    if row is None:
        row = ProgramIntegration(
            id=new_id("itg"),
            program_id=program.id,
            provider=provider,
            created_at=now,
            bad_signatures=0,
        )
        session.add(row)
    row.sealed = box.encrypt(sealed)
    row.config = config
    row.updated_at = now
    session.flush()
    after = masked(row, box, now)
    for shown in (before, after):
        if shown is not None:
            shown.pop("last_bad_signature_at", None)
            shown.pop("updated_at", None)
    audit.record(
        session,
        actor=actor,
        action="integration.update",
        object_type="program_integration",
        object_id=row.id,
        program_id=program.id,
        now=now,
        before=before,
        after=after,
    )
    return row


def count_bad_signature(session: Session, *, program_id: str, provider: str, now: datetime) -> None:
    """One more refused delivery for the health view. Not audited: anyone can send garbage, and the audit
    log must not grow at an attacker's pace."""
    session.execute(
        update(ProgramIntegration)
        .where(ProgramIntegration.program_id == program_id, ProgramIntegration.provider == provider)
        .values(bad_signatures=ProgramIntegration.bad_signatures + 1, last_bad_signature_at=now)
    )
