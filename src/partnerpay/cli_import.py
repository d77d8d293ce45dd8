"""`partnerpay partners import FILE --program ID [--dry-run]`: the CSV import with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import guarded, load_settings, out
from partnerpay.cli_csv import read_file, with_progress
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.partners.import_csv import COLUMNS, ImportReport
from partnerpay.partners.importer import import_partners

partners = typer.Typer(help="Partners of a program.", no_args_is_help=True)


def _summary(report: ImportReport) -> str:
    parts = [f"{n:,} in group {name}" for name, n in sorted(report.groups.items())]
    if report.with_owner:
        parts.append(f"{report.with_owner:,} with an owner")
    if report.with_payout_email:
        parts.append(f"{report.with_payout_email:,} with a PayPal payout email")
    return f" ({'; '.join(parts)})" if parts else ""


@partners.command("import")
@guarded
def import_command(
    file: Path = typer.Argument(..., help=f"UTF-8 CSV with a header row: {', '.join(COLUMNS)} (name, email required)."),
    program: str = typer.Option(..., help="Program id (prg_…) the partners join."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; write nothing."),
) -> None:
    """Create active partners from a CSV: any bad row rejects the whole file, and every bad row is listed."""
    data = read_file(file)
    box: SecretBox | None
    try:
        box = load_settings().secret_box()
    except RuntimeError:
        box = None  # only a payout_email column needs the key, and the import says so if it is missing
    report = with_progress(
        lambda session, progress: import_partners(
            session,
            actor=SYSTEM,
            program_id=program,
            data=data,
            filename=file.name,
            now=SystemClock().now(),
            box=box,
            dry_run=dry_run,
            progress=progress,
        )
    )
    if dry_run:
        out().print(
            f"Checked {report.rows:,} rows of {escape(file.name)}: all valid, {report.rows:,} partners would be "
            f"created{escape(_summary(report))}. Nothing was written (--dry-run)."
        )
        return
    out().print(
        f"Imported {report.created:,} partners from {escape(file.name)} into {program}"
        f"{escape(_summary(report))}; import {report.import_id}."
    )
