"""`partnerpay inbox …`: list stored deliveries and retry failed or waiting ones."""

from __future__ import annotations

import typer
from rich.markup import escape

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox import queries
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import retry_items
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import ValidationError

inbox = typer.Typer(help="Incoming facts (webhook deliveries): list, retry.", no_args_is_help=True)


@inbox.command("list")
@guarded
def inbox_list(
    status: str | None = typer.Option(None, help=f"Only items in this status ({', '.join(queries.STATUSES)})."),
    program: str | None = typer.Option(None, help="Only this program (prg_…)."),
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, newest first."),
) -> None:
    """One line per item: id, status, kind, external id, and the error, wait or note."""
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        rows = queries.items(session, program_id=program, status=status, limit=limit)
    console = out()
    if not rows:
        console.print("No inbox items match.")
        return
    for row in rows:
        why = row.last_error or (f"waiting for {row.waiting_for}" if row.waiting_for else row.note) or ""
        console.print(
            f"{row.id}  {row.status:<9}  {row.provider} {escape(row.kind)}  {escape(row.external_id)}  "
            f"{escape(why.splitlines()[0] if why else '')}"
        )


@inbox.command("retry")
@guarded
def inbox_retry(
    ids: list[str] = typer.Option([], "--id", help="Retry this item (repeatable)."),
    failed: bool = typer.Option(False, "--failed", help="Retry every failed item."),
    waiting: bool = typer.Option(False, "--waiting", help="Retry every waiting item (the sweep)."),
    program: str | None = typer.Option(None, help="With --failed/--waiting: only this program."),
) -> None:
    """Queue items to be processed again; a worker (or `partnerpay serve`) processes them."""
    statuses = [s.value for s, on in ((InboxStatus.FAILED, failed), (InboxStatus.WAITING, waiting)) if on]
    if ids and statuses:
        raise ValidationError("give --id or --failed/--waiting, not both", field="id")
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        retried = retry_items(
            session, actor=SYSTEM, now=SystemClock().now(), item_ids=ids, statuses=statuses, program_id=program
        )
    console = out()
    console.print(f"Queued {len(retried)} item(s) to be processed again." if retried else "Nothing to retry.")
    for item_id in retried:
        console.print(item_id)
