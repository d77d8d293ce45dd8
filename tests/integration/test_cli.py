"""The `partnerpay` command on a real database: the skeleton path end to end, and bad input refused."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay import cli as cli_module
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import ApiKey, StaffUser
from partnerpay.auth.service import api_key_actor, authenticate_staff, staff_actor
from partnerpay.cli import app
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.ledger.models import LedgerPosting
from partnerpay.messaging.models import Notification
from partnerpay.partners.service import create_partner
from partnerpay.payouts.models import Payout, PayoutBatch
from partnerpay.payouts.service import approve_batch, mark_batch_paid
from partnerpay.programs.service import create_program

SECRET = "s" * 40
PASSWORD = "correct horse battery"


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET})


def count(session: Session, model: type[Any]) -> int:
    n = int(session.scalar(select(func.count()).select_from(model)) or 0)
    end(session)
    return n


def end(session: Session) -> None:
    """End the test's read transaction: on SQLite it holds the write lock the command needs."""
    session.rollback()


def paid_invoices(session: Session, clock: FixedClock, *, amounts: list[int]) -> tuple[str, str]:
    """A program with one partner whose customer paid `amounts` 60 days ago; returns (program, partner)."""
    at = clock.now() - timedelta(days=60)
    program = create_program(
        session, actor=SYSTEM, name="CLI program", currency="EUR", hold_days=30, default_percent_bp=2000, now=at
    )
    partner = create_partner(
        session, actor=SYSTEM, program_id=program.id, name="Acme Media", email="acme@media.example", now=at
    )
    for n, amount in enumerate(amounts):
        data = EventIn(
            program_id=program.id,
            type=EventType.INVOICE_PAID,
            external_id=f"in_{n}",
            occurred_at=at,
            customer_external_id="cus_1",
            partner_id=partner.id,
            amount=amount,
            currency="EUR",
        )
        record_event(session, actor=SYSTEM, data=data, now=at)
    session.commit()
    return program.id, partner.id


def corrupt_one_posting(session: Session, backend: str) -> str:
    """Change a posting behind the ledger's back; returns the account it belongs to."""
    posting_id, account_id = session.execute(
        select(LedgerPosting.id, LedgerPosting.account_id).order_by(LedgerPosting.id).limit(1)
    ).one()
    if backend == "postgresql":
        session.execute(text("ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_append_only"))
        session.execute(text("UPDATE ledger_postings SET amount = amount + 1 WHERE id = :id"), {"id": posting_id})
        session.execute(text("ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_append_only"))
    else:
        session.execute(text("DROP TRIGGER ledger_postings_no_update"))
        session.execute(text("UPDATE ledger_postings SET amount = amount + 1 WHERE id = :id"), {"id": posting_id})
    session.commit()
    return str(account_id)


class TestSkeletonPath:
    def test_users_keys_payout_run_and_verify_then_a_corrupted_posting_is_named(
        self, cli: CliRunner, session: Session, clock: FixedClock, backend: str
    ) -> None:
        made = cli.invoke(
            app,
            ["users", "create", "--email", "Fin@Example.com", "--role", "finance", "--password-stdin"],
            input=PASSWORD + "\n",
        )
        assert made.exit_code == 0, made.output
        finance = authenticate_staff(session, "fin@example.com", PASSWORD)
        assert finance is not None and finance.role == "finance"
        finance_actor = staff_actor(finance)
        end(session)

        keyed = cli.invoke(app, ["apikeys", "create", "--scopes", "read,write", "--name", "ci"])
        assert keyed.exit_code == 0, keyed.output
        key_actor = api_key_actor(session, keyed.stdout.splitlines()[-1])
        assert key_actor is not None and key_actor.scopes == frozenset({"read", "write"})
        end(session)

        program_id, partner_id = paid_invoices(session, clock, amounts=[10_000, 4_999])
        lines = session.scalars(select(CommissionLine.id)).all()
        approve_lines(session, actor=finance_actor, ids=list(lines), now=clock.now())
        session.commit()

        run = cli.invoke(app, ["payouts", "run", "--program", program_id, "--as-user", "fin@example.com"])
        assert run.exit_code == 0, run.output
        assert partner_id in run.stdout and "€30.00" in run.stdout
        payout = session.scalars(select(Payout)).one()
        assert (payout.partner_id, payout.amount, payout.line_count) == (partner_id, 3000, 2)
        end(session)

        again = cli.invoke(app, ["payouts", "run", "--program", program_id])
        assert again.exit_code == 0, again.output
        assert "nothing payable" in again.stdout
        assert count(session, Payout) == 1

        batch = session.scalars(select(PayoutBatch)).one()
        approve_batch(session, actor=SYSTEM, batch_id=batch.id, now=clock.now())
        mark_batch_paid(session, actor=SYSTEM, batch_id=batch.id, now=clock.now())
        session.commit()
        ok = cli.invoke(app, ["verify"])
        assert ok.exit_code == 0, ok.output
        assert "OK" in ok.stdout

        account_id = corrupt_one_posting(session, backend)
        broken = cli.invoke(app, ["verify"])

        assert broken.exit_code == 1
        assert f"account {account_id}" in broken.stdout
        as_json = cli.invoke(app, ["verify", "--json"])
        assert as_json.exit_code == 1 and '"ok": false' in as_json.stdout


