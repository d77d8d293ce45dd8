"""`partnerpay plans simulate`: the backtest (commissions/backtest.py) from the command line; it writes nothing."""

from __future__ import annotations

import json
from datetime import date

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.commissions.backtest import Comparison, Simulation, simulate
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import format_money

plans = typer.Typer(help="Commission plans.", no_args_is_help=True)


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{value!r} is not a date such as 2026-01-31", field=field) from None


def _signed(amount: int, currency: str) -> str:
    text = format_money(amount, currency)
    return f"+{text}" if amount > 0 else text


def table(result: Simulation) -> Table:
    """Partner, would be, was, difference: one row per partner and currency, then the totals."""
    grid = Table(title=f"Plan {escape(result.plan_name)} v{result.version} ({result.version_status})")
    grid.add_column("partner")
    grid.add_column("would be", justify="right")
    grid.add_column("was", justify="right")
    grid.add_column("difference", justify="right")

    def row(name: str, currency: str, c: Comparison, style: str = "") -> None:
        diff = c.difference
        colour = "green" if diff > 0 else "red" if diff < 0 else ""
        grid.add_row(
            escape(name),
            format_money(c.would.net, currency),
            format_money(c.was.net, currency),
            f"[{colour}]{_signed(diff, currency)}[/]" if colour else _signed(diff, currency),
            style=style,
        )

    for partner in result.partners:
        for currency, comparison in sorted(partner.currencies.items()):
            row(f"{partner.name} ({partner.partner_id})", currency, comparison)
    for currency, comparison in sorted(result.totals.items()):
        row("Total", currency, comparison, style="bold")
    return grid


@plans.command("simulate")
@guarded
def simulate_command(
    plan: str = typer.Option(..., "--plan", help="Plan id (pln_…)."),
    version: int | None = typer.Option(
        None, "--version", help="Version number (default: the draft, else the newest published)."
    ),
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (UTC)."),
    end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (UTC), included."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Replay the events of [from, to] under the plan's draft: what would have been paid vs what was, per partner.

    Nothing is written; terms acceptance and fraud holds are not simulated.
    """
    first, last = parse_day(start, "from"), parse_day(end, "to")
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        try:
            result = simulate(session, SYSTEM, plan, first, last, version=version)
        finally:
            session.rollback()
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    console = out()
    console.print(
        f"{result.start.isoformat()} to {result.end.isoformat()}: {result.events_replayed:,} event(s) replayed, "
        f"{result.events_simulated:,} under this version; {result.paying_before:,} payment(s) before the window "
        "counted for customers and first payments only."
    )
    if not result.partners:
        console.print("No line would have been made and none was made on these events.")
    else:
        console.print(table(result))
    console.print("Not simulated: " + "; ".join(result.not_simulated) + ".")
