"""`partnerpay fraud …`: the sweep over clicks that a schedule (or cron) runs at least hourly."""

from __future__ import annotations

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, guarded, load_settings, out, parse_time
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.programs.service import get_program
from partnerpay.tracking import fraud as fraud_signals

fraud = typer.Typer(help="Fraud signals on clicks and events.", no_args_is_help=True)


@fraud.command("scan")
@guarded
def fraud_scan(
    program: str = typer.Option(..., help="Program id (prg_…)."),
    at: str | None = typer.Option(None, "--at", help="Scan as of this time (default now), e.g. for a backfill."),
) -> None:
    """Flag ip bursts (last hour) and partners with many clicks and no conversions (last 30 days)."""
    now = parse_time(at, "at") if at is not None else SystemClock().now()
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        get_program(session, SYSTEM, program)
        flags = fraud_signals.scan_clicks(session, actor=SYSTEM, program_id=program, now=now)
        rows = [(f.id, f.partner_id, f.kind, f.detail) for f in flags]
    console = out()
    console.print(f"{len(rows)} new fraud flag(s)." if rows else "No new flags.")
    # One line per flag, ids whole, so scripts can grep them.
    for flag_id, partner_id, kind, detail in rows:
        console.print(f"{flag_id}  {partner_id}  {kind}  {escape(detail)}")
