"""`partnerpay approvals sweep [--program ID]`: auto-approve what each program's approval policy allows and remind
approvers of overdue lines (approvals/auto.py), the same work as the job `approvals.sweep`."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.approvals.auto import sweep
from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import NotFound
from partnerpay.programs.models import Program

approvals = typer.Typer(help="Approval policies: run the approvals sweep.", no_args_is_help=True)


@approvals.command("sweep")
@guarded
def sweep_command(
    program: list[str] = typer.Option([], "--program", help="Program id (prg_…); repeat for several; default: all."),
) -> None:
    """Auto-approve lines the policy allows (as the system, with the rule as the reason) and email approvers
    about overdue lines (once per line per day)."""
    settings = load_settings()
    now = SystemClock().now()
    with database(settings) as factory, unit_of_work(factory) as session:
        for program_id in program:
            if session.get(Program, program_id) is None:
                raise NotFound(f"program {program_id} not found", field="program")
        result = sweep(session, now, program_ids=program or None)
    table = Table(title="Approvals sweep")
    for name in ("program", "auto-approved", "overdue reminded", "approvers emailed"):
        table.add_column(name, justify="left" if name == "program" else "right")
    reminded = {r.program_id: r for r in result.reminders}
    for program_id in sorted(set(result.auto_approved) | set(reminded)):
        r = reminded.get(program_id)
        table.add_row(
            escape(program_id),
            str(len(result.auto_approved.get(program_id, []))),
            str(r.lines if r else 0),
            str(r.recipients if r else 0),
        )
    console = out()
    if table.row_count:
        console.print(table)
    else:
        console.print("Nothing to do: no line to auto-approve and no overdue line not already reminded today.")
