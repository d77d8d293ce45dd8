"""The event types a subscription can ask for (kept apart so the emitting services import nothing heavy)."""

EVENT_TYPES = (
    "commission.created",
    "commission.approved",
    "payout.paid",
    "payout.failed",
    "deal.updated",
    "dispute.updated",
    "alert.raised",
)
