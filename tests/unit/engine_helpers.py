"""Building an Evaluation for the rule evaluator's tests: a EUR program, invoice INV-7 of €1,200.00 for Acme."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from partnerpay.commissions.engine import evaluate
from partnerpay.commissions.engine_inputs import (
    CustomerContext,
    EngineLine,
    Evaluation,
    EventFacts,
    PartnerContext,
    PlanRules,
    ProgramTerms,
)
from partnerpay.fx.conversion import FxRate
from partnerpay.plans.rules import parse_rules

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOLD = "on hold until 01 Apr 2026 (refund window 30 days)"
PROGRAM = ProgramTerms(id="prg_1", currency="EUR", rounding="half_even", hold_days=30, default_percent_bp=1000)
JPY_EUR = FxRate("fxr_1", "JPY", "EUR", 61, 4, date(2026, 3, 2), "ECB reference rate")


def invoice(**changes: Any) -> EventFacts:
    values: dict[str, Any] = {
        "id": "evt_1",
        "type": "invoice_paid",
        "external_id": "INV-7",
        "occurred_at": T,
        "amount": 120_000,
        "currency": "EUR",
        "customer_id": "cus_1",
        "customer_external_id": "acme",
        "product": "pro",
        "metadata": {"sku": "pro-annual", "channel": "web"},
        "customer_name": "Acme",
        "customer_country": "DE",
    }
    values.update(changes)
    return EventFacts(**values)


def plan(*rules: dict[str, Any]) -> PlanRules:
    return PlanRules("plv_1", "Standard", 4, parse_rules(list(rules)))


def run(
    rules: list[dict[str, Any]] | None,
    *,
    event: EventFacts | None = None,
    customer: CustomerContext | None = None,
    partner: PartnerContext | None = None,
    program: ProgramTerms = PROGRAM,
    **extra: Any,
) -> list[EngineLine]:
    return evaluate(
        Evaluation(
            program=program,
            event=event or invoice(),
            customer=customer or CustomerContext(months_since_first=2),
            partner=partner or PartnerContext("prt_1", "active"),
            plan=None if rules is None else plan(*rules),
            **extra,
        )
    )


def summary(lines: list[EngineLine]) -> list[tuple[str, str, int, str]]:
    """(kind, partner, amount, explanation) of each line, the shape the worked examples are written in."""
    return [(x.draft.kind, x.draft.partner_id, x.draft.amount, x.draft.explanation) for x in lines]
