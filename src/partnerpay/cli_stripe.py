"""`partnerpay stripe backfill --program ID [--since T] [--until T] [--process]`: historic invoices and refunds."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, err, guarded, load_settings, out, parse_time
from partnerpay.integrations.stripe_backfill import BackfillReport, backfill
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import PartnerpayError, ValidationError

stripe = typer.Typer(help="Stripe: pull historic invoices and refunds.", no_args_is_help=True)


def _when(value: str, option: str) -> datetime:
    """A date (midnight UTC: the common way to say "from the start of 2025") or an ISO 8601 time."""
    text = value.strip()
    bare_date = len(text) == 10 and text[4:5] == "-" and text[7:8] == "-"
    try:
        return parse_time(f"{text}T00:00:00+00:00" if bare_date else text, option)
    except ValidationError as exc:
        if bare_date:
            raise ValidationError(f"{value!r} is not a date such as 2025-01-31", field=option) from None
        raise exc


def _line(report: BackfillReport) -> str:
    if report.stage == "processing":
        done = sum(report.processed.values())
        return f"processing {done:,}/{report.to_process:,} item(s)"
    return (
        f"{report.stage}: {report.pages:,} page(s); invoices {report.invoices_seen:,} seen, "
        f"{report.invoices_stored:,} new; refunds {report.refunds_seen:,} seen, {report.refunds_stored:,} new"
    )


def _summary(report: BackfillReport, process: bool) -> str:
    text = (
        f"Stripe backfill of {report.program_id}: {report.pages:,} page(s); "
        f"invoices {report.invoices_seen:,} seen, {report.invoices_stored:,} stored, "
        f"{report.invoices_known:,} already known; refunds {report.refunds_seen:,} seen, "
        f"{report.refunds_stored:,} stored, {report.refunds_known:,} already known"
    )
    if report.refunds_skipped:
        text += f", {report.refunds_skipped:,} skipped (no charge or nothing refunded)"
    if process:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(report.processed.items())) or "nothing to do"
        return f"{text}. Processed: {counts}."
    return f"{text}. A worker turns the stored items into events (or run again with --process)."


@stripe.command("backfill")
@guarded
def backfill_command(
    program: str = typer.Option(..., help="Program id (prg_…) whose Stripe api_key is used."),
    since: str | None = typer.Option(None, help="Only objects created at or after this date/time (2025-01-01)."),
    until: str | None = typer.Option(None, help="Only objects created before this date/time (default: now)."),
    process: bool = typer.Option(False, "--process", help="Turn the stored items into events now (no worker)."),
) -> None:
    """Store the program's paid invoices and refunds from Stripe in the inbox.

    Running it again stores only what is new; an invoice also delivered by webhook gives one event."""
    start = _when(since, "--since") if since is not None else None
    end = _when(until, "--until") if until is not None else None
    if start is not None and end is not None and start >= end:
        raise ValidationError("--since must be before --until", field="--since")
    settings = load_settings()
    try:
        box = settings.secret_box()
    except RuntimeError:
        raise ValidationError(
            "PARTNERPAY_SECRET_KEY is needed to open the program's Stripe api_key", field="PARTNERPAY_SECRET_KEY"
        ) from None
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with database(settings) as factory, Progress(*columns, console=err(), transient=True) as bar:
            task = bar.add_task("connecting to Stripe", total=None)
            report = backfill(
                factory,
                program_id=program,
                box=box,
                now=SystemClock().now(),
                since=start,
                until=end,
                process=process,
                actor=SYSTEM,
                progress=lambda r: bar.update(task, description=_line(r)),
            )
    except PartnerpayError as exc:
        if exc.field == "program_id":
            exc.field = "--program"  # the option the user typed, not the service's argument
        raise
    out().print(_summary(report, process))
