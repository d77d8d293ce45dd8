"""Stripe webhook ingest over HTTP: signed invoice.paid deliveries to partnerpay, against a bare Starlette
route that checks the same signature and writes the same rows raw, both under uvicorn on 127.0.0.1.

ours:  `partnerpay serve --no-access-log` (1 worker) with the in-process worker off, a program with a Stripe
       webhook secret; POST /api/v1/webhooks/stripe/{program_id}, every request a distinct invoice.paid event
       signed with the current time: secrets from the per-process cache (read and decrypted on a miss),
       signature checked, event classified, then inbox row + processing job committed by the delivery
       writer's group commit, with one audit row per group naming its deliveries, before the 200
       (web/webhook_path.py, inbox/delivery_writer.py: on SQLite one writer on the driver's connection, its
       WAL flushed beside the next batch's inserts and the answers sent after the flush, inbox/sqlite_wal.py; on
       PostgreSQL two lanes, each batch in two round trips, inbox/delivery_pg.py), the answer's status line,
       headers and body in one write (web/one_write.py). The limit writes an audit row per request but
       without the chain's lock or hash, so on PostgreSQL its parallel transactions do not queue on it.
       Processing the queued jobs is a separate figure, not measured here (an answer never waits for it).
limit: a bare Starlette app under the same uvicorn, one route at the same path: the body read, the same
       HMAC check, id and type from the JSON, then in the thread pool the same three rows written with the
       raw driver (sqlite3 with partnerpay's pragmas, or psycopg), one transaction per request after a
       duplicate check, 200 (on SQLite the writers queue on a lock in the process, as SQLite has one writer
       at a time anyway). It writes to the same tables of the same database (a second program).
also:  replays (every event of a measured run delivered again, signed anew as Stripe does: ours answers
       200 {"duplicate": true} and writes nothing) on both sides, and http_only: the bare app answering 200
       to the same requests without the database, the ceiling of the HTTP stack and the load generator.
Load:  bench/loadgen.send_each: one process, 16 keep-alive connections (concurrency 16), each pre-signed
       request sent exactly once and every answer read, so counts are exact.
Then:  inbox rows of the program == distinct events sent, every answer 2xx, every replay a duplicate.
The issue's absolute goal (5,000 req/s per worker, p99 <= 10 ms) is printed beside the ratio, and so is
what a fresh delivery cost in CPU (bench/cpu.py: server, database, load generator, per request) with the
rates that cost allows this machine: a goal in requests per second is also a CPU budget.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select

from click_redirect import free_port, start, stop
from common import fresh_database, result_line
from cpu import CpuMeter
from loadgen import Run, Sent, send_each
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import make_engine, make_session_factory, unit_of_work
from partnerpay.inbox.models import InboxItem
from partnerpay.integrations.settings_store import put_integration
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.crypto import SecretBox
from partnerpay.programs.service import create_program

SIZES = {"ci": 1_000, "full": 10_000}  # distinct events per measured run
TARGETS = {"sqlite": 0.5, "postgresql": 0.5}
ISSUE_GOAL = {"rps": 5_000, "p99_ms": 10.0}
CONNECTIONS = 16
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRET_KEY = "bench-secret-" + "x" * 32
WEBHOOK_SECRET = "whsec_bench_" + "3b9f0c2d8e7a41f6"  # a throwaway secret for this run
PATH = "/api/v1/webhooks/stripe/{}"
DUPLICATE = b'"duplicate":true'


def seed(url: str) -> tuple[str, str]:
    """Two programs: one whose Stripe integration partnerpay verifies against, one the raw limit writes to."""
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as s:
        ours = create_program(s, actor=SYSTEM, name="Bench", currency="EUR", hold_days=30, now=NOW)
        limit = create_program(s, actor=SYSTEM, name="Limit", currency="EUR", hold_days=30, now=NOW)
        put_integration(
            s,
            actor=SYSTEM,
            box=SecretBox(SECRET_KEY),
            program_id=ours.id,
            provider="stripe",
            body={"webhook_secret": WEBHOOK_SECRET},
            now=NOW,
        )
        ids = ours.id, limit.id
    engine.dispose()
    return ids


def invoice_paid(evt_id: str, n: int, created: int) -> bytes:
    """An invoice.paid event shaped as Stripe sends it (the fields partnerpay reads, and their neighbours)."""
    invoice_id = f"in_bench{n:09d}"
    amount, tax = 12_000 + n % 5_000, 2_000
    event = {
        "id": evt_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {
            "object": {
                "id": invoice_id,
                "object": "invoice",
                "customer": f"cus_bench{n % 50_000:06d}",
                "customer_email": f"buyer{n % 50_000}@shop.example",
                "currency": "eur",
                "amount_due": amount,
                "amount_paid": amount,
                "total": amount,
                "subtotal": amount - tax,
                "total_excluding_tax": amount - tax,
                "charge": f"ch_bench{n:09d}",
                "payment_intent": f"pi_bench{n:09d}",
                "discount": None,
                "discounts": [],
                "lines": {"object": "list", "data": [{"amount": amount - tax, "currency": "eur", "discounts": []}]},
                "metadata": {},
                "status_transitions": {"paid_at": created},
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "invoice.paid",
    }
    return json.dumps(event, separators=(",", ": ")).encode()


def signed(path: str, body: bytes) -> bytes:
    """One raw HTTP/1.1 request, signed now with Stripe's scheme (t=<unix>,v1=HMAC-SHA256 of "t.body")."""
    t = int(time.time())
    v1 = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nStripe-Signature: t={t},v1={v1}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Events:
    """Distinct event bodies, numbered across the whole run so no two measured runs share an event."""

    def __init__(self) -> None:
        self.next = 0

    def fresh(self, n: int) -> list[bytes]:
        first, self.next = self.next, self.next + n
        created = int(time.time())
        return [invoice_paid(f"evt_bench{i:010d}", i, created) for i in range(first, first + n)]


