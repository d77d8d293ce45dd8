"""Click redirect: partnerpay's GET /r/{code} against a bare Starlette 302 route, both under uvicorn.

ours:  `partnerpay serve --no-access-log` (1 worker) on a fresh database with 100,000 referral links;
       every request is a random link code: cache lookup (a miss costs one query in a thread), click
       made in memory (id, clock, keyed address hash, UA class), 302 with ref= and the pp_ref cookie,
       clicks written by the background writer.
limit: a bare Starlette app with one route `/r/{code}` answering a 302, no middleware, no logging,
       under the same uvicorn (same loop and HTTP parser), hit with the same codes.
Load:  wrk (one thread, 64 connections) when installed, else bench/loadgen.py (processes with
       keep-alive raw sockets; its ceiling against a do-nothing server is printed alongside).
Then:  clicks in the database == redirects received, exactly, once after a clean run and once after
       SIGTERM in the middle of the load (the redirect counts come from loadgen, which counts exactly).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select, text

from common import fresh_database, result_line
from loadgen import Run, have_wrk, loadgen_ceiling, run_loadgen, run_wrk
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.db.engine import make_engine, make_session_factory, unit_of_work
from partnerpay.kit.ids import new_ids
from partnerpay.programs.service import create_program, update_program_settings
from partnerpay.tracking.models import Click

SIZES = {"ci": 100_000, "full": 1_000_000}
TARGETS = {"sqlite": 0.8, "postgresql": 0.8}
PARTNERS = 1_000
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "bench-secret-" + "x" * 32
ROOT = Path(__file__).resolve().parent.parent


def seed(url: str, links: int) -> list[str]:
    """A program with a site, PARTNERS partners and `links` links spread over them; returns the link codes."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as s:
        program = create_program(s, actor=SYSTEM, name="Bench", currency="EUR", hold_days=30, now=NOW)
        update_program_settings(
            s,
            actor=SYSTEM,
            program_id=program.id,
            changes={"site_url": "https://shop.example.com", "allowed_domains": ["example.org"]},
            now=NOW,
        )
        partner_ids = new_ids("ptn", PARTNERS)
        codes = [f"partner-{i:05d}" for i in range(PARTNERS)]
        bulk_insert(
            s,
            "partners",
            ("id", "program_id", "name", "email", "referral_code", "status", "created_at", "source"),
            [
                (pid, program.id, f"Partner {i}", f"p{i}@example.com", codes[i], "active", NOW, "import")
                for i, pid in enumerate(partner_ids)
            ],
        )
        link_codes = [f"{codes[i % PARTNERS]}.campaign-{i // PARTNERS}" for i in range(links)]
        params = json_value(s, {"utm_source": "bench", "utm_medium": "cpc"})
        bulk_insert(
            s,
            "referral_links",
            ("id", "program_id", "partner_id", "code", "campaign", "destination_url", "params", "active", "created_at",
             "created_by"),
            [
                (lid, program.id, partner_ids[i % PARTNERS], code, f"Campaign {i // PARTNERS}",
                 f"https://docs.example.org/p/{i}?lang=en", params, True, NOW, "system")
                for i, (lid, code) in enumerate(zip(new_ids("lnk", links), link_codes, strict=True))
            ],
        )  # fmt: skip
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return link_codes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    """Start a server (its output to a log file in cwd, which nobody has to drain) and wait for its port."""
    log = Path(cwd) / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def wait_for_log(cwd: str, port: int, text: str, seconds: float = 300) -> None:
    log = Path(cwd) / f"server-{port}.log"
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"the server never logged {text!r}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("server did not stop within 120 s of SIGTERM") from None


def ours(url: str, port: int, cwd: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PARTNERPAY_DATABASE_URL": url,
        "PARTNERPAY_SECRET_KEY": SECRET,
        "PARTNERPAY_IN_PROCESS_WORKER": "false",
        "PARTNERPAY_BASE_URL": "http://127.0.0.1",
    }
    command = [str(Path(sys.executable).parent / "partnerpay"), "serve", "--port", str(port), "--no-access-log"]
    return start(command, port, env, cwd)


def bare(port: int, cwd: str) -> subprocess.Popen[bytes]:
    return start([sys.executable, __file__, "--bare", str(port)], port, dict(os.environ), cwd)


