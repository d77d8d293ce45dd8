"""`partnerpay attachments prune [--dry-run]`: remove attachment files no row refers to (the job
`attachments.prune` does it daily), or with --dry-run list them and change nothing."""

from __future__ import annotations

import typer
from rich.markup import escape

from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.messaging.attachment_prune import prune_orphans
from partnerpay.messaging.attachments import AttachmentStore, describe_size

attachments = typer.Typer(help="Attachment files (message files, dispute evidence) on disk.", no_args_is_help=True)

LISTED = 50  # a dry run names this many files; the count covers them all


@attachments.command("prune")
@guarded
def prune_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
) -> None:
    """Remove files under PARTNERPAY_ATTACHMENTS_DIR that no attachment refers to and that are older than
    PARTNERPAY_ATTACHMENT_ORPHAN_GRACE_HOURS (default 24); one audit row records the count."""
    settings = load_settings()
    store = AttachmentStore.from_settings(settings)
    with database(settings) as factory, unit_of_work(factory) as session:
        result = prune_orphans(session, store, now=SystemClock().now(), dry_run=dry_run)
    console = out()
    hours = f"{store.orphan_grace.total_seconds() / 3600:g} h"
    size = describe_size(result.orphan_bytes if dry_run else result.removed_bytes)
    if dry_run:
        # Plain lines, not a table: a hash is never cut to fit the terminal, so the list can be grepped.
        for stored in result.orphans[:LISTED]:
            where = escape(str(stored.path.relative_to(store.root)))
            console.print(f"{where}  {stored.size} bytes  last written {stored.modified:%Y-%m-%d %H:%M} UTC")
        if len(result.orphans) > LISTED:
            console.print(f"… and {len(result.orphans) - LISTED} more")
        console.print(
            f"Dry run: {len(result.orphans)} of {result.scanned} file(s) ({size}) in {escape(result.directory)} "
            f"would be removed (no attachment refers to them and they are older than {hours}); nothing was removed."
        )
        return
    console.print(
        f"Removed {result.removed} of {result.scanned} file(s) ({size}) from {escape(result.directory)}: no "
        f"attachment referred to them and they were older than {hours}."
    )
