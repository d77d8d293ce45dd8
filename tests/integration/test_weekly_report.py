"""The weekly report over a real SMTP server (aiosmtpd): sent once per week slot to the chosen staff and to
each partner, with inline PNG charts Pillow can open and the week's figures in the text."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.scheduler import PeriodicTask, Scheduler
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.preferences import set_preferences
from partnerpay.messaging.templates import NON_TRANSACTIONAL
from partnerpay.reports.schedule import write_schedule
from partnerpay.reports.weekly import PREFERENCE_KIND, change, weekly_due
from tests import factories
from tests.integration.test_smtp import BASE_URL, Inbox, plain_server, settings  # noqa: F401  (a fixture)
from tests.stats_rows import Rows

# Thursday 15 Jan 2026; the report goes out on Mondays at 08:00 in Berlin (07:00 UTC in winter).
MONDAY = datetime(2026, 1, 19, 7, 0, tzinfo=UTC)


def day(d: int, hour: int = 12) -> datetime:
    return datetime(2026, 1, d, hour, tzinfo=UTC)


def world(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    now = clock.now()
    with session_factory() as s:
        program = factories.program(s, now, name="Acme")
        ada = factories.partner(s, program, now, name="Ada Blog")
        bob = factories.partner(s, program, now, name="Bob Reviews")
        pm = create_staff_user(
            s, actor=SYSTEM, email="pm@example.com", role="manager", password="pw-123456789", now=now
        )
        create_staff_user(s, actor=SYSTEM, email="other@example.com", role="viewer", password="pw-123456789", now=now)
        rows = Rows(s)
        # This week (Mon 12 to Sun 18 Jan): Ada 5 clicks and 2 payments, Bob 3 clicks; the week before: 4 clicks.
        rows.click(program.id, ada.id, day(12), 3)
        rows.click(program.id, ada.id, day(18, 23), 2)
        rows.click(program.id, bob.id, day(14), 3)
        rows.click(program.id, ada.id, day(8), 4)
        rows.click(program.id, ada.id, day(19, 6), 7)  # the send day itself: not in the report
        rows.event(program.id, ada.id, "invoice_paid", day(13), customer="c1", amount=10_000, currency="EUR")
        rows.event(program.id, ada.id, "invoice_paid", day(15), customer="c2", amount=2_550, currency="EUR")
        rows.event(program.id, bob.id, "invoice_paid", day(9), customer="c3", amount=500, currency="EUR")
        write_schedule(
            s,
            actor=SYSTEM,
            program_id=program.id,
            data={"weekday": "monday", "hour": 8, "timezone": "Europe/Berlin", "staff_ids": [pm.id],
                  "send_to_partners": True},
            now=now,
        )  # fmt: skip
        s.commit()
        return {"program": program.id, "ada": ada.id, "bob": bob.id}


def by_recipient(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["To"]): m for m in messages}


class TestWeeklyReport:
    def test_sent_once_per_week_slot_with_inline_charts_and_the_weeks_figures(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        plain_server: tuple[Inbox, int],  # noqa: F811
    ) -> None:
        inbox, port = plain_server
        world(session_factory, clock)
        scheduler = Scheduler([PeriodicTask("reports.weekly", weekly_due)])
        worker = Worker(session_factory, build_registry(settings(database_url, port)), clock=clock, scheduler=scheduler)

        assert worker.run_periodic(force=True) == 0  # Thursday: the slot of this week was before the schedule
        clock.set(MONDAY - timedelta(minutes=1))
        assert worker.run_periodic(force=True) == 0
        clock.set(MONDAY + timedelta(minutes=2))
        assert worker.run_periodic(force=True) == 1
        worker.run_pending()
        worker.run_pending()  # the report job enqueued the emails; this sends them
        clock.set(MONDAY + timedelta(hours=3))
        assert worker.run_periodic(force=True) == 0  # the same week's slot is taken
        worker.run_pending()

        mail = by_recipient(inbox.messages)
        assert sorted(mail) == ["ada.blog@example.com", "bob.reviews@example.com", "pm@example.com"]
        staff = mail["pm@example.com"]
        assert staff["Subject"] == "Weekly report: Acme, 12 Jan to 18 Jan 2026"
        text = staff.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert [line.split()[1:] for line in text.splitlines() if line.startswith("Clicks")] == [
            ["8", "4", "+100.0", "%"]
        ]
        assert "€125.50" in text and "€5.00" in text  # revenue this week and last week
        assert "Ada Blog: €125.50, 2 conversions" in text
        assert f"{BASE_URL}/reports/programs/" in text
        html = staff.get_body(preferencelist=("html",))
        assert html is not None and 'src="cid:traffic"' in html.get_content()
        images = [p for p in staff.walk() if p.get_content_type() == "image/png"]
        assert {p["Content-ID"] for p in images} == {"<traffic>", "<money>"}
        for part in images:
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            with Image.open(io.BytesIO(data)) as image:
                assert image.format == "PNG" and image.size == (640, 240)

        bob = mail["bob.reviews@example.com"]
        bob_text = bob.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert bob["Subject"] == "Weekly report: Bob Reviews in Acme, 12 Jan to 18 Jan 2026"
        assert [line.split()[1:] for line in bob_text.splitlines() if line.startswith("Clicks")] == [["3", "0", "new"]]
        assert "Ada" not in bob_text and f"{BASE_URL}/portal" in bob_text

        clock.set(MONDAY + timedelta(days=7, minutes=1))
        assert worker.run_periodic(force=True) == 1  # next week's slot
        worker.run_pending()
        worker.run_pending()
        assert len(inbox.messages) == 6

    def test_a_disabled_schedule_sends_nothing(self, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
        ids = world(session_factory, clock)
        with session_factory() as s:
            write_schedule(s, actor=SYSTEM, program_id=ids["program"], data={"enabled": False}, now=clock.now())
            s.commit()
            assert weekly_due(s, MONDAY + timedelta(minutes=2)) == []


def test_the_weekly_report_is_a_kind_partners_can_turn_off() -> None:
    assert PREFERENCE_KIND in NON_TRANSACTIONAL


class TestOptOut:
    def test_a_partner_who_opted_out_gets_no_report(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        plain_server: tuple[Inbox, int],  # noqa: F811
    ) -> None:
        inbox, port = plain_server
        ids = world(session_factory, clock)
        with session_factory() as s:
            set_preferences(
                s, actor=SYSTEM, partner_id=ids["bob"], subscribed={PREFERENCE_KIND: False}, now=clock.now()
            )
            s.commit()
        scheduler = Scheduler([PeriodicTask("reports.weekly", weekly_due)])
        worker = Worker(session_factory, build_registry(settings(database_url, port)), clock=clock, scheduler=scheduler)
        clock.set(MONDAY + timedelta(minutes=2))
        assert worker.run_periodic(force=True) == 1
        worker.run_pending()
        assert sorted(by_recipient(inbox.messages)) == ["ada.blog@example.com", "pm@example.com"]


class TestChange:
    def test_changes_are_exact_and_rounded_half_even(self) -> None:
        assert change(8, 4) == "+100.0 %"
        assert change(1, 3) == "-66.7 %"
        assert change(0, 0) == "±0"
        assert change(5, 0) == "new"
        assert change(1001, 1000) == "+0.1 %"
        assert change(10005, 10000) == "+0.0 %"  # 0.05 % rounds half-even to 0.0
