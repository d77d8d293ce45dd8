"""Commission emails: "on hold until" for new lines (one sweep tells each line once, per partner and currency,
in the program's wording) and "approved" when a decision approves lines."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.events.schemas import EventType
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.line_notices import hold_notices, hold_notices_due
from partnerpay.messaging.templates import save_template
from tests import factories


def emails(session: Session) -> list[dict[str, str]]:
    jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send").order_by(OutboxJob.id))
    return [dict(j.payload) for j in jobs]


class TestHoldNotices:
    def test_new_lines_are_told_once_per_partner_and_currency(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now(), name="Acme Cloud", hold_days=30)
        ada = factories.partner(session, prog, clock.now(), "Ada")
        ben = factories.partner(session, prog, clock.now(), "Ben")
        for n in range(3):
            factories.event(session, prog, clock.now(), external_id=f"a{n}", customer=f"ca{n}", amount=10_000,
                            partner_id=ada.id)  # fmt: skip
        factories.event(session, prog, clock.now(), external_id="b0", customer="cb", amount=5_000, partner_id=ben.id)

        assert hold_notices(session, clock.now()) == 4
        mails = sorted(emails(session), key=lambda m: m["to"])
        assert [m["to"] for m in mails] == ["ada@example.com", "ben@example.com"]
        assert mails[0]["subject"] == "New commission of €60.00, on hold until 14 Feb 2026 (Acme Cloud)"
        assert "3 new commission(s)" in mails[0]["text"] and mails[0]["text"].count("- €20.00: ") == 3
        assert hold_notices(session, clock.now()) == 0  # told once
        assert len(emails(session)) == 2

    def test_refunds_are_not_news_and_the_programs_wording_is_used(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now(), name="Acme Cloud", hold_days=30)
        ada = factories.partner(session, prog, clock.now(), "Ada")
        save_template(session, actor=SYSTEM, program_id=prog.id, kind="commission.on_hold",
                      subject="Ka-ching: {amount} until {hold_until}", body="{explanation}",
                      now=clock.now())  # fmt: skip
        factories.event(session, prog, clock.now(), external_id="a0", customer="ca", amount=10_000, partner_id=ada.id)
        hold_notices(session, clock.now())
        factories.event(session, prog, clock.now(), external_id="r0", customer="ca", amount=10_000,
                        type=EventType.REFUND, original_external_id="a0")  # fmt: skip
        assert hold_notices(session, clock.now()) == 0
        (mail,) = emails(session)
        assert mail["subject"] == "Ka-ching: €20.00 until 14 Feb 2026"

    def test_lines_older_than_the_lookback_or_past_their_hold_are_left_alone(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now(), hold_days=30)
        ada = factories.partner(session, prog, clock.now(), "Ada")
        factories.event(session, prog, clock.now(), external_id="a0", customer="ca", amount=10_000, partner_id=ada.id)
        assert hold_notices(session, clock.now() + timedelta(days=3)) == 0

    def test_the_sweep_has_a_slot_every_five_minutes(self, session: Session, clock: FixedClock) -> None:
        slots = {hold_notices_due(session, clock.now() + timedelta(minutes=m))[0].slot for m in range(10)}
        assert slots == {"2026-01-15T12:00", "2026-01-15T12:05"}


class TestApproved:
    def test_approving_emails_each_partner_once_with_the_total(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now(), name="Acme Cloud")
        ada = factories.partner(session, prog, clock.now(), "Ada")
        ids = []
        for n in range(2):
            lines = factories.event(session, prog, clock.now(), external_id=f"a{n}", customer=f"c{n}", amount=10_000,
                                    partner_id=ada.id)  # fmt: skip
            ids += [line.id for line in lines]
        approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
        (mail,) = [m for m in emails(session) if "approved" in m["subject"]]
        assert mail["subject"] == "2 commission(s) approved: €40.00 (Acme Cloud)" and mail["to"] == "ada@example.com"
        assert "unsubscribe" not in mail  # money mail always goes
