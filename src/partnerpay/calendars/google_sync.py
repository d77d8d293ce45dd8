"""Google Calendar for a program's team: connecting (OAuth2 with PKCE) and the sync job.

Every HTTP call to Google runs in an outbox job, never in a request: the consent callback only stores the
authorization code (sealed) and queues `google_calendar.connect`, which exchanges it for a refresh token;
`google_calendar.sync` mirrors the program's calendar items (scheduled payout runs, deal follow-ups) as
events. Each item's event id is derived from the item (google_calendar.event_id_for) and stored with a hash of
what was sent, so a sync patches only what changed, deletes what is gone, and a retried job never duplicates.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.calendars.items import CalendarItem, program_items
from partnerpay.calendars.models import GoogleCalendarEvent, GoogleCalendarLink
from partnerpay.integrations import google_calendar as google
from partnerpay.integrations.settings_store import get_integration
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import Handler, JobContext, PermanentJobError
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.settings import Settings

CONNECT_JOB = "google_calendar.connect"
SYNC_JOB = "google_calendar.sync"
CALLBACK_PATH = "/integrations/google-calendar/callback"
SYNC_EVERY = timedelta(minutes=15)
JOB_ACTOR = Actor(ActorType.SYSTEM, "google_calendar", frozenset({"read", "write"}), label="Google Calendar sync")


class Status:
    CONSENT_ASKED = "consent_asked"
    EXCHANGING = "exchanging"
    CONNECTED = "connected"
    FAILED = "failed"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _credentials(session: Session, box: SecretBox, program_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sealed secrets, config) of the program's google_calendar integration; client_id/secret are required."""
    row = get_integration(session, program_id, google.PROVIDER)
    if row is None:
        raise ValidationError(
            "set client_id and client_secret under integrations/google_calendar first", field="client_id"
        )
    opened, config = box.decrypt(row.sealed), dict(row.config)
    if not config.get("client_id") or not opened.get("client_secret"):
        raise ValidationError("the google_calendar integration needs client_id and client_secret", field="client_id")
    return opened, config


def start_connect(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    program_id: str,
    base_url: str,
    endpoints: google.Endpoints,
    now: datetime,
) -> str:
    """Begin consent: remember a one-time state and PKCE verifier; the URL to send the staff user to."""
    if actor.type is not ActorType.STAFF or not actor.can("write"):
        raise Forbidden("connecting Google Calendar needs a staff user with the 'write' scope")
    program = get_program(session, actor, program_id)
    _, config = _credentials(session, box, program.id)
    state, (verifier, challenge) = secrets.token_urlsafe(32), google.pkce_pair()
    link = session.get(GoogleCalendarLink, program.id)
    if link is None:
        link = GoogleCalendarLink(program_id=program.id, status=Status.CONSENT_ASKED, sealed="", updated_at=now)
        session.add(link)
    opened = box.decrypt(link.sealed) if link.sealed else {}
    link.sealed = box.encrypt({**opened, "code_verifier": verifier, "code": None})
    link.state_hash, link.status, link.updated_at = _hash(state), Status.CONSENT_ASKED, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="google_calendar.consent_asked",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        now=now,
    )
    return google.consent_url(
        endpoints,
        client_id=str(config["client_id"]),
        redirect_uri=base_url.rstrip("/") + CALLBACK_PATH,
        state=state,
        code_challenge=challenge,
    )


def finish_connect(session: Session, *, actor: Actor, box: SecretBox, state: str, code: str, now: datetime) -> str:
    """Google sent the user back: keep the code (sealed) and queue its exchange; the program id."""
    if actor.type is not ActorType.STAFF or not actor.can("write"):
        raise Forbidden("connecting Google Calendar needs a staff user with the 'write' scope")
    link = session.scalar(select(GoogleCalendarLink).where(GoogleCalendarLink.state_hash == _hash(state or "-")))
    if link is None or link.status != Status.CONSENT_ASKED:
        raise NotFound("this Google consent is unknown or was already used: connect again", field="state")
    get_program(session, actor, link.program_id)  # the same staff scope that asked
    if not code or len(code) > 2000:
        raise ValidationError("Google sent no authorization code", field="code")
    link.sealed = box.encrypt({**box.decrypt(link.sealed), "code": code})
    link.state_hash, link.status, link.updated_at = None, Status.EXCHANGING, now
    enqueue(session, CONNECT_JOB, [{"program_id": link.program_id}], now=now)
    audit.record(
        session,
        actor=actor,
        action="google_calendar.consent_given",
        object_type="program",
        object_id=link.program_id,
        program_id=link.program_id,
        now=now,
    )
    return link.program_id


