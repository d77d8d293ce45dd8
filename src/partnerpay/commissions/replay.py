"""Replaying events in memory: each event evaluated as live evaluation would have (same Evaluation, same engine),
the partner's history accumulated from the replayed events and lines instead of read from the database.

The backtest feeds it history under a draft plan and compares; recalculation feeds it a partner's events and
writes the difference; the benchmark feeds it a million events. Nothing here touches a session.

Refunds and chargebacks claw back with the live path's own arithmetic (commissions/clawbacks.py: allocate,
clawback_due, the rule windows), but only lines this replay made: a refund of a payment the replay only
remembered (`remember`) or was seeded with takes its share of the payment and claws nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from partnerpay.commissions import clawbacks
from partnerpay.commissions.engine import evaluate
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts, PlanRules
from partnerpay.commissions.explain import clawback_explanation
from partnerpay.commissions.history import History
from partnerpay.commissions.plan_earn import PAYING_TYPES, evaluation_for
from partnerpay.commissions.service import LineDraft
from partnerpay.events.schemas import REVERSING
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.plans.rules import NOT_TRIGGERS, Rule
from partnerpay.programs.models import Program

# The plan version that applies to a partner at a time (PlanBook.choose through plan_earn.plan_rules, or a
# backtest's draft in place of a published version); None: the program's default rate.
Chooser = Callable[[Partner, datetime], PlanRules | None]
NOT_TRIGGER_TYPES = frozenset(t.value for t in NOT_TRIGGERS)
REVERSING_TYPES = frozenset(t.value for t in REVERSING)


@dataclass(frozen=True, slots=True)
class Replayed:
    event: EventFacts
    partner_id: str | None
    lines: list[EngineLine]
    plan: PlanRules | None = None  # the version the event was evaluated with (None: default rate or none)
    # Clawback line id -> the paying event whose line it takes back.
    reverses: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None  # why a reversal clawed nothing (it exceeds what is refundable in this order)


class Paid(NamedTuple):
    event_id: str
    amount: int
    occurred_at: datetime


@dataclass
class Reversals:
    """What reversing reads while replaying: each customer's payments, what refunds took of each, the lines
    made on each and what was clawed back of every line."""

    paid: dict[str, list[Paid]] = field(default_factory=lambda: defaultdict(list))  # by customer
    payments: dict[str, Paid] = field(default_factory=dict)  # by event id
    refunded: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # paying event id -> taken
    made_on: dict[str, list[LineDraft]] = field(default_factory=lambda: defaultdict(list))  # paying event id
    clawed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # line id -> clawed (positive)
    rules: dict[str, Sequence[Rule]] = field(default_factory=dict)  # plan version id -> rules
    kinds: frozenset[str] = REVERSING_TYPES

    def add_paid(self, facts: EventFacts) -> None:
        paid = Paid(facts.id, facts.amount or 0, facts.occurred_at)
        self.paid[facts.customer_id].append(paid)
        self.payments[facts.id] = paid

    def rule_of(self, line: LineDraft) -> Rule | None:
        if line.plan_version_id is None or line.rule_number is None:
            return None
        rules = self.rules.get(line.plan_version_id, ())
        return rules[line.rule_number - 1] if 0 < line.rule_number <= len(rules) else None

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
        return shares

    def reverse(
        self, facts: EventFacts, original_id: str | None, first_paid_at: datetime | None
    ) -> tuple[list[EngineLine], dict[str, str]]:
        """Clawback lines of a refund or chargeback, as commissions.service.claw_back makes them live."""
        shares = self.allocate(facts, original_id)
        lines: list[EngineLine] = []
        reverses: dict[str, str] = {}
        for share in shares:
            original = self.payments[share.event_id]
            for line in self.made_on.get(share.event_id, ()):
                if line.kind not in clawbacks.CLAWED_KINDS:
                    continue
                why = clawbacks.stopped_by(
                    self.rule_of(line),
                    original_at=original.occurred_at,
                    reversal_at=facts.occurred_at,
                    first_paid_at=first_paid_at,
                )
                if why is not None:
                    continue
                due = clawbacks.clawback_due(
                    line.amount, self.clawed[line.id], share.refunded_total, original.amount, line.rounding
                )
                if due == 0:
                    continue
                self.clawed[line.id] -= due
                draft = _clawback(facts, line, due, share, original, chosen_newest_first=original_id is None)
                lines.append(EngineLine(draft, line.plan_version_id, rule_number=line.rule_number))
                reverses[draft.id] = share.event_id
        return lines, reverses


def _clawback(
    facts: EventFacts,
    line: LineDraft,
    amount: int,
    share: clawbacks.Allocation,
    original: Paid,
    *,
    chosen_newest_first: bool,
) -> LineDraft:
    return LineDraft(
        id=new_id("com"),
        program_id=line.program_id,
        partner_id=line.partner_id,
        customer_id=line.customer_id,
        event_id=facts.id,
        kind="clawback",
        amount=amount,
        currency=line.currency,
        base_amount=-share.amount,
        rate_bp=line.rate_bp,
        rounding=line.rounding,
        status=line.status,
        hold_until=line.hold_until,
        explanation=clawback_explanation(
            kind=facts.type,
            refund_external_id=facts.external_id,
            refunded=share.amount,
            refunded_total=share.refunded_total,
            original_amount=original.amount,
            currency=line.currency,
            original_line_id=line.id,
            original_line_amount=line.amount,
            result=amount,
            chosen_newest_first=chosen_newest_first,
        ),
        created_at=facts.occurred_at,
        plan_version_id=line.plan_version_id,
        rule_number=line.rule_number,
    )


def _first_paid(history: History, customer_id: str) -> datetime | None:
    paid = history.customer_paid.get(customer_id)
    return min(t for _, t in paid) if paid else None


def remember(
    history: History, reversals: Reversals, facts: EventFacts, partner_id: str | None, *, original_id: str | None
) -> None:
    """An event before what is replayed: a payment counts (customers, first payments) and a refund takes its
    share of the payments, but neither makes lines."""
    if facts.type in PAYING_TYPES:
        history.add_paying(partner_id, facts.customer_id, facts.id, facts.occurred_at)
        reversals.add_paid(facts)
    elif facts.type in reversals.kinds:
        # One that exceeds what is refundable was refused live in this order too: it took nothing.
        with suppress(ValidationError):
            reversals.allocate(facts, original_id)


def replay(
    program: Program,
    partners: Mapping[str, Partner],
    events: Iterable[tuple[EventFacts, str | None]],
    choose: Chooser,
    *,
    history: History | None = None,
    now: datetime | None = None,
    reversals: Reversals | None = None,
    originals: Mapping[str, str] | None = None,
) -> Iterator[Replayed]:
    """Events in the order they are to be evaluated (occurred_at, then as recorded), each with its partner id.

    `originals`: reversal event id -> the paying event it names (events.original_event_id), when it names one.
    """
    history = history if history is not None else History()
    reversals = reversals if reversals is not None else Reversals()
    originals = originals or {}
    for facts, partner_id in events:
        partner = partners.get(partner_id) if partner_id is not None else None
        paying = facts.type in PAYING_TYPES
        lines: list[EngineLine] = []
        plan: PlanRules | None = None
        if facts.type in reversals.kinds:
            try:
                lines, reverses = reversals.reverse(
                    facts, originals.get(facts.id), _first_paid(history, facts.customer_id)
                )
            except ValidationError as exc:
                yield Replayed(facts, partner_id, [], note=exc.message)
                continue
            history.add_lines(lines, facts.occurred_at)
            yield Replayed(facts, partner_id, lines, reverses=reverses)
            continue
        if partner is not None and facts.type not in NOT_TRIGGER_TYPES:
            plan = choose(partner, facts.occurred_at)
            if plan is not None:
                reversals.rules.setdefault(plan.version_id, plan.rules)
            if plan is not None or paying:
                lines = evaluate(evaluation_for(program, partner, facts, plan, history, now))
        if paying:
            history.add_paying(partner_id, facts.customer_id, facts.id, facts.occurred_at)
            reversals.add_paid(facts)
            reversals.made_on[facts.id].extend(line.draft for line in lines)
        history.add_lines(lines, facts.occurred_at)
        yield Replayed(facts, partner_id, lines, plan=plan)
