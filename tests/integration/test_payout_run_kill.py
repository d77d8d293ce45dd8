"""A payout run killed with SIGKILL at a named point (a real process, SQLite): the restart pays every line once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.kit.clock import FixedClock
from partnerpay.ledger.verify import verify
from partnerpay.payouts.models import Payout, PayoutRun
from partnerpay.payouts.run import create_payout_run
from tests import factories
from tests.integration.payout_helpers import approved_line

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from partnerpay.auth.actor import SYSTEM
    from partnerpay.db.engine import make_engine, make_session_factory
    from partnerpay.payouts.run import create_payout_run

    url, program_id, point, now = sys.argv[1:5]

    def crash(at: str) -> None:
        if at == point:
            os.kill(os.getpid(), signal.SIGKILL)  # no rollback, no cleanup: the power cord

    factory = make_session_factory(make_engine(url))
    with factory() as session:
        create_payout_run(session, actor=SYSTEM, program_id=program_id, now=datetime.fromisoformat(now), crash=crash)
        session.commit()
    """
)


@pytest.mark.parametrize("point", ["after_payouts_insert", "after_ledger_posted", "after_audit"])
def test_kill_9_mid_run_then_restart(
    backend: str, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock, point: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the kill test runs on the SQLite file; the in-transaction crash tests cover PostgreSQL")
    now = clock.now()
    with session_factory() as s:
        prog = factories.program(s, now)
        for n in range(3):
            partner = factories.partner(s, prog, now, f"P{n}")
            approved_line(s, prog.id, partner.id, 1_000 * (n + 1), now)
            approved_line(s, prog.id, partner.id, 500, now, currency="USD")
        s.commit()
        program_id = prog.id
    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, program_id, point, now.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Payout)) == 0
        assert s.scalar(select(func.count()).select_from(PayoutRun)) == 0
        assert set(s.scalars(select(CommissionLine.status))) == {LineStatus.APPROVED.value}
        assert verify(s).ok
        result = create_payout_run(s, actor=SYSTEM, program_id=program_id, now=now)
        s.commit()
        assert result.totals == {"EUR": 6_000, "USD": 1_500}
        assert create_payout_run(s, actor=SYSTEM, program_id=program_id, now=now).payouts == []
        s.commit()
        assert s.scalar(select(func.count()).select_from(CommissionLine).where(CommissionLine.payout_id.is_(None))) == 0
        report = verify(s)
        assert report.ok, report.problems
