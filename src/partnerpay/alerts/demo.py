"""The demo program's alert rules, checked once at the end of the story, so the console's Alerts page and the
count on Home have real items to acknowledge or snooze in the first five minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.alerts.raising import evaluate
from partnerpay.alerts.rules import create_rule
from partnerpay.demo.onboarding import Cast, Extra

RULES: list[tuple[str, str, dict[str, Any]]] = [
    ("approvals_overdue", "Approvals overdue", {"days": 7}),
    ("deal_stale", "Deals without an update for two weeks", {"days": 14}),
    ("partner_inactive", "Partners quiet for a month", {"days": 30}),
    ("payout_failed", "Failed or returned payouts", {"days": 30}),
    ("spike", "Click spikes", {"metric": "clicks", "factor_pct": 300, "min_count": 20}),
    ("spike", "Refund spikes", {"metric": "refunds"}),
    ("fraud_flag", "New fraud flags", {"days": 30}),
    ("integration_silent", "Integrations silent for a day", {"hours": 24}),
]


def _rules_and_first_check(session: Session, cast: Cast, at: datetime) -> None:
    for kind, name, params in RULES:
        create_rule(session, actor=cast.owner, program_id=cast.program_id, kind=kind, name=name, params=params, now=at)
    evaluate(session, at, program_ids=[cast.program_id])


def extras(now: datetime) -> list[Extra]:
    return [Extra(now, "alert rules and their first check", _rules_and_first_check)]
