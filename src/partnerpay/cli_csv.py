"""What the CSV import commands share: reading the file (refused before it is read when too large), the
progress bar around one transaction, and listing every bad row before exiting 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from partnerpay.cli_common import database, err, fail, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.csv_import import MAX_BYTES, ImportRejected, Rejected

Report = TypeVar("Report")
Stage = Callable[[str, int, int], None]  # (what, done, total)


def read_file(file: Path) -> bytes:
    if not file.is_file():
        fail(f"{file} is not a file", "FILE")
    size = file.stat().st_size
    if size > MAX_BYTES:  # refused before it is read into memory
        fail(f"{file} has {size:,} bytes; at most {MAX_BYTES:,} per import (split the file)", "FILE")
    return file.read_bytes()


def with_progress(work: Callable[[Session, Stage], Report]) -> Report:
    """Run an import in one transaction with a progress bar on stderr; a rejected file lists its rows, exit 1."""
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

            return work(session, progress)
    except ImportRejected as exc:
        rejected(exc.report)
        raise  # unreachable: rejected() exits


def rejected(report: Rejected) -> None:
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
