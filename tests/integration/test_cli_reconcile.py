"""`partnerpay payouts reconcile` and the tie-out in `partnerpay verify`, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.partners.payout_details import set_tax_profile
from partnerpay.payouts.models import Payout
from tests.integration.test_reconcile import approved_batch
from tests.integration.test_tax import W9, paid_program, partner_of


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


def test_tax_1099_prints_masked_tins_and_seals_the_full_report(
    cli: CliRunner, session: Session, clock: FixedClock, tmp_path: Path
) -> None:
    prog, payouts = paid_program(session, clock, {"a": 400_000}, paid_at=datetime(2026, 1, 5, tzinfo=UTC))
    set_tax_profile(
        session,
        actor=SYSTEM,
        box=SecretBox("s" * 40),
        partner_id=partner_of(session, payouts["a"]),
        data=W9,
        now=clock.now(),
    )
    session.commit()
    program_id = prog.id
    shown = cli.invoke(app, ["tax", "1099", "--program", program_id, "--year", "2026"])
    assert shown.exit_code == 0, shown.output
    assert "$800.00" in shown.output and "4442" in shown.output and "1144442" not in shown.output
    sealed = tmp_path / "nec.sealed.json"
    written = cli.invoke(
        app,
        ["tax", "1099", "--program", program_id, "--year", "2026", "--out", str(sealed), "--passphrase-stdin"],
        input="a long enough passphrase\n",
    )
    assert written.exit_code == 0, written.output
    assert b"1144442" not in sealed.read_bytes()
    opened = cli.invoke(app, ["tax", "decrypt", str(sealed), "--passphrase-stdin"], input="a long enough passphrase\n")
    assert opened.exit_code == 0, opened.output
    assert "91-1144442" in (tmp_path / "1099-nec-2026.csv").read_text()
    wrong = cli.invoke(app, ["tax", "decrypt", str(sealed), "--passphrase-stdin"], input="not the passphrase\n")
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