def request_sync(session: Session, *, actor: Actor, program_id: str, now: datetime) -> str:
    """Queue a sync of the program's calendar now; the job id."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("syncing Google Calendar needs the 'write' scope")
    program = get_program(session, actor, program_id)
    link = session.get(GoogleCalendarLink, program.id)
    if link is None or link.status != Status.CONNECTED:
        raise ValidationError(f"program {program.id} has no connected Google Calendar", field="google_calendar")
    return enqueue(session, SYNC_JOB, [{"program_id": program.id}], now=now)[0]


def _store_refresh_token(session: Session, box: SecretBox, program_id: str, token: str, now: datetime) -> None:
    row = get_integration(session, program_id, google.PROVIDER)
    assert row is not None
    row.sealed = box.encrypt({**box.decrypt(row.sealed), "refresh_token": token})
    row.updated_at = now
    audit.record(
        session,
        actor=JOB_ACTOR,
        action="integration.google_calendar.connect",
        object_type="program_integration",
        object_id=row.id,
        program_id=program_id,
        now=now,
        after={"refresh_token": "set"},
    )


def connect(
    session: Session,
    *,
    box: SecretBox,
    program_id: str,
    http: httpx.Client,
    endpoints: google.Endpoints,
    base_url: str,
    now: datetime,
) -> None:
    """The job's work: exchange the stored code for tokens, keep the refresh token sealed, queue a first sync."""
    link = session.get(GoogleCalendarLink, program_id, with_for_update=True)
    if link is None or link.status != Status.EXCHANGING:
        return  # exchanged already (a rerun), or consent asked again meanwhile
    opened = box.decrypt(link.sealed)
    secrets_, config = _credentials(session, box, program_id)
    try:
        tokens = google.exchange_code(
            http,
            endpoints,
            client_id=str(config["client_id"]),
            client_secret=str(secrets_["client_secret"]),
            code=str(opened.get("code")),
            code_verifier=str(opened.get("code_verifier")),
            redirect_uri=base_url.rstrip("/") + CALLBACK_PATH,
            now=now,
        )
    except google.ConsentRevoked as exc:
        link.status, link.last_error, link.updated_at = Status.FAILED, exc.message, now
        return
    if not tokens.refresh_token:
        link.status, link.updated_at = Status.FAILED, now
        link.last_error = (
            "Google returned no refresh token: remove partnerpay's access in the Google account, then connect again"
        )
        return
    _store_refresh_token(session, box, program_id, tokens.refresh_token, now)
    link.sealed = box.encrypt({"access_token": tokens.access_token})
    link.access_expires_at, link.status, link.last_error, link.updated_at = (
        tokens.expires_at,
        Status.CONNECTED,
        None,
        now,
    )
    enqueue(session, SYNC_JOB, [{"program_id": program_id}], now=now)


def event_body(item: CalendarItem, base_url: str) -> dict[str, Any]:
    """The Google event for an item: timed (UTC) or all-day (end date exclusive)."""
    if isinstance(item.start, datetime):
        start = item.start.astimezone(UTC)
        when = {
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=item.minutes)).isoformat(), "timeZone": "UTC"},
        }
    else:
        assert isinstance(item.start, date)
        when = {
            "start": {"date": item.start.isoformat()},
            "end": {"date": (item.start + timedelta(days=1)).isoformat()},
        }
    return {
        "summary": item.summary,
        "description": f"{item.description}\n\n{base_url.rstrip('/')}{item.path}",
        **when,
        "transparency": "transparent",
        "source": {"title": "partnerpay", "url": base_url.rstrip("/") + item.path},
        "extendedProperties": {"private": {"partnerpay_key": item.key, "partnerpay_kind": item.kind.value}},
    }


