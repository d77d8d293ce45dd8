"""Referral links service on a real database: codes, destinations, params, visibility, audit, deactivation."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import update_program_settings
from partnerpay.tracking import links
from tests import factories


def _program(session: Session, now: datetime, **settings: object) -> Program:
    prog = factories.program(session, now)
    changes = {"site_url": "https://shop.example.com", "allowed_domains": ["docs.example.org"], **settings}
    return update_program_settings(session, actor=SYSTEM, program_id=prog.id, changes=changes, now=now)


def _portal(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_x", frozenset({"read"}), program_id=partner.program_id, partner_id=partner.id)


@pytest.fixture
def setup(session: Session, clock: FixedClock) -> tuple[Program, Partner, Partner]:
    prog = _program(session, clock.now())
    acme = factories.partner(session, prog, clock.now(), "Acme Media")
    beta = factories.partner(session, prog, clock.now(), "Beta Blog")
    session.commit()
    return prog, acme, beta


class TestCreateLink:
    def test_code_is_referral_code_dot_campaign_slug(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        link = links.create_link(
            session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), campaign="Black Friday 2026!"
        )
        assert link.code == f"{acme.referral_code}.black-friday-2026"
        assert link.destination_url is None and link.active

    def test_a_second_link_with_the_same_campaign_gets_a_suffix(
        self, session: Session, clock: FixedClock, setup: tuple
    ) -> None:
        _, acme, _ = setup
        codes = [
            links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), campaign="Spring").code
            for _ in range(3)
        ]
        base = f"{acme.referral_code}.spring"
        assert codes == [base, f"{base}-2", f"{base}-3"]

    def test_no_campaign_makes_a_link_slug(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        assert links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now()).code.endswith(".link")

    @pytest.mark.parametrize(
        "url",
        [
            "https://shop.example.com/pricing?plan=pro",
            "https://www.shop.example.com/",
            "http://blog.docs.example.org/post",
        ],
    )
    def test_destinations_on_the_site_or_allowed_domains_are_kept(
        self, session: Session, clock: FixedClock, setup: tuple, url: str
    ) -> None:
        _, acme, _ = setup
        link = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), destination_url=url)
        assert link.destination_url == url

    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.com/",
            "https://shop.example.com.evil.com/",
            "https://evilshop.example.com.attacker.net/",
            "javascript:alert(1)",
            "ftp://shop.example.com/file",
            "//shop.example.com/x",
            "https://shop.example.com/a b",
            "https://shop.example.com/\r\nSet-Cookie:x=1",
            "https://user:pw@shop.example.com/",
            "https://shop.example.com\\@evil.com/",
        ],
    )
    def test_other_destinations_are_refused_naming_the_field(
        self, session: Session, clock: FixedClock, setup: tuple, url: str
    ) -> None:
        _, acme, _ = setup
        with pytest.raises(ValidationError) as err:
            links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), destination_url=url)
        assert err.value.field == "destination_url"

    def test_a_program_without_a_site_needs_a_destination(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        with pytest.raises(ValidationError, match="no site_url") as err:
            links.create_link(session, actor=SYSTEM, partner_id=partner.id, now=clock.now())
        assert err.value.field == "destination_url"

    def test_non_ascii_paths_are_percent_encoded_once(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        link = links.create_link(
            session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), destination_url="https://shop.example.com/café"
        )
        assert link.destination_url == "https://shop.example.com/caf%C3%A9"

    def test_params_are_the_utm_fields_and_sub_id(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        link = links.create_link(
            session,
            actor=SYSTEM,
            partner_id=acme.id,
            now=clock.now(),
            params={"utm_source": " newsletter ", "utm_medium": "email", "sub_id": "42", "utm_term": ""},
        )
        assert link.params == {"utm_source": "newsletter", "utm_medium": "email", "sub_id": "42"}

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"gclid": "x"}, "params.gclid"),
            ({"utm_source": "x" * 101}, "params.utm_source"),
            ({"utm_source": 5}, "params.utm_source"),
            ({"sub_id": "a\nb"}, "params.sub_id"),
            (["utm_source"], "params"),
        ],
    )
    def test_bad_params_are_refused_naming_the_field(
        self, session: Session, clock: FixedClock, setup: tuple, params: object, field: str
    ) -> None:
        _, acme, _ = setup
        with pytest.raises(ValidationError) as err:
            links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), params=params)
        assert err.value.field == field

    def test_a_partner_creates_only_their_own_links(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, beta = setup
        mine = links.create_link(session, actor=_portal(acme), partner_id=acme.id, now=clock.now(), campaign="x")
        assert mine.created_by == "pu_x"
        with pytest.raises(NotFound):
            links.create_link(session, actor=_portal(acme), partner_id=beta.id, now=clock.now())

    def test_a_key_of_another_program_sees_no_partner(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        other = factories.program(session, clock.now(), name="Other")
        key = Actor(ActorType.API_KEY, "key_x", frozenset({"read", "write"}), program_id=other.id)
        with pytest.raises(NotFound):
            links.create_link(session, actor=key, partner_id=acme.id, now=clock.now())

    def test_a_suspended_partner_gets_no_new_link(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        acme.status = "suspended"
        with pytest.raises(Conflict, match="suspended"):
            links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now())

    def test_creation_writes_an_audit_row(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, _ = setup
        link = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), campaign="Audit me")
        row = session.scalars(select(AuditEntry).where(AuditEntry.object_id == link.id)).one()
        assert row.action == "link.create" and row.after["code"] == link.code


class TestDeactivateAndList:
    def test_deactivation_is_audited_once_and_repeating_it_changes_nothing(
        self, session: Session, clock: FixedClock, setup: tuple
    ) -> None:
        _, acme, _ = setup
        link = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now())
        links.deactivate_link(session, actor=SYSTEM, link_id=link.id, now=clock.now())
        links.deactivate_link(session, actor=SYSTEM, link_id=link.id, now=clock.now())
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == link.id)).all()
        assert actions == ["link.create", "link.deactivate"] and not link.active

    def test_another_partner_cannot_deactivate_a_link(self, session: Session, clock: FixedClock, setup: tuple) -> None:
        _, acme, beta = setup
        link = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now())
        with pytest.raises(NotFound):
            links.deactivate_link(session, actor=_portal(beta), link_id=link.id, now=clock.now())
        assert link.active

    def test_list_starts_with_the_default_link_then_newest_first(
        self, session: Session, clock: FixedClock, setup: tuple
    ) -> None:
        _, acme, beta = setup
        first = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), campaign="one")
        second = links.create_link(session, actor=SYSTEM, partner_id=acme.id, now=clock.now(), campaign="two")
        links.create_link(session, actor=SYSTEM, partner_id=beta.id, now=clock.now(), campaign="theirs")
        views = links.list_links(session, SYSTEM, acme.id)
        assert [v.code for v in views] == [acme.referral_code, second.code, first.code]
        assert views[0].is_default and views[0].id is None
