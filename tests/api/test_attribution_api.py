"""Coupons and fraud flags over HTTP, and the event fields attribution reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.tracking.attribution_models import FraudFlag
from tests.api.conftest import Api
from tests.api.test_bad_input import assert_error, row_counts
from tests.api.test_skeleton import invoice


def coupon(api: Api, program_id: str, partner_id: str, code: str, key: str | None = None, **kw: Any) -> Any:
    return api.post("/coupons", {"program_id": program_id, "partner_id": partner_id, "code": code, **kw}, key=key)


class TestCoupons:
    def test_create_list_and_deactivate_with_audit(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        acme = api.partner(program["id"])
        r = coupon(api, program["id"], acme["id"], "Spring10")
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["code"], made["source"], made["active"]) == ("Spring10", "manual", True)
        listed = api.get("/coupons", program_id=program["id"]).json()["data"]
        assert [c["id"] for c in listed] == [made["id"]]
        off = api.post(f"/coupons/{made['id']}/deactivate")
        assert off.status_code == 200 and off.json()["active"] is False
        with session_factory() as s:
            actions = s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == made["id"])).all()
        assert actions == ["coupon.create", "coupon.deactivate"]

    def test_the_same_code_in_another_case_is_409_and_writes_nothing(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        acme = api.partner(program["id"])
        beta = api.partner(program["id"], "Beta Blog")
        assert coupon(api, program["id"], acme["id"], "SPRING10").status_code == 201
        before = row_counts(session_factory)
        assert_error(coupon(api, program["id"], beta["id"], " spring10 "), 409, "code")
        assert row_counts(session_factory) == before

    def test_provider_coupons_need_their_id_and_are_found_by_it(self, api: Api) -> None:
        program = api.program()
        acme = api.partner(program["id"])
        assert_error(coupon(api, program["id"], acme["id"], "SHOP5", source="shopify"), 422, "provider_id")
        assert_error(coupon(api, program["id"], acme["id"], "X", source="paypal", provider_id="1"), 422, "source")
        assert_error(coupon(api, program["id"], acme["id"], "has space"), 422, "code")
        ok = coupon(api, program["id"], acme["id"], "PROMO", source="stripe", provider_id="promo_123")
        assert ok.status_code == 201 and ok.json()["provider_id"] == "promo_123"
        again = coupon(api, program["id"], acme["id"], "PROMO2", source="stripe", provider_id="promo_123")
        assert_error(again, 409, "provider_id")

    def test_another_programs_partner_and_coupon_are_404_for_a_program_key(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        mine, theirs = api.program(), api.program(name="Other")
        other_partner = api.partner(theirs["id"], "Other Partner")
        their_coupon = coupon(api, theirs["id"], other_partner["id"], "THEIRS").json()
        key = api.key_for(session_factory, program_id=mine["id"], scopes=["read", "write"])
        assert_error(coupon(api, mine["id"], other_partner["id"], "MINE", key=key), 404, "partner_id")
        assert_error(api.post(f"/coupons/{their_coupon['id']}/deactivate", key=key), 404, "coupon_id")
        assert api.get("/coupons", key=key).json()["data"] == []

    def test_an_event_with_the_coupon_is_attributed_to_its_partner(self, api: Api) -> None:
        program = api.program()
        acme = api.partner(program["id"])
        coupon(api, program["id"], acme["id"], "ACME20")
        r = api.post("/events", invoice(program["id"], "inv_c", "cus_c", 10_000, coupon="acme20"))
        assert r.status_code == 201, r.text
        line = r.json()["commissions"][0]
        assert r.json()["event"]["partner_id"] == acme["id"]
        assert "Attributed to Acme Media: coupon ACME20 used on invoice paid" in line["explanation"]
        assert r.json()["event"]["attribution_id"].startswith("att_")
        assert r.json()["event"]["unattributed_reason"] is None

    def test_an_event_with_an_unknown_click_says_why_it_has_no_partner(self, api: Api) -> None:
        program = api.program()
        r = api.post("/events", invoice(program["id"], "inv_u", "cus_u", 10_000, click_id="clk_" + "0" * 26))
        assert r.status_code == 201, r.text
        event = r.json()["event"]
        assert (event["partner_id"], event["attribution_id"]) == (None, None)
        assert "clk_" + "0" * 26 in event["unattributed_reason"]


class TestEventFields:
    def test_malformed_click_id_is_422_naming_it_and_unknown_is_recorded(self, api: Api) -> None:
        program = api.program()
        assert_error(api.post("/events", invoice(program["id"], "i1", "c1", 100, click_id="abc")), 422, "click_id")
        assert_error(
            api.post("/events", invoice(program["id"], "i1", "c1", 100, customer_email="not-mail")),
            422,
            "customer_email",
        )
        r = api.post("/events", invoice(program["id"], "i1", "c1", 100, click_id="clk_0000000000aaaaaaaaaaaaaaaa"))
        assert r.status_code == 201 and r.json()["event"]["partner_id"] is None and r.json()["commissions"] == []


class TestFraudFlags:
    def test_list_and_release_earns_once(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        acme = api.partner(program["id"], email="ana@acme-media.com")
        body = invoice(program["id"], "i1", "c1", 10_000, partner_id=acme["id"], customer_email="ana@acme-media.com")
        assert api.post("/events", body).json()["commissions"] == []
        flags = api.get("/fraud-flags", program_id=program["id"], status="open").json()["data"]
        assert [(f["kind"], f["partner_id"]) for f in flags] == [("self_referral", acme["id"])]
        assert_error(api.post(f"/fraud-flags/{flags[0]['id']}/release", {"reason": ""}), 422, "reason")
        r = api.post(f"/fraud-flags/{flags[0]['id']}/release", {"reason": "their agency client"})
        assert r.status_code == 200, r.text
        assert r.json()["flag"]["status"] == "released" and len(r.json()["commissions"]) == 1
        assert_error(api.post(f"/fraud-flags/{flags[0]['id']}/confirm", {"reason": "late"}), 409, "status")
        with session_factory() as s:
            assert s.scalars(select(FraudFlag.status)).all() == ["released"]

    def test_another_programs_flag_is_404(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        mine, theirs = api.program(), api.program(name="Other")
        acme = api.partner(theirs["id"], email="ana@acme-media.com")
        api.post("/events", invoice(theirs["id"], "i1", "c1", 100, partner_id=acme["id"], customer_email=acme["email"]))
        flag = api.get("/fraud-flags").json()["data"][0]
        key = api.key_for(session_factory, program_id=mine["id"], scopes=["read", "write"])
        assert api.get("/fraud-flags", key=key).json()["data"] == []
        assert_error(api.post(f"/fraud-flags/{flag['id']}/dismiss", {"reason": "x"}, key=key), 404, "flag_id")
