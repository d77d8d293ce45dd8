"""Setting payout methods and tax profiles on a real database: encrypted, masked, audited, held for review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions.decisions import approve_lines
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.partners import payout_details as details
from partnerpay.partners.models import Partner, PartnerActivity, PayoutMethod, TaxProfile
from partnerpay.partners.service import add_partner_user
from partnerpay.payouts.service import create_payout_run
from tests import factories

BOX = SecretBox("s" * 40)
PASSWORD = "correct horse battery"
IBAN = "DE89370400440532013000"
SEPA = {"type": "sepa", "iban": "DE89 3704 0044 0532 0130 00", "account_holder": "Acme Media GmbH"}
ACH = {
    "type": "ach",
    "routing_number": "111000025",
    "account_number": "000123456789",
    "account_type": "checking",
    "account_holder": "Acme Media LLC",
}
W9 = {"form": "w9", "tin": "536-90-4399", "legal_name": "Jane Doe", "address": "1 Main St, Springfield, IL 62701"}


def partner_actor(user_id: str, partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, user_id, frozenset({"read"}), program_id=partner.program_id, partner_id=partner.id)


@pytest.fixture
def acme(session: Session, clock: FixedClock) -> Partner:
    prog = factories.program(session, clock.now())
    partner = factories.partner(session, prog, clock.now(), "Acme Media")
    session.commit()
    return partner


@pytest.fixture
def acme_user(session: Session, clock: FixedClock, acme: Partner) -> Actor:
    user = add_partner_user(
        session, actor=SYSTEM, partner_id=acme.id, email="login@acme.example", password=PASSWORD, now=clock.now()
    )
    session.commit()
    return partner_actor(user.id, acme)


def set_method(session: Session, clock: FixedClock, partner: Partner, data: dict[str, Any], **kw: Any) -> PayoutMethod:
    actor = kw.pop("actor", SYSTEM)
    method = details.set_payout_method(
        session, actor=actor, box=BOX, partner_id=partner.id, data=data, now=clock.now(), **kw
    )
    session.commit()
    return method


def jobs(session: Session, kind: str) -> list[dict[str, Any]]:
    return [j.payload for j in session.scalars(select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id))]


class TestSetPayoutMethod:
    def test_the_bank_numbers_are_stored_only_encrypted(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        method = set_method(session, clock, acme, SEPA)
        stored = session.scalar(select(PayoutMethod.details_encrypted).where(PayoutMethod.id == method.id))
        assert stored is not None and IBAN not in stored
        assert BOX.decrypt(stored) == {"iban": IBAN, "bic": "COBADEFFXXX", "account_holder": "Acme Media GmbH"}
        assert method.masked["iban"] == "DE89 •••• •••• •••• 3000"

    def test_the_old_method_is_kept_inactive_with_the_time_it_was_replaced(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        first = set_method(session, clock, acme, SEPA)
        clock.advance(timedelta(days=1))
        second = set_method(session, clock, acme, ACH)
        session.refresh(first)
        assert (first.active, first.replaced_at) == (False, clock.now())
        assert details.active_payout_method(session, acme.id) == second
        assert [m.id for m in details.payout_method_history(session, acme.id)] == [second.id, first.id]

    def test_the_next_payout_is_held_for_the_programs_review_days(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        set_method(session, clock, acme, SEPA)
        session.refresh(acme)
        assert acme.payout_review_until == clock.now() + timedelta(days=7)

    def test_every_address_of_the_partner_is_emailed_and_notified_without_the_numbers(
        self, session: Session, clock: FixedClock, acme: Partner, acme_user: Actor
    ) -> None:
        set_method(session, clock, acme, SEPA)
        emails = jobs(session, "email.send")
        assert sorted(e["to"] for e in emails) == ["acme.media@example.com", "login@acme.example"]
        assert (
            "held for review until 22 Jan 2026" in emails[0]["text"] and "DE89 •••• •••• •••• 3000" in emails[0]["text"]
        )
        (note,) = jobs(session, "notify.partner")
        assert note["partner_id"] == acme.id and note["kind"] == "payout_details_changed"
        assert note["text"].startswith("Your payout details changed") and "22 Jan 2026" in note["text"]
        assert IBAN not in str(emails) + str(note)

    def test_the_audit_row_holds_masked_values_before_and_after(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        set_method(session, clock, acme, ACH)
        set_method(session, clock, acme, SEPA)
        row = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "payout_method.set").order_by(AuditEntry.seq.desc())
        ).first()
        assert row is not None and row.before is not None and row.after is not None
        assert row.before["account_number"] == "••••6789" and row.after["iban"] == "DE89 •••• •••• •••• 3000"
        assert "000123456789" not in str(row.before) and IBAN not in str(row.after)

    def test_the_change_is_on_the_partners_timeline(self, session: Session, clock: FixedClock, acme: Partner) -> None:
        set_method(session, clock, acme, SEPA)
        (item,) = session.scalars(select(PartnerActivity).where(PartnerActivity.partner_id == acme.id)).all()
        assert item.kind == "payout_method.changed" and "DE89 •••• •••• •••• 3000" in item.text

    def test_a_partner_user_with_the_right_password_may_change_it(
        self, session: Session, clock: FixedClock, acme: Partner, acme_user: Actor
    ) -> None:
        method = set_method(session, clock, acme, SEPA, actor=acme_user, password=PASSWORD)
        assert method.created_by == acme_user.id

    @pytest.mark.parametrize("password", [None, "", "wrong password!"])
    def test_a_partner_user_without_the_right_password_changes_nothing(
        self, session: Session, clock: FixedClock, acme: Partner, acme_user: Actor, password: str | None
    ) -> None:
        with pytest.raises(ValidationError) as raised:
            set_method(session, clock, acme, SEPA, actor=acme_user, password=password)
        assert raised.value.field == "password"
        session.rollback()
        assert session.scalars(select(PayoutMethod)).all() == []
        assert jobs(session, "email.send") == []

    def test_a_partner_user_cannot_touch_another_partner(
        self, session: Session, clock: FixedClock, acme: Partner, acme_user: Actor
    ) -> None:
        other = factories.partner(session, factories.program(session, clock.now()), clock.now(), "Beta Blog")
        session.commit()
        with pytest.raises(NotFound):
            set_method(session, clock, other, SEPA, actor=acme_user, password=PASSWORD)

    def test_a_read_only_key_may_not_change_payout_details(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        reader = Actor(ActorType.API_KEY, "key_r", frozenset({"read"}))
        with pytest.raises(Forbidden):
            set_method(session, clock, acme, SEPA, actor=reader)

    def test_an_invalid_iban_writes_nothing(self, session: Session, clock: FixedClock, acme: Partner) -> None:
        with pytest.raises(ValidationError, match=r"DE89…3001"):
            set_method(session, clock, acme, {**SEPA, "iban": "DE89370400440532013001"})
        session.rollback()
        session.refresh(acme)
        assert acme.payout_review_until is None and details.active_payout_method(session, acme.id) is None


class TestRevealPayoutMethod:
    def test_the_exporters_get_the_clear_details_of_the_active_method(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        set_method(session, clock, acme, ACH)
        assert details.reveal_payout_method(session, box=BOX, partner_id=acme.id) == (
            "ach",
            {k: v for k, v in ACH.items() if k != "type"},
        )

    def test_no_method_reveals_nothing(self, session: Session, acme: Partner) -> None:
        assert details.reveal_payout_method(session, box=BOX, partner_id=acme.id) is None


class TestSetTaxProfile:
    def test_a_w9_is_stored_encrypted_and_read_back_masked(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        profile = details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=W9, now=clock.now())
        session.commit()
        assert "536904399" not in profile.details_encrypted
        assert BOX.decrypt(profile.details_encrypted)["tin"] == "536904399"
        assert details.masked_tax_profile(profile)["tin"] == "••••4399"

    def test_a_new_profile_replaces_the_old_one(self, session: Session, clock: FixedClock, acme: Partner) -> None:
        details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=W9, now=clock.now())
        w8 = {"form": "w8ben", "country": "DE", "legal_name": "Acme Media GmbH", "vat_id": "DE136695976"}
        second = details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=w8, now=clock.now())
        session.commit()
        assert session.scalars(select(TaxProfile.id).where(TaxProfile.active.is_(True))).all() == [second.id]
        assert details.active_tax_profile(session, acme.id) == second

    def test_a_partner_user_needs_the_password_for_the_tax_form_too(
        self, session: Session, clock: FixedClock, acme: Partner, acme_user: Actor
    ) -> None:
        with pytest.raises(ValidationError) as raised:
            details.set_tax_profile(
                session, actor=acme_user, box=BOX, partner_id=acme.id, data=W9, now=clock.now(), password="nope"
            )
        assert raised.value.field == "password"


class TestTaxState:
    def test_a_partner_without_a_profile_has_the_tax_form_missing(self, session: Session, acme: Partner) -> None:
        assert details.tax_state(session, acme.id) == "missing"

    def test_a_valid_active_profile_is_ok(self, session: Session, clock: FixedClock, acme: Partner) -> None:
        details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=W9, now=clock.now())
        session.commit()
        assert details.tax_state(session, acme.id) == "ok"

    def test_a_profile_marked_invalid_counts_as_missing(
        self, session: Session, clock: FixedClock, acme: Partner
    ) -> None:
        profile = details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=W9, now=clock.now())
        profile.valid = False
        session.commit()
        assert details.tax_state(session, acme.id) == "missing"

    def test_many_partners_are_answered_in_one_call(self, session: Session, clock: FixedClock, acme: Partner) -> None:
        other = factories.partner(session, factories.program(session, clock.now()), clock.now(), "Beta")
        details.set_tax_profile(session, actor=SYSTEM, box=BOX, partner_id=acme.id, data=W9, now=clock.now())
        session.commit()
        assert details.tax_states(session, [acme.id, other.id]) == {acme.id: "ok", other.id: "missing"}


class TestPayoutRunHold:
    def test_a_partner_whose_details_changed_is_skipped_until_the_review_ends(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        changed = factories.partner(session, prog, clock.now(), "Changed")
        steady = factories.partner(session, prog, clock.now(), "Steady")
        ids = []
        for n, p in enumerate([changed, steady]):
            ids += [
                line.id
                for line in factories.event(
                    session, prog, clock.now(), external_id=f"inv{n}", customer=f"c{n}", amount=10_000, partner_id=p.id
                )
            ]
        approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
        set_method(session, clock, changed, SEPA)

        run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        assert [p.partner_id for p in run.payouts] == [steady.id]
        (skip,) = run.skipped
        assert skip["partner_id"] == changed.id and skip["reason"] == "payout_details_changed"
        assert skip["until"] == (clock.now() + timedelta(days=7)).isoformat()

        later = create_payout_run(
            session, actor=SYSTEM, program_id=prog.id, now=clock.now(), as_of=clock.now() + timedelta(days=8)
        )
        assert [p.partner_id for p in later.payouts] == [changed.id]
