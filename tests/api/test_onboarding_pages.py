"""Onboarding pages through HTTP: the public application form, invitation links, portal terms, console pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.jobs.models import OutboxJob
from partnerpay.messaging.email import EMAIL_SEND
from partnerpay.partners.invitations import invite_partner
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.programs.models import Program, TermsAcceptance
from partnerpay.programs.service import update_program_settings
from partnerpay.programs.terms import publish_terms
from tests.api import test_pages
from tests.api.test_pages import PASSWORD, World, csrf_of, login, staff

world = test_pages.world  # the shared fixture: a program, Acme and Beta with portal logins

APPLY = "/apply/demo-program"
FORM = {"name": "Ada Blog", "email": "ada@example.com", "company": "Ada Media", "website": "https://ada.example.com"}
NEW_PASSWORD = "a new long password"


def partners_named(world: World, name: str) -> int:
    with world.factory() as s:
        return int(s.scalar(select(func.count()).select_from(Partner).where(Partner.name == name)) or 0)


def settings(world: World, **changes: Any) -> None:
    with world.factory() as s:
        update_program_settings(s, actor=SYSTEM, program_id=world.program_id, changes=changes, now=world.clock.now())
        s.commit()


def post_application(client: TestClient, **fields: str) -> Any:
    token = csrf_of(client, APPLY)
    return client.post(APPLY, data={**FORM, **fields, "csrf_token": token}, follow_redirects=False)


def invite(world: World, email: str = "ada@example.com") -> str:
    with world.factory() as s:
        _, _, token = invite_partner(
            s, actor=SYSTEM, program_id=world.program_id, name="Ada Blog", email=email, now=world.clock.now()
        )
        s.commit()
    return token


def set_password(client: TestClient, token: str, password: str = NEW_PASSWORD, confirm: str | None = None) -> Any:
    csrf = csrf_of(client, f"/invite/{token}")
    data = {"password": password, "password_confirm": password if confirm is None else confirm, "csrf_token": csrf}
    return client.post(f"/invite/{token}", data=data, follow_redirects=False)


def publish(world: World, body: str = "# Agreement\n\nPlay fair.") -> None:
    with world.factory() as s:
        publish_terms(
            s, actor=SYSTEM, program_id=world.program_id, title="Agreement", body_markdown=body, now=world.clock.now()
        )
        s.commit()


def owner(world: World) -> TestClient:
    with world.factory() as s:
        create_staff_user(
            s, actor=SYSTEM, email="owner@example.com", role="owner", password=PASSWORD, now=world.clock.now()
        )
        s.commit()
    return login(world.client(), "owner@example.com")


class TestApplicationForm:
    def test_the_form_is_branded_with_the_programs_name_colour_and_logo(self, world: World) -> None:
        settings(world, brand_color="#ff6600", logo_url="https://cdn.example.com/logo.png")

        page = world.client().get(APPLY)

        assert page.status_code == 200
        assert "Apply to the Demo program partner program" in page.text
        assert "background: #ff6600" in page.text and 'src="https://cdn.example.com/logo.png"' in page.text
        assert 'name="csrf_token"' in page.text and 'name="homepage"' in page.text

    def test_custom_questions_appear_and_required_ones_are_enforced(self, world: World) -> None:
        settings(world, application_form={"questions": [{"key": "niche", "label": "Your niche", "required": True}]})
        client = world.client()
        assert "Your niche" in client.get(APPLY).text

        response = post_application(client)

        assert response.status_code == 422 and "Your niche is required" in response.text
        assert 'value="Ada Blog"' in response.text
        assert partners_named(world, "Ada Blog") == 0

    def test_an_application_leads_to_a_confirmation_that_says_what_happens_next(self, world: World) -> None:
        client = world.client()

        response = post_application(client)
        thanks = client.get(response.headers["location"])

        assert response.status_code == 303 and response.headers["location"] == "/apply/demo-program/thanks"
        assert "your application was received" in thanks.text and "What happens next" in thanks.text
        assert "ada@example.com" in thanks.text
        with world.factory() as s:
            partner = s.scalar(select(Partner).where(Partner.email == "ada@example.com"))
            assert partner is not None and partner.status == "applied" and partner.application is not None
            assert partner.application["ip"] == "testclient"

    def test_an_auto_approved_application_says_the_login_link_is_on_its_way(self, world: World) -> None:
        settings(world, auto_approve=True)
        client = world.client()

        thanks = client.get(post_application(client).headers["location"])

        assert (
            "welcome to the Demo program partner program" in thanks.text and "link to set your password" in thanks.text
        )

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("email", "ada-at-example", "is not a valid email address"),
            ("country", "XX", "ISO 3166 two-letter code"),
            ("website", "javascript:alert(1)", "website must be an address"),
        ],
    )
    def test_a_bad_value_is_shown_at_its_field_and_nothing_is_written(
        self, world: World, field: str, value: str, message: str
    ) -> None:
        response = post_application(world.client(), **{field: value})

        assert response.status_code == 422 and message in response.text
        assert f'id="f-{field}-error"' in response.text
        assert partners_named(world, "Ada Blog") == 0

    def test_applying_twice_with_one_email_is_refused_clearly(self, world: World) -> None:
        post_application(world.client())

        again = post_application(world.client())

        assert again.status_code == 409 and "has already applied" in again.text
        assert partners_named(world, "Ada Blog") == 1

    def test_a_filled_honeypot_looks_like_success_but_writes_nothing(self, world: World) -> None:
        response = post_application(world.client(), homepage="http://spam.example")

        assert response.status_code == 303
        assert partners_named(world, "Ada Blog") == 0

    def test_a_form_without_csrf_token_is_refused(self, world: World) -> None:
        client = world.client()
        client.get(APPLY)

        response = client.post(APPLY, data=FORM)

        assert response.status_code == 403 and partners_named(world, "Ada Blog") == 0

    def test_a_replayed_form_is_refused_and_spamming_it_is_rate_limited(self, world: World) -> None:
        client = world.client()
        token = csrf_of(client, APPLY)
        data = {**FORM, "csrf_token": token}
        first = client.post(APPLY, data=data, follow_redirects=False)

        replays = [client.post(APPLY, data=data, follow_redirects=False) for _ in range(5)]

        assert first.status_code == 303
        assert [r.status_code for r in replays] == [403, 403, 403, 403, 429]
        assert int(replays[-1].headers["retry-after"]) > 0 and "too many applications" in replays[-1].text
        assert partners_named(world, "Ada Blog") == 1
        world.clock.advance(timedelta(minutes=11))
        assert post_application(client, email="later@example.com").status_code == 303

    def test_an_unknown_program_is_a_404_page(self, world: World) -> None:
        assert world.client().get("/apply/no-such-program").status_code == 404

    def test_a_closed_program_says_so(self, world: World) -> None:
        settings(world, applications_open=False)

        page = world.client().get(APPLY)

        assert "Applications are closed" in page.text and 'name="email"' not in page.text


class TestInvitationLink:
    def test_the_page_asks_for_the_password_of_the_invited_login(self, world: World) -> None:
        page = world.client().get(f"/invite/{invite(world)}")

        assert page.status_code == 200 and "Set your password" in page.text and "ada@example.com" in page.text
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"

    def test_setting_the_password_logs_the_partner_in(self, world: World) -> None:
        client = world.client()

        response = set_password(client, invite(world))

        assert response.status_code == 303 and response.headers["location"] == "/portal"
        home = client.get("/portal")
        assert home.status_code == 200 and "Ada Blog" in home.text and "Your password is set" in home.text
        with world.factory() as s:
            user = s.scalar(select(PartnerUser).where(PartnerUser.email == "ada@example.com"))
            assert user is not None and user.password_hash is not None and NEW_PASSWORD not in user.password_hash
        other = world.client()
        token = csrf_of(other, "/portal/login")
        again = other.post(
            "/portal/login", data={"email": "ada@example.com", "password": NEW_PASSWORD, "csrf_token": token}
        )
        assert again.status_code == 200 and "Ada Blog" in again.text

    def test_with_terms_to_accept_the_partner_lands_on_the_terms(self, world: World) -> None:
        publish(world)

        response = set_password(world.client(), invite(world))

        assert response.headers["location"] == "/portal/terms"

    def test_two_different_passwords_are_refused_at_the_second_field(self, world: World) -> None:
        response = set_password(world.client(), invite(world), confirm="something else entirely")

        assert response.status_code == 422 and "The two passwords differ" in response.text

    def test_a_short_password_is_refused_and_the_link_still_works(self, world: World) -> None:
        token = invite(world)
        client = world.client()

        short = set_password(client, token, password="short")

        assert short.status_code == 422 and "at least 10 characters" in short.text
        assert set_password(client, token).status_code == 303

    def test_a_used_link_gets_a_clear_page(self, world: World) -> None:
        token = invite(world)
        set_password(world.client(), token)

        again = world.client().get(f"/invite/{token}")

        assert again.status_code == 409 and "This link was already used" in again.text

    def test_an_expired_link_gets_a_clear_page_with_its_date(self, world: World) -> None:
        token = invite(world)
        world.clock.advance(timedelta(days=8))

        page = world.client().get(f"/invite/{token}")

        assert (
            page.status_code == 409 and "This link has expired" in page.text and "expired on 22 Jan 2026" in page.text
        )

    def test_a_made_up_link_gets_a_clear_page(self, world: World) -> None:
        page = world.client().get("/invite/not-a-real-token")

        assert page.status_code == 404 and "This link is not valid" in page.text


class TestPortalTerms:
    def test_the_home_page_asks_to_accept_new_terms_until_accepted(self, world: World) -> None:
        publish(world)
        client = login(world.client(), "portal@acme.example", portal=True)
        assert "Accept the new terms (version 1)" in client.get("/portal").text

        token = csrf_of(client, "/portal/terms")
        accepted = client.post("/portal/terms", data={"version": "1", "csrf_token": token})

        assert accepted.status_code == 200 and "you accepted the terms (version 1)" in accepted.text
        assert "Accept the new terms" not in client.get("/portal").text
        with world.factory() as s:
            acceptance = s.scalar(select(TermsAcceptance))
            assert acceptance is not None and acceptance.ip == "testclient" and acceptance.partner_user_id

    def test_the_terms_are_shown_with_html_escaped(self, world: World) -> None:
        publish(world, body="**Fair play** <script>alert(1)</script>")
        client = login(world.client(), "portal@acme.example", portal=True)

        page = client.get("/portal/terms")

        assert "<strong>Fair play</strong>" in page.text and "<script>alert(1)" not in page.text
        assert "&lt;script&gt;" in page.text

    def test_accepting_an_outdated_version_is_refused_with_the_current_one(self, world: World) -> None:
        publish(world)
        publish(world)
        client = login(world.client(), "portal@acme.example", portal=True)

        response = client.post("/portal/terms", data={"version": "1", "csrf_token": csrf_of(client, "/portal/terms")})

        assert response.status_code == 409 and "accept version 2" in response.text

    def test_accepting_needs_the_csrf_token(self, world: World) -> None:
        publish(world)
        client = login(world.client(), "portal@acme.example", portal=True)

        assert client.post("/portal/terms", data={"version": "1"}).status_code == 403

    def test_a_program_without_terms_says_so(self, world: World) -> None:
        client = login(world.client(), "portal@acme.example", portal=True)

        assert "No terms yet" in client.get("/portal/terms").text


class TestApplicationsQueue:
    def test_the_queue_shows_each_applicant_with_answers_and_the_nav_links_it(self, world: World) -> None:
        post_application(world.client(), audience="8,000 developers")

        page = staff(world, "manager").get("/applications")

        assert "Ada Blog" in page.text and "8,000 developers" in page.text and "https://ada.example.com" in page.text
        assert 'href="/applications"' in page.text and 'href="/settings"' in page.text

    def test_approving_selected_applicants_sends_welcome_emails(self, world: World) -> None:
        post_application(world.client())
        with world.factory() as s:
            partner_id = s.scalar(select(Partner.id).where(Partner.email == "ada@example.com"))
        client = staff(world, "manager")

        done = client.post(
            "/applications/approve", data={"ids": [partner_id], "csrf_token": csrf_of(client, "/applications")}
        )

        assert done.status_code == 200 and "Approved 1: Ada Blog" in done.text
        link = re.search(
            r"pass this link on to ada@example.com yourself: http://127\.0\.0\.1:8000/invite/([A-Za-z0-9_\-]+)",
            done.text,
        )
        assert link is not None and world.client().get(f"/invite/{link.group(1)}").status_code == 200
        with world.factory() as s:
            assert s.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == EMAIL_SEND)) == 1

    def test_declining_without_a_reason_shows_the_error_and_changes_nothing(self, world: World) -> None:
        post_application(world.client())
        with world.factory() as s:
            partner_id = s.scalar(select(Partner.id).where(Partner.email == "ada@example.com"))
        client = staff(world, "manager")

        response = client.post(
            "/applications/decline",
            data={"ids": [partner_id], "reason": "", "csrf_token": csrf_of(client, "/applications")},
        )

        assert response.status_code == 422 and "a reason is required" in response.text
        with world.factory() as s:
            assert s.get(Partner, partner_id).status == "applied"  # type: ignore[union-attr]

    def test_a_viewer_is_told_and_cannot_approve(self, world: World) -> None:
        post_application(world.client())
        with world.factory() as s:
            partner_id = s.scalar(select(Partner.id).where(Partner.email == "ada@example.com"))
        client = staff(world, "viewer")
        page = client.get("/applications")

        response = client.post(
            "/applications/approve", data={"ids": [partner_id], "csrf_token": csrf_of(client, "/applications")}
        )

        assert "You are logged in as a viewer" in page.text
        assert response.status_code == 403 and "manager, finance or owner role" in response.text

    def test_an_empty_queue_shows_the_public_form_address(self, world: World) -> None:
        page = staff(world, "manager").get("/applications")

        assert "No applications waiting" in page.text and "/apply/demo-program" in page.text


class TestInvitationsPage:
    def test_inviting_without_smtp_shows_the_link_to_pass_on(self, world: World) -> None:
        client = staff(world, "manager")

        response = client.post(
            "/invitations",
            data={
                "program_id": world.program_id,
                "name": "Ada",
                "email": "ada@example.com",
                "csrf_token": csrf_of(client, "/invitations"),
            },
        )

        assert response.status_code == 200 and "Invited Ada" in response.text
        link = re.search(r"http://127\.0\.0\.1:8000/invite/([A-Za-z0-9_\-]+)", response.text)
        assert link is not None
        assert world.client().get(f"/invite/{link.group(1)}").status_code == 200
        assert "ada@example.com" in response.text and "valid" in response.text

    def test_a_bad_email_is_shown_at_the_field(self, world: World) -> None:
        client = staff(world, "manager")

        response = client.post(
            "/invitations",
            data={
                "program_id": world.program_id,
                "name": "Ada",
                "email": "nope",
                "csrf_token": csrf_of(client, "/invitations"),
            },
        )

        assert response.status_code == 422 and 'id="f-email-error"' in response.text

    def test_resend_and_revoke_change_the_status_shown(self, world: World) -> None:
        invite(world)
        client = staff(world, "manager")
        page = client.get("/invitations")
        inv_id = re.search(r'id="inv-(inv_[a-z0-9]+)"', page.text).group(1)  # type: ignore[union-attr]

        resent = client.post(f"/invitations/{inv_id}/resend", data={"csrf_token": csrf_of(client, "/invitations")})
        new_id = re.search(r'id="inv-(inv_[a-z0-9]+)"', resent.text).group(1)  # type: ignore[union-attr]
        revoked = client.post(f"/invitations/{new_id}/revoke", data={"csrf_token": csrf_of(client, "/invitations")})

        assert "A new link was sent" in resent.text and new_id != inv_id
        assert "no longer works" in revoked.text and "badge-valid" not in revoked.text


class TestProgramSettingsPage:
    def test_an_owner_saves_settings_and_question_rows(self, world: World) -> None:
        client = owner(world)
        form = client.get(f"/settings/program/{world.program_id}")
        assert form.status_code == 200 and 'name="slug" type="text" value="demo-program"' in form.text

        data = {
            "name": "Demo program", "default_percent": "12.5", "hold_days": "30", "cookie_days": "60",
            "rounding": "half_even", "slug": "demo", "brand_color": "#112233", "logo_url": "",
            "payout_change_hold_days": "7", "applications_open": "on", "field_company": "required",
            "field_website": "optional", "field_audience": "hidden", "field_country": "optional",
            "question_rows": "2", "q_label_0": "Monthly visitors?", "q_key_0": "", "q_required_0": "on",
            "q_label_1": "",
            "csrf_token": csrf_of(client, f"/settings/program/{world.program_id}"),
        }  # fmt: skip
        saved = client.post(f"/settings/program/{world.program_id}", data=data)

        assert saved.status_code == 200 and "Saved the settings of Demo program" in saved.text
        with world.factory() as s:
            program = s.get(Program, world.program_id)
            assert program is not None
            assert (program.slug, program.default_percent_bp, program.cookie_days) == ("demo", 1250, 60)
            assert program.application_form is not None
            assert program.application_form["questions"] == [
                {"key": "monthly_visitors", "label": "Monthly visitors?", "required": True}
            ]
            assert program.application_form["fields"]["audience"] == "hidden"

    def test_a_bad_colour_is_shown_and_nothing_is_saved(self, world: World) -> None:
        client = owner(world)
        token = csrf_of(client, f"/settings/program/{world.program_id}")
        data = {"name": "Demo program", "default_percent": "20", "hold_days": "30", "cookie_days": "30",
                "rounding": "half_even", "slug": "demo-program", "brand_color": "red", "payout_change_hold_days": "7",
                "question_rows": "0", "csrf_token": token}  # fmt: skip

        response = client.post(f"/settings/program/{world.program_id}", data=data)

        assert response.status_code == 422 and "brand_color must be a colour like #1f2a44" in response.text
        assert 'value="red"' in response.text

    def test_a_manager_reads_but_cannot_save(self, world: World) -> None:
        client = staff(world, "manager")

        page = client.get(f"/settings/program/{world.program_id}")

        assert "changing them needs the owner role" in page.text and "Save settings" not in page.text

    def test_the_owner_publishes_terms_from_the_terms_page(self, world: World) -> None:
        client = owner(world)
        path = f"/settings/program/{world.program_id}/terms"

        response = client.post(
            path, data={"title": "Agreement", "body_markdown": "# Rules", "csrf_token": csrf_of(client, path)}
        )

        text = re.sub(r"<[^>]+>", "", response.text)
        assert "Published version 1" in text and "0 of 2 active or suspended partners accepted it" in text
