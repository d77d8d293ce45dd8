"""Google Calendar against a loopback server speaking Google's OAuth token endpoint and Calendar API v3:
consent with PKCE from the console, the code exchanged by a job (never in the request), events inserted with
deterministic ids, patched when an item changes, deleted when it goes; 401 → refresh → retry, a retried insert
after a lost answer makes no duplicate, 404/410 on delete are done, a revoked grant stops the sync."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.calendars.models import GoogleCalendarEvent, GoogleCalendarLink
from partnerpay.deals.service import move_deal
from partnerpay.inbox.models import ProgramIntegration
from partnerpay.integrations.google_calendar import event_id_for
from partnerpay.integrations.settings_store import put_integration
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.payouts.settings import write_settings
from partnerpay.settings import Settings
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, staff
from tests.integration.google_calendar_fake import FakeGoogle, running
from tests.integration.test_calendar_feed import make_deal

world = test_pages.world
CALENDAR = "team@example.com"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with running(FakeGoogle()) as fake:
        yield fake


@pytest.fixture
def settings(world: World, google: FakeGoogle, database_url: str) -> Settings:
    """The app's and the worker's settings, with Google's endpoints on the loopback server."""
    current: Settings = world.app.state.settings
    updated = current.model_copy(
        update={
            "google_oauth_authorize_url": f"{google.url}/o/oauth2/v2/auth",
            "google_oauth_token_url": f"{google.url}/token",
            "google_calendar_api_url": f"{google.url}/calendar/v3",
        }
    )
    world.app.state.settings = updated
    return updated


@pytest.fixture
def worker(world: World, settings: Settings) -> Worker:
    return Worker(world.factory, build_registry(settings), clock=world.clock)


def configure(w: World, google: FakeGoogle) -> None:
    with w.factory() as s:
        put_integration(
            s,
            actor=SYSTEM,
            box=w.app.state.secret_box,
            program_id=w.program_id,
            provider="google_calendar",
            body={"client_id": google.client_id, "client_secret": google.client_secret, "calendar_id": CALENDAR},
            now=w.clock.now(),
        )
        write_settings(
            s, actor=SYSTEM, program_id=w.program_id, data={"schedule": "monthly", "day_of_month": 1}, now=w.clock.now()
        )
        s.commit()


