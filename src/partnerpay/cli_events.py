"""`partnerpay events import FILE --program ID [--dry-run]`: the events CSV import with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import guarded, out
from partnerpay.cli_csv import read_file, with_progress
from partnerpay.events.import_csv import COLUMNS, REQUIRED, ImportReport
from partnerpay.events.importer import import_events
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.money import format_money

events = typer.Typer(help="Revenue and lifecycle events: import from CSV.", no_args_is_help=True)


def _summary(report: ImportReport) -> str:
    parts = [f"{n:,} {kind}" for kind, n in report.by_type.items()]
    parts += [f"{format_money(total, currency)} in total" for currency, total in report.amounts.items()]
    if report.commissions:
        parts.append(f"{report.commissions:,} commission line{'s' if report.commissions != 1 else ''}")
    if report.duplicates:
        parts.append(f"{report.duplicates:,} already recorded or repeated (skipped)")
    return f" ({'; '.join(parts)})" if parts else ""


@events.command("import")
@guarded
def import_command(
    file: Path = typer.Argument(
        ..., help=f"UTF-8 CSV with a header row: {', '.join(COLUMNS)} ({', '.join(REQUIRED)} required)."
    ),
    program: str = typer.Option(..., help="Program id (prg_…) the events belong to."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and record every row, then roll it all back."),
) -> None:
    """Record events from a CSV: any bad row rejects the whole file, and every bad row is listed."""
    data = read_file(file)
    report = with_progress(
        lambda session, progress: import_events(
            session,
            actor=SYSTEM,
            program_id=program,
            data=data,
            filename=file.name,
            now=SystemClock().now(),
            dry_run=dry_run,
            progress=progress,
        )
    )
    if dry_run:
        out().print(
            f"Checked {report.rows:,} rows of {escape(file.name)}: all valid, {report.created:,} events would be "
            f"recorded{escape(_summary(report))}. Nothing was written (--dry-run)."
        )
        return
    out().print(
        f"Imported {report.created:,} events from {escape(file.name)} into {program}"
        f"{escape(_summary(report))}; import {report.import_id}."
    )
