"""The per-user ICS feed: made from the console and the portal, parsed with icalendar, stable UIDs and
deterministic DTSTAMPs, a partner sees only its own items, unknown / rotated / revoked URLs are 404."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select

from partnerpay.approvals.policy import put_policy
from partnerpay.auth.actor import SYSTEM
from partnerpay.calendars.models import CalendarFeed
from partnerpay.calendars.service import hash_token
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.service import move_deal
from partnerpay.deals.updates import ask_for_update
from partnerpay.payouts.settings import write_settings
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login, staff

world = test_pages.world  # a program, Acme and Beta with portal logins, finance/manager/viewer staff
FEED = re.compile(r'value="https?://[^"]+/calendar/([^"]+)\.ics"')


def make_deal(w: World, partner_id: str, company: str) -> str:
    with w.factory() as s:
        lead = register_lead(
            s,
            actor=SYSTEM,
            program_id=w.program_id,
            partner_id=partner_id,
            company=company,
            domain=f"{company.lower()}.example",
            now=w.clock.now(),
        )
        [deal] = accept_leads(s, actor=SYSTEM, lead_ids=[lead.id], now=w.clock.now())
        s.commit()
        return deal.id


@pytest.fixture
def data(world: World) -> dict[str, str]:
    """A monthly payout schedule, an approval SLA, a deal per partner and an update request to Acme."""
    now = world.clock.now()
    with world.factory() as s:
        write_settings(
            s, actor=SYSTEM, program_id=world.program_id, data={"schedule": "monthly", "day_of_month": 1}, now=now
        )
        put_policy(s, actor=SYSTEM, program_id=world.program_id, raw={"sla_days": 5}, now=now)
        s.commit()
    acme_deal = make_deal(world, world.acme_id, "Zeta")
    beta_deal = make_deal(world, world.beta_id, "Omega")
    with world.factory() as s:
        request = ask_for_update(s, actor=SYSTEM, message="Where does Zeta stand?", deal_id=acme_deal, now=now)
        s.commit()
        return {"acme_deal": acme_deal, "beta_deal": beta_deal, "request": request.id}


def new_feed(client: TestClient, path: str) -> str:
    form_page = "/settings/calendar" if path.startswith("/settings") else path
    page = client.post(path, data={"csrf_token": csrf_of(client, form_page)})
    assert page.status_code == 200, page.text
    match = FEED.search(page.text)
    assert match, "the new feed address is shown once"
    return match.group(1)


def fetch(client: TestClient, token: str) -> Calendar:
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def by_uid(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


class TestStaffFeed:
    def test_a_finance_feed_lists_runs_deadlines_follow_ups_and_update_requests(
        self, world: World, data: dict[str, str]
    ) -> None:
        client = staff(world, "finance")
        cal = fetch(client, new_feed(client, "/settings/calendar/feed"))
        assert cal["VERSION"] == "2.0" and "partnerpay" in str(cal["PRODID"])
        events = by_uid(cal)
        runs = sorted(u for u in events if u.startswith("payout-run-"))
        # Monthly on the 1st at 09:00 UTC: T0 is 15 Jan 2026, so the next three runs are Feb, Mar, Apr.
        assert runs == [f"payout-run-{world.program_id}-2026{m}01T0900Z@partnerpay" for m in ("02", "03", "04")]
        due = events[f"approval-due-{world.program_id}-20260120@partnerpay"]
        assert "2 line(s)" in str(due["SUMMARY"]) and due.decoded("DTSTART") == date(2026, 1, 20)  # type: ignore[attr-defined]
        assert f"deal-follow-up-{data['acme_deal']}@partnerpay" in events
        assert f"deal-follow-up-{data['beta_deal']}@partnerpay" in events
        assert f"update-request-{data['request']}@partnerpay" in events

    def test_the_feed_is_byte_identical_on_each_fetch_and_a_change_keeps_the_uid(
        self, world: World, data: dict[str, str]
    ) -> None:
        client = staff(world, "manager")
        token = new_feed(client, "/settings/calendar/feed")
        first = client.get(f"/calendar/{token}.ics").content
        assert client.get(f"/calendar/{token}.ics").content == first  # DTSTAMP comes from the data, not the clock
        assert b"\r\n" in first and all(len(line) <= 75 for line in first.split(b"\r\n"))  # folded lines
        uid = f"deal-follow-up-{data['acme_deal']}@partnerpay"
        stamp_before = by_uid(Calendar.from_ical(first))[uid].decoded("DTSTAMP")  # type: ignore[attr-defined]
        world.clock.advance(timedelta(days=1))
        with world.factory() as s:
            move_deal(s, actor=SYSTEM, deal_id=data["acme_deal"], stage="demo", now=world.clock.now())
            s.commit()
        after = by_uid(fetch(client, token))[uid]
        assert after.decoded("DTSTAMP") > stamp_before  # type: ignore[attr-defined]
        assert "stage demo" in str(after["DESCRIPTION"])  # type: ignore[index]

    def test_a_viewer_does_not_get_approval_deadlines(self, world: World, data: dict[str, str]) -> None:
        client = staff(world, "viewer")
        events = by_uid(fetch(client, new_feed(client, "/settings/calendar/feed")))
        assert not [u for u in events if u.startswith("approval-due-")]
        assert [u for u in events if u.startswith("payout-run-")]


class TestPartnerFeed:
    def test_a_partner_sees_only_its_own_deals_and_requests(self, world: World, data: dict[str, str]) -> None:
        acme = login(world.client(), "portal@acme.example", portal=True)
        events = by_uid(fetch(acme, new_feed(acme, "/portal/profile/calendar")))
        assert f"deal-follow-up-{data['acme_deal']}@partnerpay" in events
        assert f"update-request-{data['request']}@partnerpay" in events
        assert f"deal-follow-up-{data['beta_deal']}@partnerpay" not in events
        assert not [u for u in events if u.startswith("approval-due-")]
        assert "/portal/" in str(events[f"deal-follow-up-{data['acme_deal']}@partnerpay"]["URL"])
        beta = login(world.client(), "portal@beta.example", portal=True)
        beta_events = by_uid(fetch(beta, new_feed(beta, "/portal/profile/calendar")))
        assert f"deal-follow-up-{data['beta_deal']}@partnerpay" in beta_events
        assert not [u for u in beta_events if data["acme_deal"] in u or data["request"] in u]

    def test_the_feed_pages_need_their_own_login(self, world: World) -> None:
        assert world.client().get("/portal/profile/calendar", follow_redirects=False).status_code == 303
        assert world.client().get("/settings/calendar", follow_redirects=False).status_code == 303


class TestFeedSecret:
    def test_the_token_is_long_random_and_stored_only_hashed(self, world: World) -> None:
        client = staff(world, "finance")
        token = new_feed(client, "/settings/calendar/feed")
        assert len(token) >= 22  # ≥ 128 bits in URL-safe base64
        with world.factory() as s:
            rows = list(s.scalars(select(CalendarFeed)))
        assert [r.token_hash for r in rows] == [hash_token(token)] and token not in rows[0].token_hash

    def test_unknown_rotated_and_revoked_feeds_are_404(self, world: World) -> None:
        client = staff(world, "finance")
        assert client.get("/calendar/nope.ics").status_code == 404
        old = new_feed(client, "/settings/calendar/feed")
        new = new_feed(client, "/settings/calendar/feed")  # rotate
        assert old != new
        assert client.get(f"/calendar/{old}.ics").status_code == 404
        assert client.get(f"/calendar/{new}.ics").status_code == 200
        client.post("/settings/calendar/feed/revoke", data={"csrf_token": csrf_of(client, "/settings/calendar")})
        assert client.get(f"/calendar/{new}.ics").status_code == 404

    def test_a_form_without_csrf_makes_no_feed(self, world: World) -> None:
        client = staff(world, "finance")
        assert client.post("/settings/calendar/feed", data={}).status_code == 403
        with world.factory() as s:
            assert s.scalar(select(CalendarFeed.id)) is None


def test_rotating_and_revoking_are_audited(world: World) -> None:
    from partnerpay.audit.models import AuditEntry

    client = staff(world, "finance")
    new_feed(client, "/settings/calendar/feed")
    new_feed(client, "/settings/calendar/feed")
    client.post("/settings/calendar/feed/revoke", data={"csrf_token": csrf_of(client, "/settings/calendar")})
    with world.factory() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "calendar_feed")))
    assert actions == ["calendar_feed.create", "calendar_feed.rotate", "calendar_feed.revoke"]
