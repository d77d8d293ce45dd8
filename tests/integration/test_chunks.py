"""Look-ups that go through db/chunks.in_chunks find rows in every chunk, the last short one included."""

from __future__ import annotations

from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.db.chunks import IN_LIST_SIZE
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.preferences import opted_out, set_preferences
from tests import factories

WEEKLY = "report.weekly"  # a kind a partner may turn off


class TestOptedOut:
    def test_partners_past_the_first_chunks_are_found(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        people = [factories.partner(session, prog, clock.now(), name=f"Partner {n}") for n in range(3)]
        for p in people[:2]:
            set_preferences(session, actor=SYSTEM, partner_id=p.id, subscribed={WEEKLY: False}, now=clock.now())
        session.flush()
        # Unknown ids sort before the real ones ("a…" < "ptn_…"): the real ones land in the third, short chunk.
        unknown = [f"a{n:05d}" for n in range(2 * IN_LIST_SIZE)]

        found = opted_out(session, WEEKLY, unknown + [p.id for p in people])

        assert found == {people[0].id, people[1].id}
