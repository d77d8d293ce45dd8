"""The set-based batch ingest writes exactly what recording the same rows one by one writes.

Two programs are set up alike (partners, earlier customers: attributed, unattributed, with newer
events); the same random batch goes into one through ingest_batch and into the other through
record_event row by row; every event, decision, line, customer and balance must match. Replays of
the batch write nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.inbox.batch import ingest_batch
from partnerpay.inbox.models import InboxItem
from partnerpay.kit.errors import Conflict, PartnerpayError, ValidationError
from partnerpay.ledger.models import AccountKind
from partnerpay.ledger.service import balance
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import update_program_settings
from partnerpay.tracking.attribution_models import Attribution
from tests import factories
from tests.conftest import T0

CUSTOMERS = 6  # c0..c5; c0 attributed to P0 before the batch, c1 unattributed, c2 attributed with a newer event


@dataclass(frozen=True)
class Spec:
    customer: int
    kind: str
    day: int
    amount: int
    named: int | None  # partner index named by referral code
    email: bool


SPECS = st.builds(
    Spec,
    customer=st.integers(0, CUSTOMERS - 1),
    kind=st.sampled_from(["invoice_paid", "invoice_paid", "signup", "subscription_canceled", "custom_x", "refund"]),
    day=st.integers(1, 60),
    amount=st.integers(1, 50_000),
    named=st.one_of(st.none(), st.integers(0, 2)),
    email=st.booleans(),
)


@dataclass
class Side:
    program: Program
    partners: list[Partner]


def _setup(session: Session, name: str) -> Side:
    program = factories.program(session, T0, name=name, default_percent_bp=1_750, hold_days=14)
    update_program_settings(
        session, actor=SYSTEM, program_id=program.id, changes={"custom_event_types": ["custom_x"]}, now=T0
    )
    partners = [factories.partner(session, program, T0, f"{name} P{i}") for i in range(3)]
    factories.event(session, program, T0, external_id="old-0", customer="c0", amount=10_000, partner_id=partners[0].id)
    factories.event(session, program, T0, external_id="old-1", customer="c1", amount=5_000)
    factories.event(
        session, program, T0, external_id="old-2", customer="c2", amount=2_000, partner_id=partners[1].id,
        occurred_at=T0 + timedelta(days=30),
    )  # fmt: skip
    return Side(program, partners)


def _rows(side: Side, specs: list[Spec]) -> list[EventIn]:
    rows = []
    for n, spec in enumerate(specs):
        paying = spec.kind in ("invoice_paid", "refund")
        body: dict[str, Any] = {
            "program_id": side.program.id,
            "type": spec.kind,
            "external_id": f"x{n}",
            "occurred_at": (T0 + timedelta(days=spec.day, minutes=n)).isoformat(),
            "customer_external_id": f"c{spec.customer}",
            "amount": spec.amount if paying else None,
            "currency": "EUR" if paying else None,
        }
        if spec.named is not None and spec.kind != "refund":
            body["referral_code"] = side.partners[spec.named].referral_code
        if spec.email:
            body["customer_email"] = f"buyer{spec.customer}@corp{spec.customer}.example"
        rows.append(EventIn.model_validate(body))
    return rows


def _picture(session: Session, side: Side) -> dict[str, Any]:
    """Everything the batch may change, with ids and codes replaced by stable names."""
    names = {p.id: f"P{i}" for i, p in enumerate(side.partners)}
    codes = {p.referral_code: f"P{i}" for i, p in enumerate(side.partners)}
    codes |= {p.name: f"P{i}" for i, p in enumerate(side.partners)}

    def plain(text: str | None) -> str | None:
        for code, name in codes.items():
            text = text.replace(code, name) if text else text
        return re.sub(r"\bcom_[0-9a-z]+", "com_…", text) if text else text

    pid = side.program.id
    events = session.scalars(select(Event).where(Event.program_id == pid)).all()
    ext = {e.id: e.external_id for e in events}
    decisions = {a.id: a for a in session.scalars(select(Attribution).where(Attribution.program_id == pid))}
    lines = session.scalars(select(CommissionLine).where(CommissionLine.program_id == pid)).all()
    customers = session.scalars(select(Customer).where(Customer.program_id == pid)).all()
    return {
        "events": sorted(
            (
                e.external_id,
                e.type,
                e.amount,
                names.get(e.partner_id or ""),
                e.unattributed_reason,
                (
                    decisions[e.attribution_id].rule,
                    plain(decisions[e.attribution_id].reason),
                    ext.get(decisions[e.attribution_id].event_id),
                )
                if e.attribution_id
                else None,
            )
            for e in events
        ),
        "lines": sorted(
            (
                ext[ln.event_id or ""],
                ln.kind,
                ln.amount,
                names[ln.partner_id],
                ln.status,
                ln.hold_until,
                plain(ln.explanation),
            )
            for ln in lines
        ),
        "customers": sorted(
            (
                c.external_id,
                names.get(c.partner_id or ""),
                c.status,
                c.lifetime_revenue,
                c.first_paid_at,
                c.last_event_at,
                c.status_changed_at,
                c.email,
                c.domain,
                plain(c.attribution),
            )
            for c in customers
        ),
        "balances": [balance(session, pid, p.id, AccountKind.PARTNER_PAYABLE, "EUR") for p in side.partners],
        "inbox": session.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.program_id == pid)),
    }


def _one_by_one(session: Session, side: Side, rows: list[EventIn]) -> None:
    for data in rows:
        record_event(session, actor=SYSTEM, data=data, now=T0)
        session.flush()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(SPECS, min_size=1, max_size=10))
def test_a_batch_writes_what_one_by_one_writes(session_factory: sessionmaker[Session], specs: list[Spec]) -> None:
    with session_factory() as session:
        batch, single = _setup(session, "A"), _setup(session, "B")
        session.flush()
        failed: list[type[PartnerpayError]] = []
        for side, run in (
            (batch, lambda s, side, rows: ingest_batch(s, actor=SYSTEM, program_id=side.program.id, rows=rows, now=T0)),
            (single, _one_by_one),
        ):
            nested = session.begin_nested()
            try:
                run(session, side, _rows(side, specs))
            except (ValidationError, Conflict) as exc:
                nested.rollback()
                failed.append(type(exc))
            else:
                nested.commit()
        assert len(failed) in (0, 2), f"only one path refused the batch: {failed}"
        got, want = _picture(session, batch), _picture(session, single)
        want["inbox"] = got["inbox"]  # record_event alone writes no inbox item; compared below
        assert got == want
        if not failed:
            assert got["inbox"] == len({f"x{n}" for n in range(len(specs))})
            # Replaying the batch writes nothing at all.
            before = session.scalar(select(func.count()).select_from(AuditEntry))
            again = ingest_batch(session, actor=SYSTEM, program_id=batch.program.id, rows=_rows(batch, specs), now=T0)
            assert (again.created, again.duplicates) == (0, len(specs))
            assert _picture(session, batch) == got
            assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
        assert verify(session).ok
        session.rollback()


class TestBatch:
    def test_new_named_customers_go_set_based_and_history_one_by_one(self, session: Session) -> None:
        side = _setup(session, "A")
        specs = [
            Spec(3, "invoice_paid", 2, 1_000, 0, False),  # new customer, named: set-based
            Spec(3, "signup", 1, 0, None, False),  # its earlier signup: adopted, set-based
            Spec(0, "invoice_paid", 3, 2_000, None, True),  # renewal of an attributed customer
            Spec(1, "invoice_paid", 3, 2_000, 2, False),  # unattributed customer now named: one by one
            Spec(2, "invoice_paid", 3, 2_000, None, False),  # older than its newest event: one by one
            Spec(0, "refund", 4, 100, None, False),  # a refund (of c0, so c0's renewal goes one by one too)
        ]
        report = ingest_batch(session, actor=SYSTEM, program_id=side.program.id, rows=_rows(side, specs), now=T0)
        assert (report.set_based, report.one_by_one, report.created) == (2, 4, 6)
        # x0, x2, x3 and x4 (older, but its customer's partner holds) earn; naming c1's partner adopts its
        # earlier old-1, which earns too; the refund claws back.
        assert report.lines == 6

    def test_repeats_in_the_batch_and_earlier_events_are_counted_not_written(self, session: Session) -> None:
        side = _setup(session, "A")
        code = side.partners[0].referral_code
        base = {"program_id": side.program.id, "type": "invoice_paid", "currency": "EUR", "amount": 1_000,
                "occurred_at": (T0 + timedelta(days=1)).isoformat(), "referral_code": code}  # fmt: skip
        rows = [
            EventIn.model_validate({**base, "external_id": "n1", "customer_external_id": "new"}),
            EventIn.model_validate({**base, "external_id": "n1", "customer_external_id": "new"}),
            EventIn.model_validate({**base, "external_id": "old-0", "customer_external_id": "c0", "amount": 10_000,
                                    "occurred_at": T0.isoformat(), "partner_id": side.partners[0].id,
                                    "referral_code": None}),
        ]  # fmt: skip
        report = ingest_batch(session, actor=SYSTEM, program_id=side.program.id, rows=rows, now=T0)
        assert (report.created, report.duplicates, report.lines) == (1, 2, 1)
        assert report.event_ids[0] == report.event_ids[1]
        old = session.scalar(select(Event.id).where(Event.external_id == "old-0", Event.program_id == side.program.id))
        assert report.event_ids[2] == old
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "events.ingest")).one()
        assert entry.after is not None and entry.after["created"] == 1

    def test_the_same_id_with_other_content_names_both_rows_and_writes_nothing(self, session: Session) -> None:
        side = _setup(session, "A")
        base = {"program_id": side.program.id, "type": "signup", "customer_external_id": "z",
                "occurred_at": T0.isoformat()}  # fmt: skip
        rows = [
            EventIn.model_validate({**base, "external_id": "s1"}),
            EventIn.model_validate({**base, "external_id": "s2"}),
            EventIn.model_validate({**base, "external_id": "s1", "product": "pro"}),
        ]
        count = session.scalar(select(func.count()).select_from(Event))
        with pytest.raises(Conflict) as refused:
            ingest_batch(session, actor=SYSTEM, program_id=side.program.id, rows=rows, now=T0)
        assert refused.value.extra["row"] == 3 and "row 1" in refused.value.message
        assert session.scalar(select(func.count()).select_from(Event)) == count

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"currency": "USD"}, "currency"),
            ({"referral_code": "NOPE"}, "referral_code"),
            ({"type": "not_defined"}, "type"),
            ({"program_id": "prg_other"}, "program_id"),
        ],
    )
    def test_a_bad_row_is_named(self, session: Session, change: dict[str, Any], field: str) -> None:
        side = _setup(session, "A")
        good = {"program_id": side.program.id, "type": "invoice_paid", "customer_external_id": "z", "amount": 100,
                "currency": "EUR", "occurred_at": T0.isoformat()}  # fmt: skip
        rows = [EventIn.model_validate({**good, "external_id": f"g{i}"}) for i in range(3)]
        rows.append(EventIn.model_validate({**good, "external_id": "bad", **change}))
        with pytest.raises(PartnerpayError) as refused:
            ingest_batch(session, actor=SYSTEM, program_id=side.program.id, rows=rows, now=T0)
        assert (refused.value.field, refused.value.extra.get("row")) == (field, 4)
        assert refused.value.message.startswith("row 4: ")
