"""`partnerpay payouts reconcile` and the tie-out in `partnerpay verify`, on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock
from partnerpay.payouts.models import Payout
from tests.integration.test_reconcile import approved_batch


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})


def test_a_returns_file_is_recorded_and_the_batch_ties_out(
    cli: CliRunner, session: Session, clock: FixedClock, tmp_path: Path
) -> None:
    a, b = approved_batch(session, clock, partners=2, sent=True)
    batch_id, ids = a.batch_id, (a.id, b.id)
    session.rollback()
    file = tmp_path / "returns.csv"
    file.write_text(f"payout_id,status,reason\n{ids[0]},paid,\n{ids[1]},returned,R03 no such account\n")
    dry = cli.invoke(app, ["payouts", "reconcile", "--batch", batch_id, str(file), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would record 1 paid, 0 failed, 1 returned" in dry.output
    result = cli.invoke(app, ["payouts", "reconcile", "--batch", batch_id, str(file)])
    assert result.exit_code == 0, result.output
    assert "1 paid, 0 failed, 1 returned" in result.output and "is settled" in result.output
    assert "✗" not in result.output
    statuses = dict(session.execute(select(Payout.id, Payout.status).where(Payout.batch_id == batch_id)).all())
    session.rollback()
    assert statuses == {ids[0]: "paid", ids[1]: "returned"}
    verify = cli.invoke(app, ["verify"])
    assert verify.exit_code == 0, verify.output


def test_a_bad_file_lists_its_rows_and_exits_1(
    cli: CliRunner, session: Session, clock: FixedClock, tmp_path: Path
) -> None:
    (a,) = approved_batch(session, clock, partners=1, sent=True)
    batch_id, pid = a.batch_id, a.id
    session.rollback()
    file = tmp_path / "returns.csv"
    file.write_text(f"payout_id,status\n{pid},maybe\npay_unknown,paid\n")
    result = cli.invoke(app, ["payouts", "reconcile", "--batch", batch_id, str(file)])
    assert result.exit_code == 1
    assert "row 2, column status" in result.output and "row 3, column payout_id" in result.output


def test_verify_reports_a_batch_whose_ledger_does_not_tie_out(
    cli: CliRunner, session: Session, clock: FixedClock
) -> None:
    (a,) = approved_batch(session, clock, partners=1, sent=True)
    # A payout marked paid behind the ledger's back: its money never left clearing.
    session.execute(text("UPDATE payouts SET status = 'paid' WHERE id = :id"), {"id": a.id})
    session.commit()
    result = cli.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert f"batch {a.batch_id}: Ledger: paid out" in result.output.replace("\n", " ")
