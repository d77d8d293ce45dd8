"""Payout schedule over HTTP: set and read, errors at the field, roles, carried-over reasons with the balance."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.payouts.run import create_payout_run
from tests.api.conftest import Api
from tests.integration.payout_helpers import approved_line


def put(api: Api, program: str, body: dict[str, Any], key: str | None = None) -> Any:
    return api.client.put(f"/api/v1/programs/{program}/payout-schedule", json=body, headers=api.headers(key))


class TestPayoutSchedule:
    def test_unset_is_manual_then_a_monthly_schedule_with_minimums(self, api: Api) -> None:
        program = api.program()["id"]
        got = api.get(f"/programs/{program}/payout-schedule").json()
        assert (got["schedule"], got["configured"], got["require_verified_method"]) == ("manual", False, False)
        body = {"schedule": "monthly", "day_of_month": 31, "timezone": "Europe/Berlin", "minimums": {"EUR": 5000}}
        response = put(api, program, body)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["next_run_at"] == "2026-01-31T08:00:00+00:00"  # T0 is 15 Jan 2026
        assert (data["minimums"], data["require_verified_method"], data["require_tax_form"]) == (
            {"EUR": 5000}, True, False
        )  # fmt: skip
        assert api.get(f"/programs/{program}/payout-schedule").json() == data

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"schedule": "yearly"}, "schedule"),
            ({"schedule": "weekly"}, "weekday"),
            ({"schedule": "monthly", "day_of_month": 0}, "day_of_month"),
            ({"schedule": "net", "net_days": 10, "timezone": "Nowhere/City"}, "timezone"),
            ({"schedule": "manual", "minimums": {"EUR": -1}}, "minimums.EUR"),
            ({"schedule": "manual", "minimums": {"EURO": 1}}, "minimums.EURO"),
            ({"schedule": "manual", "minimums": {"EUR": 10.5}}, "minimums.EUR"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, api: Api, body: dict[str, Any], field: str) -> None:
        program = api.program()["id"]
        response = put(api, program, body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    def test_only_finance_sets_it_and_other_programs_are_404(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()["id"]
        other = api.program(name="Other")["id"]
        writer = api.key_for(session_factory, scopes=["read", "write"])
        assert put(api, program, {"schedule": "manual"}, key=writer).status_code == 403
        scoped = api.key_for(session_factory, scopes=["read", "write", "payouts"], program_id=program)
        assert put(api, other, {"schedule": "manual"}, key=scoped).status_code == 404
        assert api.get(f"/programs/{other}/payout-schedule", key=scoped).status_code == 404


def test_the_balance_says_why_money_carried_over(api: Api, session_factory: sessionmaker[Session]) -> None:
    program = api.program()["id"]
    partner = api.partner(program)["id"]
    assert put(api, program, {"schedule": "manual", "minimums": {"EUR": 5000}, "require_verified_method": False})
    with session_factory() as s:
        approved_line(s, program, partner, 3_000, api.clock.now())
        create_payout_run(s, actor=SYSTEM, program_id=program, now=api.clock.now())
        s.commit()
    balance = api.get(f"/partners/{partner}/balance").json()
    assert balance["carried_over"][0]["reason"] == "below_minimum"
    assert balance["carried_over_reason"] == (
        "€30.00 not paid yet: below the minimum payout of €50.00; it carries over to the next run."
    )
    assert api.get(f"/partners/{partner}/carried-over").json()["data"][0]["minimum"] == 5000
    currency = api.client.put(f"/api/v1/partners/{partner}/payout-currency", json={"currency": "USD"},
                              headers=api.headers())  # fmt: skip
    assert currency.status_code == 200 and currency.json() == {"partner_id": partner, "currency": "USD"}


def test_a_run_answers_batches_and_totals_per_currency(api: Api, session_factory: sessionmaker[Session]) -> None:
    program = api.program()["id"]
    partner = api.partner(program)["id"]
    with session_factory() as s:
        approved_line(s, program, partner, 3_000, api.clock.now())
        approved_line(s, program, partner, 2_000, api.clock.now(), currency="USD")
        s.commit()
    run = api.post("/payout-runs", {"program_id": program}).json()
    assert run["totals"] == {"EUR": 3_000, "USD": 2_000}
    assert sorted((b["currency"], b["total"], b["payout_count"]) for b in run["batches"]) == [
        ("EUR", 3_000, 1), ("USD", 2_000, 1)
    ]  # fmt: skip
    batch = api.get(f"/payout-batches/{run['batches'][1]['id']}").json()
    assert batch["payouts"][0]["source_amount"] == 2_000 and batch["scheduled_for"] is None
