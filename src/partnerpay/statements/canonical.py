"""A statement's canonical content: the one text whose SHA-256 is the statement hash.

The content is plain JSON data (ids, names, the period, and per currency the opening balance, every ledger row
with its explanation and plan citation, the totals and the closing balance, all in integer minor units). It is
written with sorted keys, no spaces and UTF-8 kept (db.base.canonical_json), so the same ledger gives the same
bytes on any machine. The PDF embeds exactly these bytes; the CSV carries the same values, one cell each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from partnerpay.db.base import canonical_json

FORMAT = "partnerpay.statement/1"
# What a row's ledger entry kind counts towards; anything unknown is "other" (and still shown, explained).
CATEGORY = {
    "commission": "commissions",
    "true_up": "commissions",
    "bonus": "commissions",
    "two_tier": "commissions",
    "reinstatement": "commissions",
    "reversal": "commissions",  # a recalculation taking back a line it replaces (commissions/recalculate.py)
    "clawback": "clawbacks",
    "adjustment": "adjustments",
    "rejection": "rejected",
    "payout": "payouts",
    "payout_failed": "payouts_returned",
    "payout_returned": "payouts_returned",
}
TOTALS = ("commissions", "clawbacks", "adjustments", "rejected", "payouts", "payouts_returned", "other")
TOTAL_LABELS = {
    "commissions": "Commissions",
    "clawbacks": "Clawbacks",
    "adjustments": "Manual adjustments",
    "rejected": "Rejected lines",
    "payouts": "Payouts",
    "payouts_returned": "Failed and returned payouts",
    "other": "Other ledger entries",
}
TYPE_LABELS = {
    "commission": "Commission",
    "true_up": "True-up",
    "bonus": "Bonus",
    "two_tier": "Two-tier",
    "reinstatement": "Reinstated",
    "reversal": "Recalculated",
    "clawback": "Clawback",
    "adjustment": "Adjustment",
    "rejection": "Rejected",
    "payout": "Payout",
    "payout_failed": "Payout failed",
    "payout_returned": "Payout returned",
}


def time_text(at: datetime) -> str:
    """A ledger time as the content writes it: UTC, to the microsecond (what both databases store)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(content: dict[str, Any]) -> bytes:
    return canonical_json(content).encode()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def totals_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(TOTALS, 0)
    for row in rows:
        totals[CATEGORY.get(str(row["type"]), "other")] += int(row["amount"])
    return totals


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month in a time zone, as UTC instants [start, end)."""

    month: str  # YYYY-MM
    time_zone: str
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "month": self.month,
            "time_zone": self.time_zone,
            "start": time_text(self.start),
            "end": time_text(self.end),
        }