def serve_bare(port: int) -> None:
    """The limit: Starlette, one route, a 302, nothing else; uvicorn as `partnerpay serve` runs it."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    async def redirect(request: Request) -> RedirectResponse:
        return RedirectResponse(f"https://docs.example.org/?ref={request.path_params['code']}", status_code=302)

    app = Starlette(routes=[Route("/r/{code}", redirect)])
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def count_clicks(url: str) -> int:
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        n = int(s.scalar(select(func.count()).select_from(Click)) or 0)
    engine.dispose()
    return n


def load(port: int, codes: list[str], seconds: float, tool: str) -> Run:
    if tool == "wrk":
        return run_wrk(port, codes, seconds=seconds)
    paths = [f"/r/{c}" for c in random.sample(codes, min(len(codes), 20_000))]
    return run_loadgen(port, paths, seconds=seconds)


def sigterm_check(url: str, codes: list[str], seconds: float, cwd: str) -> tuple[int, int]:
    """A fresh server, load, SIGTERM half-way through: (clicks stored, redirects received)."""
    before = count_clicks(url)
    port = free_port()
    proc = ours(url, port, cwd)
    paths = [f"/r/{c}" for c in random.sample(codes, 5_000)]
    timer = threading.Timer(seconds / 2, proc.send_signal, args=(signal.SIGTERM,))
    timer.start()
    run = run_loadgen(port, paths, seconds=seconds)
    proc.wait(timeout=120)
    return count_clicks(url) - before, run.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measured run")
    parser.add_argument("--tool", choices=["auto", "wrk", "loadgen"], default="auto")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare)
        return
    tool = ("wrk" if have_wrk() else "loadgen") if args.tool == "auto" else args.tool
    with fresh_database(args.db) as url, tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        codes = seed(url, SIZES[args.size])
        print(f"seeded {len(codes)} links in {time.perf_counter() - started:.1f} s; load by {tool}", flush=True)
        our_port, bare_port = free_port(), free_port()
        our_proc, bare_proc = ours(url, our_port, cwd), bare(bare_port, cwd)
        # Measure the steady state: the link cache is filled in the background at startup.
        wait_for_log(cwd, our_port, "referral code cache filled")
        warm = max(2.0, args.duration / 2)
        ours_runs: list[Run] = []
        bare_runs: list[Run] = []
        try:
            # One untimed round each: imports, the cache's first fill, the CPU's clock ramp.
            served = load(our_port, codes, warm, tool).requests
            load(bare_port, codes, warm, tool)
            for _ in range(args.repeat):
                ours_runs.append(load(our_port, codes, args.duration, tool))
                bare_runs.append(load(bare_port, codes, args.duration, tool))
            served += sum(r.requests for r in ours_runs)
        finally:
            stop(our_proc)
            stop(bare_proc)
        clicks = count_clicks(url)
        ours_rate = statistics.median(r.rate for r in ours_runs)
        bare_rate = statistics.median(r.rate for r in bare_runs)
        report = {
            "ours": _figures(ours_runs),
            "limit": _figures(bare_runs),
            "errors": sum(r.other for r in ours_runs + bare_runs),
        }
        if tool == "loadgen":
            report["loadgen_ceiling_rps"] = round(loadgen_ceiling(args.duration))
        # wrk stops mid-request: a request the server answered as wrk closed is a click wrk did not count
        # (loadgen reads every answer, so its count is exact).
        slack = 64 * (args.repeat + 1) if tool == "wrk" else 0
        clean_ok = served <= clicks <= served + slack
        report["clicks_after_clean_stop"] = {"clicks": clicks, "redirects": served, "in_flight_allowed": slack}
        stored, received = sigterm_check(url, codes, max(2.0, args.duration), cwd)
        report["clicks_after_sigterm_mid_load"] = {"clicks": stored, "redirects": received}
        print(json.dumps(report))
        print(result_line("click_redirect", args.db, ours_rate, bare_rate, TARGETS[args.db]), flush=True)
        if not clean_ok or stored != received:
            raise SystemExit("clicks stored differ from redirects served")


def _figures(runs: list[Run]) -> dict[str, float]:
    return {
        "rps": round(statistics.median(r.rate for r in runs)),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
    }


if __name__ == "__main__":
    main()
