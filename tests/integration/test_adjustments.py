"""Manual adjustments: a pending line with a reason, posted, audited, approved by someone else, netted by runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.commissions.decisions import approve_lines, reject_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.ledger.verify import verify
from partnerpay.payouts.service import create_payout_run
from partnerpay.programs.models import Program
from tests import factories

PASSWORD = "correct horse battery"


def staff(session: Session, clock: FixedClock, role: str) -> Actor:
    user = create_staff_user(
        session, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=clock.now()
    )
    return staff_actor(user)


@pytest.fixture
def setup(session: Session, clock: FixedClock) -> dict[str, Any]:
    prog = factories.program(session, clock.now(), name="Main")
    other = factories.program(session, clock.now(), name="Other")
    acme = factories.partner(session, prog, clock.now(), "Acme")
    stranger = factories.partner(session, other, clock.now(), "Stranger")
    session.commit()
    return {
        "program": prog,
        "acme": acme.id,
        "stranger": stranger.id,
        "ana": staff(session, clock, "finance"),
        "owner": staff(session, clock, "owner"),
        "viewer": staff(session, clock, "viewer"),
    }


def payable_legs(session: Session, line_id: str) -> list[tuple[str, int]]:
    """(account kind, amount) of every ledger leg posted for a line."""
    rows = session.execute(
        select(LedgerAccount.kind, LedgerPosting.amount)
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .where(LedgerTransaction.ref_id == line_id)
        .order_by(LedgerAccount.kind)
    ).all()
    return [(str(k), int(a)) for k, a in rows]


class TestAddAdjustment:
    @pytest.mark.parametrize("amount", [5_000, -2_550])
    def test_posts_a_balanced_entry_and_explains_itself(
        self, session: Session, clock: FixedClock, setup: dict[str, Any], amount: int
    ) -> None:
        reason = "missed referral Acme, see ticket 123"
        line = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=amount,
            currency="EUR",
            reason=f"  {reason} ",
            now=clock.now(),
        )
        session.commit()
        assert (line.kind, line.status, line.amount, line.hold_until) == (
            "adjustment",
            "pending",
            amount,
            clock.now(),
        )
        assert (line.created_by, line.reason) == (setup["ana"].id, reason)
        sign = "+€50.00" if amount > 0 else "-€25.50"
        assert line.explanation == f"Manual adjustment by finance@example.com: {sign} — '{reason}'"
        assert payable_legs(session, line.id) == [
            (AccountKind.COMMISSION_EXPENSE.value, amount),
            (AccountKind.PARTNER_PAYABLE.value, -amount),
        ]
        assert verify(session).ok
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "commission.adjust", AuditEntry.object_id == line.id)
        ).one()
        assert audit.actor_id == setup["ana"].id
        assert audit.after is not None and audit.after["reason"] == reason and audit.after["amount"] == amount

    @pytest.mark.parametrize(
        ("changes", "field", "words"),
        [
            ({"amount": 0}, "amount", "must not be zero"),
            ({"amount": 12.5}, "amount", "integer number of minor units"),
            ({"amount": True}, "amount", "integer number of minor units"),
            ({"amount": 10**13}, "amount", "implausibly large"),
            ({"currency": "USD"}, "currency", "program's currency EUR"),
            ({"currency": "EURO"}, "currency", "unknown currency"),
            ({"reason": "   "}, "reason", "a reason is required"),
            ({"reason": "x" * 501}, "reason", "at most 500 characters"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self,
        session: Session,
        clock: FixedClock,
        setup: dict[str, Any],
        changes: dict[str, Any],
        field: str,
        words: str,
    ) -> None:
        args: dict[str, Any] = {
            "partner_id": setup["acme"],
            "amount": 100,
            "currency": "EUR",
            "reason": "why",
            **changes,
        }
        with pytest.raises(ValidationError) as err:
            add_adjustment(session, actor=setup["ana"], now=clock.now(), **args)
        assert err.value.field == field and words in err.value.message
        session.rollback()
        assert session.scalars(select(CommissionLine)).all() == []

    def test_another_programs_partner_customer_or_event_is_not_found(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        scoped = Actor(ActorType.API_KEY, "key_main", frozenset({"read", "write"}), program_id=setup["program"].id)
        base = {"amount": 100, "currency": "EUR", "reason": "why", "now": clock.now()}
        with pytest.raises(NotFound) as err:
            add_adjustment(session, actor=scoped, partner_id=setup["stranger"], **base)
        assert err.value.field == "partner_id"
        with pytest.raises(NotFound):
            add_adjustment(session, actor=setup["ana"], partner_id="ptn_nope", **base)
        with pytest.raises(NotFound) as err:
            add_adjustment(session, actor=setup["ana"], partner_id=setup["acme"], customer_id="cus_nope", **base)
        assert err.value.field == "customer_id"
        with pytest.raises(NotFound) as err:
            add_adjustment(session, actor=setup["ana"], partner_id=setup["acme"], event_id="evt_nope", **base)
        assert err.value.field == "event_id"

    def test_it_may_cite_the_customer_and_event_it_corrects(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        [earned] = factories.event(
            session,
            setup["program"],
            clock.now(),
            external_id="INV-7",
            customer="acme-co",
            amount=10_000,
            partner_id=setup["acme"],
        )
        line = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=500,
            currency="EUR",
            reason="agreed 25 % on INV-7, not 20 %",
            customer_id=earned.customer_id,
            event_id=earned.event_id,
            now=clock.now(),
        )
        assert (line.customer_id, line.event_id) == (earned.customer_id, earned.event_id)

    def test_viewers_and_partners_may_not_adjust(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        partner_user = Actor(
            ActorType.PARTNER,
            "pu_1",
            frozenset({"read", "write"}),
            program_id=setup["program"].id,
            partner_id=setup["acme"],
        )
        for actor in (setup["viewer"], partner_user):
            with pytest.raises(Forbidden):
                add_adjustment(
                    session,
                    actor=actor,
                    partner_id=setup["acme"],
                    amount=100,
                    currency="EUR",
                    reason="why",
                    now=clock.now(),
                )


class TestApproval:
    def test_the_creator_may_not_approve_it_but_someone_else_may(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        line = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=5_000,
            currency="EUR",
            reason="bonus",
            now=clock.now(),
        )
        session.commit()
        with pytest.raises(Forbidden) as err:
            approve_lines(session, actor=setup["ana"], ids=[line.id], now=clock.now())
        assert line.id in err.value.message and "someone else" in err.value.message
        session.rollback()
        assert session.get(CommissionLine, line.id).status == LineStatus.PENDING.value  # type: ignore[union-attr]
        approve_lines(session, actor=setup["owner"], ids=[line.id], now=clock.now())
        session.commit()
        assert (line.status, line.approved_by) == (LineStatus.APPROVED.value, setup["owner"].id)

    def test_a_rejected_adjustment_is_reversed_in_the_ledger(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        line = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=-700,
            currency="EUR",
            reason="duplicate",
            now=clock.now(),
        )
        reject_lines(session, actor=setup["owner"], ids=[line.id], reason="not agreed", now=clock.now())
        session.commit()
        payable = sum(a for k, a in payable_legs(session, line.id) if k == AccountKind.PARTNER_PAYABLE.value)
        assert payable == 0 and verify(session).ok


class TestPayoutRuns:
    def test_a_negative_adjustment_nets_and_a_larger_one_is_carried_forward(
        self, session: Session, clock: FixedClock, setup: dict[str, Any]
    ) -> None:
        prog: Program = setup["program"]
        earned = factories.event(
            session, prog, clock.now(), external_id="INV-1", customer="c1", amount=50_000, partner_id=setup["acme"]
        )  # 20 % = €100.00, hold 0 days
        minus = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=-3_000,
            currency="EUR",
            reason="overpaid last month",
            now=clock.now(),
        )
        approve_lines(session, actor=setup["owner"], ids=[earned[0].id, minus.id], now=clock.now())
        run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now() + timedelta(seconds=1))
        session.commit()
        assert [(p.partner_id, p.amount) for p in run.payouts] == [(setup["acme"], 7_000)]
        session.refresh(minus)
        assert minus.status == LineStatus.IN_BATCH.value

        big = add_adjustment(
            session,
            actor=setup["ana"],
            partner_id=setup["acme"],
            amount=-20_000,
            currency="EUR",
            reason="chargeback lost outside the window",
            now=clock.now(),
        )
        approve_lines(session, actor=setup["owner"], ids=[big.id], now=clock.now())
        later = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now() + timedelta(seconds=2))
        session.commit()
        assert later.payouts == []
        assert later.skipped == [
            {"partner_id": setup["acme"], "reason": "negative_balance_carried", "amount": -20_000, "currency": "EUR"}
        ]
        session.refresh(big)
        assert big.status == LineStatus.APPROVED.value and big.payout_id is None  # still owed back, not lost
        assert verify(session).ok
