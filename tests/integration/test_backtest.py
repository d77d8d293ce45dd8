"""The backtest on a real database: simulating the published version over the recorded history reproduces the
stored lines exactly (same partner, event, kind, amount and rule), a draft shows the exact difference, history
before the window counts without making lines, and nothing is written."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.cli import app
from partnerpay.commissions.backtest import Simulation, simulate
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.ledger.models import LedgerPosting, LedgerTransaction
from partnerpay.partners.models import Partner
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.models import Plan
from partnerpay.plans.service import create_plan, new_version, publish
from partnerpay.programs.models import Program
from tests import factories

T0 = datetime(2026, 1, 3, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)

RULES: list[dict[str, Any]] = [
    {"trigger": "signup", "flat": 1500},
    {
        "trigger": "invoice_paid",
        "conditions": {"products": ["pro"]},
        "tiers": [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 2000}],
        "tier_period": "quarter",
        "recurring_months": 2,
        "caps": {"per_customer": 6000},
        "bonus": {"first_customers": 2, "amount": 10_000},
        "two_tier_percent_bp": 1000,
        "waive_clawback_after_days": 50,
    },
    {
        "trigger": "invoice_paid",
        "conditions": {"products": ["team"]},
        "tiers": [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 1500}],
        "tier_period": "month",
        "tier_mode": "retroactive",
        "caps": {"per_partner_period": 5000, "period": "month"},
        "two_tier_percent_bp": 500,
        "clawback_days": 45,
    },
]


@pytest.fixture
def program(session: Session) -> Program:
    return factories.program(session, T0 - 10 * DAY, hold_days=30, default_percent_bp=1000)


def record(session: Session, program: Program, **kw: Any) -> list[CommissionLine]:
    at = kw.pop("at")
    amount = kw.get("amount")
    data = EventIn(
        program_id=program.id,
        occurred_at=at,
        currency=program.currency if amount is not None else None,
        **{"type": "invoice_paid", **kw},
    )
    return record_event(session, actor=SYSTEM, data=data, now=at).commissions


def published_plan(session: Session, program: Program, rules: list[dict[str, Any]], name: str = "Standard") -> Plan:
    at = T0 - 5 * DAY
    plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name=name, rules=rules, now=at)
    publish(session, actor=SYSTEM, plan_id=plan.id, now=at, allow_new_products=True)
    assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=at, effective_from=at)
    return plan


def partners(session: Session, program: Program) -> list[Partner]:
    made = [factories.partner(session, program, T0 - 9 * DAY, name=n) for n in ("Acme", "Beta", "Recruit")]
    made[2].recruited_by_id = made[0].id
    session.flush()
    return made


def three_months(session: Session, program: Program, people: list[Partner]) -> int:
    """Nine customers over January to March: a signup, then monthly invoices of pro or team, amounts varying."""
    events: list[tuple[datetime, dict[str, Any]]] = []
    for i in range(9):
        partner, product = people[i % 3], ("pro", "team")[i % 2]
        start = T0 + (i % 3) * 30 * DAY + i * DAY
        events.append((start - DAY, dict(type="signup", external_id=f"su{i}", customer_external_id=f"c{i}",
                                           partner_id=partner.id)))  # fmt: skip
        for month in range(3):
            at = start + month * 30 * DAY + timedelta(hours=3 * (i % 2))
            if at >= datetime(2026, 4, 1, tzinfo=UTC):
                break
            amount = 12_345 + 1_111 * i + 777 * month
            events.append((at, dict(external_id=f"in{i}-{month}", customer_external_id=f"c{i}", amount=amount,
                                    product=product)))  # fmt: skip
    events.sort(key=lambda e: e[0])
    for at, kw in events:
        record(session, program, at=at, **kw)
    return len(events)


def take_backs(session: Session, program: Program) -> int:
    """Refunds (named, newest first, after the window, after the waiver), chargebacks won, and a cancellation."""
    events: list[tuple[datetime, dict[str, Any]]] = [
        (datetime(2026, 2, 10, tzinfo=UTC), dict(type="refund", external_id="re0", customer_external_id="c0",
                                                 amount=5000, original_external_id="in0-1")),
        (datetime(2026, 2, 10, 1, tzinfo=UTC), dict(type="chargeback", external_id="cb1", customer_external_id="c1",
                                                    amount=5000, original_external_id="in1-0")),
        (datetime(2026, 2, 20, tzinfo=UTC), dict(type="chargeback", external_id="cb4", customer_external_id="c4",
                                                 amount=16_789, original_external_id="in4-0")),
        (datetime(2026, 3, 1, tzinfo=UTC), dict(type="chargeback_reversed", external_id="cbr4",
                                                customer_external_id="c4", amount=16_789, original_external_id="cb4")),
        (datetime(2026, 3, 10, tzinfo=UTC), dict(type="refund", external_id="re2", customer_external_id="c2",
                                                 amount=7000)),
        (datetime(2026, 3, 15, tzinfo=UTC), dict(type="subscription_canceled", external_id="cx3",
                                                 customer_external_id="c3")),
        (datetime(2026, 3, 20, tzinfo=UTC), dict(type="refund", external_id="re0b", customer_external_id="c0",
                                                 amount=2000, original_external_id="in0-1")),
        (datetime(2026, 3, 25, tzinfo=UTC), dict(type="refund", external_id="re1", customer_external_id="c1",
                                                 amount=3000, original_external_id="in1-0")),
        # Won after a refund past the window: that refund took no commission, so all of cb1's comes back.
        (datetime(2026, 3, 28, tzinfo=UTC), dict(type="chargeback_reversed", external_id="cbr1",
                                                 customer_external_id="c1", amount=5000, original_external_id="cb1")),
    ]  # fmt: skip
    for at, kw in events:
        record(session, program, at=at, **kw)
    return len(events)


def stored(session: Session, program: Program) -> Counter[tuple[str, str | None, str, int, int | None]]:
    rows = session.scalars(
        select(CommissionLine).where(CommissionLine.program_id == program.id, CommissionLine.status != "rejected")
    )
    return Counter((x.partner_id, x.event_id, x.kind, x.amount, x.rule_number) for x in rows)


def simulated(result: Simulation) -> Counter[tuple[str, str | None, str, int, int | None]]:
    return Counter((x.partner_id, x.event_id, x.kind, x.amount, x.rule_number) for x in result.lines)


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (CommissionLine, LedgerTransaction, LedgerPosting, AuditEntry)
    )


class TestBacktestEqualsLive:
    def test_the_published_version_over_all_history_reproduces_every_stored_line(
        self, session: Session, program: Program
    ) -> None:
        people = partners(session, program)
        plan = published_plan(session, program, RULES)
        n = three_months(session, program, people)
        reversals = take_backs(session, program)
        live = stored(session, program)
        kinds = Counter(kind for _, _, kind, _, _ in live.elements())
        # The history exercises every structure: tiers, true-ups, bonuses, two-tier shares, caps, clawbacks of
        # commissions and two-tier shares, a reinstatement, a cancellation; windows and the waiver keep lines.
        assert {"commission", "true_up", "bonus", "two_tier", "clawback", "reinstatement"} <= set(kinds)
        clawed = {(e, k) for _, e, k, _, _ in live if k == "clawback"}
        assert len(clawed) >= 3
        texts = " ".join(session.scalars(select(CommissionLine.explanation)))
        assert "(per-customer cap)" in texts and "(per-partner cap for the month)" in texts

        result = simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 3, 31), version=1)

        assert simulated(result) == live
        assert (result.events_replayed, result.events_simulated, result.paying_before) == (n + reversals, n, 0)
        [(currency, total)] = result.totals.items()
        assert currency == "EUR" and total.difference == 0
        assert total.would.as_dict() == total.was.as_dict()
        assert total.was.net == sum(amount for _, _, _, amount, _ in live.elements())
        assert all(c.difference == 0 for p in result.partners for c in p.currencies.values())
        assert [p.name for p in result.partners] == ["Acme", "Beta", "Recruit"]


class TestDraft:
    def test_a_higher_rate_shows_the_exact_difference_per_partner(self, session: Session, program: Program) -> None:
        acme, beta, _ = partners(session, program)
        plan = published_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
        for i, (partner, amount) in enumerate([(acme, 12_345), (beta, 9_999), (acme, 50_001)]):
            record(session, program, at=T0 + i * DAY, external_id=f"in{i}", customer_external_id=f"c{i}",
                   partner_id=partner.id, amount=amount)  # fmt: skip
        new_version(session, actor=SYSTEM, plan_id=plan.id, rules=[{"trigger": "invoice_paid", "percent_bp": 2500}],
                    now=T0)  # fmt: skip

        result = simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 1, 31))

        assert (result.version, result.version_status) == (2, "draft")
        by_name = {p.name: p.currencies["EUR"] for p in result.partners}
        # Acme: 20 % of 123.45 + 500.01 = 24.69 + 100.00; 25 % = 30.86 + 125.00 (half-even on the cents).
        assert (by_name["Acme"].was.net, by_name["Acme"].would.net, by_name["Acme"].difference) == (
            12_469,
            15_586,
            3_117,
        )
        assert (by_name["Beta"].was.net, by_name["Beta"].would.net, by_name["Beta"].difference) == (2000, 2500, 500)
        assert result.totals["EUR"].difference == 3_617

    def test_refunds_claw_back_the_drafts_own_lines_and_one_of_a_payment_before_the_window_is_left_out(
        self, session: Session, program: Program
    ) -> None:
        acme, _, _ = partners(session, program)
        plan = published_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
        record(session, program, at=T0, external_id="in1", customer_external_id="c1", partner_id=acme.id,
               amount=10_000)  # fmt: skip
        record(session, program, at=T0 + 30 * DAY, external_id="in2", customer_external_id="c2",
               partner_id=acme.id, amount=10_001)  # fmt: skip
        # Half of each is refunded in February: in1 was paid before the window, in2 in it.
        record(session, program, at=T0 + 40 * DAY, type="refund", external_id="re1", customer_external_id="c1",
               amount=5000)  # fmt: skip
        record(session, program, at=T0 + 41 * DAY, type="refund", external_id="re2", customer_external_id="c2",
               amount=5000, original_external_id="in2")  # fmt: skip
        new_version(session, actor=SYSTEM, plan_id=plan.id, rules=[{"trigger": "invoice_paid", "percent_bp": 3000}],
                    now=T0)  # fmt: skip

        result = simulate(session, SYSTEM, plan.id, date(2026, 2, 1), date(2026, 2, 28))

        total = result.totals["EUR"]
        # 20 % of €100.01 = €20.00, half clawed back: -€10.00; 30 % = €30.00, 5,000/10,001 of it: -€15.00 (half-even).
        assert (total.was.by_kind["commission"], total.was.by_kind["clawback"]) == (2000, -1000)
        assert (total.would.by_kind["commission"], total.would.by_kind["clawback"]) == (3000, -1500)
        assert total.difference == 500 and result.paying_before == 1 and result.events_replayed == 3

    def test_history_before_the_window_counts_customers_but_makes_no_lines(
        self, session: Session, program: Program
    ) -> None:
        acme, _, _ = partners(session, program)
        tiers = [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 1, "percent_bp": 3000}]
        rule = {"trigger": "invoice_paid", "tiers": tiers, "tier_period": "year", "recurring_months": 2}
        plan = published_plan(session, program, [rule])
        record(session, program, at=T0, external_id="jan", customer_external_id="c1", partner_id=acme.id,
               amount=10_000)  # fmt: skip
        # c1's second month, then its third (past the 2 recurring months), and a new customer c2.
        record(session, program, at=T0 + 31 * DAY, external_id="feb", customer_external_id="c1", amount=10_000)
        record(session, program, at=T0 + 62 * DAY, external_id="mar", customer_external_id="c1", amount=10_000)
        record(session, program, at=T0 + 63 * DAY, external_id="mar2", customer_external_id="c2",
               partner_id=acme.id, amount=10_000)  # fmt: skip

        result = simulate(session, SYSTEM, plan.id, date(2026, 2, 1), date(2026, 3, 31), version=1)

        assert (result.events_replayed, result.paying_before) == (3, 1)
        # February is c1's month 2 (first paid in January), March is past it; c2 has c1 before it: tier 30 %.
        assert sorted((x.kind, x.amount) for x in result.lines) == [("commission", 1000), ("commission", 3000)]
        assert result.totals["EUR"].difference == 0

    def test_a_plan_without_assignment_is_simulated_program_wide(self, session: Session, program: Program) -> None:
        acme, _, _ = partners(session, program)
        record(session, program, at=T0, external_id="in1", customer_external_id="c1", partner_id=acme.id,
               amount=10_000)  # fmt: skip
        plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Idea",
                              rules=[{"trigger": "invoice_paid", "percent_bp": 3000}], now=T0)  # fmt: skip

        result = simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 1, 31))

        [partner] = result.partners
        comparison = partner.currencies["EUR"]
        assert (comparison.was.net, comparison.would.net) == (1000, 3000)  # default 10 % was paid


class TestNothingWritten:
    def test_row_counts_of_lines_ledger_and_audit_are_unchanged(self, session: Session, program: Program) -> None:
        people = partners(session, program)
        plan = published_plan(session, program, RULES)
        three_months(session, program, people)
        new_version(session, actor=SYSTEM, plan_id=plan.id, now=T0)
        session.commit()
        before = counts(session)

        simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 3, 31))
        assert not session.new and not session.dirty and not session.deleted
        session.commit()

        assert counts(session) == before


class TestRefused:
    def test_bad_window_version_and_actor(self, session: Session, program: Program) -> None:
        plan = published_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
        with pytest.raises(ValidationError) as bad:
            simulate(session, SYSTEM, plan.id, date(2026, 2, 1), date(2026, 1, 31))
        assert bad.value.field == "to"
        with pytest.raises(NotFound) as missing:
            simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 1, 31), version=7)
        assert missing.value.field == "version"
        with pytest.raises(NotFound):
            simulate(session, SYSTEM, "pln_nope", date(2026, 1, 1), date(2026, 1, 31))
        other = factories.program(session, T0, name="Other")
        outsider = Actor(ActorType.API_KEY, "key_x", frozenset({"read"}), program_id=other.id)
        with pytest.raises(NotFound):
            simulate(session, outsider, plan.id, date(2026, 1, 1), date(2026, 1, 31))
        no_read = Actor(ActorType.API_KEY, "key_y", frozenset(), program_id=program.id)
        with pytest.raises(Forbidden):
            simulate(session, no_read, plan.id, date(2026, 1, 1), date(2026, 1, 31))


class TestCli:
    @pytest.fixture
    def cli(self, database_url: str) -> CliRunner:
        return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})

    def test_the_table_and_json_and_refusals(self, session: Session, program: Program, cli: CliRunner) -> None:
        acme, _, _ = partners(session, program)
        plan = published_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
        record(session, program, at=T0, external_id="in1", customer_external_id="c1", partner_id=acme.id,
               amount=12_345)  # fmt: skip
        new_version(session, actor=SYSTEM, plan_id=plan.id, rules=[{"trigger": "invoice_paid", "percent_bp": 2500}],
                    now=T0)  # fmt: skip
        session.commit()
        base = ["plans", "simulate", "--plan", plan.id, "--from", "2026-01-01", "--to", "2026-01-31"]

        shown = cli.invoke(app, base)
        assert shown.exit_code == 0, shown.output
        assert "Plan Standard v2 (draft)" in shown.output
        assert "1 event(s) replayed, 1 under this version" in shown.output
        assert re.search(r"Acme \(ptn_\w+\)\s+│\s+€30\.86\s+│\s+€24\.69\s+│\s+\+€6\.17", shown.output), shown.output
        assert re.search(r"Total\s+│\s+€30\.86\s+│\s+€24\.69\s+│\s+\+€6\.17", shown.output)
        as_json = json.loads(cli.invoke(app, [*base, "--json", "--version", "1"]).output)
        assert as_json["version"] == 1 and as_json["totals"]["EUR"]["difference"] == 0

        for args, words in (
            (["--plan", "pln_nope"], "plan pln_nope not found"),
            (["--from", "2026-02-30"], "[from]: '2026-02-30' is not a date"),
            (["--from", "2026-02-01"], "[to]: to (2026-01-31) is before from (2026-02-01)"),
            (["--version", "5"], "has no version 5"),
        ):
            refused = cli.invoke(app, [*base, *args])
            assert refused.exit_code == 1 and words in " ".join(refused.output.split()), refused.output


PROPERTY_RULES: list[dict[str, Any]] = [
    {
        "trigger": "invoice_paid",
        "tiers": [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 2000}],
        "tier_period": "month",
        "tier_mode": "retroactive",
        "caps": {"per_customer": 8000},
        "two_tier_percent_bp": 1000,
        "clawback_days": 20,
        "waive_clawback_after_days": 30,
    }
]
KINDS = ["pay", "pay", "pay", "refund", "chargeback", "won", "cancel"]
Step = tuple[str, int, int, bool]


class Customers:
    """What is still refundable of each invoice, as events/service allocates: the named one, else newest first."""

    def __init__(self) -> None:
        self.paid: dict[int, list[list[Any]]] = {c: [] for c in range(4)}  # customer -> [[invoice, left]]
        self.chargebacks: list[tuple[str, int, list[tuple[list[Any], int]]]] = []  # (id, customer, taken)

    def take(self, customer: int, amount: int, named: bool) -> tuple[int, str | None, list[tuple[list[Any], int]]]:
        open_ = [x for x in self.paid[customer] if x[1] > 0]
        if not open_:
            return 0, None, []
        invoice = open_[-1][0] if named else None
        candidates = [open_[-1]] if named else list(reversed(self.paid[customer]))
        total = min(amount, sum(x[1] for x in candidates))
        left, taken = total, []
        for row in candidates:
            cut = min(row[1], left)
            if cut:
                row[1] -= cut
                left -= cut
                taken.append((row, cut))
        return total, invoice, taken


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(1, 60_000), st.booleans()),
        min_size=1,
        max_size=14,
    )
)
def test_backtest_equals_live_for_any_interleaving_of_payments_and_reversals(
    session: Session, steps: list[Step]
) -> None:
    """Any sequence of payments, partial refunds and chargebacks (named or newest first), won chargebacks and
    cancellations for four customers of a partner and its recruit, under a rule with a clawback window and a
    waiver: the published version simulated over it gives exactly the stored lines."""
    program = factories.program(session, T0 - 10 * DAY, hold_days=30, default_percent_bp=1000)
    recruiter, recruit = (factories.partner(session, program, T0 - 9 * DAY, name=n) for n in ("Acme", "Recruit"))
    recruit.recruited_by_id = recruiter.id
    plan = published_plan(session, program, PROPERTY_RULES)
    book = Customers()
    for n, (kind, customer, amount, named) in enumerate(steps):
        at, who = T0 + n * 4 * DAY, f"c{customer}"
        if kind == "pay":
            owner = (recruiter, recruit)[customer % 2]
            record(session, program, at=at, external_id=f"in{n}", customer_external_id=who, partner_id=owner.id,
                   amount=amount)  # fmt: skip
            book.paid[customer].append([f"in{n}", amount])
        elif kind in ("refund", "chargeback"):
            total, invoice, taken = book.take(customer, amount, named)
            if total:
                record(session, program, at=at, type=kind, external_id=f"re{n}", customer_external_id=who,
                       amount=total, original_external_id=invoice)  # fmt: skip
                if kind == "chargeback":
                    book.chargebacks.append((f"re{n}", customer, taken))
        elif kind == "won" and book.chargebacks:
            chargeback, owner_customer, taken = book.chargebacks.pop(0)
            for row, cut in taken:
                row[1] += cut
            record(session, program, at=at, type="chargeback_reversed", external_id=f"won{n}",
                   customer_external_id=f"c{owner_customer}", amount=sum(c for _, c in taken),
                   original_external_id=chargeback)  # fmt: skip
        elif kind == "cancel":
            record(session, program, at=at, type="subscription_canceled", external_id=f"cx{n}",
                   customer_external_id=who)  # fmt: skip

    result = simulate(session, SYSTEM, plan.id, date(2026, 1, 1), date(2026, 12, 31), version=1)

    assert simulated(result) == stored(session, program)
    assert all(c.difference == 0 for c in result.totals.values())
