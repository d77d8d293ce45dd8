"""Pay all killed with SIGKILL (kill -9) at each named point of the send, in a real worker process, then
restarted: every payout is paid exactly once, the same idempotency keys are sent, the ledger ties out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.kit.clock import FixedClock
from partnerpay.payouts.models import Payout, PayoutFile
from partnerpay.payouts.sending import start_send
from tests.integration.payout_rail_fakes import FakePaypal, FakeStripe, serving
from tests.integration.sending_helpers import BOX, approved_batch, drain, statuses, worker
from tests.integration.test_payout_sending import ties_out

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent(
    """
    import os, signal
    from datetime import datetime
    from partnerpay.db.engine import make_engine, make_session_factory
    from partnerpay.kit.clock import FixedClock
    from tests.integration.sending_helpers import worker

    def crash(point):
        if point == os.environ["CRASH_POINT"]:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback, no finally: kill -9

    engine = make_engine(os.environ["DB_URL"])
    clock = FixedClock(datetime.fromisoformat(os.environ["NOW"]))
    run = worker(make_session_factory(engine), clock, stripe_url=os.environ["STRIPE_URL"],
                 paypal_url=os.environ["PAYPAL_URL"], crash=crash)
    run.run_pending()
    raise SystemExit("the crash point was never reached")
    """
)


def wait_for_dead_transactions(session: Session, timeout: float = 30.0) -> None:
    """PostgreSQL ends a killed client's transaction only when its backend notices the closed socket, which
    takes a moment on a busy server. Until then the job's row stays locked, the restarted worker's claim
    (FOR UPDATE SKIP LOCKED) passes over it, as a live worker would, and this test's single drain would see
    nothing sent. A real worker claims it on a later poll; here we wait for the backend instead."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the killed process's lock goes with its file descriptors
    deadline = time.monotonic() + timeout
    others = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
    while session.scalar(others) and time.monotonic() < deadline:
        session.rollback()
        time.sleep(0.05)
    session.rollback()


@pytest.mark.parametrize("point", ["after_batch_marked_sending", "after_file_written", "after_provider_call"])
def test_a_send_killed_at_a_named_point_and_restarted_pays_each_payout_once(
    session: Session, session_factory: sessionmaker[Session], clock: FixedClock, database_url: str, point: str
) -> None:
    setup = approved_batch(session, clock, ["sepa", "stripe", "stripe2", "paypal"])
    start_send(session, actor=SYSTEM, box=BOX, batch_id=setup.batch_id, now=clock.now())
    session.commit()
    keys = {p.id: p.idempotency_key for p in session.scalars(select(Payout))}
    session.rollback()
    with serving(FakeStripe()) as stripe, serving(FakePaypal()) as paypal:
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
            "DB_URL": database_url,
            "NOW": clock.now().isoformat(),
            "STRIPE_URL": stripe.url,
            "PAYPAL_URL": paypal.url,
            "CRASH_POINT": point,
        }
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        assert set(statuses(session, setup.batch_id).values()) == {"sending"}  # nothing of the pass was kept
        wait_for_dead_transactions(session)
        clock.advance(timedelta(hours=2))  # past the dead worker's lease: the job is reclaimed
        restarted = worker(session_factory, clock, stripe_url=stripe.url, paypal_url=paypal.url)
        drain(session, restarted)
        paypal.item_status = {setup.payouts["paypal"]: "SUCCESS"}
        clock.advance(timedelta(hours=1))
        drain(session, restarted)
    assert sorted(t["metadata"]["payout_id"] for t in stripe.transfers) == sorted(
        [setup.payouts["stripe"], setup.payouts["stripe2"]]
    )
    assert len(paypal.batches) == 1
    assert all(r.headers["idempotency-key"] == keys[r.form()["metadata[payout_id]"]] for r in stripe.posts())
    if point == "after_provider_call":  # the killed pass reached Stripe: its transfer was asked for twice
        assert len(stripe.posts()) == 3
    final = statuses(session, setup.batch_id)
    assert final[setup.payouts["sepa"]] == "sent"
    assert {final[setup.payouts[k]] for k in ("stripe", "stripe2", "paypal")} == {"paid"}
    assert len(list(session.scalars(select(PayoutFile)))) == 1
    assert ties_out(session)
