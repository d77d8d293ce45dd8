"""Leads: registration rules, every conflict case, the protection window and staff decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.deals.leads import accept_leads, register_lead, reject_leads
from partnerpay.deals.models import Deal, DealActivity, Lead
from partnerpay.deals.rules import company_key, domain_of
from partnerpay.deals.service import link_crm, move_deal
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.partners.models import Partner, PartnerActivity
from partnerpay.programs.models import Program
from tests import factories

STAFF = Actor(ActorType.STAFF, "usr_staff", frozenset({"read", "write"}), label="pm@example.com")


def as_partner(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_" + partner.id[4:], frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=f"{partner.name}@portal")  # fmt: skip


@pytest.fixture
def prog(session: Session, clock: FixedClock) -> Program:
    return factories.program(session, clock.now())


@pytest.fixture
def acme(session: Session, prog: Program, clock: FixedClock) -> Partner:
    return factories.partner(session, prog, clock.now(), "Acme Media")


@pytest.fixture
def beta(session: Session, prog: Program, clock: FixedClock) -> Partner:
    return factories.partner(session, prog, clock.now(), "Beta Blog")


def lead(session: Session, partner: Partner, now: datetime, company: str = "Globex Inc.", **kw: object) -> Lead:
    kw.setdefault("domain", "globex.com")
    return register_lead(session, actor=as_partner(partner), program_id=partner.program_id, company=company,
                         now=now, **kw)  # type: ignore[arg-type]  # fmt: skip


def kinds(item: Lead) -> list[str]:
    return [c["kind"] for c in item.conflicts or []]


class TestNames:
    @pytest.mark.parametrize(
        ("name", "key"),
        [("ACME, Inc.", "acme"), ("Acme GmbH", "acme"), ("acme corp co", "acme"), ("Co", "co"),
         ("Müller & Söhne AG", "müller söhne"), ("The Acme Company", "the acme company")],
    )  # fmt: skip
    def test_company_key_drops_case_punctuation_and_legal_forms(self, name: str, key: str) -> None:
        assert company_key(name) == key

    @pytest.mark.parametrize(
        ("value", "host"),
        [("https://www.Globex.com/pricing", "globex.com"), ("jane@globex.com", "globex.com"),
         ("WWW.GLOBEX.COM.", "globex.com"), ("sub.globex.co.uk", "sub.globex.co.uk"), ("", None)],
    )  # fmt: skip
    def test_domain_takes_the_host_of_a_url_or_email(self, value: str, host: str | None) -> None:
        assert domain_of(value) == host

    @pytest.mark.parametrize("value", ["not a domain", "localhost", "http://", "a@b"])
    def test_a_non_host_is_refused_naming_the_field(self, value: str) -> None:
        with pytest.raises(ValidationError) as err:
            domain_of(value)
        assert err.value.field == "domain"


class TestRegisterLead:
    def test_a_partner_registers_for_itself_with_a_timeline_line_and_an_audit_row(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        item = lead(session, acme, clock.now(), contact_email="jane@globex.com", expected_value=500_000)
        assert (item.partner_id, item.status, item.domain, item.company_key) == (acme.id, "registered", "globex.com",
                                                                                  "globex")  # fmt: skip
        assert item.currency == "EUR" and item.conflicts is None
        assert session.scalar(select(AuditEntry.action).where(AuditEntry.object_id == item.id)) == "lead.register"
        assert session.scalar(select(DealActivity.kind).where(DealActivity.lead_id == item.id)) == "lead.registered"
        on_partner = select(PartnerActivity.ref_id).where(
            PartnerActivity.partner_id == acme.id, PartnerActivity.kind == "lead.registered"
        )
        assert session.scalar(on_partner) == item.id

    def test_a_bad_contact_email_names_the_field(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        with pytest.raises(ValidationError) as err:
            lead(session, acme, clock.now(), contact_email="jane at globex")
        assert err.value.field == "contact_email"

    def test_a_partner_cannot_register_for_another_partner(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        with pytest.raises(NotFound):
            register_lead(session, actor=as_partner(acme), program_id=acme.program_id, partner_id=beta.id,
                          company="Globex", now=clock.now())  # fmt: skip

    def test_staff_must_name_the_partner(self, session: Session, prog: Program, clock: FixedClock) -> None:
        with pytest.raises(ValidationError) as err:
            register_lead(session, actor=STAFF, program_id=prog.id, company="Globex", now=clock.now())
        assert err.value.field == "partner_id"


class TestConflicts:
    def test_another_partners_registered_lead_with_the_same_domain_is_flagged(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        first = lead(session, acme, clock.now())
        second = lead(session, beta, clock.now(), company="Totally Different Ltd", domain="https://globex.com/x")
        assert second.conflicts is not None
        (found,) = second.conflicts
        assert {k: found[k] for k in ("kind", "ref_type", "ref_id", "partner_id")} == {
            "kind": "other_partner_lead", "ref_type": "lead", "ref_id": first.id, "partner_id": acme.id}  # fmt: skip
        assert "Globex" in found["detail"]

    def test_the_same_company_under_another_domain_is_flagged_by_name(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        lead(session, acme, clock.now(), company="Globex, Inc.")
        second = lead(session, beta, clock.now(), company="GLOBEX GmbH", domain="globex.de")
        assert kinds(second) == ["other_partner_lead"]

    def test_the_same_partners_duplicate_is_flagged_as_its_own(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        first = lead(session, acme, clock.now())
        again = lead(session, acme, clock.now())
        assert kinds(again) == ["own_duplicate"] and again.conflicts and again.conflicts[0]["ref_id"] == first.id

    def test_a_won_deal_for_the_domain_is_an_existing_customer(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        (deal,) = accept_leads(session, actor=STAFF, lead_ids=[lead(session, acme, clock.now()).id], now=clock.now())
        move_deal(session, actor=STAFF, deal_id=deal.id, status="won", now=clock.now())
        later = lead(session, beta, clock.now(), company="Other name")
        assert kinds(later) == ["existing_customer"] and later.conflicts and later.conflicts[0]["ref_id"] == deal.id

    def test_a_customer_whose_external_id_is_the_domain_is_an_existing_customer(
        self, session: Session, prog: Program, acme: Partner, clock: FixedClock
    ) -> None:
        factories.event(session, prog, clock.now(), external_id="inv_1", customer="globex.com", amount=1000)
        assert kinds(lead(session, acme, clock.now())) == ["existing_customer"]

    def test_an_open_crm_deal_is_flagged(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        (deal,) = accept_leads(session, actor=STAFF, lead_ids=[lead(session, acme, clock.now()).id], now=clock.now())
        link_crm(session, actor=STAFF, deal_id=deal.id, crm_id="hs-991", now=clock.now())
        assert "crm_deal" in kinds(lead(session, beta, clock.now(), company="Other name"))

    def test_a_rejected_lead_is_no_conflict(
        self, session: Session, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        reject_leads(
            session, actor=STAFF, lead_ids=[lead(session, acme, clock.now()).id], reason="dup", now=clock.now()
        )
        assert lead(session, beta, clock.now()).conflicts is None


class TestProtectionWindow:
    def test_the_domain_is_protected_until_the_last_instant_and_free_exactly_at_expiry(
        self, session: Session, prog: Program, acme: Partner, beta: Partner, clock: FixedClock
    ) -> None:
        (deal,) = accept_leads(session, actor=STAFF, lead_ids=[lead(session, acme, clock.now()).id], now=clock.now())
        accepted = session.get(Lead, deal.lead_id)
        assert accepted is not None and accepted.protected_until == clock.now() + timedelta(days=90)
        just_before = accepted.protected_until - timedelta(microseconds=1)
        assert kinds(lead(session, beta, just_before)) == ["other_partner_lead"]
        # Only Beta's own earlier lead is left: Acme's claim ended at that instant.
        assert kinds(lead(session, beta, accepted.protected_until)) == ["own_duplicate"]


class TestDecisions:
    def test_accept_opens_a_deal_at_the_first_stage_and_records_who_and_when(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        item = lead(session, acme, clock.now(), expected_value=90_000)
        clock.advance(timedelta(hours=2))
        (deal,) = accept_leads(session, actor=STAFF, lead_ids=[item.id], now=clock.now())
        session.refresh(item)
        assert (item.status, item.decided_by, item.decided_at) == ("accepted", STAFF.id, clock.now())
        assert (deal.stage, deal.status, deal.amount, deal.lead_id) == ("registered", "open", 90_000, item.id)
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == item.id)).all()
        assert "lead.accept" in actions

    def test_reject_needs_a_reason_and_keeps_it(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        item = lead(session, acme, clock.now())
        with pytest.raises(ValidationError) as err:
            reject_leads(session, actor=STAFF, lead_ids=[item.id], reason=" ", now=clock.now())
        assert err.value.field == "reason"
        reject_leads(session, actor=STAFF, lead_ids=[item.id], reason="already a customer", now=clock.now())
        session.refresh(item)
        assert (item.status, item.reason) == ("rejected", "already a customer")
        assert session.scalar(select(Deal).where(Deal.lead_id == item.id)) is None

    def test_bulk_accept_is_all_or_nothing(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        one, two = lead(session, acme, clock.now()), lead(session, acme, clock.now(), company="Initech", domain="")
        reject_leads(session, actor=STAFF, lead_ids=[two.id], reason="no", now=clock.now())
        with pytest.raises(InvalidTransition):
            accept_leads(session, actor=STAFF, lead_ids=[one.id, two.id], now=clock.now())
        session.refresh(one)
        assert one.status == "registered"

    def test_a_partner_cannot_decide(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        item = lead(session, acme, clock.now())
        with pytest.raises(Forbidden):
            accept_leads(session, actor=as_partner(acme), lead_ids=[item.id], now=clock.now())

    def test_a_lead_of_another_program_is_not_found(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        item = lead(session, acme, clock.now())
        other = factories.program(session, clock.now(), name="Other")
        scoped = Actor(ActorType.API_KEY, "key_x", frozenset({"read", "write"}), program_id=other.id)
        with pytest.raises(NotFound):
            accept_leads(session, actor=scoped, lead_ids=[item.id], now=clock.now())
        assert SYSTEM.can("write")
