"""`partnerpay fx import`: a rates CSV is recorded all or nothing, and every bad row is listed by its row."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.cli import app
from partnerpay.fx.models import FxRateRecord
from partnerpay.fx.service import rate_for
from partnerpay.kit.clock import FixedClock
from partnerpay.programs.models import Program
from tests import factories

GOOD = "base,quote,rate,rate_date,source\nEUR,USD,1.0842,2026-03-01,ECB reference rate\nJPY,EUR,0.0061,2026-03-02,\n"


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})


@pytest.fixture
def prog(session: Session, clock: FixedClock) -> Program:
    program = factories.program(session, clock.now())
    session.commit()
    return program


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.csv"
    path.write_text(text, encoding="utf-8")
    return path


class TestImport:
    def test_a_good_file_is_recorded_and_audited(
        self, cli: CliRunner, session: Session, prog: Program, tmp_path: Path
    ) -> None:
        result = cli.invoke(app, ["fx", "import", str(write(tmp_path, GOOD)), "--program", prog.id])
        assert result.exit_code == 0, result.output
        assert "Imported 2 rates from rates.csv" in result.output and "2 created" in result.output
        found = rate_for(session, prog.id, "JPY", "EUR", date(2026, 3, 9))
        assert (found.text, found.source) == ("0.0061", "manual")
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action == "fx_rate.add")).all()
        assert len(actions) == 2
        program_id = prog.id
        session.rollback()  # end the write transaction so that the next import may write (SQLite)
        again = cli.invoke(app, ["fx", "import", str(write(tmp_path, GOOD)), "--program", program_id])
        assert "2 unchanged" in again.output, again.output

    def test_every_bad_row_is_listed_and_nothing_is_written(
        self, cli: CliRunner, session: Session, prog: Program, tmp_path: Path
    ) -> None:
        text = GOOD + "EUR,GBP,0.85.1,2026-03-01,x\nUSD,USD,1,2026-03-01,x\nCHF,EUR,1.0,03/01/2026,x\n"
        result = cli.invoke(app, ["fx", "import", str(write(tmp_path, text)), "--program", prog.id])
        assert result.exit_code == 1
        output = " ".join(result.output.split())
        assert "row 4, column rate: rate must be a plain positive decimal" in output
        assert "row 5, column quote: base and quote are both USD" in output
        assert "row 6, column rate_date: rate_date must be a day" in output
        assert "3 problem(s) in rates.csv" in output
        assert session.scalars(select(FxRateRecord)).all() == []

    def test_a_conflicting_day_names_the_row_until_replace(
        self, cli: CliRunner, session: Session, prog: Program, tmp_path: Path
    ) -> None:
        assert cli.invoke(app, ["fx", "import", str(write(tmp_path, GOOD)), "--program", prog.id]).exit_code == 0
        changed = GOOD.replace("0.0061", "0.0062")
        result = cli.invoke(app, ["fx", "import", str(write(tmp_path, changed)), "--program", prog.id])
        assert result.exit_code == 1
        output = " ".join(result.output.split())
        assert "row 3, column rate: JPY→EUR on 2026-03-02 is already recorded as 0.0061" in output, output
        assert "--replace" in output
        replaced = cli.invoke(app, ["fx", "import", str(write(tmp_path, changed)), "--program", prog.id, "--replace"])
        assert "1 replaced, 1 unchanged" in replaced.output, replaced.output

    def test_an_unknown_program_and_a_bad_header_are_refused(
        self, cli: CliRunner, prog: Program, tmp_path: Path
    ) -> None:
        unknown = cli.invoke(app, ["fx", "import", str(write(tmp_path, GOOD)), "--program", "prg_nope"])
        assert unknown.exit_code == 1 and "program prg_nope not found" in unknown.output
        header = cli.invoke(app, ["fx", "import", str(write(tmp_path, "from,to\nEUR,USD\n")), "--program", prog.id])
        assert header.exit_code == 1 and "unknown column(s) from, to" in " ".join(header.output.split())
