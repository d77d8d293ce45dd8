"""A loopback server speaking Stripe's list endpoints (docs.stripe.com/api/pagination), for backfill tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.api.stripe_helpers import invoice


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class FakeStripe:
    """Stripe's list endpoints as documented: newest first, `limit`, `starting_after`, `created[gte|lt]`,
    `expand[]=data.charge` on refunds. `failures[(path, starting_after)]` answers those requests first."""

    url: str = ""
    invoices: list[dict[str, Any]] = field(default_factory=list)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    failures: dict[tuple[str, str | None], list[Answer]] = field(default_factory=dict)

    def answer(self, path: str, query: dict[str, list[str]]) -> Answer:
        after = query.get("starting_after", [None])[0]
        queued = self.failures.get((path, after))
        if queued:
            return queued.pop(0)
        if path == "/v1/invoices":
            objects = [i for i in self.invoices if i["status"] in query.get("status", [i["status"]])]
        elif path == "/v1/refunds":
            expand = "data.charge" in query.get("expand[]", [])
            objects = [{**r, "charge": self.charges.get(r["charge"]) if expand else r["charge"]} for r in self.refunds]
        else:
            return 404, {}, {"error": {"type": "invalid_request_error", "message": f"Unrecognized URL {path}"}}
        if "created[gte]" in query:
            objects = [o for o in objects if o["created"] >= int(query["created[gte]"][0])]
        if "created[lt]" in query:
            objects = [o for o in objects if o["created"] < int(query["created[lt]"][0])]
        if after is not None:
            objects = objects[[o["id"] for o in objects].index(after) + 1 :]
        limit = int(query.get("limit", ["10"])[0])
        return 200, {}, {"object": "list", "url": path, "has_more": len(objects) > limit, "data": objects[:limit]}

    def add_invoice(self, invoice_id: str, created: int, **kw: Any) -> dict[str, Any]:
        listed = {**invoice(invoice_id, charge=f"ch_{invoice_id}", **kw), "status": "paid", "created": created}
        self.invoices.append(listed)
        self.invoices.sort(key=lambda i: (-i["created"], i["id"]))
        return listed

    def add_refund(self, refund_id: str, charge_id: str, amount: int, created: int) -> None:
        self.charges[charge_id]["amount_refunded"] += amount
        self.refunds.insert(
            0,
            {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "charge": charge_id,
                "created": created,
                "currency": "eur",
                "status": "succeeded",
            },
        )

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


@contextmanager
def serving(fake: FakeStripe) -> Iterator[FakeStripe]:
    """Serve `fake` on 127.0.0.1 (a free port, in `fake.url`) in a thread until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            fake.requests.append(Seen(parts.path, query, self.headers.get("Authorization")))
            status, headers, body = fake.answer(parts.path, query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{len(fake.requests)}")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

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
