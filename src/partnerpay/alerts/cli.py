"""`partnerpay alerts evaluate [--program ID]`: check the alert rules now (the job `alerts.evaluate` does it
every hour) and print what was raised; a rerun within the same period raises nothing new."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.alerts.raising import evaluate
from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import NotFound
from partnerpay.programs.models import Program

alerts = typer.Typer(help="Smart alerts: evaluate the rules now.", no_args_is_help=True)


@alerts.command("evaluate")
@guarded
def evaluate_command(
    program: list[str] = typer.Option([], "--program", help="Program id (prg_…); repeat for several; default: all."),
) -> None:
    """Raise the alerts the enabled rules find (emails and alert.raised webhooks go out through the worker)."""
    settings = load_settings()
    now = SystemClock().now()
    with database(settings) as factory, unit_of_work(factory) as session:
        for program_id in program:
            if session.get(Program, program_id) is None:
                raise NotFound(f"program {program_id} not found", field="program")
        raised = evaluate(session, now, program_ids=program or None)
        rows = [(a.program_id, a.kind, a.title, ", ".join(a.notified) or "in-app only") for a in raised]
    console = out()
    if not rows:
        console.print("No new alert: nothing found, or already raised for this period, or snoozed.")
        return
    table = Table(title=f"{len(rows)} alert(s) raised")
    for name in ("program", "kind", "alert", "told"):
        table.add_column(name)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
