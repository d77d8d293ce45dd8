"""The pure arithmetic of taking commission back (issue 6 §5): no session, no clock, only integers and times.

The live path (events.service._reverse, commissions.service.claw_back) and the in-memory backtest replay
call these same functions, so a refund claws back the same cents whichever of them sees it:

- `allocate`: how a refund or chargeback amount is spread over the customer's paying events;
- `clawback_due`: how much of one line a (partial) refund takes back, as a cumulative target;
- `stopped_by`: whether a plan rule's clawback window or waiver keeps the commission, and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding, format_money, round_ratio
from partnerpay.plans.rules import Rule

# Line kinds a refund or chargeback takes back in proportion. A "true_up" is left alone: it re-rates the
# partner's *other* events of the period once a tier is reached, and refunding one invoice does not undo
# reaching the tier. A "bonus" pays for reaching a customer count, which a refund does not undo either.
CLAWED_KINDS = ("commission", "two_tier")


class Candidate(NamedTuple):
    """A paying event a refund may take from: its id, its amount and what earlier refunds already took."""

    event_id: str
    amount: int
    refunded_before: int


class Allocation(NamedTuple):
    """The part of `event_id` one refund took: `amount`, on top of `refunded_before` taken earlier."""

    event_id: str
    amount: int
    refunded_before: int

    @property
    def refunded_total(self) -> int:
        return self.refunded_before + self.amount


def allocate(
    amount: int,
    candidates: Iterable[Candidate | tuple[str, int, int]],
    *,
    kind: str = "refund",
    currency: str = "",
    customer_external_id: str = "",
) -> list[Allocation]:
    """Spread `amount` over the candidates in the order given (the named original, else newest first),
    taking from each at most what is still refundable of it.

    Raises ValidationError (field "amount") when the candidates cannot absorb it all; `kind`, `currency`
    and `customer_external_id` only word that message.
    """
    remaining = amount
    out: list[Allocation] = []
    for event_id, event_amount, before in candidates:
        if remaining == 0:
            break
        take = min(remaining, event_amount - before)
        if take > 0:
            out.append(Allocation(event_id, take, before))
            remaining -= take
    if remaining:
        refundable = amount - remaining
        raise ValidationError(
            f"{kind} of {format_money(amount, currency)} exceeds the "
            f"{format_money(refundable, currency)} still refundable for customer {customer_external_id}",
            field="amount",
        )
    return out


def clawback_due(line_amount: int, clawed_so_far: int, refunded_total: int, original_amount: int, rounding: str) -> int:
    """The (negative) amount to claw back now from a line of `line_amount`, or 0.

    The target is cumulative: after refunds totalling `refunded_total` of an `original_amount` event,
    round(line * refunded_total / original) has been clawed in all, never more than the line. Subtracting
    what was clawed so far (a positive number) means repeated partial refunds never drift by a rounding cent.
    """
    if line_amount <= 0 or original_amount <= 0:
        return 0
    target = round_ratio(line_amount * min(refunded_total, original_amount), original_amount, Rounding(rounding))
    due = min(target, line_amount) - clawed_so_far
    return -due if due > 0 else 0


def share_of_base(line_base: int | None, taken: int, original_amount: int | None, rounding: str) -> int:
    """The part of a line's base that `taken` of its `original_amount` event stands for, in the line's currency
    (the base of a converted line is the converted amount; of a two-tier line, the recruit's commission)."""
    if not line_base or not original_amount or original_amount <= 0:
        return 0
    return round_ratio(line_base * min(taken, original_amount), original_amount, Rounding(rounding))


def in_window(rule: Rule | None, original_at: datetime, reversal_at: datetime) -> bool:
    """A reversal claws back a rule's line only within the rule's clawback_days of the original event.

    No rule (the program's default rate) or no clawback_days: always. A reversal dated before its original
    (events arriving out of order) counts as within.
    """
    if rule is None or rule.clawback_days is None:
        return True
    return reversal_at - original_at <= timedelta(days=rule.clawback_days)


def waived(rule: Rule | None, reversal_at: datetime, first_paid_at: datetime | None) -> bool:
    """waive_clawback_after_days: nothing is clawed back once the customer has been paying for more than N days."""
    if rule is None or rule.waive_clawback_after_days is None or first_paid_at is None:
        return False
    return reversal_at - first_paid_at > timedelta(days=rule.waive_clawback_after_days)


def cancellation_claws(rule: Rule | None, original_at: datetime, canceled_at: datetime) -> bool:
    """A cancellation (early churn) takes back in full the lines of a rule WITH clawback_days on paying
    events that occurred within clawback_days before it; without clawback_days it takes nothing."""
    if rule is None or rule.clawback_days is None:
        return False
    return timedelta(0) <= canceled_at - original_at <= timedelta(days=rule.clawback_days)


def stopped_by(
    rule: Rule | None,
    *,
    original_at: datetime,
    reversal_at: datetime,
    first_paid_at: datetime | None,
    cancellation: bool = False,
) -> str | None:
    """Why a rule's line on an event at `original_at` is NOT clawed back by a reversal at `reversal_at`
    (words for the reversal's record), or None when it is.

    A cancellation outside its window is not a "stop" worth telling: it never claws without a window, and
    a canceled customer's older payments were simply earned; so for a cancellation only the waiver is named
    and the caller asks `cancellation_claws` for the rest.
    """
    if waived(rule, reversal_at, first_paid_at):
        assert rule is not None and rule.waive_clawback_after_days is not None
        return f"after the customer paid for more than {rule.waive_clawback_after_days} days (clawback waived)"
    if not cancellation and not in_window(rule, original_at, reversal_at):
        assert rule is not None
        return f"after the {rule.clawback_days}-day clawback window"
    return None


def stop_note(
    *, kind: str, external_id: str, why: str, plan_name: str, version: int, rule_number: int, line_kinds: Sequence[str]
) -> str:
    """e.g. "refund re3 after the 60-day clawback window of plan Standard v2 rule 1: commission kept"."""
    kept = " and ".join(dict.fromkeys(k.replace("_", "-") for k in line_kinds)) or "commission"
    return (
        f"{kind.replace('_', ' ')} {external_id} {why} of plan {plan_name} v{version} rule {rule_number}: {kept} kept"
    )
