"""A loopback HTTP server receiving partnerpay's outgoing webhooks and checking each signature as a receiver
would (webhooks_out/signing.verify, the scheme docs/api-alerts-webhooks.md documents)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from partnerpay.webhooks_out.signing import parse, signature


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def timestamp(self) -> int:
        t, _ = parse(self.headers["partnerpay-signature"])
        assert t is not None
        return t

    def signed_with(self, secret: str) -> bool:
        """Recomputes v1 for the header's t over the exact body bytes (no clock check: tests pin the clock)."""
        t, found = parse(self.headers["partnerpay-signature"])
        return t is not None and signature(secret, t, self.body) in found


@dataclass
class Receiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    # Answers for the next requests, in order: an int status, or ("sleep", seconds) then 200. Then 200 "ok".
    script: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_request: Callable[[], None] | None = None  # run before answering (e.g. a database write)

    def next_answer(self) -> Any:
        with self.lock:
            return self.script.pop(0) if self.script else 200


@contextmanager
def receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A receiver listening on `host` (any 127.x.y.z is this machine) and a free port."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Received(self.path, headers, body))
            if state.on_request is not None:
                state.on_request()
            answer = state.next_answer()
            if isinstance(answer, tuple) and answer[0] == "sleep":
                time.sleep(answer[1])
                answer = 200
            text = b"ok" if answer < 300 else b"receiver exploded: " + b"x" * 2000
            try:
                self.send_response(answer)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://{host}:{server.server_address[1]}/hooks/partnerpay"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
