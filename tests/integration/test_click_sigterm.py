"""SIGTERM loses no click: `partnerpay serve` in a real process, redirects under load, SIGTERM mid-load.

The writer is set to flush only every 60 s, so every click depends on the final flush that uvicorn's
graceful shutdown (lifespan exit) runs: clicks in the database must equal the 302 responses received.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import make_engine, make_session_factory, unit_of_work
from partnerpay.db.migrate import upgrade
from partnerpay.kit.clock import SystemClock
from partnerpay.programs.service import update_program_settings
from partnerpay.tracking.links import create_link
from partnerpay.tracking.models import Click
from tests import factories

CLIENTS = 4
SIGNAL_AFTER = 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(url: str) -> list[str]:
    upgrade(url)
    engine = make_engine(url)
    now = SystemClock().now()
    with unit_of_work(make_session_factory(engine)) as s:
        prog = factories.program(s, now)
        update_program_settings(
            s, actor=SYSTEM, program_id=prog.id, changes={"site_url": "https://shop.example.com"}, now=now
        )
        partner = factories.partner(s, prog, now, "Acme Media")
        link = create_link(s, actor=SYSTEM, partner_id=partner.id, now=now, campaign="load")
        codes = [partner.referral_code, link.code, "nobody"]
    engine.dispose()
    return codes


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    # A bound on waiting, not a speed check: a loaded 2-core CI machine has taken over 30 s to import and bind.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "partnerpay serve exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("partnerpay serve did not start")


class Load:
    """Keep-alive clients firing redirects until the server goes away; count the 302s they received."""

    def __init__(self, port: int, codes: list[str]) -> None:
        self.port = port
        self.codes = codes
        self.lock = threading.Lock()
        self.redirects = 0
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def _client(self, n: int) -> None:
        failures = 0
        while failures < 3:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                i = 0
                while True:
                    conn.request("GET", f"/r/{self.codes[(n + i) % len(self.codes)]}")
                    response = conn.getresponse()
                    response.read()
                    if response.status == 302:
                        with self.lock:
                            self.redirects += 1
                    i += 1
                    failures = 0
            except (OSError, http.client.HTTPException):
                failures += 1  # closed by the shutdown: reconnect, until connecting is refused
                time.sleep(0.01)
            finally:
                conn.close()


def test_sigterm_mid_load_loses_no_click(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clicks.db'}"
    codes = _seed(url)
    port = _free_port()
    env = {
        **os.environ,
        "PARTNERPAY_DATABASE_URL": url,
        "PARTNERPAY_SECRET_KEY": "t" * 40,
        "PARTNERPAY_IN_PROCESS_WORKER": "false",
        "PARTNERPAY_CLICK_FLUSH_MS": "60000",
        "PARTNERPAY_CLICK_FLUSH_EVERY": "1000000",
    }
    command = [str(Path(sys.executable).parent / "partnerpay"), "serve", "--port", str(port), "--no-access-log"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc)
        load = Load(port, codes)
        for thread in load.threads:
            thread.start()
        deadline = time.monotonic() + 30
        while load.redirects < SIGNAL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        at_signal = load.redirects
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once shut down cleanly, so the exit status says "terminated by SIGTERM".
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
        assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
        for thread in load.threads:
            thread.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        stored = s.scalar(select(func.count()).select_from(Click))
    engine.dispose()
    assert at_signal >= SIGNAL_AFTER
    assert stored == load.redirects, (tmp_path / "serve.log").read_text()[-3000:]
