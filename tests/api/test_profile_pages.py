"""The portal profile: company data, masked payout method, tax form, and changes that need the password."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.jobs.models import OutboxJob
from partnerpay.partners.models import Partner, PayoutMethod, TaxProfile
from tests.api import test_pages
from tests.api.test_pages import PASSWORD, World, csrf_of, login

world = test_pages.world  # the shared fixture: a program, Acme and Beta with portal logins

IBAN = "DE89370400440532013000"
SEPA = {"type": "sepa", "iban": "DE89 3704 0044 0532 0130 00", "bic": "", "account_holder": "Acme Media GmbH"}
ACH = {
    "type": "ach",
    "routing_number": "111000025",
    "account_number": "000123456789",
    "account_type": "savings",
    "account_holder": "Acme Media LLC",
}


def portal(world: World, email: str = "portal@acme.example") -> TestClient:
    return login(world.client(), email, portal=True)


def post_payout(client: TestClient, data: dict[str, str], password: str = PASSWORD) -> Any:
    token = csrf_of(client, f"/portal/profile/payout-method?type={data['type']}")
    form = {**data, "password": password, "csrf_token": token}
    return client.post("/portal/profile/payout-method", data=form, follow_redirects=False)


def post_tax(client: TestClient, data: dict[str, str], password: str = PASSWORD) -> Any:
    token = csrf_of(client, f"/portal/profile/tax-form?form={data['form']}")
    return client.post(
        "/portal/profile/tax-form", data={**data, "password": password, "csrf_token": token}, follow_redirects=False
    )


def methods(world: World) -> list[PayoutMethod]:
    with world.factory() as s:
        return list(s.scalars(select(PayoutMethod).order_by(PayoutMethod.created_at)))


class TestProfilePage:
    @pytest.mark.parametrize("path", ["/portal/profile", "/portal/profile/payout-method", "/portal/profile/tax-form"])
    def test_every_profile_page_needs_a_portal_login(self, world: World, path: str) -> None:
        response = world.client().get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/portal/login?next=")

    def test_a_new_partner_sees_its_company_and_what_is_missing(self, world: World) -> None:
        page = portal(world).get("/portal/profile")
        assert page.status_code == 200
        assert "Acme Media" in page.text and "acme@example.com" in page.text and "portal@acme.example" in page.text
        assert "No payout method yet" in page.text and "Tax form missing" in page.text

    def test_the_portal_navigation_leads_to_the_profile(self, world: World) -> None:
        home = portal(world).get("/portal")
        assert 'href="/portal/profile">Profile</a>' in home.text
        profile = portal(world).get("/portal/profile")
        assert 'href="/portal/profile" aria-current="page">Profile' in profile.text

    def test_each_payout_type_has_its_own_form_with_a_password_field(self, world: World) -> None:
        client = portal(world)
        for kind, field in [
            ("sepa", "iban"),
            ("ach", "routing_number"),
            ("paypal", "email"),
            ("stripe_connect", "account_id"),
        ]:
            page = client.get(f"/portal/profile/payout-method?type={kind}")
            assert f'name="{field}"' in page.text and 'name="password"' in page.text
            # A bank account's holder address; a SEPA holder may live outside the IBAN's country.
            assert ('name="address_line1"' in page.text) is (kind in ("sepa", "ach"))
            assert ('name="address_country"' in page.text) is (kind == "sepa")


class TestChangePayoutMethod:
    def test_with_the_password_the_method_is_saved_and_shown_masked(self, world: World) -> None:
        client = portal(world)
        response = post_payout(client, SEPA)
        assert response.status_code == 303 and response.headers["location"] == "/portal/profile"
        page = client.get("/portal/profile")
        assert "Payout method saved: SEPA bank account DE89 •••• •••• •••• 3000" in page.text
        assert "DE89 •••• •••• •••• 3000" in page.text and "COBADEFFXXX" in page.text
        assert "held for review until" in page.text and "22 Jan 2026" in page.text
        assert IBAN not in page.text and "DE89 3704" not in page.text

    def test_the_partner_is_emailed_about_the_change(self, world: World) -> None:
        post_payout(portal(world), SEPA)
        with world.factory() as s:
            to = sorted(j.payload["to"] for j in s.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send")))
        assert to == ["acme@example.com", "portal@acme.example"]

    def test_a_wrong_password_is_an_error_at_the_password_and_changes_nothing(self, world: World) -> None:
        response = post_payout(portal(world), SEPA, password="not my password")
        assert response.status_code == 422
        assert 'id="f-password-error"' in response.text and "That is not your password" in response.text
        assert IBAN not in response.text and "DE89 3704" not in response.text  # never echoed back
        assert 'value="Acme Media GmbH"' in response.text  # the harmless fields are kept
        assert methods(world) == []
        with world.factory() as s:
            acme = s.get(Partner, world.acme_id)
            assert acme is not None and acme.payout_review_until is None

    def test_a_bad_iban_is_shown_at_its_field_masked(self, world: World) -> None:
        response = post_payout(portal(world), {**SEPA, "iban": "DE89370400440532013001"})
        assert response.status_code == 422
        assert 'id="f-iban-error"' in response.text and "IBAN check digits do not match (DE89…3001)" in response.text
        assert "DE89370400440532013001" not in response.text and methods(world) == []

    def test_an_ach_account_shows_only_its_last_four(self, world: World) -> None:
        client = portal(world)
        assert post_payout(client, ACH).status_code == 303
        page = client.get("/portal/profile")
        assert "••••6789" in page.text and "000123456789" not in page.text

    def test_an_ach_account_with_the_holder_s_address_shows_city_and_country_only(self, world: World) -> None:
        client = portal(world)
        data = {
            **ACH,
            "address_line1": "77 Elm Road",
            "address_city": "Springfield",
            "address_state": "",
            "address_postcode": "62704",
        }
        refused = post_payout(client, data)
        assert refused.status_code == 422 and 'id="f-address_state-error"' in refused.text
        assert 'value="77 Elm Road"' in refused.text and methods(world) == []  # kept for the correction
        assert post_payout(client, {**data, "address_state": "IL"}).status_code == 303
        page = client.get("/portal/profile")
        assert "Springfield, US" in page.text and "77 Elm Road" not in page.text

    def test_a_sepa_holder_s_address_may_be_in_another_country_than_the_iban(self, world: World) -> None:
        client = portal(world)
        home = {"address_line1": "Ringstrasse 1", "address_city": "Wien", "address_postcode": "1010"}
        assert post_payout(client, {**SEPA, **home, "address_country": "at"}).status_code == 303
        assert "Wien, AT" in client.get("/portal/profile").text

    def test_replaced_methods_are_listed_masked(self, world: World) -> None:
        client = portal(world)
        post_payout(client, SEPA)
        post_payout(client, {"type": "paypal", "email": "payouts@acme.example"})
        page = client.get("/portal/profile")
        assert "Earlier payout methods" in page.text and "p•••@acme.example" in page.text
        assert [m.active for m in methods(world)] == [False, True]

    def test_a_form_without_its_csrf_token_is_refused(self, world: World) -> None:
        client = portal(world)
        response = client.post("/portal/profile/payout-method", data={**SEPA, "password": PASSWORD})
        assert response.status_code == 403 and methods(world) == []

    def test_guessing_the_password_is_rate_limited(self, world: World) -> None:
        client = portal(world)
        for _ in range(10):
            assert post_payout(client, SEPA, password="guess").status_code == 422
        assert post_payout(client, SEPA, password=PASSWORD).status_code == 429
        assert methods(world) == []

    def test_one_partner_never_sees_anothers_details(self, world: World) -> None:
        post_payout(portal(world), SEPA)
        page = portal(world, "portal@beta.example").get("/portal/profile")
        assert "Beta Blog" in page.text and "No payout method yet" in page.text and "3000" not in page.text


class TestChangeTaxForm:
    def test_a_w9_is_saved_and_the_tax_form_is_no_longer_missing(self, world: World) -> None:
        client = portal(world)
        data = {"form": "w9", "tin": "536-90-4399", "legal_name": "Jane Doe", "address": "1 Main St", "vat_id": ""}
        assert post_tax(client, data).status_code == 303
        page = client.get("/portal/profile")
        assert "W-9 (US person)" in page.text and "••••4399" in page.text and "Tax form missing" not in page.text
        assert "536904399" not in page.text and "536-90-4399" not in page.text

    def test_a_w8ben_for_a_us_country_is_refused_at_the_country(self, world: World) -> None:
        data = {"form": "w8ben", "country": "US", "legal_name": "Jane", "foreign_tin": "", "vat_id": ""}
        response = post_tax(portal(world), data)
        assert response.status_code == 422 and 'id="f-country-error"' in response.text
        with world.factory() as s:
            assert s.scalars(select(TaxProfile)).all() == []

    def test_the_tax_form_needs_the_password_too(self, world: World) -> None:
        data = {"form": "w8ben", "country": "DE", "legal_name": "Acme GmbH", "foreign_tin": "", "vat_id": "DE136695976"}
        response = post_tax(portal(world), data, password="wrong")
        assert response.status_code == 422 and 'id="f-password-error"' in response.text
        assert "DE136695976" not in response.text
