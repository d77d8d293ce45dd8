"""`partnerpay statements export` and `partnerpay statements verify FILE` on a real database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.cli import app
from tests import factories
from tests.integration import payout_helpers

SECRET = "s" * 40
JAN = datetime(2026, 1, 10, 12, tzinfo=UTC)


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET})


def partner_with_a_line(session: Session) -> tuple[str, str]:
    prog = factories.program(session, JAN)
    partner = factories.partner(session, prog, JAN, "Acme Media")
    payout_helpers.approved_line(session, prog.id, partner.id, 12_345, JAN)
    session.commit()
    ids = (prog.id, partner.id)
    session.rollback()  # end the read transaction: on SQLite it would hold the lock the command needs
    return ids


class TestStatementsCli:
    @pytest.mark.parametrize("suffix", ["pdf", "csv"])
    def test_exported_file_verifies_and_a_changed_byte_does_not(
        self, cli: CliRunner, session: Session, tmp_path: Path, suffix: str
    ) -> None:
        _, partner_id = partner_with_a_line(session)
        path = tmp_path / f"statement.{suffix}"
        made = cli.invoke(
            app, ["statements", "export", "--partner", partner_id, "--period", "2026-01", "--out", str(path)]
        )
        assert made.exit_code == 0, made.output
        assert "SHA-256" in made.output
        ok = cli.invoke(app, ["statements", "verify", str(path)])
        assert ok.exit_code == 0, ok.output
        assert "matches the ledger as of" in ok.output and "issued on" in ok.output
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        bad = cli.invoke(app, ["statements", "verify", str(path)])
        assert bad.exit_code == 1
        assert "does not match the ledger" in bad.output

    def test_a_line_added_to_the_month_later_is_named(self, cli: CliRunner, session: Session, tmp_path: Path) -> None:
        prog_id, partner_id = partner_with_a_line(session)
        path = tmp_path / "statement.csv"
        cli.invoke(app, ["statements", "export", "--partner", partner_id, "--period", "2026-01", "--out", str(path)])
        payout_helpers.approved_line(session, prog_id, partner_id, -2_345, datetime(2026, 1, 20, tzinfo=UTC))
        session.commit()
        session.rollback()
        bad = cli.invoke(app, ["statements", "verify", str(path)])
        assert bad.exit_code == 1
        assert "EUR closing balance: the file says €123.45, the ledger €100.00" in bad.output

    def test_missing_file_and_wrong_type_exit_1(self, cli: CliRunner, tmp_path: Path) -> None:
        missing = cli.invoke(app, ["statements", "verify", str(tmp_path / "nope.pdf")])
        assert missing.exit_code == 1 and "is not a file" in missing.output
        other = tmp_path / "picture.png"
        other.write_bytes(b"\x89PNG\r\n")
        wrong = cli.invoke(app, ["statements", "verify", str(other)])
        assert wrong.exit_code == 1 and "statement PDF or CSV" in wrong.output
