"""`partnerpay payouts run` lists skips with reasons and totals per currency; `payouts schedule` shows and sets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock
from tests import factories
from tests.integration.payout_helpers import approved_line

SECRET = "s" * 40


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET, "COLUMNS": "200"})


def test_schedule_set_and_shown_then_a_run_lists_skips_and_currency_totals(
    cli: CliRunner, session: Session, clock: FixedClock
) -> None:
    past = clock.now() - timedelta(days=1)
    prog = factories.program(session, past)
    rich, poor = factories.partner(session, prog, past, "Rich"), factories.partner(session, prog, past, "Poor")
    approved_line(session, prog.id, rich.id, 9_000, past)
    approved_line(session, prog.id, rich.id, 7_000, past, currency="USD")
    approved_line(session, prog.id, poor.id, 1_000, past)
    session.commit()

    shown = cli.invoke(app, ["payouts", "schedule", "--program", prog.id])
    assert shown.exit_code == 0, shown.output
    assert "by hand" in shown.stdout

    args = ["--schedule", "weekly", "--weekday", "friday", "--timezone", "Europe/Berlin", "--minimum", "EUR=5000",
            "--no-require-verified-method"]  # fmt: skip
    set_ = cli.invoke(app, ["payouts", "schedule", "--program", prog.id, *args])
    assert set_.exit_code == 0, set_.output
    assert "weekly on Friday at 09:00 Europe/Berlin" in set_.stdout and "€50.00" in set_.stdout

    bad = cli.invoke(app, ["payouts", "schedule", "--program", prog.id, "--schedule", "weekly"])
    assert bad.exit_code == 1 and "[weekday]" in bad.stderr

    run = cli.invoke(app, ["payouts", "run", "--program", prog.id])
    assert run.exit_code == 0, run.output
    assert "below_minimum" in run.stdout and "minimum=5000" in run.stdout
    assert "€90.00" in run.stdout and "$70.00" in run.stdout
    assert "2 payout(s) in 2 draft batch(es); 1 skipped." in run.stdout
