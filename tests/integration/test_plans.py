"""Plan services on a real database: rule validation, overlap refusal, versions that never change, and which
plan version applies to a partner at a time (partner exception > group > program, expiry, effective dates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from itertools import product as product_
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.partners.groups import create_group
from partnerpay.partners.models import Partner
from partnerpay.partners.service import create_partner
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.models import Plan, PlanVersion
from partnerpay.plans.overlap import overlaps, shared_scope, winners
from partnerpay.plans.resolve import load_book, plan_for
from partnerpay.plans.rules import Conditions, parse_rules
from partnerpay.plans.service import create_plan, new_version, publish, update_draft
from partnerpay.programs.service import create_program

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def rule(**overrides: Any) -> dict[str, Any]:
    return {"trigger": "invoice_paid", "percent_bp": 2000, **overrides}


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    program = create_program(session, actor=SYSTEM, name="P", currency="EUR", hold_days=30, now=T0)
    group = create_group(session, actor=SYSTEM, program_id=program.id, name="Pilot", now=T0)
    partner = create_partner(
        session, actor=SYSTEM, program_id=program.id, name="Acme", email="a@acme.example", group_id=group.id, now=T0
    )
    loner = create_partner(session, actor=SYSTEM, program_id=program.id, name="Solo", email="s@x.example", now=T0)
    session.flush()
    return {"program": program.id, "group": group.id, "partner": partner, "loner": loner}


def published(session: Session, program_id: str, name: str, bp: int, at: datetime = T0) -> str:
    plan, _ = create_plan(session, actor=SYSTEM, program_id=program_id, name=name, rules=[rule(percent_bp=bp)], now=at)
    publish(session, actor=SYSTEM, plan_id=plan.id, now=at)
    return plan.id


class TestRules:
    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            (rule(percent_bp=12.5), "rules.0.percent_bp"),
            (rule(percent_bp=-1), "rules.0.percent_bp"),
            (rule(percent_bp=10_001), "rules.0.percent_bp"),
            (rule(flat=99.99), "rules.0.flat"),
            (rule(trigger="deal_lost"), "rules.0.trigger"),
            (rule(trigger="chargeback"), "rules.0.trigger"),
            (rule(recurring_months=0), "rules.0.recurring_months"),
            (rule(trigger="signup", recurring_months=12), "rules.0"),
            (rule(caps={"per_event": -5}), "rules.0.caps.per_event"),
            (rule(conditions={"customer_countries": ["de"]}), "rules.0.conditions.customer_countries.0"),
            (rule(conditions={"first_payment_only": "yes"}), "rules.0.conditions.first_payment_only"),
            (rule(bonus={"first_customers": 0, "amount": 50000}), "rules.0.bonus.first_customers"),
            (rule(tiers=[{"from_customers": 0, "percent_bp": 2000}]), "rules.0"),  # no tier_period
            (rule(percent_bp=1000, tiers=[{"from_customers": 0, "percent_bp": 2000}], tier_period="month"), "rules.0"),
        ],
    )
    def test_bad_rules_are_refused_naming_the_field(self, raw: dict[str, Any], field: str) -> None:
        with pytest.raises(ValidationError) as caught:
            parse_rules([raw])
        assert caught.value.field == field, caught.value.message

    def test_a_bonus_rule_and_a_custom_trigger_are_accepted(self) -> None:
        [bonus, custom] = parse_rules(
            [
                {"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50000}},
                {"trigger": "trial_extended", "flat": 500},
            ],
            custom_types=["trial_extended"],
        )
        assert bonus.bonus is not None and bonus.bonus.amount == 50000 and not bonus.pays_per_event
        assert custom.flat == 500

    @given(
        st.lists(st.integers(min_value=1, max_value=10_000), min_size=0, max_size=8, unique=True),
        st.lists(st.integers(min_value=0, max_value=10_000), min_size=9, max_size=9),
    )
    def test_any_table_starting_at_zero_and_strictly_increasing_is_accepted(
        self, steps: list[int], rates: list[int]
    ) -> None:
        starts = [0, *sorted(steps)]
        tiers = [{"from_customers": s, "percent_bp": r} for s, r in zip(starts, rates, strict=False)]
        [parsed] = parse_rules([rule(percent_bp=None, tiers=tiers, tier_period="quarter")])
        assert parsed.tiers is not None and [t.from_customers for t in parsed.tiers] == starts

    @given(
        st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8),
        st.data(),
    )
    def test_any_table_with_a_gap_a_duplicate_or_disorder_is_refused(self, starts: list[int], data: Any) -> None:
        valid = starts[0] == 0 and all(b > a for a, b in pairwise(starts))
        if valid:  # break it: a gap at the start, or a repeated step
            starts = data.draw(st.sampled_from([[s + 1 for s in starts], [*starts, starts[-1]]]))
        tiers = [{"from_customers": s, "percent_bp": 2000} for s in starts]
        with pytest.raises(ValidationError) as caught:
            parse_rules([rule(percent_bp=None, tiers=tiers, tier_period="month")])
        assert caught.value.field == "rules.0.tiers"


class TestOverlaps:
    def test_overlap_needs_same_trigger_same_priority_and_conditions_one_event_can_meet(self) -> None:
        rules = parse_rules(
            [
                rule(conditions={"products": ["pro"]}),
                rule(conditions={"products": ["team"]}),  # another product: no overlap with 1
                rule(conditions={"metadata_equals": {"plan": "annual"}}),  # any product: meets 1 and 2
                rule(conditions={"metadata_equals": {"plan": "monthly"}}),  # meets 1 and 2, not 3
                rule(trigger="signup", flat=500),
                rule(priority=9),
                {"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50000}},
            ]
        )
        assert [(o.first, o.second) for o in overlaps(rules)] == [(1, 3), (1, 4), (2, 3), (2, 4)]
        assert overlaps(rules)[0].message() == (
            "rules 1 and 3 both pay on invoice_paid for product pro and metadata plan=annual; "
            "give one a higher priority or narrow its conditions"
        )

    def test_of_the_rules_matching_an_event_the_highest_priority_pays_and_bonuses_add(self) -> None:
        low, high, bonus, also_high = parse_rules(
            [
                rule(),
                rule(percent_bp=3000, priority=5, conditions={"products": ["pro"]}),
                {"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50000}},
                rule(flat=100, percent_bp=None, priority=5, conditions={"products": ["team"]}),
            ]
        )
        assert winners([low, high, bonus]) == [high, bonus]
        assert winners([low, bonus]) == [low, bonus]
        assert winners([low, also_high]) == [also_high]
        assert winners([]) == []


def _meets(c: Conditions, event: tuple[str, str, str, str, dict[str, str]]) -> bool:
    """A reference matcher over one concrete event (product, sku, country, group, metadata)."""
    product, sku, country, group, metadata = event
    return (
        (not c.products or product in c.products)
        and (not c.skus or sku in c.skus)
        and (not c.customer_countries or country in c.customer_countries)
        and (not c.partner_group_ids or group in c.partner_group_ids)
        and all(metadata.get(k) == v for k, v in c.metadata_equals.items())
    )


def _subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), unique=True, max_size=len(values))


CONDITIONS = st.builds(
    Conditions,
    products=_subset(["pro", "team", "solo"]),
    skus=_subset(["annual", "monthly"]),
    customer_countries=_subset(["DE", "FR"]),
    partner_group_ids=_subset(["grp_a", "grp_b"]),
    metadata_equals=st.dictionaries(st.sampled_from(["k1", "k2"]), st.sampled_from(["a", "b"]), max_size=2),
    first_payment_only=st.booleans(),
)
METADATA = [{}, *({k: v} for k in ("k1", "k2") for v in ("a", "b"))]
METADATA += [{"k1": a, "k2": b} for a in ("a", "b") for b in ("a", "b")]
EVENTS = list(
    product_(["pro", "team", "solo", "other"], ["annual", "monthly", "x"], ["DE", "FR", "US"], ["grp_a", "grp_b", "-"])
)


class TestOverlapProperty:
    @settings(max_examples=300, deadline=None)
    @given(CONDITIONS, CONDITIONS)
    def test_two_conditions_share_a_scope_exactly_when_some_event_meets_both(
        self, a: Conditions, b: Conditions
    ) -> None:
        some_event = any(_meets(a, (*e, m)) and _meets(b, (*e, m)) for e in EVENTS for m in METADATA)
        assert (shared_scope(a, b) is not None) == some_event
        assert (shared_scope(b, a) is None) == (shared_scope(a, b) is None)


class TestPublishing:
    def test_every_write_is_audited_and_publishing_overlaps_writes_nothing(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        plan, v1 = create_plan(
            session, actor=SYSTEM, program_id=world["program"], name="Std", rules=[rule(), rule(flat=100)], now=T0
        )
        with pytest.raises(ValidationError) as caught:
            publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
        assert caught.value.extra["rules"] == [1, 2]
        assert v1.status == "draft" and v1.published_at is None
        update_draft(session, actor=SYSTEM, plan_id=plan.id, rules=[rule()], now=T0)
        publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert [a for a in actions if a.startswith("plan.")] == ["plan.create", "plan.update_draft", "plan.publish"]

    def test_a_published_version_is_never_edited_and_v2_leaves_v1_alone(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        plan_id = published(session, world["program"], "Std", 2000)
        with pytest.raises(Conflict):
            update_draft(session, actor=SYSTEM, plan_id=plan_id, rules=[rule(percent_bp=1)], now=T0)
        new_version(session, actor=SYSTEM, plan_id=plan_id, rules=[rule(percent_bp=3000)], now=T0 + DAY)
        publish(session, actor=SYSTEM, plan_id=plan_id, now=T0 + 10 * DAY)
        v1, v2 = session.scalars(select(PlanVersion).where(PlanVersion.plan_id == plan_id).order_by("version"))
        assert (v1.status, v1.rules[0]["percent_bp"], v1.effective_from) == ("archived", 2000, T0)
        assert (v2.status, v2.rules[0]["percent_bp"], v2.effective_from) == ("published", 3000, T0 + 10 * DAY)

    def test_a_new_version_cannot_start_before_the_one_it_replaces(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        plan_id = published(session, world["program"], "Std", 2000, at=T0 + 5 * DAY)
        new_version(session, actor=SYSTEM, plan_id=plan_id, now=T0 + 6 * DAY)
        with pytest.raises(ValidationError) as caught:
            publish(session, actor=SYSTEM, plan_id=plan_id, effective_from=T0, now=T0 + 6 * DAY)
        assert caught.value.field == "effective_from"

    def test_a_product_no_event_has_carried_is_refused_unless_allowed(
        self, session: Session, world: dict[str, Any]
    ) -> None:
        plan, _ = create_plan(
            session,
            actor=SYSTEM,
            program_id=world["program"],
            name="Pro",
            rules=[rule(conditions={"products": ["pro", "prro"]})],
            now=T0,
        )
        # Without any product on the program's events there is nothing to compare with: taken as written.
        assert publish(session, actor=SYSTEM, plan_id=plan.id, now=T0).status == "published"
        data = {"program_id": world["program"], "type": "invoice_paid", "external_id": "inv_1", "occurred_at": T0,
                "customer_external_id": "c1", "amount": 1000, "currency": "EUR", "product": "pro"}  # fmt: skip
        record_event(session, actor=SYSTEM, data=EventIn(**data), now=T0)
        new_version(session, actor=SYSTEM, plan_id=plan.id, now=T0 + DAY)
        with pytest.raises(ValidationError) as caught:
            publish(session, actor=SYSTEM, plan_id=plan.id, now=T0 + DAY)
        assert caught.value.field == "rules.0.conditions.products.1" and "'prro'" in caught.value.message
        done = publish(session, actor=SYSTEM, plan_id=plan.id, now=T0 + DAY, allow_new_products=True)
        assert done.version == 2

    def test_a_group_condition_must_name_a_group_of_the_program(self, session: Session, world: dict[str, Any]) -> None:
        with pytest.raises(ValidationError) as caught:
            create_plan(
                session,
                actor=SYSTEM,
                program_id=world["program"],
                name="G",
                rules=[rule(conditions={"partner_group_ids": ["grp_other"]})],
                now=T0,
            )
        assert caught.value.field == "rules.0.conditions.partner_group_ids"
        assert session.scalar(select(func.count()).select_from(Plan)) == 0

    def test_another_programs_key_and_a_partner_get_404(self, session: Session, world: dict[str, Any]) -> None:
        plan_id = published(session, world["program"], "Std", 2000)
        other = Actor(ActorType.API_KEY, "key_other", frozenset({"read", "write"}), program_id="prg_other")
        partner = Actor(ActorType.PARTNER, "pu_1", frozenset({"read"}), world["program"], world["partner"].id)
        for actor in (other, partner):
            with pytest.raises(NotFound):
                new_version(session, actor=actor, plan_id=plan_id, now=T0)


class TestResolution:
    def test_partner_exception_then_group_then_program_then_none(self, session: Session, world: dict[str, Any]) -> None:
        partner: Partner = world["partner"]
        assert plan_for(session, partner, T0) is None
        std = published(session, world["program"], "Std", 2000)
        pilot = published(session, world["program"], "Pilot", 2500)
        deal = published(session, world["program"], "Deal", 4000)
        assign_plan(session, actor=SYSTEM, plan_id=std, scope="program", now=T0)
        assign_plan(session, actor=SYSTEM, plan_id=pilot, scope="group", target_id=world["group"], now=T0 + DAY)
        assign_plan(
            session,
            actor=SYSTEM,
            plan_id=deal,
            scope="partner",
            target_id=partner.id,
            reason="launch partner",
            effective_from=T0 + 2 * DAY,
            expires_at=T0 + 30 * DAY,
            now=T0,
        )
        book = load_book(session, world["program"])

        def name(at: datetime, who: Partner = partner) -> tuple[str, str] | None:
            choice = book.choose(who.id, who.group_id, at)
            return None if choice is None else (choice.how.plan_name, choice.how.level)

        assert name(T0) == ("Std", "program")
        assert name(T0 + DAY) == ("Pilot", "group")  # the group assignment's effective_from honoured
        assert name(T0 + 2 * DAY) == ("Deal", "partner")
        assert name(T0 + 30 * DAY) == ("Pilot", "group")  # the exception expired
        assert name(T0 + 5 * DAY, world["loner"]) == ("Std", "program")
        choice = plan_for(session, partner, T0 + 3 * DAY)
        assert (
            choice is not None
            and choice.how.text == "plan Deal v1, a partner exception (launch partner, until 2026-03-31)"
        )

    def test_the_version_in_effect_at_the_time_applies(self, session: Session, world: dict[str, Any]) -> None:
        plan_id = published(session, world["program"], "Std", 2000)
        assign_plan(session, actor=SYSTEM, plan_id=plan_id, scope="program", now=T0)
        new_version(session, actor=SYSTEM, plan_id=plan_id, rules=[rule(percent_bp=3000)], now=T0)
        publish(session, actor=SYSTEM, plan_id=plan_id, effective_from=T0 + 10 * DAY, now=T0 + DAY)
        book = load_book(session, world["program"])
        partner: Partner = world["partner"]
        before = book.choose(partner.id, partner.group_id, T0 + 9 * DAY)
        after = book.choose(partner.id, partner.group_id, T0 + 10 * DAY)
        assert before is not None and before.version.version == 1
        assert after is not None and after.version.version == 2
        assert book.rules(after.version)[0].percent_bp == 3000
        assert book.choose(partner.id, partner.group_id, T0 - DAY) is None  # before anything was in effect

    def test_an_assigned_draft_falls_through_until_published(self, session: Session, world: dict[str, Any]) -> None:
        std = published(session, world["program"], "Std", 2000)
        assign_plan(session, actor=SYSTEM, plan_id=std, scope="program", now=T0)
        draft, _ = create_plan(session, actor=SYSTEM, program_id=world["program"], name="D", rules=[rule()], now=T0)
        assign_plan(session, actor=SYSTEM, plan_id=draft.id, scope="group", target_id=world["group"], now=T0)
        choice = plan_for(session, world["partner"], T0 + DAY)
        assert choice is not None and choice.how.plan_name == "Std"