def deliver(port: int, program_id: str, bodies: list[bytes]) -> Sent:
    """Sign just before sending: the signature's timestamp must be within 5 minutes of the server's clock."""
    path = PATH.format(program_id)
    return send_each(port, [signed(path, b) for b in bodies], conns=CONNECTIONS, marker=DUPLICATE)


def ours(url: str, port: int, cwd: str) -> Any:
    env = {
        **os.environ,
        "PARTNERPAY_DATABASE_URL": url,
        "PARTNERPAY_SECRET_KEY": SECRET_KEY,
        "PARTNERPAY_IN_PROCESS_WORKER": "false",
        "PARTNERPAY_BASE_URL": "http://127.0.0.1",
    }
    command = [str(Path(sys.executable).parent / "partnerpay"), "serve", "--port", str(port), "--no-access-log"]
    return start(command, port, env, cwd)


def bare(url: str, port: int, cwd: str) -> Any:
    env = {**os.environ, "BENCH_INGEST_URL": url}
    return start([sys.executable, __file__, "--bare", str(port)], port, env, cwd)


# The limit's rows: the same columns partnerpay writes for a received delivery.
INSERT_ITEM = (
    "INSERT INTO inbox_items (id, program_id, source, provider, external_id, kind, body, headers, received_at, "
    "status, attempts, event_ids) VALUES (?, ?, ?, 'stripe', ?, ?, ?, ?, ?, 'received', 0, '[]')"
)
INSERT_JOB = (
    "INSERT INTO outbox_jobs (id, kind, payload, status, attempts, max_attempts, run_after, created_at) "
    "VALUES (?, 'inbox.process', ?, 'pending', 0, 8, ?, ?)"
)
INSERT_AUDIT = (
    "INSERT INTO audit_log (at, actor_type, actor_id, action, object_type, object_id, program_id, after, "
    "prev_hash, hash) VALUES (?, 'system', 'webhook:stripe', 'inbox.receive', 'inbox_item', ?, ?, ?, ?, ?)"
)
FIND_ITEM = "SELECT id FROM inbox_items WHERE source = ? AND external_id = ?"


