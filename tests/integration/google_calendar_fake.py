"""A loopback server speaking Google's OAuth token endpoint and Calendar API v3 events (PROVIDERS.md §8).

It keeps events per calendar, issues and checks bearer tokens, answers 409 to an insert whose id exists,
404 / 410 to a patch or delete of a missing / deleted event, and records every request for shape checks.
`lose_next_answer` stores the next insert and then answers 500, as a response lost on the way back would look.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

EVENTS_PREFIX = "/calendar/v3/calendars/"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    content_type: str | None
    body: Any


@dataclass
class FakeGoogle:
    url: str = ""
    client_id: str = "cid.apps.googleusercontent.com"
    client_secret: str = "csecret-123456"
    codes: dict[str, str] = field(default_factory=dict)  # code → S256 challenge it was granted for
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    calendars: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)  # ids of deleted events (Google keeps them as cancelled)
    requests: list[Seen] = field(default_factory=list)
    lose_next_answer: bool = False

    def grant(self, challenge: str) -> str:
        """What the consent screen does: a one-time code bound to the PKCE challenge."""
        code = "4/" + secrets.token_urlsafe(12)
        self.codes[code] = challenge
        return code

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def events(self, calendar_id: str = "team@example.com") -> dict[str, dict[str, Any]]:
        return self.calendars.get(calendar_id, {})

    def calls(self, method: str | None = None) -> list[Seen]:
        return [r for r in self.requests if method is None or r.method == method]

    # --- the protocol ---

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            challenge = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge is None or challenge != expected or not form.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
            refresh = "1//" + secrets.token_urlsafe(24)
            self.refresh_tokens.add(refresh)
            return 200, {**self._access(), "refresh_token": refresh}
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            return 200, self._access()
        return 400, {"error": "unsupported_grant_type"}

    def _access(self) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        return {
            "access_token": token,
            "expires_in": 3599,
            "scope": "https://www.googleapis.com/auth/calendar.events",
            "token_type": "Bearer",
        }

    def calendar(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, dict[str, Any] | None]:
        if not auth or not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return 401, _error(401, "Request had invalid authentication credentials.")
        rest = path[len(EVENTS_PREFIX) :]
        calendar_id, _, tail = rest.partition("/events")
        events = self.calendars.setdefault(unquote(calendar_id), {})
        event_id = tail.lstrip("/")
        if method == "POST" and not event_id:
            new_id = body.get("id")
            if not new_id or not all(c in "0123456789abcdefghijklmnopqrstuv" for c in new_id) or len(new_id) < 5:
                return 400, _error(400, "Invalid resource id value.")
            if new_id in events or new_id in self.deleted:
                return 409, _error(409, "The requested identifier already exists.")
            if "start" not in body or "end" not in body:
                return 400, _error(400, "Missing end time.")
            events[new_id] = {**body, "status": "confirmed", "kind": "calendar#event"}
            if self.lose_next_answer:
                self.lose_next_answer = False
                return 500, _error(500, "Backend Error")
            return 200, events[new_id]
        if method == "PATCH":
            if event_id in self.deleted and event_id not in events:
                if body.get("status") == "confirmed":  # an insert's 409 on a cancelled event: revive it
                    self.deleted.discard(event_id)
                    events[event_id] = {"id": event_id}
                else:
                    return 410, _error(410, "Resource has been deleted")
            if event_id not in events:
                return 404, _error(404, "Not Found")
            events[event_id] = {**events[event_id], **body}
            return 200, events[event_id]
        if method == "DELETE":
            if event_id in self.deleted:
                return 410, _error(410, "Resource has been deleted")
            if event_id not in events:
                return 404, _error(404, "Not Found")
            del events[event_id]
            self.deleted.add(event_id)
            return 204, None
        return 405, _error(405, "Method not allowed")


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"reason": "fake", "message": message}]}}


@contextmanager
def running(fake: FakeGoogle) -> Iterator[FakeGoogle]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = self.headers.get("content-type")
            if ctype and ctype.startswith("application/x-www-form-urlencoded"):
                body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                body = json.loads(raw) if raw else None
            auth = self.headers.get("authorization")
            fake.requests.append(Seen(self.command, split.path, parse_qs(split.query), auth, ctype, body))
            if split.path == "/token" and self.command == "POST":
                status, answer = fake.token(body or {})
            elif split.path.startswith(EVENTS_PREFIX):
                status, answer = fake.calendar(self.command, split.path, auth, body or {})
            else:
                status, answer = 404, _error(404, "Not Found")
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
