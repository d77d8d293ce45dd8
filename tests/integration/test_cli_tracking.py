"""`partnerpay fraud scan`: flags what the sweep finds, once, and refuses an unknown program."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock
from partnerpay.tracking import fraud
from partnerpay.tracking.attribution_models import FraudFlag
from tests import factories
from tests.integration.test_cli import cli, end  # noqa: F401  (the fixture)
from tests.integration.test_fraud import clicks


class TestFraudScan:
    def test_scan_flags_an_ip_burst_once(self, cli: CliRunner, session: Session, clock: FixedClock) -> None:  # noqa: F811
        prog = factories.program(session, clock.now())
        acme = factories.partner(session, prog, clock.now(), "Acme")
        clicks(session, prog, acme, clock.now(), fraud.IP_BURST_CLICKS, "burst")
        session.commit()
        at = clock.now().isoformat()
        first = cli.invoke(app, ["fraud", "scan", "--program", prog.id, "--at", at])
        assert first.exit_code == 0, first.output
        assert "ip_burst" in first.output and acme.id in first.output
        again = cli.invoke(app, ["fraud", "scan", "--program", prog.id, "--at", at])
        assert again.exit_code == 0 and "No new flags." in again.output
        assert [f.kind for f in session.scalars(select(FraudFlag))] == ["ip_burst"]
        end(session)

    def test_unknown_program_exits_1_naming_it(self, cli: CliRunner) -> None:  # noqa: F811
        result = cli.invoke(app, ["fraud", "scan", "--program", "prg_nope"])
        assert result.exit_code == 1 and "program_id" in result.output
