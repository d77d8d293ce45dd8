"""`partnerpay statements verify FILE` and `partnerpay statements export --partner ID --period YYYY-MM --out FILE`.

verify recomputes a statement PDF or CSV from the ledger and prints "matches the ledger as of …", or every
figure and row that differs (exit 1), also when the file was altered. export writes a statement file (issued
as by a download from the console, audited as issued by the system).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, err, fail, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.statements.csv_file import render_csv
from partnerpay.statements.pdf import render_pdf
from partnerpay.statements.service import issue, partner_statement
from partnerpay.statements.verify import verify_file

HELP = "Partner statements: verify a file against the ledger, or write one."
statements = typer.Typer(help=HELP, no_args_is_help=True)


@statements.command("verify")
@guarded
def verify_command(file: Path = typer.Argument(..., help="A statement PDF or CSV as partnerpay issues them.")) -> None:
    """Recompute the statement from the ledger: exit 0 when it matches, 1 with every difference otherwise."""
    if not file.is_file():
        fail(f"{file} is not a file", "FILE")
    data = file.read_bytes()
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        result = verify_file(session, data, now=SystemClock().now())
    where = f"{result.partner_id} {result.period}" if result.partner_id else file.name
    if result.ok:
        out().print(f"{escape(file.name)} ({escape(where)}): {escape(result.headline())}")
        return
    console = err()
    console.print(f"[bold red]{escape(file.name)} ({escape(where)}): {escape(result.headline())}[/]")
    for problem in result.problems:
        console.print(f"  - {escape(problem)}")
    raise typer.Exit(1)


@statements.command("export")
@guarded
def export_command(
    partner: str = typer.Option(..., help="Partner id (ptn_…)."),
    period: str = typer.Option(..., help="Month, YYYY-MM, in the program's time zone."),
    out_file: Path = typer.Option(..., "--out", help="Where to write it; .pdf or .csv decides the format."),
) -> None:
    """Write a partner's statement for a month (recorded as issued, like a download)."""
    fmt = out_file.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "csv"):
        fail(f"--out must end in .pdf or .csv, got {out_file.name!r}", "out")
    now = SystemClock().now()
    with database(load_settings()) as factory, unit_of_work(factory) as session:
        statement = partner_statement(session, actor=SYSTEM, partner_id=partner, period=period, now=now)
        data = render_pdf(statement.content) if fmt == "pdf" else render_csv(statement.content)
        issue(session, actor=SYSTEM, statement=statement, now=now, **{fmt: data})
    out_file.write_bytes(data)
    out().print(f"{escape(str(out_file))}: statement {statement.period} of {partner}, SHA-256 {statement.sha256}")
