"""A small Google Calendar API v3 client (PROVIDERS.md §8) with OAuth2: consent URL with PKCE, code exchange,
token refresh, and event insert / patch / delete over httpx.

Idempotency rules the sync relies on:
- an insert carries a client-chosen event `id` (base32hex); a retried insert whose first answer was lost gets
  409 (the id exists) and is treated as done: the event is then patched to the wanted content;
- a delete answered 404 or 410 (gone already, or deleted in Google by someone) is done;
- a 401 refreshes the access token once and retries the call once.
Other refusals raise GoogleCalendarError naming the status and Google's message, never a token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from partnerpay.kit.errors import PartnerpayError

PROVIDER = "google_calendar"
SCOPE = "https://www.googleapis.com/auth/calendar.events"
DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
DEFAULT_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
EXPIRY_MARGIN = timedelta(seconds=60)  # refresh a token a minute before Google would refuse it


class GoogleCalendarError(PartnerpayError):
    """Google refused or could not be reached; `retryable` when trying again later can help."""

    code = "google_calendar_error"
    status = 502

    def __init__(self, message: str, *, http_status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message, field="google_calendar")
        self.http_status = http_status
        self.retryable = retryable


class ConsentRevoked(GoogleCalendarError):
    """invalid_grant: the refresh token (or authorization code) is revoked, expired or used: ask consent again."""

    code = "google_calendar_consent_revoked"


@dataclass(frozen=True, slots=True)
class Endpoints:
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    authorize_url: str = DEFAULT_AUTHORIZE_URL


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    expires_at: datetime
    refresh_token: str | None = None  # only from a code exchange (refreshes normally return none)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def consent_url(endpoints: Endpoints, *, client_id: str, redirect_uri: str, state: str, code_challenge: str) -> str:
    """Where the staff user is sent to grant access; offline + consent so Google returns a refresh token."""
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": SCOPE,
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{endpoints.authorize_url}?{urlencode(query)}"


def event_id_for(program_id: str, item_key: str) -> str:
    """A deterministic Google event id: hex (a subset of base32hex), 40 characters, unique per item."""
    return hashlib.sha256(f"partnerpay:{program_id}:{item_key}".encode()).hexdigest()[:40]


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        if isinstance(error, str):
            return f"{error}: {body.get('error_description', '')}".strip(": ")[:300]
    return str(body)[:300]


def _token_request(http: httpx.Client, endpoints: Endpoints, form: dict[str, str], now: datetime) -> Tokens:
    try:
        response = http.post(endpoints.token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise GoogleCalendarError(
            f"Google's token endpoint could not be reached: {type(exc).__name__}", retryable=True
        ) from None
    if response.status_code == 400 and "invalid_grant" in response.text:
        raise ConsentRevoked("Google refused the grant (invalid_grant): connect Google Calendar again", http_status=400)
    if response.status_code != 200:
        raise GoogleCalendarError(
            f"Google's token endpoint answered {response.status_code}: {_message(response)}",
            http_status=response.status_code,
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    body = response.json()
    return Tokens(
        access_token=str(body["access_token"]),
        expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
        refresh_token=body.get("refresh_token"),
    )


def exchange_code(
    http: httpx.Client,
    endpoints: Endpoints,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    now: datetime,
) -> Tokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
    }
    return _token_request(http, endpoints, form, now)


def refresh_access(
    http: httpx.Client, endpoints: Endpoints, *, client_id: str, client_secret: str, refresh_token: str, now: datetime
) -> Tokens:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    return _token_request(http, endpoints, form, now)


class CalendarClient:
    """Events of one calendar; refreshes its access token when missing, expiring or refused (401)."""

    def __init__(
        self,
        http: httpx.Client,
        endpoints: Endpoints,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        calendar_id: str,
        access_token: str | None,
        expires_at: datetime | None,
        now: Callable[[], datetime],
        on_refresh: Callable[[Tokens], None] = lambda tokens: None,
    ) -> None:
        self._http = http
        self._endpoints = endpoints
        self._client_id, self._client_secret, self._refresh_token = client_id, client_secret, refresh_token
        self._events = f"{endpoints.api_url.rstrip('/')}/calendars/{quote(calendar_id, safe='')}/events"
        self._token, self._expires_at = access_token, expires_at
        self._now = now
        self._on_refresh = on_refresh

    def _refresh(self) -> str:
        tokens = refresh_access(
            self._http,
            self._endpoints,
            client_id=self._client_id,
            client_secret=self._client_secret,
            refresh_token=self._refresh_token,
            now=self._now(),
        )
        self._token, self._expires_at = tokens.access_token, tokens.expires_at
        self._on_refresh(tokens)
        return tokens.access_token

    def _access_token(self) -> str:
        if self._token is None or self._expires_at is None or self._expires_at - EXPIRY_MARGIN <= self._now():
            return self._refresh()
        return self._token

    def _send(self, method: str, url: str, body: dict[str, Any] | None) -> httpx.Response:
        token = self._access_token()
        for attempt in (1, 2):
            try:
                response = self._http.request(
                    method,
                    url,
                    json=body,
                    params={"sendUpdates": "none"} if method != "DELETE" else None,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise GoogleCalendarError(
                    f"Google Calendar could not be reached: {type(exc).__name__}", retryable=True
                ) from None
            if response.status_code == 401 and attempt == 1:
                token = self._refresh()  # expired or revoked early: one fresh token, one more try
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, what: str, response: httpx.Response) -> GoogleCalendarError:
        status = response.status_code
        return GoogleCalendarError(
            f"Google Calendar refused to {what} ({status}): {_message(response)}",
            http_status=status,
            retryable=status >= 500 or status in (401, 403, 429),
        )

    def insert(self, event_id: str, body: dict[str, Any]) -> str:
        """Create the event with our id; 'created' or 'existed' (409: an earlier try made it, now patched)."""
        response = self._send("POST", self._events, {**body, "id": event_id})
        if response.status_code in (200, 201):
            return "created"
        if response.status_code == 409:
            # The id is taken: our own earlier insert whose answer was lost (or a cancelled event of ours).
            self.patch(event_id, {**body, "status": "confirmed"}, recreate=False)
            return "existed"
        raise self._fail(f"create event {event_id}", response)

    def patch(self, event_id: str, body: dict[str, Any], *, recreate: bool = True) -> str:
        """Update the event; when it is gone from Google (404/410), create it again under the same id."""
        response = self._send("PATCH", f"{self._events}/{event_id}", body)
        if response.status_code == 200:
            return "updated"
        if response.status_code in (404, 410) and recreate:
            return self.insert(event_id, body)
        raise self._fail(f"update event {event_id}", response)

    def delete(self, event_id: str) -> str:
        """Delete the event; 404 and 410 mean it is gone already, which is what was wanted."""
        response = self._send("DELETE", f"{self._events}/{event_id}", None)
        if response.status_code in (200, 204):
            return "deleted"
        if response.status_code in (404, 410):
            return "gone"
        raise self._fail(f"delete event {event_id}", response)
