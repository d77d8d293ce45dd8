"""HubSpot for tests: batches shaped and signed as HubSpot sends them, and a loopback HubSpot CRM API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "5f2b9c8e-1d7a-4f3b-9e6d-hubspotsecret"
OTHER_SECRET = "0a1b2c3d-4e5f-6789-abcd-othersecret00"
TOKEN = "pat-eu1-11111111-2222-3333-4444-555555555555"


def signature(method: str, uri: str, body: bytes, timestamp: int, secret: str) -> str:
    # HubSpot's v3 scheme (PROVIDERS.md §4), written out here independently of partnerpay's verifier.
    source = f"{method}{uri}".encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


def event(event_id: int, kind: str, object_id: int, occurred_at: int = 1768478400000, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 2100,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": occurred_at,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
        "changeFlag": "NEW" if kind.endswith("creation") else "UPDATED",
        **extra,
    }


def stage_change(event_id: int, object_id: int, stage: str, **extra: Any) -> dict[str, Any]:
    return event(event_id, "deal.propertyChange", object_id, propertyName="dealstage", propertyValue=stage, **extra)


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":")).encode()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeHubSpot:
    """HubSpot's deals API on a loopback port: creates, reads and searches deals; scripted answers go first."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (status, headers, body) answered next, in order, before the normal behaviour; body "DROP" closes the
    # connection after doing the work, as a lost answer.
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None and scripted[2] != "DROP":
            return scripted
        if method == "POST" and path == "/crm/v3/objects/deals":
            deal_id = str(9000 + len(self.deals) + 1)
            self.deals[deal_id] = dict(body["properties"])
            result: tuple[int, dict[str, str], Any] = (201, {}, {"id": deal_id, "properties": body["properties"]})
        elif method == "POST" and path == "/crm/v3/objects/deals/search":
            [flt] = body["filterGroups"][0]["filters"]
            found = [
                {"id": i, "properties": {flt["propertyName"]: p.get(flt["propertyName"])}}
                for i, p in self.deals.items()
                if p.get(flt["propertyName"]) == flt["value"]
            ]
            result = (200, {}, {"total": len(found), "results": found[:1]})
        elif method == "GET" and path.startswith("/crm/v3/objects/deals/"):
            deal_id = path.split("?")[0].rsplit("/", 1)[1]
            if deal_id not in self.deals:
                return 404, {}, {"status": "error", "message": "Object not found"}
            result = (200, {}, {"id": deal_id, "properties": self.deals[deal_id]})
        else:
            result = (404, {}, {"status": "error", "message": f"no route {method} {path}"})
        return (0, {}, "DROP") if scripted is not None else result


@contextmanager
def fake_hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(
                Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status, headers, answer = fake.answer(self.command, self.path, body)
            if answer == "DROP":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = json.dumps(answer).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

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
