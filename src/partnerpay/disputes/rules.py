"""The dispute state machine, the SLA and the checks on what a partner or the team writes (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta

from partnerpay.disputes.models import WAITING, DisputeKind, DisputeStatus
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.state import StateMachine

S = DisputeStatus
MACHINE = StateMachine(
    "dispute",
    {
        S.OPEN: {S.IN_REVIEW, S.WITHDRAWN},
        S.IN_REVIEW: {S.RESOLVED_ADJUSTED, S.REJECTED, S.WITHDRAWN},
    },
)
FINAL = frozenset({S.RESOLVED_ADJUSTED, S.REJECTED, S.WITHDRAWN})
TEXT_MAX = 5000
REF_MAX = 200
# The adjustment's reason is "dispute dsp_…: <reason>" and adjustments.REASON_MAX is 500.
RESOLUTION_MAX = 440
SLA_MAX_DAYS = 365

# What a partner reads next to each status (the portal and the API say the same).
NEXT_STEP = {
    S.OPEN: "waiting for the program team to look at it",
    S.IN_REVIEW: "the program team is looking at it",
    S.RESOLVED_ADJUSTED: "an adjustment line was added; it is paid like any line once approved",
    S.REJECTED: "the team answered with the reason below",
    S.WITHDRAWN: "you withdrew it",
}


def check_kind(kind: object) -> DisputeKind:
    try:
        return DisputeKind(str(kind))
    except ValueError:
        kinds = ", ".join(k.value for k in DisputeKind)
        raise ValidationError(f"kind must be one of {kinds}, got {kind!r}", field="kind") from None


def check_text(value: object, *, field: str, limit: int = TEXT_MAX, required: bool = True) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if len(text) > limit:
        raise ValidationError(f"{field} must have at most {limit} characters, got {len(text)}", field=field)
    return text


def check_sla_days(days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= SLA_MAX_DAYS:
        message = f"sla_days must be a whole number from 1 to {SLA_MAX_DAYS}, got {days!r}"
        raise ValidationError(message, field="sla_days")
    return days


def due_at(opened_at: datetime, sla_days: int) -> datetime:
    return opened_at + timedelta(days=sla_days)


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    """Overdue: still waiting for the team after its due date (a closed dispute is never overdue)."""
    return status in WAITING and due < now


def sla_text(status: str, due: datetime, now: datetime) -> str:
    """ "due in 3 days", "due today", "overdue by 2 days" — what both sides see next to the status."""
    if status not in WAITING:
        return ""
    days = (due.date() - now.date()).days
    if due < now:
        late = max((now - due).days, 0)
        return "overdue" if late == 0 else f"overdue by {late} day{'s' if late != 1 else ''}"
    if days == 0:
        return "due today"
    return f"due in {days} day{'s' if days != 1 else ''}"
