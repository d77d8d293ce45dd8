"""Maker-checker as a property: whatever sequence of approvals a set of people (and keys, and the system) try, a
line or a batch above its threshold is approved only by two different people, the second a finance or owner
user who did not create it, and exactly when a small model of the rules says so."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.approvals.batches import approve_batch
from partnerpay.approvals.models import LineFirstApproval
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions import decisions
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import PartnerpayError
from partnerpay.payouts.models import Payout, PayoutBatch
from partnerpay.payouts.service import create_payout_run
from tests import factories
from tests.integration.approval_helpers import line, policy, staff

PEOPLE = ("fin1", "fin2", "boss", "man", "key", "system")
SECOND_OK = {"fin1", "fin2", "boss"}  # finance or owner staff
PAYOUTS_SCOPE = {"fin1", "fin2", "boss", "key", "system"}
MAKER = "fin1"  # made the payout run


def actors(session: Session, now: datetime) -> dict[str, Actor]:
    return {
        "fin1": staff(session, "finance", "fin1", now),
        "fin2": staff(session, "finance", "fin2", now),
        "boss": staff(session, "owner", "boss", now),
        "man": staff(session, "manager", "man", now),
        "key": Actor(ActorType.API_KEY, "key_1", frozenset({"read", "approve", "payouts"})),
        "system": SYSTEM,
    }


def line_model(steps: list[str]) -> tuple[str, str | None, str | None]:
    """(status, first approver, final approver) the rules promise for a line above the threshold."""
    first: str | None = None
    for who in steps:
        if first is None:
            first = who
        elif who != first and who in SECOND_OK:
            return "approved", first, who
    return "pending", first, None


def batch_model(steps: list[str]) -> tuple[str, str | None, str | None]:
    first: str | None = None
    for who in steps:
        if who not in PAYOUTS_SCOPE:
            continue
        if first is None:
            first = who
        elif who not in (first, MAKER) and who in SECOND_OK:
            return "approved", first, who
    return "draft", first, None


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.sampled_from(PEOPLE), max_size=6))
def test_no_sequence_of_approvals_breaks_maker_checker(session: Session, clock: FixedClock, steps: list[str]) -> None:
    now = clock.now()
    session.rollback()  # each example starts from the empty database of the test
    people = actors(session, now)
    ids = {actor.id: name for name, actor in people.items()}
    prog = factories.program(session, now)
    paid = line(session, prog, now, 30_000, "Batch")
    decisions.approve_lines(session, actor=SYSTEM, ids=[paid.id], now=now)
    run = create_payout_run(session, actor=people[MAKER], program_id=prog.id, now=now)
    assert run.batch is not None
    batch_id = run.batch.id
    policy(
        session,
        prog,
        now,
        approver_roles=["manager", "finance", "owner"],
        second_approval_above=1_000,
        batch_second_approval_above=10_000,
    )
    big = line(session, prog, now, 5_000, "Big")

    for who in steps:
        actor = people[who]
        try:
            with session.begin_nested():  # a refused approval writes nothing
                decisions.approve_lines(session, actor=actor, ids=[big.id], now=now)
        except PartnerpayError:
            pass
        try:
            with session.begin_nested():
                approve_batch(session, actor=actor, batch_id=batch_id, now=now)
        except PartnerpayError:
            pass

    session.refresh(big)
    first = session.get(LineFirstApproval, big.id)
    expected = line_model(steps)
    assert (big.status, ids.get(first.approved_by) if first else None) == expected[:2]
    if big.status == "approved":
        assert first is not None and first.approved_by != big.approved_by
        assert ids[big.approved_by or ""] in SECOND_OK and ids[big.approved_by or ""] == expected[2]

    batch = session.get(PayoutBatch, batch_id)
    assert batch is not None
    session.refresh(batch)
    expected_batch = batch_model(steps)
    assert (batch.status, ids.get(batch.approved_by or "")) == expected_batch[:2]
    payout_statuses = set(session.scalars(select(Payout.status).where(Payout.batch_id == batch_id)))
    assert payout_statuses == {"approved" if batch.status == "approved" else "draft"}
    if batch.status == "approved":
        second = ids[batch.second_approved_by or ""]
        assert second == expected_batch[2] and second in SECOND_OK
        assert batch.second_approved_by != batch.approved_by and second != MAKER
    session.rollback()
