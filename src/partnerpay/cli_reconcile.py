"""`partnerpay payouts reconcile --batch ID FILE [--dry-run]`: the bank returns upload with a progress bar.

Registered on the `payouts` command group of cli_admin.py when cli.py imports this module.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_admin import payouts
from partnerpay.cli_common import guarded, out
from partnerpay.cli_csv import Stage, read_file, with_progress
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.money import format_money
from partnerpay.payouts.returns import COLUMNS, ReturnsReport, reconcile_file
from partnerpay.payouts.service import get_batch
from partnerpay.payouts.tieout import BatchTieOut, batch_tie_out


@payouts.command("reconcile")
@guarded
def reconcile_command(
    file: Path = typer.Argument(
        ...,
        help=f"UTF-8 CSV: {', '.join(COLUMNS)}; each row names a payout by payout_id or end_to_end_id, "
        "status is paid, returned or failed.",
    ),
    batch: str = typer.Option(..., "--batch", help="Payout batch id (bat_…) the file answers for."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; write nothing."),
) -> None:
    """Record the bank's answer for a batch: any bad row rejects the file, every bad row is listed."""
    data = read_file(file)

    def work(session: Session, progress: Stage) -> tuple[ReturnsReport, BatchTieOut]:
        report = reconcile_file(
            session,
            actor=SYSTEM,
            batch_id=batch,
            data=data,
            filename=file.name,
            now=SystemClock().now(),
            dry_run=dry_run,
            progress=progress,
        )
        return report, batch_tie_out(session, get_batch(session, SYSTEM, batch))

    report, tie = with_progress(work)
    counts = f"{report.paid} paid, {report.failed} failed, {report.returned} returned, {report.unchanged} unchanged"
    console = out()
    if dry_run:
        console.print(f"Checked {report.rows:,} rows of {escape(file.name)}: all valid; would record {counts}.")
        console.print("Nothing was written (--dry-run).")
        return
    console.print(f"Recorded {report.rows:,} rows of {escape(file.name)} for batch {batch}: {counts}.")
    if report.settled:
        console.print(f"Batch {batch} is settled: every payout has the bank's answer.")
    table = Table(title=f"Tie-out of {batch}")
    for column in ("figure", "amount", "count", "expected", "ok"):
        table.add_column(column, justify="right" if column in ("amount", "count", "expected") else "left")
    for row in tie.rows:
        table.add_row(
            row.label,
            format_money(row.amount, row.currency),
            "" if row.count is None else str(row.count),
            format_money(row.expected, row.currency),
            "[green]✓[/]" if row.ok else "[red]✗[/]",
        )
    console.print(table)
    if not tie.ok:
        raise typer.Exit(1)
