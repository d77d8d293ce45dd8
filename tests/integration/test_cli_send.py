"""`partnerpay payouts send`: Pay all from the shell on a real database, then the worker's job sends it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock, SystemClock
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutFile
from tests.integration.sending_helpers import BOX, approved_batch, drain, worker

KEY = "test-secret-key-for-sending-" + "x" * 20  # the key of sending_helpers.BOX


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": KEY})


def test_an_approved_batch_is_sent_by_its_rails_and_a_second_send_is_refused(
    cli: CliRunner, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    assert BOX is not None
    setup = approved_batch(session, clock, ["sepa", "sepa2"])
    session.commit()
    result = cli.invoke(app, ["payouts", "send", "--batch", setup.batch_id], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "sending" in result.output and "sepa" in result.output and "€60.00" in result.output
    session.expire_all()
    assert session.get(PayoutBatch, setup.batch_id).status == "sending"  # type: ignore[union-attr]
    # The command stamps its job with the wall clock; the worker runs it once that time has come.
    drain(session, worker(session_factory, FixedClock(SystemClock().now() + timedelta(minutes=1))))
    (file,) = session.scalars(select(PayoutFile))
    assert file.format == "sepa" and file.control_sum == 6_000
    assert set(session.scalars(select(Payout.status).where(Payout.batch_id == setup.batch_id))) == {"sent"}
    session.rollback()  # let go of the database before the command writes
    again = cli.invoke(app, ["payouts", "send", "--batch", setup.batch_id])
    assert again.exit_code != 0 and "sent" in again.output


def test_an_unknown_batch_is_named(cli: CliRunner) -> None:
    result = cli.invoke(app, ["payouts", "send", "--batch", "bat_nope"])
    assert result.exit_code != 0 and "bat_nope" in result.output
