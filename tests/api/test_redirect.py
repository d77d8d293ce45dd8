"""GET /r/{code} through the whole app: destinations, ref and cookie, recorded clicks, open-redirect attempts."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import FixedClock
from partnerpay.programs.service import update_program_settings
from partnerpay.settings import Settings
from partnerpay.tracking import links
from partnerpay.tracking.models import Click
from partnerpay.web.app import create_app
from tests import factories

SECRET = "s" * 40
SITE = "https://shop.example.com"


@dataclass
class Site:
    app: FastAPI
    client: TestClient
    factory: sessionmaker[Session]
    clock: FixedClock
    program_id: str
    partner_id: str
    referral_code: str

    def get(self, path: str, **headers: str) -> Any:
        return self.client.get(path, headers=headers, follow_redirects=False)

    def clicks(self) -> list[Click]:
        self.app.state.click_writer.flush()
        with self.factory() as s:
            return list(s.scalars(select(Click).order_by(Click.id)))

    def link(self, **kw: Any) -> str:
        with unit_of_work(self.factory) as s:
            return links.create_link(s, actor=SYSTEM, partner_id=self.partner_id, now=self.clock.now(), **kw).code


def _site(database_url: str, factory: sessionmaker[Session], clock: FixedClock, **settings: Any) -> Iterator[Site]:
    with unit_of_work(factory) as s:
        prog = factories.program(s, clock.now(), cookie_days=45)
        update_program_settings(
            s,
            actor=SYSTEM,
            program_id=prog.id,
            changes={"site_url": SITE + "/", "fallback_url": SITE + "/oops", "allowed_domains": ["example.org"]},
            now=clock.now(),
        )
        partner = factories.partner(s, prog, clock.now(), "Acme Media")
        ids = prog.id, partner.id, partner.referral_code
    app = create_app(
        Settings(database_url=database_url, secret_key=SECRET, in_process_worker=False, **settings), clock=clock
    )
    with TestClient(app) as client:
        yield Site(app, client, factory, clock, *ids)
    app.state.engine.dispose()


@pytest.fixture
def site(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[Site]:
    yield from _site(database_url, session_factory, clock)


class TestKnownCodes:
    def test_the_default_code_redirects_to_the_site_with_ref_and_cookie(self, site: Site) -> None:
        response = site.get(f"/r/{site.referral_code}")
        [click] = site.clicks()
        assert response.status_code == 302
        assert response.headers["location"] == f"{SITE}/?ref={click.id}"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"pp_ref={click.id};")
        assert f"Max-Age={45 * 86400}" in cookie and "Path=/" in cookie and "SameSite=Lax" in cookie
        assert "httponly" not in cookie.lower()
        assert (click.partner_id, click.link_id, click.program_id) == (site.partner_id, None, site.program_id)
        assert response.headers["cache-control"] == "no-store"

    def test_a_link_keeps_the_destination_query_and_adds_its_params_and_ref(self, site: Site) -> None:
        code = site.link(
            campaign="Spring",
            destination_url="https://docs.example.org/start?lang=de&utm_source=old#pricing",
            params={"utm_source": "newsletter", "sub_id": "a b&c"},
        )
        response = site.get(f"/r/{code}")
        [click] = site.clicks()
        expected = (
            f"https://docs.example.org/start?lang=de&utm_source=newsletter&sub_id=a%20b%26c&ref={click.id}#pricing"
        )
        assert response.headers["location"] == expected
        assert click.destination == expected.replace(f"&ref={click.id}", "")
        assert click.link_id is not None and click.partner_id == site.partner_id and click.code == code

    def test_a_click_records_time_visitor_class_referrer_and_country_but_no_address(self, site: Site) -> None:
        site.clock.advance(timedelta(minutes=5))
        site.get(
            f"/r/{site.referral_code}",
            **{
                "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
                "Referer": "https://blog.example.net/" + "x" * 600,
                "CF-IPCountry": "de",
            },
        )
        [click] = site.clicks()
        key = hmac.new(SECRET.encode(), b"partnerpay/clicks/ip-hash/v1", hashlib.sha256).digest()
        assert click.at == site.clock.now()
        assert click.ua_class == "mobile" and click.country == "DE"
        assert click.referrer is not None and len(click.referrer) == 500
        assert click.ip_hash == hmac.new(key, b"testclient", hashlib.sha256).hexdigest()

    @pytest.mark.parametrize(
        ("headers", "ua", "country"),
        [
            ({"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, "bot", None),
            ({"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "X-Country-Code": "FR"}, "desktop", "FR"),
            ({"User-Agent": "SomethingElse/1.0", "CF-IPCountry": "XX"}, "other", None),
            ({"CF-IPCountry": "T1"}, "other", None),
        ],
    )
    def test_visitor_class_and_country_come_from_the_headers(
        self, site: Site, headers: dict[str, str], ua: str, country: str | None
    ) -> None:
        site.get(f"/r/{site.referral_code}", **headers)
        [click] = site.clicks()
        assert (click.ua_class, click.country) == (ua, country)

    def test_head_redirects_without_a_click_or_cookie(self, site: Site) -> None:
        response = site.client.head(f"/r/{site.referral_code}", follow_redirects=False)
        assert response.status_code == 302 and response.headers["location"] == f"{SITE}/"
        assert "set-cookie" not in response.headers and site.clicks() == []

    def test_the_click_path_sets_no_session_cookie(self, site: Site) -> None:
        response = site.get(f"/r/{site.referral_code}")
        assert "partnerpay_session" not in response.headers.get("set-cookie", "")

    def test_the_click_path_runs_before_fastapi_and_everything_else_after_it(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # FastAPI's __call__ checks for telemetry on every request (environment reads): not on /r/.
        calls: list[str] = []
        real = FastAPI.__call__

        async def counted(app: FastAPI, scope: Any, receive: Any, send: Any) -> None:
            calls.append(scope["path"])
            await real(app, scope, receive, send)

        monkeypatch.setattr(FastAPI, "__call__", counted)
        assert site.get(f"/r/{site.referral_code}").status_code == 302
        assert site.get("/api/v1/openapi.json").status_code == 200
        assert calls == ["/api/v1/openapi.json"]


class TestUnknownCodes:
    @pytest.mark.parametrize(
        "path",
        [
            "/r/nobody",
            "/r/nobody.campaign",
            "/r//evil.com",
            "/r/%2F%2Fevil.com",
            "/r/\\\\evil.com",
            "/r/%5C%5Cevil.com",
            "/r/x%0D%0ALocation:%20https://evil.com",
            "/r/https://evil.com",
            "/r/..%2F..%2Fevil.com",
            "/r/a%00b%1B",
            "/r/",
        ],
    )
    def test_unknown_and_crafted_codes_go_to_the_programs_fallback_and_are_still_counted(
        self, site: Site, path: str
    ) -> None:
        response = site.get(path)
        assert response.status_code == 302
        assert response.headers["location"] == f"{SITE}/oops"
        assert "set-cookie" not in response.headers
        [click] = site.clicks()
        assert click.partner_id is None and click.link_id is None and click.program_id == site.program_id

    def test_without_exactly_one_program_unknown_codes_go_to_the_settings_fallback(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with unit_of_work(session_factory) as s:
            factories.program(s, clock.now(), name="Second")
        for s in _site(database_url, session_factory, clock, click_fallback_url="https://partners.example.com/"):
            assert s.get("/r/nobody").headers["location"] == "https://partners.example.com/"
            [click] = s.clicks()
            assert click.program_id is None

    def test_without_any_fallback_unknown_codes_go_home(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with unit_of_work(session_factory) as s:
            factories.program(s, clock.now(), name="Second")
        for s in _site(database_url, session_factory, clock):
            assert s.get("/r/nobody").headers["location"] == "/"

    def test_other_methods_are_refused_without_reaching_the_app(self, site: Site) -> None:
        response = site.client.post(f"/r/{site.referral_code}")
        assert response.status_code == 405 and site.clicks() == []


class TestCache:
    def test_a_deactivated_link_stops_crediting_at_once_in_this_process(self, site: Site) -> None:
        code = site.link(campaign="Gone soon", destination_url="https://shop.example.com/deal")
        first = site.get(f"/r/{code}")
        assert "ref=" in first.headers["location"]
        with unit_of_work(site.factory) as s:
            link_id = s.scalars(select(links.ReferralLink.id).where(links.ReferralLink.code == code)).one()
            links.deactivate_link(s, actor=SYSTEM, link_id=link_id, now=site.clock.now())
        second = site.get(f"/r/{code}")
        assert second.headers["location"] == "https://shop.example.com/deal"
        assert "set-cookie" not in second.headers
        credited = [c.partner_id for c in site.clicks()]
        assert credited == [site.partner_id, None]

    def test_a_code_clicked_before_its_link_existed_resolves_once_created(self, site: Site) -> None:
        code = f"{site.referral_code}.launch"
        assert site.get(f"/r/{code}").headers["location"] == f"{SITE}/oops"
        assert site.link(campaign="Launch") == code
        assert "ref=" in site.get(f"/r/{code}").headers["location"]

    def test_a_change_made_elsewhere_waits_for_the_ttl(self, site: Site) -> None:
        assert site.get(f"/r/{site.referral_code}").headers["location"].startswith(f"{SITE}/?ref=")
        _change_site_elsewhere(site)
        assert site.get(f"/r/{site.referral_code}").headers["location"].startswith(f"{SITE}/?ref=")

    def test_a_change_made_elsewhere_shows_after_the_ttl(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        for s in _site(database_url, session_factory, clock, click_cache_ttl_seconds=0.05):
            s.get(f"/r/{s.referral_code}")
            _change_site_elsewhere(s)
            # Past the TTL the old target may serve once more while it is looked up again in the background.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                location = s.get(f"/r/{s.referral_code}").headers["location"]
                if not location.startswith(SITE):
                    break
                time.sleep(0.02)
            assert location.startswith("https://new.example.com/?ref=")

    def test_a_link_deactivated_elsewhere_stops_crediting_after_the_ttl(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        for s in _site(database_url, session_factory, clock, click_cache_ttl_seconds=0.05):
            code = s.link(campaign="Elsewhere", destination_url="https://shop.example.com/x")
            assert "ref=" in s.get(f"/r/{code}").headers["location"]
            with unit_of_work(s.factory) as db:
                db.execute(update(links.ReferralLink).where(links.ReferralLink.code == code).values(active=False))
            deadline = time.monotonic() + 5
            while "ref=" in (location := s.get(f"/r/{code}").headers["location"]) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert location == "https://shop.example.com/x"


def _change_site_elsewhere(site: Site) -> None:
    """Another process's change: straight in the database, so no invalidation reaches this app."""
    with unit_of_work(site.factory) as db:
        update_program_settings(
            db,
            actor=SYSTEM,
            program_id=site.program_id,
            changes={"site_url": "https://new.example.com"},
            now=site.clock.now(),
        )