def consent(w: World, google: FakeGoogle, client: TestClient) -> Any:
    """Connect from Settings > Calendar, "grant" on the fake consent screen, come back to the callback."""
    token = csrf_of(client, "/settings/calendar")
    answer = client.post(
        f"/settings/calendar/google/{w.program_id}/connect", data={"csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    location = urlsplit(answer.headers["location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{google.url}/o/oauth2/v2/auth"
    assert query["client_id"] == google.client_id and query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline" and query["response_type"] == "code" and "calendar" in query["scope"]
    assert query["redirect_uri"].endswith("/integrations/google-calendar/callback")
    code = google.grant(query["code_challenge"])
    return client.get(
        "/integrations/google-calendar/callback", params={"state": query["state"], "code": code}, follow_redirects=False
    )


@pytest.fixture
def connected(world: World, google: FakeGoogle, settings: Settings, worker: Worker) -> dict[str, str]:
    configure(world, google)
    deal = make_deal(world, world.acme_id, "Zeta")
    back = consent(world, google, staff(world, "manager"))
    assert back.status_code == 303 and back.headers["location"] == "/settings/calendar"
    worker.run_pending()  # connect, then the first sync it queues
    return {"deal": deal}


def jobs(w: World, kind: str) -> list[OutboxJob]:
    with w.factory() as s:
        return list(s.scalars(select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.created_at)))


def sync(w: World, worker: Worker) -> None:
    client = staff(w, "manager")
    answer = client.post(
        f"/settings/calendar/google/{w.program_id}/sync",
        data={"csrf_token": csrf_of(client, "/settings/calendar")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    worker.run_pending()


class TestConnect:
    def test_the_callback_only_queues_the_exchange(self, world: World, google: FakeGoogle, settings: Settings) -> None:
        configure(world, google)
        back = consent(world, google, staff(world, "manager"))
        assert back.status_code == 303
        assert google.requests == []  # no HTTP call to Google inside the request
        [job] = jobs(world, "google_calendar.connect")
        assert "code" not in job.payload and job.payload == {"program_id": world.program_id}

    def test_the_job_exchanges_the_code_with_pkce_and_seals_the_refresh_token(
        self, world: World, google: FakeGoogle, connected: dict[str, str]
    ) -> None:
        exchange = google.calls("POST")[0]
        assert exchange.path == "/token" and exchange.content_type == "application/x-www-form-urlencoded"
        assert exchange.body["grant_type"] == "authorization_code" and len(exchange.body["code_verifier"]) >= 43
        [refresh] = google.refresh_tokens
        with world.factory() as s:
            link = s.get(GoogleCalendarLink, world.program_id)
            assert link is not None and link.status == "connected"
            sealed = s.scalar(select(ProgramIntegration.sealed).where(ProgramIntegration.provider == "google_calendar"))
            assert sealed and refresh not in sealed and refresh not in link.sealed
        shown = staff(world, "viewer").get(f"/api/v1/programs/{world.program_id}/integrations/google_calendar")
        assert shown.json()["refresh_token"].startswith("••••") and refresh not in shown.text

    def test_a_used_state_is_refused(self, world: World, google: FakeGoogle, settings: Settings) -> None:
        configure(world, google)
        client = staff(world, "manager")
        assert consent(world, google, client).status_code == 303
        again = client.get("/integrations/google-calendar/callback", params={"state": "forged", "code": "4/x"})
        assert again.status_code == 404 and "connect again" in again.text

    def test_a_viewer_can_neither_ask_nor_finish_the_consent(
        self, world: World, google: FakeGoogle, settings: Settings
    ) -> None:
        configure(world, google)
        viewer = staff(world, "viewer")
        token = csrf_of(viewer, "/settings/calendar")
        asked = viewer.post(f"/settings/calendar/google/{world.program_id}/connect", data={"csrf_token": token})
        assert asked.status_code == 403 and "write" in asked.text
        manager = staff(world, "manager")
        token = csrf_of(manager, "/settings/calendar")
        answer = manager.post(
            f"/settings/calendar/google/{world.program_id}/connect", data={"csrf_token": token}, follow_redirects=False
        )
        state = parse_qs(urlsplit(answer.headers["location"]).query)["state"][0]
        finished = viewer.get("/integrations/google-calendar/callback", params={"state": state, "code": "4/x"})
        assert finished.status_code == 403 and jobs(world, "google_calendar.connect") == []


class TestSync:
    def test_items_become_events_with_deterministic_ids_and_the_documented_shape(
        self, world: World, google: FakeGoogle, connected: dict[str, str]
    ) -> None:
        events = google.events(CALENDAR)
        follow_up = event_id_for(world.program_id, f"deal-follow-up-{connected['deal']}")
        assert follow_up in events and len(events) == 4  # three payout runs and the follow-up
        inserts = [r for r in google.calls("POST") if r.path.endswith("/events")]
        assert len(inserts) == 4
        for r in inserts:
            assert r.path == "/calendar/v3/calendars/team%40example.com/events"  # the calendar id URL-encoded
            assert r.authorization and r.authorization.startswith("Bearer ya29.")
            assert r.query == {"sendUpdates": ["none"]}
            assert set(r.body["id"]) <= set("0123456789abcdefghijklmnopqrstuv") and 5 <= len(r.body["id"]) <= 1024
        run = next(r.body for r in inserts if "Payout run" in r.body["summary"])
        assert run["start"] == {"dateTime": "2026-02-01T09:00:00+00:00", "timeZone": "UTC"}
        assert run["end"]["dateTime"] == "2026-02-01T09:30:00+00:00"
        deal = next(r.body for r in inserts if r.body["id"] == follow_up)
        assert deal["start"] == {"date": "2026-01-18"} and deal["end"] == {"date": "2026-01-19"}  # end exclusive

    def test_a_sync_without_changes_sends_nothing_and_a_change_is_one_patch(
        self, world: World, google: FakeGoogle, connected: dict[str, str], worker: Worker
    ) -> None:
        before = len(google.requests)
        sync(world, worker)
        assert len(google.requests) == before
        with world.factory() as s:
            move_deal(s, actor=SYSTEM, deal_id=connected["deal"], stage="demo", now=world.clock.now())
            s.commit()
        sync(world, worker)
        [patch] = google.requests[before:]
        assert patch.method == "PATCH" and patch.path.endswith(
            event_id_for(world.program_id, f"deal-follow-up-{connected['deal']}")
        )
        assert "stage demo" in patch.body["description"]

    def test_a_closed_deal_is_deleted_and_gone_is_done(
        self, world: World, google: FakeGoogle, connected: dict[str, str], worker: Worker
    ) -> None:
        event_id = event_id_for(world.program_id, f"deal-follow-up-{connected['deal']}")
        del google.calendars[CALENDAR][event_id]  # someone deleted it in Google already: DELETE gets 404
        with world.factory() as s:
            move_deal(
                s, actor=SYSTEM, deal_id=connected["deal"], status="lost", reason="no budget", now=world.clock.now()
            )
            s.commit()
        sync(world, worker)
        assert [r.method for r in google.requests[-1:]] == ["DELETE"]
        with world.factory() as s:
            row = s.scalar(select(GoogleCalendarEvent).where(GoogleCalendarEvent.event_id == event_id))
            assert row is not None and row.state == "deleted"
        assert [j.status for j in jobs(world, "google_calendar.sync")][-1] == "done"

    def test_an_expired_token_is_refreshed_once_and_the_call_retried(
        self, world: World, google: FakeGoogle, connected: dict[str, str], worker: Worker
    ) -> None:
        google.expire_access_tokens()
        with world.factory() as s:
            move_deal(s, actor=SYSTEM, deal_id=connected["deal"], stage="demo", now=world.clock.now())
            s.commit()
        before = len(google.requests)
        sync(world, worker)
        shapes = [
            (r.method, r.path.rsplit("/", 1)[-1] if r.path == "/token" else "event") for r in google.requests[before:]
        ]
        assert shapes == [("PATCH", "event"), ("POST", "token"), ("PATCH", "event")]
        refresh = google.requests[before + 1]
        assert refresh.body["grant_type"] == "refresh_token" and refresh.body["refresh_token"] in google.refresh_tokens
        assert google.requests[before + 2].authorization != google.requests[before].authorization

    def test_a_retried_insert_after_a_lost_answer_makes_no_duplicate(
        self, world: World, google: FakeGoogle, settings: Settings, worker: Worker
    ) -> None:
        configure(world, google)
        consent(world, google, staff(world, "manager"))
        google.lose_next_answer = True  # the first insert is stored, its answer lost
        worker.run_pending()
        [job] = jobs(world, "google_calendar.sync")
        assert job.status == "pending" and job.attempts == 1  # retried later with a backoff
        world.clock.advance(timedelta(hours=1))
        worker.run_pending()
        assert jobs(world, "google_calendar.sync")[0].status == "done"
        conflicts = [r for r in google.calls("POST") if r.path.endswith("/events")]
        assert len(google.events(CALENDAR)) == 3  # three payout runs, each once
        assert len(conflicts) == 4  # the first try stopped at its lost answer; the retry made three, one a 409
        assert [r.method for r in google.requests if r.method == "PATCH"] == ["PATCH"]  # the 409 was patched

    def test_a_revoked_grant_stops_the_sync_and_asks_to_connect_again(
        self, world: World, google: FakeGoogle, connected: dict[str, str], worker: Worker
    ) -> None:
        google.refresh_tokens.clear()
        google.expire_access_tokens()
        with world.factory() as s:
            move_deal(s, actor=SYSTEM, deal_id=connected["deal"], stage="demo", now=world.clock.now())
            s.commit()
        sync(world, worker)
        assert jobs(world, "google_calendar.sync")[-1].status == "done"  # nothing to retry: a person must act
        with world.factory() as s:
            link = s.get(GoogleCalendarLink, world.program_id)
            assert link is not None and link.status == "failed"
        page = staff(world, "viewer").get("/settings/calendar")
        assert "invalid_grant" in page.text and "connect Google Calendar again" in page.text
        before = len(google.requests)
        sync_job = staff(world, "manager")
        refused = sync_job.post(
            f"/settings/calendar/google/{world.program_id}/sync",
            data={"csrf_token": csrf_of(sync_job, "/settings/calendar")},
        )
        assert refused.status_code == 422 and len(google.requests) == before


def test_a_payout_run_that_took_place_stays_and_the_next_one_is_added(
    world: World, google: FakeGoogle, connected: dict[str, str], worker: Worker
) -> None:
    world.clock.advance(timedelta(days=17, hours=1))  # 1 Feb 2026 13:00 UTC: the February run took place
    sync(world, worker)
    events = google.events(CALENDAR)
    feb = event_id_for(world.program_id, f"payout-run-{world.program_id}-20260201T0900Z")
    may = event_id_for(world.program_id, f"payout-run-{world.program_id}-20260501T0900Z")
    assert feb in events and may in events  # history kept, the next run added
    assert not [r for r in google.requests if r.method == "DELETE" and r.path.endswith(feb)]