def serve_bare(port: int) -> None:
    """The limit: Starlette, a signature check and a raw three-row transaction; uvicorn as `partnerpay serve`."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from partnerpay.kit.ids import new_id

    url = os.environ["BENCH_INGEST_URL"]
    local = threading.local()
    writer = threading.Lock()
    sqlite = url.startswith("sqlite")

    def connection() -> Any:
        conn = getattr(local, "conn", None)
        if conn is not None:
            return conn
        if sqlite:
            import sqlite3

            conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=FULL"):
                conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        local.conn = conn
        return conn

    def sql(statement: str) -> str:
        return statement if sqlite else statement.replace("?", "%s")

    def at(now: datetime) -> Any:
        return now.isoformat(" ", "microseconds")[:26] if sqlite else now

    def answer(found: Any, item_id: str) -> dict[str, Any]:
        if found is not None:
            return {"received": True, "id": found[0], "status": "received", "duplicate": True}
        return {"received": True, "id": item_id, "status": "received", "duplicate": False}

    def store(program_id: str, event_id: str, kind: str, body: str, headers: str) -> dict[str, Any]:
        conn = connection()
        source = f"stripe:{program_id}"
        now = at(datetime.now(UTC))
        item_id, job_id = new_id("inb"), new_id("job")
        after = json.dumps({"external_id": event_id, "kind": kind, "source": source, "status": "received"})
        digest = hashlib.sha256(item_id.encode()).hexdigest()
        rows = [
            (INSERT_ITEM, (item_id, program_id, source, event_id, kind, body, headers, now)),
            (INSERT_JOB, (job_id, json.dumps({"item_id": item_id}), now, now)),
            (INSERT_AUDIT, (now, item_id, program_id, after, "0" * 64, digest)),
        ]
        if not sqlite:
            with conn.transaction():
                found = conn.execute(sql(FIND_ITEM), (source, event_id)).fetchone()
                if found is None:
                    for statement, values in rows:
                        conn.execute(sql(statement), values)
            return answer(found, item_id)
        # One writer at a time, as SQLite allows anyway: queued on a lock in this process rather than in
        # sqlite3's busy handler, whose sleeps grow to tens of milliseconds under contention.
        with writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(FIND_ITEM, (source, event_id)).fetchone()
                if found is None:
                    for statement, values in rows:
                        conn.execute(statement, values)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return answer(found, item_id)

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        t, _, v1 = request.headers["stripe-signature"].partition(",v1=")
        t = t.removeprefix("t=")
        expected = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, v1) or abs(time.time() - int(t)) > 300:
            return JSONResponse({"error": "bad signature"}, status_code=400)
        event = json.loads(body)
        headers = json.dumps({k: request.headers[k] for k in ("stripe-signature", "content-type", "user-agent")})
        text = body.decode("utf-8", errors="replace")
        answer = await run_in_threadpool(
            store, request.path_params["program_id"], event["id"], event["type"], text, headers
        )
        return JSONResponse(answer)

    async def http_only(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"received": True})

    app = Starlette(
        routes=[
            Route(PATH.format("{program_id}"), webhook, methods=["POST"]),
            Route("/http-only/{path:path}", http_only, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def counts(url: str, program_id: str) -> tuple[int, int]:
    """(inbox rows of the program, processing jobs queued in all)."""
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        items = s.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.program_id == program_id))
        jobs = s.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "inbox.process"))
    engine.dispose()
    return int(items or 0), int(jobs or 0)


def figures(runs: list[Run]) -> dict[str, float]:
    return {
        "rps": round(statistics.median(r.rate for r in runs)),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, help="distinct events per measured run (default: by --size)")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare)
        return
    n = args.events or SIZES[args.size]
    with fresh_database(args.db) as url, tempfile.TemporaryDirectory() as cwd:
        our_program, limit_program = seed(url)
        our_port, bare_port = free_port(), free_port()
        our_proc, bare_proc = ours(url, our_port, cwd), bare(url, bare_port, cwd)
        events = Events()
        meter = CpuMeter(our_proc.pid, "postgres" if args.db == "postgresql" else None)
        sent: dict[str, list[Sent]] = {"ours": [], "limit": [], "ours_replay": [], "limit_replay": [], "http": []}
        ours_events = 0
        try:
            # One untimed round each: imports, compiled statements, connection pools, the CPU's clock ramp.
            warm = events.fresh(max(200, n // 5))
            warm_ours = deliver(our_port, our_program, warm)
            ours_events += len(warm)
            deliver(bare_port, limit_program, events.fresh(len(warm)))
            for _ in range(args.repeat):
                # Alternated, so that table growth and cache warmth favour neither side.
                bodies = events.fresh(n)
                with meter.measure() as block:
                    sent["ours"].append(deliver(our_port, our_program, bodies))
                    block.answered(n)
                ours_events += n
                sent["ours_replay"].append(deliver(our_port, our_program, bodies))
                bodies = events.fresh(n)
                sent["limit"].append(deliver(bare_port, limit_program, bodies))
                sent["limit_replay"].append(deliver(bare_port, limit_program, bodies))
                path = f"/http-only/{limit_program}"
                sent["http"].append(send_each(bare_port, [signed(path, b) for b in bodies], conns=CONNECTIONS))
        finally:
            stop(our_proc)
            stop(bare_proc)
        rows, jobs = counts(url, our_program)
        limit_rows, _ = counts(url, limit_program)
        runs = {name: [s.run for s in group] for name, group in sent.items()}
        everything = [*sent["ours"], *sent["ours_replay"], *sent["limit"], *sent["limit_replay"], *sent["http"]]
        errors = sum(s.run.other for s in everything) + warm_ours.run.other
        replays = sum(sum(s.statuses.values()) for s in sent["ours_replay"])
        duplicates = sum(s.marked for s in sent["ours_replay"])
        fresh_duplicates = sum(s.marked for s in sent["ours"]) + warm_ours.marked
        ours_fig = figures(runs["ours"])
        report: dict[str, Any] = {
            "events_per_run": n,
            "connections": CONNECTIONS,
            "ours": ours_fig,
            "ours_replay": figures(runs["ours_replay"]),
            "limit": figures(runs["limit"]),
            "limit_replay": figures(runs["limit_replay"]),
            "http_only": figures(runs["http"]),
            "errors": errors,
            "statuses": _statuses(everything),
            "inbox_rows": {"ours": rows, "events_sent": ours_events, "limit": limit_rows},
            "jobs_queued": {"both_programs": jobs, "expected": rows + limit_rows},
            "replays": {"sent": replays, "answered_duplicate": duplicates},
            # CPU per fresh delivery (server, database, this load generator) and the rate it bounds.
            "ours_cpu_us_per_request": meter.report(),
            "issue_goal": {
                **ISSUE_GOAL,
                "met": ours_fig["rps"] >= ISSUE_GOAL["rps"] and ours_fig["p99_ms"] <= ISSUE_GOAL["p99_ms"],
            },
        }
        print(json.dumps(report), flush=True)
        ours_rate = statistics.median(r.rate for r in runs["ours"])
        limit_rate = statistics.median(r.rate for r in runs["limit"])
        print(result_line("ingest_http", args.db, ours_rate, limit_rate, TARGETS[args.db]), flush=True)
        if errors or rows != ours_events or duplicates != replays or fresh_duplicates:
            raise SystemExit("ingest check failed: errors, or inbox rows differ from the distinct events sent")


def _statuses(sent: list[Sent]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in sent:
        for status, count in s.statuses.items():
            total[str(status)] = total.get(str(status), 0) + count
    return total


if __name__ == "__main__":
    main()
