"""What reconciliation returns and works on: applied steps, refusals and the summary (payouts/reconcile.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from partnerpay.payouts.models import Payout, PayoutStatus


@dataclass(frozen=True, slots=True)
class Step:
    """One applied change of one payout."""

    index: int  # position of the result in the call
    payout_id: str
    src: PayoutStatus
    dst: PayoutStatus
    at: datetime
    reason: str | None
    provider_ref: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    index: int
    payout_id: str
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class PayoutInfo:
    """What reconciliation needs of a payout, read once (the rows are expired as they are updated)."""

    id: str
    program_id: str
    batch_id: str
    partner_id: str
    amount: int
    currency: str

    @classmethod
    def of(cls, p: Payout) -> PayoutInfo:
        return cls(p.id, p.program_id, p.batch_id, p.partner_id, p.amount, p.currency)


@dataclass
class ReconcileSummary:
    applied: list[Step] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # indexes of results that changed nothing
    refused: list[Refusal] = field(default_factory=list)
    settled_batches: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(step.dst.value for step in self.applied)
        return {
            "paid": c["paid"],
            "failed": c["failed"],
            "returned": c["returned"],
            "unchanged": len(self.unchanged),
            "refused": len(self.refused),
        }

    def as_dict(self) -> dict[str, object]:
        return {
            **self.counts(),
            "applied": [
                {"payout_id": s.payout_id, "from": s.src.value, "to": s.dst.value, "at": s.at.isoformat()}
                for s in self.applied
            ],
            "refused": [
                {"index": r.index, "payout_id": r.payout_id, "outcome": r.outcome, "message": r.message}
                for r in self.refused
            ],
            "settled_batches": self.settled_batches,
        }