class TestUsersCreate:
    def test_a_bad_role_exits_1_naming_role_and_writes_nothing(self, cli: CliRunner, session: Session) -> None:
        result = cli.invoke(
            app, ["users", "create", "--email", "a@example.com", "--role", "boss", "--password-stdin"], input="x" * 12
        )

        assert result.exit_code == 1
        assert "role" in result.stderr and "boss" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert count(session, StaffUser) == 0

    def test_without_stdin_the_password_is_asked_twice(self, cli: CliRunner, session: Session) -> None:
        result = cli.invoke(
            app, ["users", "create", "--email", "o@example.com", "--role", "owner"], input=f"{PASSWORD}\n{PASSWORD}\n"
        )

        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        assert authenticate_staff(session, "o@example.com", PASSWORD) is not None

    def test_a_short_password_and_a_taken_email_are_refused(self, cli: CliRunner, session: Session) -> None:
        args = ["users", "create", "--email", "o@example.com", "--role", "owner", "--password-stdin"]
        short = cli.invoke(app, args, input="short\n")
        assert short.exit_code == 1 and "password" in short.stderr
        assert cli.invoke(app, args, input=PASSWORD + "\n").exit_code == 0

        taken = cli.invoke(app, args, input=PASSWORD + "\n")

        assert taken.exit_code == 1 and "email" in taken.stderr
        assert count(session, StaffUser) == 1


class TestApiKeysCreate:
    def test_a_program_key_is_scoped_to_its_program(self, cli: CliRunner, session: Session, clock: FixedClock) -> None:
        program = create_program(session, actor=SYSTEM, name="P", currency="EUR", hold_days=30, now=clock.now())
        program_id = program.id
        session.commit()

        result = cli.invoke(app, ["apikeys", "create", "--program", program_id])

        assert result.exit_code == 0, result.output
        actor = api_key_actor(session, result.stdout.splitlines()[-1])
        assert actor is not None and actor.program_id == program_id

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (["--program", "prg_missing"], "program_id"),
            (["--scopes", "read,fly"], "scopes"),
            (["--scopes", ","], "scopes"),
        ],
    )
    def test_bad_input_exits_1_naming_the_field(
        self, cli: CliRunner, session: Session, args: list[str], field: str
    ) -> None:
        result = cli.invoke(app, ["apikeys", "create", *args])

        assert result.exit_code == 1
        assert f"[{field}]" in result.stderr
        assert count(session, ApiKey) == 0


