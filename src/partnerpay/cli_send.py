"""`partnerpay payouts send --batch ID [--as-user EMAIL]`: Pay all from the shell, like POST /payout-batches/{id}/send.

Registered on the `payouts` command group of cli_admin.py when cli.py imports this module. The command only
checks the batch and hands it to the `payouts.send` job (payouts/sending.py); `partnerpay worker` sends it,
so a shell that dies mid-send leaves nothing half done.
"""

from __future__ import annotations

from collections import Counter

import typer
from rich.table import Table
from sqlalchemy import select

from partnerpay.auth.models import StaffUser
from partnerpay.cli_admin import acting_as, payouts
from partnerpay.cli_common import database, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.money import format_money
from partnerpay.payouts.models import Payout
from partnerpay.payouts.sending import start_send


@payouts.command("send")
@guarded
def send_command(
    batch: str = typer.Option(..., help="Approved payout batch id (bat_…)."),
    as_user: str | None = typer.Option(None, "--as-user", help="Act as this staff user instead of the system."),
) -> None:
    """Pay all: every payout of an approved batch goes out through its partner's rail (refused, naming every
    partner, unless all can)."""
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        user = None
        if as_user is not None:
            user = session.scalar(select(StaffUser).where(StaffUser.email == as_user.strip().lower()))
        actor = acting_as(as_user, user)
        sent = start_send(session, actor=actor, box=settings.secret_box(), batch_id=batch, now=SystemClock().now())
        rails: Counter[str] = Counter()
        totals: Counter[tuple[str, str]] = Counter()
        for rail, amount, currency in session.execute(
            select(Payout.rail, Payout.amount, Payout.currency).where(Payout.batch_id == sent.id)
        ):
            rails[str(rail)] += 1
            totals[(str(rail), currency)] += amount
        batch_id, status = sent.id, sent.status
    table = Table(title=f"Batch {batch_id}: {status}")
    for column in ("rail", "payouts"):
        table.add_column(column)
    table.add_column("total", justify="right")
    for (rail, currency), amount in sorted(totals.items()):
        table.add_row(rail, str(rails[rail]), format_money(amount, currency))
    console = out()
    console.print(table)
    console.print("Queued for the worker (`partnerpay worker`), which sends each payout and records the result.")
