"""POST /api/v1/partners/{id}/recalculate: a dry run says what would change, the real run reverses and re-creates
once, and only finance-grade callers of the partner's own program may ask."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.commissions.models import CommissionLine
from partnerpay.ledger.verify import verify
from tests import factories
from tests.api.conftest import Api
from tests.integration.test_recalculate import T0, late_tier_story


def story(factory: sessionmaker[Session]) -> tuple[str, str, str]:
    """(program id, partner id, the line of in1 a late invoice lifts to the next tier)."""
    with factory() as s:
        program = factories.program(s, T0, hold_days=30, default_percent_bp=1000)
        partner = factories.partner(s, program, T0, name="Acme")
        made = late_tier_story(s, program, partner)
        s.commit()
        return program.id, partner.id, made["in1"].id


def line_count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(CommissionLine)) or 0)


class TestRecalculateApi:
    def test_a_dry_run_then_the_run_then_a_rerun_that_changes_nothing(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        _, partner_id, old = story(session_factory)
        lines = line_count(session_factory)
        body = {"since": "2026-01-06T09:00:00Z", "dry_run": True}
        dry = api.post(f"/partners/{partner_id}/recalculate", body)
        assert dry.status_code == 200, dry.text
        got = dry.json()
        assert (got["dry_run"], got["changed"], got["events"], got["start"]) == (
            True,
            True,
            4,
            "2026-01-01T00:00:00Z",
        )
        assert [(r["original"]["id"], r["reversal"]) for r in got["reversed"]] == [(old, None)]
        assert [(x["kind"], x["amount"]) for x in got["created"]] == [("commission", 3000)]
        assert line_count(session_factory) == lines

        real = api.post(f"/partners/{partner_id}/recalculate", {"since": "2026-01-06T09:00:00Z"}).json()
        [item] = real["reversed"]
        assert (item["original"]["id"], item["reversal"]["amount"], item["reversal"]["reverses_line_id"]) == (
            old,
            -1000,
            old,
        )
        assert [(x["kind"], x["amount"], x["status"]) for x in real["created"]] == [("commission", 3000, "pending")]
        assert line_count(session_factory) == lines + 2
        again = api.post(f"/partners/{partner_id}/recalculate", {}).json()
        assert (again["changed"], again["reversed"], again["created"]) == (False, [], [])
        with session_factory() as s:
            assert verify(s).ok

    def test_another_programs_key_gets_404_a_reader_403_and_a_naive_since_422(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        _, partner_id, _ = story(session_factory)
        other = api.program(name="Other")
        foreign = api.key_for(session_factory, program_id=other["id"])
        reader = api.key_for(session_factory, scopes=["read"])
        path = f"/partners/{partner_id}/recalculate"
        assert api.post(path, {}, key=foreign).status_code == 404
        assert api.post("/partners/ptn_missing/recalculate", {}).status_code == 404
        refused = api.post(path, {}, key=reader)
        assert refused.status_code == 403 and refused.json()["error"]["code"]
        naive = api.post(path, {"since": "2026-01-06T09:00:00"})
        assert naive.status_code == 422 and naive.json()["error"]["field"].endswith("since")
        assert api.post(path, {"dry_run": "yes"}).status_code == 422
