"""A bounded HTTP/1.1 load generator for when wrk is not installed, and wrk's own output parsed.

Several processes, each with a few keep-alive raw-socket connections driven by selectors (one
request in flight per connection, no pipelining). It counts the 302s it received exactly, which is
what the clicks-equal-redirects check compares with. Its own ceiling is measured against a server
that answers without parsing anything, so a figure close to that ceiling says "load-generator bound".
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RESPONSE_END = b"\r\n\r\n"


@dataclass
class Run:
    requests: int  # responses received (all of them 302 unless `other` says otherwise)
    seconds: float
    p50_ms: float
    p99_ms: float
    other: int = 0  # responses that were not 302, and socket errors
    tool: str = "loadgen"

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _worker(port: int, paths: list[str], conns: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    sel = selectors.DefaultSelector()
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: loadgen\r\n\r\n".encode() for p in paths]
    latencies: list[int] = []
    ok = other = 0
    n = 0

    def fire(sock: socket.socket) -> None:
        nonlocal n
        sock.sendall(requests[n % len(requests)])
        n += 1
        sel.modify(sock, selectors.EVENT_READ, [bytearray(), time.perf_counter_ns()])

    for _ in range(conns):
        try:
            sock = socket.create_connection(("127.0.0.1", port))
        except OSError:
            other += 1
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(sock, selectors.EVENT_READ, None)
        fire(sock)
    deadline = time.monotonic() + seconds
    # After the deadline no new request goes out, but the ones in flight are read to the end: every
    # request the server answered is counted, which is what makes clicks == redirects exact.
    drain_until = deadline + 10
    while sel.get_map() and time.monotonic() < drain_until:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj  # type: ignore[assignment]
            buf, started = key.data
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:  # closed by the server (shutdown): stop using this connection
                sel.unregister(sock)
                sock.close()
                other += 1 if buf else 0
                continue
            buf += chunk
            if RESPONSE_END not in buf:
                continue  # only bodiless responses are expected: headers end the response
            latencies.append(time.perf_counter_ns() - started)
            if buf.startswith(b"HTTP/1.1 302"):
                ok += 1
            else:
                other += 1
            if time.monotonic() < deadline:
                try:
                    fire(sock)
                except OSError:
                    sel.unregister(sock)
                    sock.close()
            else:
                sel.unregister(sock)
                sock.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    out.put((ok, other, latencies[:: max(1, len(latencies) // 20000)]))


def run_loadgen(port: int, paths: list[str], *, seconds: float, processes: int = 2, conns: int = 16) -> Run:
    """Fire at 127.0.0.1:port for `seconds`; returns exact counts and latency percentiles."""
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    workers = [
        ctx.Process(target=_worker, args=(port, paths[i::processes] or paths, conns, seconds, out))
        for i in range(processes)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    lat = sorted(x for _, _, ls in results for x in ls) or [0]
    return Run(
        requests=sum(r[0] for r in results),
        seconds=min(elapsed, seconds) if elapsed > seconds else elapsed,
        p50_ms=lat[len(lat) // 2] / 1e6,
        p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6,
        other=sum(r[1] for r in results),
    )


def _raw_server(port_out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Answers every read with a fixed 302: the least any HTTP server can do, so the generator's ceiling."""
    import asyncio

    reply = b"HTTP/1.1 302 Found\r\nlocation: /\r\ncontent-length: 0\r\n\r\n"

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(reply)  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def loadgen_ceiling(seconds: float) -> float:
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    server = ctx.Process(target=_raw_server, args=(q,), daemon=True)
    server.start()
    try:
        return run_loadgen(q.get(timeout=10), ["/r/x"], seconds=seconds).rate
    finally:
        server.kill()
        server.join()


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, codes: list[str], *, seconds: float, conns: int = 64) -> Run:
    """wrk with one thread (the server gets the other core), random codes from the list, --latency."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "codes.txt"
        listing.write_text("\n".join(codes) + "\n")
        script = Path(tmp) / "codes.lua"
        script.write_text(
            f'local codes = {{}}\nfor line in io.lines("{listing}") do codes[#codes + 1] = line end\n'
            'request = function() return wrk.format("GET", "/r/" .. codes[math.random(#codes)]) end\n'
        )
        command = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script)]
        text = subprocess.run([*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    assert total, text
    secs = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    other = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return Run(
        requests=int(total.group(1)),
        seconds=secs,
        p50_ms=_wrk_ms(text, "50%"),
        p99_ms=_wrk_ms(text, "99%"),
        other=(int(other.group(1)) if other else 0) + (sum(map(int, errors.groups())) if errors else 0),
        tool="wrk",
    )


def _wrk_ms(text: str, label: str) -> float:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    assert found, text
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return float(found.group(1)) * scale


def median_run(runs: list[Run]) -> Run:
    return Run(
        requests=int(statistics.median(r.requests for r in runs)),
        seconds=statistics.median(r.seconds for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        other=sum(r.other for r in runs),
        tool=runs[0].tool,
    )


@dataclass
class Sent:
    """Every prepared request sent once: answers by status class, and how many carried `marker` in the body."""

    run: Run
    statuses: dict[int, int]
    marked: int


def _status_and_length(head: bytes) -> tuple[int, int]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, length


def send_each(port: int, requests: list[bytes], *, conns: int = 16, marker: bytes = b"") -> Sent:
    """Send every raw HTTP/1.1 request exactly once over `conns` keep-alive connections (one in flight on
    each: concurrency `conns`), from this process; every answer is read to its Content-Length and counted.

    Unlike run_loadgen this is bounded by a request count, not a duration: when each request is a distinct
    fact (a signed webhook delivery), what was stored can then be compared with what was sent, exactly.
    """
    # The collector off while sending: a full collection of this process (the benchmark's imports and data,
    # ~130k objects) stalls every connection for 100+ ms, a stall that would count as the server's latency.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _send_each(port, requests, conns=conns, marker=marker)
    finally:
        if collecting:
            gc.enable()


def _send_each(port: int, requests: list[bytes], *, conns: int, marker: bytes) -> Sent:
    sel = selectors.DefaultSelector()
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    marked = errors = 0
    pending = iter(requests)

    def fire(sock: socket.socket) -> bool:
        request = next(pending, None)
        if request is None:
            return False
        sock.sendall(request)
        sel.modify(sock, selectors.EVENT_READ, [bytearray(), time.perf_counter_ns()])
        return True

    def close(sock: socket.socket) -> None:
        sel.unregister(sock)
        sock.close()

    started = time.perf_counter()
    for _ in range(min(conns, len(requests))):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(sock, selectors.EVENT_READ, None)
        fire(sock)
    while sel.get_map():
        events = sel.select(timeout=30)
        if not events:  # 30 s without a single answer: count what is in flight as errors, do not hang
            errors += len(sel.get_map())
            for key in list(sel.get_map().values()):
                close(key.fileobj)  # type: ignore[arg-type]
            break
        for key, _ in events:
            sock = key.fileobj  # type: ignore[assignment]
            buf, sent_at = key.data
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:  # the server closed the connection: the request in flight is an error
                errors += 1
                close(sock)
                continue
            buf += chunk
            end = buf.find(RESPONSE_END)
            if end < 0:
                continue
            status, length = _status_and_length(bytes(buf[:end]))
            if len(buf) < end + 4 + length:
                continue
            latencies.append(time.perf_counter_ns() - sent_at)
            statuses[status] = statuses.get(status, 0) + 1
            if marker and marker in buf[end + 4 :]:
                marked += 1
            if not fire(sock):
                close(sock)
    elapsed = time.perf_counter() - started
    lat = sorted(latencies) or [0]
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    run = Run(
        requests=ok,
        seconds=elapsed,
        p50_ms=lat[len(lat) // 2] / 1e6,
        p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6,
        other=len(latencies) - ok + errors,
    )
    return Sent(run=run, statuses=statuses, marked=marked)
