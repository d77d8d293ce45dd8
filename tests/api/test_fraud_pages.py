"""The console's fraud queue and the flags section of the partner page."""

from __future__ import annotations

from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.tracking.attribution_models import FraudFlag
from tests.api.test_pages import CSRF, World, staff, world  # noqa: F401  (the fixture)


def self_referred(w: World) -> str:
    """A payment by a customer at the partner's own address (acme@example.com): flagged and held."""
    with w.factory() as s:
        recorded = record_event(
            s,
            actor=SYSTEM,
            now=w.clock.now(),
            data=EventIn(program_id=w.program_id, type=EventType.INVOICE_PAID, external_id="inv_self",
                         occurred_at=w.clock.now(), customer_external_id="cus_self", partner_id=w.acme_id,
                         customer_email="acme@example.com", amount=10_000, currency="EUR"),
        )  # fmt: skip
        s.commit()
        assert recorded.commissions == []
        return s.scalars(select(FraudFlag.id).where(FraudFlag.event_id == recorded.event.id)).one()


class TestFraudQueue:
    def test_open_flag_is_listed_and_release_needs_a_reason_then_earns(self, world: World) -> None:  # noqa: F811
        flag_id = self_referred(world)
        client = staff(world, "manager")
        page = client.get("/fraud")
        assert page.status_code == 200 and flag_id in page.text and "Acme Media" in page.text
        assert "inv_self" in page.text
        token = CSRF.search(page.text)
        assert token
        blank = client.post(
            f"/fraud/{flag_id}/decide", data={"decision": "release", "reason": " ", "csrf_token": token.group(1)}
        )
        assert blank.status_code == 422 and "reason is required" in blank.text
        done = client.post(
            f"/fraud/{flag_id}/decide",
            data={"decision": "release", "reason": "agency client", "csrf_token": token.group(1)},
        )
        assert done.status_code == 200 and "1 commission line(s) created" in done.text
        with world.factory() as s:
            lines = s.scalars(select(CommissionLine).where(CommissionLine.customer_id.is_not(None))).all()
            assert sum(1 for line in lines if "inv_self" in line.explanation) == 1

    def test_a_decision_without_the_csrf_token_is_refused(self, world: World) -> None:  # noqa: F811
        flag_id = self_referred(world)
        client = staff(world, "manager")
        response = client.post(f"/fraud/{flag_id}/decide", data={"decision": "confirm", "reason": "x"})
        assert response.status_code in (400, 403)
        with world.factory() as s:
            assert s.get(FraudFlag, flag_id).status == "open"  # type: ignore[union-attr]

    def test_partner_page_shows_its_flags_and_returns_there_after_a_decision(self, world: World) -> None:  # noqa: F811
        flag_id = self_referred(world)
        client = staff(world, "manager")
        page = client.get(f"/partners/{world.acme_id}")
        assert page.status_code == 200 and 'id="flags"' in page.text and flag_id in page.text
        token = CSRF.search(page.text)
        assert token
        back = f"/partners/{world.acme_id}#flags"
        done = client.post(
            f"/fraud/{flag_id}/decide",
            data={"decision": "confirm", "reason": "own shop", "back": back, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == back
        other = client.get(f"/partners/{world.beta_id}")
        assert flag_id not in other.text