class TestPayoutsRun:
    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (["--as-of", "2026-01-01"], "as_of"),
            (["--as-of", "next tuesday"], "as_of"),
            (["--as-user", "nobody@example.com"], "as_user"),
        ],
    )
    def test_bad_input_exits_1_naming_the_field(
        self, cli: CliRunner, session: Session, clock: FixedClock, args: list[str], field: str
    ) -> None:
        program_id, _ = paid_invoices(session, clock, amounts=[10_000])

        result = cli.invoke(app, ["payouts", "run", "--program", program_id, *args])

        assert result.exit_code == 1
        assert f"[{field}]" in result.stderr

    def test_an_unknown_program_exits_1(self, cli: CliRunner) -> None:
        result = cli.invoke(app, ["payouts", "run", "--program", "prg_missing"])

        assert result.exit_code == 1 and "program_id" in result.stderr

    def test_as_of_decides_which_holds_have_ended(self, cli: CliRunner, session: Session, clock: FixedClock) -> None:
        program_id, _ = paid_invoices(session, clock, amounts=[10_000])
        lines = list(session.scalars(select(CommissionLine.id)))
        approve_lines(session, actor=SYSTEM, ids=lines, now=clock.now())
        session.commit()
        early = (clock.now() - timedelta(days=45)).isoformat()

        before_hold_ends = cli.invoke(app, ["payouts", "run", "--program", program_id, "--as-of", early])

        assert before_hold_ends.exit_code == 0, before_hold_ends.output
        assert "nothing payable" in before_hold_ends.stdout
        assert count(session, Payout) == 0


class TestOtherCommands:
    def test_migrate_is_idempotent(self, cli: CliRunner) -> None:
        result = cli.invoke(app, ["migrate"])

        assert result.exit_code == 0, result.output
        assert "nothing to do" in result.stdout

    def test_migrate_creates_a_fresh_sqlite_database(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        runner = CliRunner(env={"PARTNERPAY_DATABASE_URL": url})

        result = runner.invoke(app, ["migrate"])

        assert result.exit_code == 0, result.output
        assert "from an empty database" in result.stdout
        assert runner.invoke(app, ["migrate"]).exit_code == 0

    def test_worker_once_runs_the_due_jobs(
        self, cli: CliRunner, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        paid_invoices(session, clock, amounts=[10_000])
        approve_lines(session, actor=SYSTEM, ids=list(session.scalars(select(CommissionLine.id))), now=clock.now())
        session.commit()

        due = count(session, OutboxJob)  # the approval's portal notice and its email to the partner
        assert due >= 1

        result = cli.invoke(app, ["worker", "--once"])

        assert result.exit_code == 0, result.output
        # The periodic tasks that are due (rollups, retention, …) are queued and run too: cron needs them.
        found = re.search(r"Queued (\d+) periodic job\(s\); ran (\d+) job\(s\)", result.stdout)
        assert found is not None, result.stdout
        queued, ran = int(found.group(1)), int(found.group(2))
        assert queued >= 1 and ran == due + queued
        assert count(session, Notification) == 1
        assert set(session.scalars(select(OutboxJob.status))) == {"done"}
        session.rollback()  # end the test's reads: on SQLite they hold the lock the worker needs
        again = cli.invoke(app, ["worker", "--once"])  # their slots are taken: nothing is queued twice
        assert again.exit_code == 0, again.output
        assert "Queued 0 periodic job(s); ran 0 job(s)" in again.stdout

    def test_serve_migrates_then_runs_the_app(self, cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        calls: list[tuple[Any, str, int]] = []
        monkeypatch.setattr(
            uvicorn, "run", lambda application, host, port, **_: calls.append((application, host, port))
        )

        result = cli.invoke(app, ["serve", "--port", "8123"])

        assert result.exit_code == 0, result.output
        assert [(host, port) for _, host, port in calls] == [("127.0.0.1", 8123)]
        assert calls[0][0].title == "partnerpay"

    def test_serve_without_a_secret_key_exits_1_naming_it(self, database_url: str) -> None:
        runner = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": ""})

        result = runner.invoke(app, ["serve"])

        assert result.exit_code == 1 and "PARTNERPAY_SECRET_KEY" in result.stderr

    def test_usage_errors_exit_1_with_one_red_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setattr(sys, "argv", ["partnerpay", "serve", "--port", "abc"])

        with pytest.raises(SystemExit) as exited:
            cli_module.main()

        assert exited.value.code == 1
        assert "--port" in capsys.readouterr().err
