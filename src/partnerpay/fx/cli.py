"""`partnerpay fx import FILE --program ID [--replace]`: a program's rates from a CSV file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import guarded, out
from partnerpay.cli_csv import read_file, with_progress
from partnerpay.fx.import_csv import COLUMNS, REQUIRED, import_rates
from partnerpay.kit.clock import SystemClock

fx = typer.Typer(help="Currency rates: import a program's rates from CSV.", no_args_is_help=True)


@fx.command("import")
@guarded
def import_command(
    file: Path = typer.Argument(
        ..., help=f"UTF-8 CSV with a header row: {', '.join(COLUMNS)} ({', '.join(REQUIRED)} required)."
    ),
    program: str = typer.Option(..., help="Program id (prg_…) the rates belong to."),
    replace: bool = typer.Option(False, "--replace", help="Rewrite a day's recorded rate that differs."),
) -> None:
    """Record rates from a CSV: any bad row rejects the whole file, and every bad row is listed."""
    data = read_file(file)
    report = with_progress(
        lambda session, _progress: import_rates(
            session,
            actor=SYSTEM,
            program_id=program,
            data=data,
            filename=file.name,
            now=SystemClock().now(),
            replace=replace,
        )
    )
    counts = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(report.outcomes.items()))
    out().print(f"Imported {report.rows:,} rates from {escape(file.name)} into {program} ({counts}).")
