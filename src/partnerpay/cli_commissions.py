"""`partnerpay commissions recalculate --partner ID [--since DATE] [--dry-run]`: re-derive a partner's plan lines
after a late event or a correction (commissions/recalculate.py), showing every reversed and new line."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, guarded, load_settings, out, parse_time
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.recalculate import Recalculation, recalculate
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import NotFound
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner

commissions = typer.Typer(help="Commission lines: recalculate a partner's lines.", no_args_is_help=True)


def parse_since(value: str) -> datetime:
    """A day (2026-03-01, from its start in UTC) or an ISO 8601 time with an offset."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return parse_time(value, "since")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def result_table(result: Recalculation) -> Table:
    title = "Would change (dry run, nothing written)" if result.dry_run else "Recalculated"
    table = Table(title=title)
    for name in ("change", "line", "kind", "event", "partner", "amount", "status"):
        table.add_column(name, justify="right" if name == "amount" else "left")

    def row(change: str, line: CommissionLine, line_id: str | None = None) -> None:
        table.add_row(
            change,
            line_id or line.id,
            line.kind,
            line.event_id or "",
            line.partner_id,
            format_money(line.amount, line.currency),
            line.status,
        )

    for item in result.reversed:
        if item.reversal is None:
            row("reverse", item.original)
        else:
            row(f"reverses {item.original.id}", item.reversal)
    for line in result.created:
        row("new", line, line.id if not result.dry_run else "(new)")
    for line in result.clawbacks:
        row("refund re-applied", line)
    return table


@commissions.command("recalculate")
@guarded
def recalculate_command(
    partner: str = typer.Option(..., "--partner", help="Partner id (ptn_…)."),
    since: str | None = typer.Option(
        None, "--since", help="Day or time of the late event (default: the partner's whole history)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
) -> None:
    """Replay the partner's events in time order and reverse and re-create every line that differs."""
    start = parse_since(since) if since is not None else None
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        found = session.get(Partner, partner)
        if found is None:
            raise NotFound(f"partner {partner} not found", field="partner")
        result = recalculate(
            session,
            actor=SYSTEM,
            program_id=found.program_id,
            partner_id=found.id,
            since=start,
            now=SystemClock().now(),
            dry_run=dry_run,
        )
    scope = f"from {result.start:%Y-%m-%d}" if result.start is not None else "over all history"
    summary = f"{result.events} event(s) of {escape(partner)} replayed {scope}: "
    if not result.changed:
        out().print(summary + "every line is as the plan says; nothing to change.")
        return
    out().print(result_table(result))
    verb = "would be" if dry_run else "were"
    out().print(
        summary
        + f"{len(result.reversed)} line(s) {verb} reversed, {len(result.created)} created"
        + (f", {len(result.clawbacks)} refund clawback(s) re-applied." if result.clawbacks else ".")
    )
