"""`partnerpay deals …`: catching up on "ask for an update" reminders (after downtime, or from cron)."""

from __future__ import annotations

import typer

from partnerpay.cli_common import database, guarded, load_settings, out, parse_time
from partnerpay.db.engine import unit_of_work
from partnerpay.deals.updates import remind_unanswered
from partnerpay.kit.clock import SystemClock

deals = typer.Typer(help="Leads and deals.", no_args_is_help=True)


@deals.command("remind")
@guarded
def deals_remind(
    at: str | None = typer.Option(None, "--at", help="Remind as of this time (default now)."),
) -> None:
    """Email every unanswered update request whose reminder is due; safe beside the worker's reminder jobs."""
    now = parse_time(at, "at") if at is not None else SystemClock().now()
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        sent = remind_unanswered(session, now=now)
    out().print(f"{sent} reminder(s) sent." if sent else "No reminder is due.")
