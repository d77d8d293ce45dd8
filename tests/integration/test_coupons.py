"""Coupons service: a partner user sees only its own, and integrations find coupons by provider id or code."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound
from partnerpay.tracking.coupons import coupon_for, create_coupon, deactivate_coupon, get_coupon, list_coupons
from tests import factories


class TestPartnerScope:
    def test_a_partner_user_sees_its_own_coupons_and_another_partners_is_404(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        acme = factories.partner(session, prog, clock.now(), "Acme")
        beta = factories.partner(session, prog, clock.now(), "Beta")
        mine = create_coupon(session, actor=SYSTEM, program_id=prog.id, partner_id=acme.id, code="A1", now=clock.now())
        theirs = create_coupon(
            session, actor=SYSTEM, program_id=prog.id, partner_id=beta.id, code="B1", now=clock.now()
        )
        me = Actor(ActorType.PARTNER, "pu_1", frozenset({"read", "write"}), prog.id, acme.id)
        assert [c.id for c in list_coupons(session, me).data] == [mine.id]
        assert get_coupon(session, me, mine.id).code == "A1"
        with pytest.raises(NotFound):
            get_coupon(session, me, theirs.id)
        with pytest.raises(NotFound):
            deactivate_coupon(session, actor=me, coupon_id=theirs.id, now=clock.now())
        with pytest.raises(Forbidden):
            deactivate_coupon(session, actor=me, coupon_id=mine.id, now=clock.now())
        with pytest.raises(Forbidden):
            create_coupon(session, actor=me, program_id=prog.id, partner_id=acme.id, code="A2", now=clock.now())


class TestLookup:
    def test_by_provider_id_then_by_code_case_insensitively(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        acme = factories.partner(session, prog, clock.now(), "Acme")
        promo = create_coupon(session, actor=SYSTEM, program_id=prog.id, partner_id=acme.id, code="SPRING",
                              source="stripe", provider_id="promo_1", now=clock.now())  # fmt: skip
        assert coupon_for(session, prog.id, source="stripe", provider_id="promo_1") is promo
        assert coupon_for(session, prog.id, source="shopify", provider_id="promo_1") is None
        assert coupon_for(session, prog.id, source="stripe", provider_id="promo_9", code=" spring ") is promo
        assert coupon_for(session, prog.id, code="autumn") is None
        other = factories.program(session, clock.now(), name="Other")
        assert coupon_for(session, other.id, code="SPRING") is None
