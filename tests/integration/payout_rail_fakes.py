"""Loopback servers speaking Stripe's `POST /v1/transfers` and PayPal's Payouts API as documented
(PROVIDERS.md §2 and §5), with the idempotency each provider promises, for the sending tests.

`lose_next` makes the server do the work and record the request, then drop the connection without an
answer (a lost response); `slow_next` makes it answer later than the client waits (a timeout).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class FakeRail:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    lose_next: int = 0  # requests to process but answer with a dropped connection
    lose_path: str | None = None  # only requests to this path are lost (None: any)
    slow_next: int = 0  # requests to process but answer after `slow_seconds`
    slow_seconds: float = 2.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, seen: Seen) -> Answer:
        raise NotImplementedError


@dataclass
class FakeStripe(FakeRail):
    """Transfers; an Idempotency-Key replays the first answer (success or failure) with Idempotent-Replayed."""

    transfers: list[dict[str, Any]] = field(default_factory=list)
    saved: dict[str, Answer] = field(default_factory=dict)
    balance: int = 10**12

    def answer(self, seen: Seen) -> Answer:
        if seen.path != "/v1/transfers" or seen.method != "POST":
            return 404, {}, {"error": {"type": "invalid_request_error", "message": f"Unrecognized URL {seen.path}"}}
        key = seen.headers.get("idempotency-key")
        if key and key in self.saved:
            status, headers, body = self.saved[key]
            return status, {**headers, "Idempotent-Replayed": "true"}, body
        form = seen.form()
        amount = int(form["amount"])
        if amount > self.balance:
            answer: Answer = (
                400,
                {},
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "balance_insufficient",
                        "message": "You have insufficient available funds in your Stripe account.",
                    }
                },
            )
        else:
            self.balance -= amount
            transfer = {
                "id": f"tr_{len(self.transfers) + 1:04d}",
                "object": "transfer",
                "amount": amount,
                "amount_reversed": 0,
                "currency": form["currency"],
                "destination": form["destination"],
                "destination_payment": f"py_{len(self.transfers) + 1:04d}",
                "reversed": False,
                "transfer_group": form.get("transfer_group"),
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            self.transfers.append(transfer)
            answer = (200, {}, transfer)
        if key:
            self.saved[key] = answer
        return answer

    def posts(self) -> list[Seen]:
        return [r for r in self.requests if r.path == "/v1/transfers"]


@dataclass
class FakePaypal(FakeRail):
    """OAuth2 token, payouts create (PayPal-Request-Id replays; a reused sender_batch_id is refused with a
    link to the original) and batch status with items whose status tests set in `item_status`."""

    client_id: str = "AcmeClient"
    client_secret: str = "AcmeSecret"
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # payout_batch_id → request body
    by_sender_id: dict[str, str] = field(default_factory=dict)
    by_request_id: dict[str, Answer] = field(default_factory=dict)
    item_status: dict[str, str] = field(default_factory=dict)  # sender_item_id → transaction_status
    honour_request_id: bool = True

    def answer(self, seen: Seen) -> Answer:
        if seen.path == "/v1/oauth2/token":
            expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if seen.headers.get("authorization") != expected or seen.form().get("grant_type") != "client_credentials":
                return 401, {}, {"error": "invalid_client", "error_description": "Client Authentication failed"}
            return 200, {}, {"access_token": "A21AAtoken", "token_type": "Bearer", "expires_in": 32400}
        if seen.headers.get("authorization") != "Bearer A21AAtoken":
            return 401, {}, {"name": "AUTHENTICATION_FAILURE", "message": "Authentication failed"}
        if seen.path == "/v1/payments/payouts" and seen.method == "POST":
            request_id = seen.headers.get("paypal-request-id")
            if self.honour_request_id and request_id and request_id in self.by_request_id:
                return self.by_request_id[request_id]
            body = seen.json()
            sender_batch_id = body["sender_batch_header"]["sender_batch_id"]
            if sender_batch_id in self.by_sender_id:
                original = self.by_sender_id[sender_batch_id]
                return (
                    400,
                    {},
                    {
                        "name": "USER_BUSINESS_ERROR",
                        "message": f"Batch with given sender_batch_id already exists: {sender_batch_id}",
                        "links": [
                            {"href": f"{self.url}/v1/payments/payouts/{original}", "rel": "self", "method": "GET"}
                        ],
                    },
                )
            if len(body["items"]) > 15_000:
                return 400, {}, {"name": "VALIDATION_ERROR", "message": "too many items"}
            payout_batch_id = f"PB{len(self.batches) + 1:06d}"
            self.batches[payout_batch_id] = body
            self.by_sender_id[sender_batch_id] = payout_batch_id
            answer: Answer = (
                201,
                {},
                {
                    "batch_header": {
                        "payout_batch_id": payout_batch_id,
                        "batch_status": "PENDING",
                        "sender_batch_header": body["sender_batch_header"],
                    }
                },
            )
            if request_id:
                self.by_request_id[request_id] = answer
            return answer
        if seen.path.startswith("/v1/payments/payouts/") and seen.method == "GET":
            payout_batch_id = seen.path.rsplit("/", 1)[1]
            body = self.batches.get(payout_batch_id)
            if body is None:
                return 404, {}, {"name": "INVALID_RESOURCE_ID", "message": "not found"}
            items = [
                {
                    "payout_item_id": f"ITEM{n:05d}",
                    "transaction_id": f"TX{n:05d}",
                    "transaction_status": self.item_status.get(item["sender_item_id"], "PENDING"),
                    "payout_batch_id": payout_batch_id,
                    "payout_item": {**item},
                    **(
                        {"errors": {"name": "RECEIVER_UNREGISTERED", "message": "Receiver is unregistered"}}
                        if self.item_status.get(item["sender_item_id"]) == "FAILED"
                        else {}
                    ),
                }
                for n, item in enumerate(body["items"], start=1)
            ]
            done = all(i["transaction_status"] != "PENDING" for i in items)
            header = {"payout_batch_id": payout_batch_id, "batch_status": "SUCCESS" if done else "PROCESSING"}
            return 200, {}, {"batch_header": header, "items": items}
        return 404, {}, {"name": "RESOURCE_NOT_FOUND", "message": seen.path}

    def creates(self) -> list[Seen]:
        return [r for r in self.requests if r.path == "/v1/payments/payouts" and r.method == "POST"]


@contextmanager
def serving(fake: FakeRail) -> Iterator[FakeRail]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            seen = Seen(self.command, parts.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with fake.lock:
                fake.requests.append(seen)
                status, headers, answer = fake.answer(seen)
                lose = fake.lose_next > 0 and fake.lose_path in (None, seen.path)
                slow = fake.slow_next > 0
                fake.lose_next -= lose
                fake.slow_next -= slow and not lose
            if lose:
                self.close_connection = True  # the work is done, the answer never arrives
                return
            if slow:
                time.sleep(fake.slow_seconds)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = _handle
        do_POST = _handle

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
