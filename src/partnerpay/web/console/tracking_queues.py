"""Home page work queues from tracking and deals: leads to decide, conflicts, unanswered update requests,
open fraud flags; per program, and with `mine` only for the partners the staff user owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from partnerpay.deals.models import Lead, LeadStatus, UpdateRequest
from partnerpay.partners.models import Partner
from partnerpay.tracking.attribution_models import FlagStatus, FraudFlag


@dataclass
class TrackingQueue:
    leads_waiting: int = 0
    oldest_lead: datetime | None = None
    conflicts: int = 0
    unanswered_updates: int = 0
    oldest_update: datetime | None = None
    open_flags: int = 0

    @property
    def any(self) -> bool:
        return bool(self.leads_waiting or self.unanswered_updates or self.open_flags)


def _mine(model: Any, owner_id: str | None) -> Any:
    if owner_id is None:
        return True
    return model.partner_id.in_(select(Partner.id).where(Partner.owner_id == owner_id))


def tracking_queues(session: Session, *, owner_id: str | None = None) -> dict[str, TrackingQueue]:
    """Program id → its queue; three grouped counts, whatever the number of leads, requests or flags."""
    queues: dict[str, TrackingQueue] = {}
    # A JSON list of conflicts is stored as text; "[]" and "null" mean none on both databases.
    conflicted = func.coalesce(func.length(cast(Lead.conflicts, Text)), 0) > 4
    waiting = (Lead.status == LeadStatus.REGISTERED) & _mine(Lead, owner_id)
    for program_id, count, oldest, conflicts in session.execute(
        select(Lead.program_id, func.count(), func.min(Lead.created_at), func.count().filter(conflicted))
        .where(waiting)
        .group_by(Lead.program_id)
    ):
        queue = queues.setdefault(program_id, TrackingQueue())
        queue.leads_waiting, queue.oldest_lead, queue.conflicts = int(count), oldest, int(conflicts)
    open_request = UpdateRequest.answered_at.is_(None) & _mine(UpdateRequest, owner_id)
    for program_id, count, oldest in session.execute(
        select(UpdateRequest.program_id, func.count(), func.min(UpdateRequest.asked_at))
        .where(open_request)
        .group_by(UpdateRequest.program_id)
    ):
        queue = queues.setdefault(program_id, TrackingQueue())
        queue.unanswered_updates, queue.oldest_update = int(count), oldest
    for program_id, count in session.execute(
        select(FraudFlag.program_id, func.count())
        .where(FraudFlag.status == FlagStatus.OPEN.value, _mine(FraudFlag, owner_id))
        .group_by(FraudFlag.program_id)
    ):
        queues.setdefault(program_id, TrackingQueue()).open_flags = int(count)
    return queues
