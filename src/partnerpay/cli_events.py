"""`partnerpay events import FILE --program ID [--dry-run]`: the events CSV import with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, err, fail, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.events.import_csv import COLUMNS, REQUIRED, ImportRejected, ImportReport
from partnerpay.events.importer import import_events
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.csv_import import MAX_BYTES
from partnerpay.kit.money import format_money

events = typer.Typer(help="Revenue and lifecycle events: import from CSV.", no_args_is_help=True)


def _read(file: Path) -> bytes:
    if not file.is_file():
        fail(f"{file} is not a file", "FILE")
    size = file.stat().st_size
    if size > MAX_BYTES:  # refused before it is read into memory
        fail(f"{file} has {size:,} bytes; at most {MAX_BYTES:,} per import (split the file)", "FILE")
    return file.read_bytes()


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
    data = _read(file)
    settings = load_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with (
            database(settings) as factory,
            Progress(*columns, console=err(), transient=True) as bar,
            unit_of_work(factory) as session,
        ):
            task = bar.add_task("reading", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            report = import_events(
                session,
                actor=SYSTEM,
                program_id=program,
                data=data,
                filename=file.name,
                now=SystemClock().now(),
                dry_run=dry_run,
                progress=progress,
            )
    except ImportRejected as exc:
        _rejected(exc.report)
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


def _rejected(report: ImportReport) -> None:
    console = out()
    for error in report.errors:
        console.print(f"[red]✗ {escape(str(error))}[/]")
    hidden = report.error_count - len(report.errors)
    if hidden:
        console.print(f"[red]… and {hidden:,} more problem(s) not listed[/]")
    err().print(
        f"[bold red]{report.error_count:,} problem(s) in {escape(report.filename)} ({report.rows:,} rows): "
        "nothing was imported; fix the rows listed and run the import again[/]"
    )
    raise typer.Exit(1)
