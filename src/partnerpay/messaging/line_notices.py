"""Partner emails about commission lines: "approved" when a decision approves them, and "on hold until"
for new lines, found by a periodic sweep rather than on the write path.

The sweep keeps the engine's bulk writes (hundreds of thousands of lines) free of per-line mail work, and
catches every way a line is made (events, webhooks, imports, recalculation, adjustments). Each line is
announced once: commission_line_notices holds the ones already told, and the sweep writes them in the same
transaction as the emails it queues. Lines are grouped per partner and currency: one email, not one per line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert
from partnerpay.jobs.registry import JobContext
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.money import format_money
from partnerpay.messaging.models import LineNotice
from partnerpay.messaging.notify import notify_partners, portal_link
from partnerpay.programs.models import Program

HOLD_JOB = "messaging.hold_notices"
# A line older than this when the sweep first sees it is not news any more (the worker was down for days).
LOOKBACK = timedelta(days=2)
SLOT_MINUTES = 5
MAX_EXPLAINED = 5


class LineLike(Protocol):
    @property
    def partner_id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


def _day(value: datetime) -> str:
    return value.strftime("%d %b %Y")


def lines_approved(session: Session, lines: Sequence[LineLike], now: datetime) -> int:
    """Email each partner once per currency about the lines just approved (the portal notice is the caller's)."""
    per_partner: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line in lines:
        if line.amount > 0:
            per_partner[(line.partner_id, line.currency)].append(line.amount)
    items = [
        (partner_id, {"count": len(amounts), "amount": format_money(sum(amounts), currency),
                      "link": portal_link("/portal")})
        for (partner_id, currency), amounts in sorted(per_partner.items())
    ]  # fmt: skip
    return notify_partners(session, kind="commission.approved", items=items, now=now, portal=False)


def hold_notices(session: Session, now: datetime) -> int:
    """Tell partners about new lines still on hold; returns how many lines were announced."""
    since = now - LOOKBACK
    told = 0
    for program_id in session.scalars(select(Program.id).order_by(Program.id)):
        # Per program, so the (program_id, status, hold_until) index narrows the search to lines on hold.
        rows = session.execute(
            select(
                CommissionLine.id,
                CommissionLine.partner_id,
                CommissionLine.amount,
                CommissionLine.currency,
                CommissionLine.hold_until,
                CommissionLine.explanation,
            )
            .where(
                CommissionLine.program_id == program_id,
                CommissionLine.status.in_([LineStatus.PENDING.value, LineStatus.APPROVED.value]),
                CommissionLine.hold_until > now,
                CommissionLine.created_at >= since,
                CommissionLine.amount > 0,
                CommissionLine.kind != "clawback",
                ~exists().where(LineNotice.line_id == CommissionLine.id),
            )
            .order_by(CommissionLine.id)
        ).all()
        if not rows:
            continue
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            groups[(row.partner_id, row.currency)].append(row)
        items = []
        for (partner_id, currency), group in sorted(groups.items()):
            explained = [f"- {format_money(r.amount, currency)}: {r.explanation}" for r in group[:MAX_EXPLAINED]]
            if len(group) > MAX_EXPLAINED:
                explained.append(f"- and {len(group) - MAX_EXPLAINED} more")
            context = {
                "count": len(group),
                "amount": format_money(sum(r.amount for r in group), currency),
                "hold_until": _day(max(r.hold_until for r in group)),
                "explanation": "\n".join(explained),
                "link": portal_link("/portal"),
            }
            items.append((partner_id, context))
        notify_partners(session, kind="commission.on_hold", items=items, now=now)
        bulk_insert(session, "commission_line_notices", ("line_id", "notified_at"), [(r.id, now) for r in rows])
        told += len(rows)
    return told


def hold_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Job `messaging.hold_notices` {}: one sweep in the worker's transaction."""
    hold_notices(session, context.now)


def hold_notices_due(session: Session, now: datetime) -> list[Due]:
    """The periodic scheduler's due-check (jobs/scheduler.py): a sweep every five minutes."""
    slot = now.replace(minute=now.minute - now.minute % SLOT_MINUTES, second=0, microsecond=0)
    return [Due(slot=f"{slot:%Y-%m-%dT%H:%M}", kind=HOLD_JOB, payload={})]