def _past_run(key: str, now: datetime) -> bool:
    """A payout run that took place leaves the feed but stays in the team's Google calendar, as its history."""
    if not key.startswith("payout-run-"):
        return False
    try:
        at = datetime.strptime(key.rsplit("-", 1)[-1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return at <= now


def _content_hash(body: dict[str, Any]) -> str:
    return _hash(json.dumps(body, sort_keys=True, separators=(",", ":")))


def sync_program(
    session: Session,
    *,
    box: SecretBox,
    program_id: str,
    http: httpx.Client,
    endpoints: google.Endpoints,
    base_url: str,
    now: datetime,
) -> dict[str, int]:
    """Mirror the program's items into its Google calendar; counts of created/updated/deleted/unchanged."""
    link = session.get(GoogleCalendarLink, program_id, with_for_update=True)
    program = session.get(Program, program_id)
    if link is None or program is None or link.status != Status.CONNECTED:
        return {}
    secrets_, config = _credentials(session, box, program_id)
    if not secrets_.get("refresh_token"):
        raise PermanentJobError(f"program {program_id}: Google Calendar has no refresh token; connect again")
    opened = box.decrypt(link.sealed)

    def keep(tokens: google.Tokens) -> None:
        link.sealed = box.encrypt({"access_token": tokens.access_token})
        link.access_expires_at = tokens.expires_at

    client = google.CalendarClient(
        http,
        endpoints,
        client_id=str(config["client_id"]),
        client_secret=str(secrets_["client_secret"]),
        refresh_token=str(secrets_["refresh_token"]),
        calendar_id=str(config.get("calendar_id") or "primary"),
        access_token=opened.get("access_token"),
        expires_at=link.access_expires_at,
        now=lambda: now,
        on_refresh=keep,
    )
    counts = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    known = {
        e.item_key: e
        for e in session.scalars(select(GoogleCalendarEvent).where(GoogleCalendarEvent.program_id == program_id))
    }
    wanted = {item.key: item for item in program_items(session, program, now)}
    for key, item in wanted.items():
        body = event_body(item, base_url)
        digest = _content_hash(body)
        row = known.get(key)
        if row is not None and row.state == "created" and row.content_hash == digest:
            counts["unchanged"] += 1
            continue
        if row is None:
            row = GoogleCalendarEvent(
                id=new_id("gce"),
                program_id=program_id,
                item_key=key,
                event_id=google.event_id_for(program_id, key),
                state="new",
                content_hash="",
                synced_at=now,
            )
            session.add(row)
        if row.state == "created":
            client.patch(row.event_id, body)
            counts["updated"] += 1
        else:
            client.insert(row.event_id, body)
            counts["created"] += 1
        row.state, row.content_hash, row.synced_at = "created", digest, now
    for key, row in known.items():
        if key not in wanted and row.state == "created" and not _past_run(key, now):
            client.delete(row.event_id)
            row.state, row.synced_at = "deleted", now
            counts["deleted"] += 1
    link.last_synced_at, link.last_error = now, None
    session.flush()
    return counts


def _fail(session: Session, program_id: str, exc: google.GoogleCalendarError, now: datetime) -> None:
    link = session.get(GoogleCalendarLink, program_id)
    if link is not None:
        link.last_error, link.updated_at = exc.message, now
        if isinstance(exc, google.ConsentRevoked):
            link.status = Status.FAILED


def handler(kind: str, box_of: Any, endpoints: google.Endpoints, base_url: str, http_factory: Any = None) -> Handler:
    """The outbox handler of google_calendar.connect / .sync {program_id}."""

    def run(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        program_id = payload.get("program_id")
        if not isinstance(program_id, str):
            raise PermanentJobError(f"payload needs a program_id string, got {payload!r}")
        work = connect if kind == CONNECT_JOB else sync_program
        with http_factory() if http_factory else httpx.Client(timeout=15.0) as http:
            try:
                work(
                    session,
                    box=box_of(),
                    program_id=program_id,
                    http=http,
                    endpoints=endpoints,
                    base_url=base_url,
                    now=context.now,
                )
            except google.ConsentRevoked as exc:
                # Retrying cannot help and a dead job's writes are rolled back: say so on the link instead.
                _fail(session, program_id, exc, context.now)
            except google.GoogleCalendarError as exc:
                if exc.retryable:
                    raise  # the outbox retries later with a backoff
                raise PermanentJobError(exc.message) from None
            except ValidationError as exc:
                raise PermanentJobError(f"{exc.code}: {exc.message}") from None

    return run


def syncs_due(session: Session, now: datetime) -> list[Due]:
    """The periodic task: every connected program is synced once per quarter hour."""
    slot = int(now.timestamp() // SYNC_EVERY.total_seconds())
    ids = session.scalars(select(GoogleCalendarLink.program_id).where(GoogleCalendarLink.status == Status.CONNECTED))
    return [Due(slot=f"{pid}@{slot}", kind=SYNC_JOB, payload={"program_id": pid}) for pid in ids]


def endpoints_of(settings: Settings) -> google.Endpoints:
    return google.Endpoints(
        api_url=settings.google_calendar_api_url,
        token_url=settings.google_oauth_token_url,
        authorize_url=settings.google_oauth_authorize_url,
    )


def handlers(settings: Settings | None) -> list[tuple[str, Handler]]:
    """(kind, handler) of both Google Calendar jobs, for jobs/handlers.py::build_registry."""
    current = settings or Settings()
    return [
        (kind, handler(kind, current.secret_box, endpoints_of(current), current.base_url))
        for kind in (CONNECT_JOB, SYNC_JOB)
    ]


def status_of(session: Session, program_id: str) -> dict[str, Any]:
    """What the API and the settings page show about a program's Google Calendar."""
    link = session.get(GoogleCalendarLink, program_id)
    events = session.scalar(
        select(func.count())
        .select_from(GoogleCalendarEvent)
        .where(GoogleCalendarEvent.program_id == program_id, GoogleCalendarEvent.state == "created")
    )
    return {
        "program_id": program_id,
        "status": link.status if link is not None else "not_connected",
        "last_synced_at": link.last_synced_at.isoformat() if link is not None and link.last_synced_at else None,
        "last_error": link.last_error if link is not None else None,
        "events": int(events or 0),
    }
