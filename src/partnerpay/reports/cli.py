"""`partnerpay reports …`: bring the dashboard rollups up to date by hand (the worker does it every 5 minutes)."""

from __future__ import annotations

import typer

from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.reports.rollups import rebuild, roll_up

reports = typer.Typer(help="Dashboard rollups and weekly reports.", no_args_is_help=True)


@reports.command("rollup")
@guarded
def rollup_command(
    full: bool = typer.Option(False, "--rebuild", help="Recompute every day of every program from the raw tables."),
) -> None:
    """Re-roll the days that changed since the last run (or, with --rebuild, everything)."""
    now = SystemClock().now()
    with database(load_settings()) as factory, unit_of_work(factory) as session:
        result = rebuild(session, now=now) if full else roll_up(session, now=now)
    console = out()
    if result.rebuilt:
        console.print(f"Rebuilt the rollups of {len(result.status_refreshed)} program(s).")
    else:
        console.print(f"Re-rolled {result.day_count} day(s) in {len(result.days)} program(s).")
