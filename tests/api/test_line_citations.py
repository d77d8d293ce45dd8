"""Which plan rule made a line, in the API (GET /commissions, POST /events), and each line's status with its
date on the partner portal (payable from …, approved …, paid on …)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.service import create_plan, publish
from partnerpay.web.portal.queries import PayoutRef, status_text
from tests.api.conftest import Api
from tests.api.test_pages import World, login, world

__all__ = ["world"]


def on_plan(session_factory: sessionmaker[Session], program_id: str, at: datetime) -> tuple[str, str]:
    rules = [{"trigger": "signup", "flat": 5000}, {"trigger": "invoice_paid", "percent_bp": 2500}]
    with session_factory() as s:
        plan, _ = create_plan(s, actor=SYSTEM, program_id=program_id, name="Standard", rules=rules, now=at)
        version = publish(s, actor=SYSTEM, plan_id=plan.id, now=at)
        assign_plan(s, actor=SYSTEM, plan_id=plan.id, scope="program", now=at, effective_from=at - timedelta(days=1))
        s.commit()
        return plan.id, version.id


def event(api: Api, program: dict[str, Any], external_id: str, **fields: Any) -> Any:
    body = {
        "program_id": program["id"],
        "type": "invoice_paid",
        "external_id": external_id,
        "occurred_at": api.clock.now().isoformat(),
        "customer_external_id": "cus-1",
        **fields,
    }
    response = api.post("/events", body)
    assert response.status_code == 201, response.text
    return response.json()


class TestLineCitations:
    def test_a_plan_line_names_its_plan_version_and_rule_and_a_default_rate_line_names_none(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        [default] = event(api, program, "in0", amount=10_000, currency="EUR", partner_id=partner["id"])["commissions"]
        assert (default["amount"], default["plan_version_id"], default["rule_number"], default["plan_name"]) == (
            2000,
            None,
            None,
            None,
        )
        plan_id, version_id = on_plan(session_factory, program["id"], api.clock.now())
        [signup] = event(api, program, "su1", type="signup", customer_external_id="cus-2", partner_id=partner["id"])[
            "commissions"
        ]
        [paid] = event(api, program, "in1", amount=10_000, currency="EUR")["commissions"]
        cited = {
            "plan_version_id": version_id,
            "plan_id": plan_id,
            "plan_name": "Standard",
            "plan_version": 1,
        }
        assert signup == {**signup, **cited, "rule_number": 1, "amount": 5000}
        assert paid == {**paid, **cited, "rule_number": 2, "amount": 2500}
        listed = {x["id"]: x for x in api.get("/commissions", program_id=program["id"]).json()["data"]}
        # The list adds each line's approval state (pending_since, overdue, …: docs/api-approvals.md) to the fields.
        assert paid.items() <= listed[paid["id"]].items() and signup.items() <= listed[signup["id"]].items()
        assert listed[default["id"]]["plan_id"] is None


T = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def line(**kw: Any) -> CommissionLine:
    base: dict[str, Any] = {"amount": 2400, "status": "pending", "hold_until": T + timedelta(days=9)}
    return CommissionLine(**{**base, **kw})


class TestStatusText:
    def test_each_status_says_its_date(self) -> None:
        ref = PayoutRef("pay_1", "bat_1", "paid", T + timedelta(days=12))
        assert status_text(line(), None, T) == "pending approval; payable from 12 Mar 2026"
        assert status_text(line(hold_until=T), None, T) == "pending approval"
        approved = line(status="approved", approved_at=T)
        assert status_text(approved, None, T) == "approved 3 Mar 2026; payable from 12 Mar 2026"
        assert status_text(approved, None, T + timedelta(days=10)) == "approved 3 Mar 2026; payable now"
        assert status_text(line(status="in_batch"), ref, T) == "in payout pay_1"
        assert status_text(line(status="paid"), ref, T) == "paid on 15 Mar 2026"
        assert status_text(line(status="paid", amount=-500), ref, T) == "netted on 15 Mar 2026"
        assert status_text(line(status="rejected"), None, T) == "rejected"


class TestPortal:
    def test_the_portal_shows_each_lines_status_with_its_date_as_it_moves(self, world: World) -> None:
        partner = login(world.client(), "portal@acme.example", portal=True)
        row = f'id="line-{world.acme_line}"'

        def status() -> str:
            text: str = partner.get("/portal").text
            cell = text[text.index(row) :].split('data-label="Status">', 1)[1].split("</td>", 1)[0]
            return cell.split('<small class="muted nowrap">', 1)[1].split("</small>", 1)[0]

        assert status() == "pending approval; payable from 14 Feb 2026"  # 30 hold days from 15 Jan
        with world.factory() as s:
            approve_lines(s, actor=SYSTEM, ids=[world.acme_line], now=world.clock.now())
            s.commit()
        assert status() == "approved 15 Jan 2026; payable from 14 Feb 2026"
        world.clock.advance(timedelta(days=31))
        assert status() == "approved 15 Jan 2026; payable now"
        with world.factory() as s:
            run = create_payout_run(s, actor=SYSTEM, program_id=world.program_id, now=world.clock.now())
            assert run.batch is not None and len(run.payouts) == 1
            s.commit()
            payout_id, batch_id = run.payouts[0].id, run.batch.id
        assert status() == f"in payout {payout_id}"
        with world.factory() as s:
            approve_batch(s, actor=SYSTEM, batch_id=batch_id, now=world.clock.now())
            mark_batch_paid(s, actor=SYSTEM, batch_id=batch_id, now=world.clock.now())
            s.commit()
        assert status() == "paid on 15 Feb 2026"
