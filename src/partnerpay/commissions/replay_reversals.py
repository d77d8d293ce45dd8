"""Taking commission back during an in-memory replay, as commissions/reversal.py does it live, with the same
pure functions (commissions/clawbacks.py): refunds and chargebacks claw back in proportion within the rule's
window, a cancellation claws back early churn in full, a won chargeback reinstates.

Only lines the replay made can be taken back: a refund of a payment the replay only remembered (before a
backtest's window, or seeded) takes its share of that payment and claws nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from partnerpay.commissions import clawbacks
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts
from partnerpay.commissions.explain import clawback_explanation
from partnerpay.commissions.service import LineDraft
from partnerpay.events.schemas import REVERSING
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, format_money, round_ratio
from partnerpay.plans.rules import Rule

CANCELED = "subscription_canceled"
REINSTATING = "chargeback_reversed"  # names the chargeback it reverses (original_external_id)
TAKING_BACK = frozenset(t.value for t in REVERSING) | {CANCELED, REINSTATING}


class Paid(NamedTuple):
    event_id: str
    amount: int  # in the event's own currency, as refunds are
    occurred_at: datetime


class Taken(NamedTuple):
    """What a reversal made: its lines and, per line, the paying event whose line it takes back or gives back."""

    lines: list[EngineLine]
    reverses: dict[str, str]


@dataclass
class Reversals:
    """What reversing reads while replaying: each customer's payments, what refunds took of each, the lines
    made on each and what is taken back of every line (clawbacks less reinstatements)."""

    paid: dict[str, list[Paid]] = field(default_factory=lambda: defaultdict(list))  # by customer
    payments: dict[str, Paid] = field(default_factory=dict)  # by event id
    refunded: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # paying event id -> taken, net
    made_on: dict[str, list[LineDraft]] = field(default_factory=lambda: defaultdict(list))  # paying event id
    clawed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # line id -> taken back (positive)
    canceled: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))  # customer -> times
    rules: dict[str, Sequence[Rule]] = field(default_factory=dict)  # plan version id -> rules
    # Chargeback event id -> its allocations, and its clawbacks with the line each took from.
    allocations: dict[str, list[clawbacks.Allocation]] = field(default_factory=dict)
    clawbacks_of: dict[str, list[tuple[LineDraft, LineDraft]]] = field(default_factory=lambda: defaultdict(list))
    reinstated: set[str] = field(default_factory=set)  # chargebacks already reversed
    # Paying event id -> each share a reversal took (negative: given back by a won chargeback) and the time that
    # decides its clawback window (a won chargeback's offset counts at its chargeback's time).
    taken: dict[str, list[tuple[int, datetime]]] = field(default_factory=lambda: defaultdict(list))
    reversed_at: dict[str, datetime] = field(default_factory=dict)  # reversal event id -> occurred_at
    kinds: frozenset[str] = TAKING_BACK

    def add_paid(self, facts: EventFacts, lines: Sequence[LineDraft] = ()) -> None:
        paid = Paid(facts.id, facts.amount or 0, facts.occurred_at)
        self.paid[facts.customer_id].append(paid)
        self.payments[facts.id] = paid
        self.made_on[facts.id].extend(lines)

    def rule_of(self, line: LineDraft) -> Rule | None:
        if line.plan_version_id is None or line.rule_number is None:
            return None
        rules = self.rules.get(line.plan_version_id, ())
        return rules[line.rule_number - 1] if 0 < line.rule_number <= len(rules) else None

    def take_back(self, facts: EventFacts, original_id: str | None, first_paid_at: datetime | None) -> Taken:
        """The lines a reversing event makes; ValidationError where live refused the event."""
        if facts.type == CANCELED:
            return self.cancel(facts, first_paid_at)
        if facts.type == REINSTATING:
            return self.reinstate(facts, original_id, first_paid_at)
        return self.reverse(facts, original_id, first_paid_at)

    def allocate(self, facts: EventFacts, original_id: str | None) -> list[clawbacks.Allocation]:
        """The live allocation: the named original, else the customer's payments newest first."""
        if original_id is not None:
            named = self.payments.get(original_id)
            candidates = [named] if named is not None else []
        else:
            candidates = sorted(self.paid.get(facts.customer_id, ()), key=lambda p: (p.occurred_at, p.event_id))[::-1]
        shares = clawbacks.allocate(
            facts.amount or 0,
            [clawbacks.Candidate(p.event_id, p.amount, self.refunded[p.event_id]) for p in candidates],
            kind=facts.type,
            currency=facts.currency or "",
            customer_external_id=facts.customer_external_id,
        )
        for share in shares:
            self.refunded[share.event_id] += share.amount
            self.taken[share.event_id].append((share.amount, facts.occurred_at))
        self.allocations[facts.id] = shares
        self.reversed_at[facts.id] = facts.occurred_at
        return shares

    def give_back_allocations(self, facts: EventFacts, chargeback_id: str | None) -> list[clawbacks.Allocation]:
        """A won chargeback: what it took counts as paid again (live: negative RefundAllocation rows)."""
        shares = self.allocations.get(chargeback_id or "")
        if shares is None:
            raise ValidationError("a chargeback_reversed event names the chargeback it reverses", field="original")
        if chargeback_id in self.reinstated:
            raise ValidationError(f"chargeback {chargeback_id} was already reversed", field="original_external_id")
        if facts.amount is not None and facts.amount != sum(s.amount for s in shares):
            raise ValidationError("a won chargeback gives back the whole chargeback", field="amount")
        assert chargeback_id is not None
        self.reinstated.add(chargeback_id)
        for share in shares:
            self.refunded[share.event_id] -= share.amount
            self.taken[share.event_id].append((-share.amount, self.reversed_at[chargeback_id]))
        return shares

    def reverse(self, facts: EventFacts, original_id: str | None, first_paid_at: datetime | None) -> Taken:
        """A refund or chargeback: commissions.reversal.claw_back on each payment it took from."""
        taken = Taken([], {})
        for share in self.allocate(facts, original_id):
            original = self.payments[share.event_id]
            for line in self.made_on.get(share.event_id, ()):
                if line.kind not in clawbacks.CLAWED_KINDS:
                    continue
                rule = self.rule_of(line)
                why = clawbacks.stopped_by(
                    rule, original_at=original.occurred_at, reversal_at=facts.occurred_at, first_paid_at=first_paid_at
                )
                if why is not None:
                    continue
                due = clawbacks.clawback_due(
                    line.amount, self.clawed[line.id], share.refunded_total, original.amount, line.rounding
                )
                if due == 0:
                    continue
                text = clawback_explanation(
                    kind=facts.type,
                    refund_external_id=facts.external_id,
                    refunded=share.amount,
                    refunded_total=share.refunded_total,
                    original_amount=original.amount,
                    currency=facts.currency or line.currency,
                    original_line_id=line.id,
                    original_line_amount=line.amount,
                    result=due,
                    chosen_newest_first=original_id is None,
                    line_currency=line.currency,
                )
                base = -clawbacks.share_of_base(line.base_amount, share.amount, original.amount, line.rounding)
                draft = self._counter(line, facts, kind="clawback", amount=due, base=base, text=text)
                self.clawbacks_of[facts.id].append((draft, line))
                self._add(taken, draft, line)
        return taken

    def cancel(self, facts: EventFacts, first_paid_at: datetime | None) -> Taken:
        """Early churn: commissions.reversal.cancel, the lines of rules with clawback_days in full."""
        taken = Taken([], {})
        self.canceled[facts.customer_id].append(facts.occurred_at)
        for paid in self.paid.get(facts.customer_id, ()):
            if paid.occurred_at > facts.occurred_at:
                continue
            for line in self.made_on.get(paid.event_id, ()):
                rule = self.rule_of(line)
                if line.kind not in clawbacks.CLAWED_KINDS or not clawbacks.cancellation_claws(
                    rule, paid.occurred_at, facts.occurred_at
                ):
                    continue
                why = clawbacks.stopped_by(
                    rule,
                    original_at=paid.occurred_at,
                    reversal_at=facts.occurred_at,
                    first_paid_at=first_paid_at,
                    cancellation=True,
                )
                due = (
                    0
                    if why is not None
                    else clawbacks.clawback_due(line.amount, self.clawed[line.id], 1, 1, line.rounding)
                )
                if due == 0:
                    continue
                text = (
                    f"Cancellation {facts.external_id} claws back {format_money(-due, line.currency)} of line "
                    f"{line.id} ({format_money(line.amount, line.currency)}) = {format_money(due, line.currency)}"
                )
                self._add(taken, self._counter(line, facts, kind="clawback", amount=due, base=0, text=text), line)
        return taken

    def reinstate(self, facts: EventFacts, chargeback_id: str | None, first_paid_at: datetime | None) -> Taken:
        """A won chargeback: commissions.reversal.reinstate, each line given back down to its cumulative target
        on what still stands (a refund or cancellation that still stands keeps its share)."""
        self.give_back_allocations(facts, chargeback_id)
        taken = Taken([], {})
        for clawback, line in self.clawbacks_of.get(chargeback_id or "", ()):
            original = self.payments[line.event_id]
            rule = self.rule_of(line)
            net = self.clawable(original, rule, first_paid_at)
            target = (
                line.amount
                if self.claimed_by_cancellation(line.customer_id, original, rule, first_paid_at)
                else min(line.amount, round_ratio(line.amount * max(net, 0), original.amount, Rounding(line.rounding)))
            )
            back = self.clawed[line.id] - target
            if back <= 0:
                continue
            text = (
                f"Chargeback won ({facts.external_id}): gives back {format_money(back, line.currency)} of clawback "
                f"{clawback.id} ({format_money(clawback.amount, line.currency)}) of line {line.id}"
            )
            draft = self._counter(clawback, facts, kind="reinstatement", amount=back, base=0, text=text)
            self._add(taken, draft, line)
        return taken

    def claimed_by_cancellation(
        self, customer_id: str, original: Paid, rule: Rule | None, first_paid_at: datetime | None
    ) -> bool:
        """Whether a cancellation so far claims the rule's lines on `original` in full (then no won chargeback
        gives any of them back), even one that found nothing left to take."""
        return any(
            clawbacks.cancellation_claws(rule, original.occurred_at, at)
            and clawbacks.stopped_by(
                rule, original_at=original.occurred_at, reversal_at=at, first_paid_at=first_paid_at, cancellation=True
            )
            is None
            for at in self.canceled.get(customer_id, ())
        )

    def clawable(self, original: Paid, rule: Rule | None, first_paid_at: datetime | None) -> int:
        """What the reversals that clawed under `rule` took of `original`, net of won chargebacks: a refund
        after the rule's window (or waived) took money but no commission, so it does not count."""
        return sum(
            amount
            for amount, at in self.taken.get(original.event_id, ())
            if clawbacks.stopped_by(rule, original_at=original.occurred_at, reversal_at=at, first_paid_at=first_paid_at)
            is None
        )

    def _add(self, taken: Taken, draft: LineDraft, line: LineDraft) -> None:
        """`draft` takes back (negative) or gives back (positive) part of `line`."""
        self.clawed[line.id] -= draft.amount
        taken.lines.append(EngineLine(draft, draft.plan_version_id, rule_number=draft.rule_number))
        taken.reverses[draft.id] = line.event_id

    @staticmethod
    def _counter(line: LineDraft, facts: EventFacts, *, kind: str, amount: int, base: int, text: str) -> LineDraft:
        return LineDraft(
            id=new_id("com"),
            program_id=line.program_id,
            partner_id=line.partner_id,
            customer_id=line.customer_id,
            event_id=facts.id,
            kind=kind,
            amount=amount,
            currency=line.currency,
            base_amount=base,
            rate_bp=line.rate_bp,
            rounding=line.rounding,
            status=line.status,
            hold_until=line.hold_until,
            explanation=text,
            created_at=facts.occurred_at,
            plan_version_id=line.plan_version_id,
            rule_number=line.rule_number,
        )
