"""Console page of a program's payout schedule: saved in local terms, errors at the field, read-only for others."""

from __future__ import annotations

from partnerpay.auth.actor import SYSTEM
from partnerpay.payouts.models import PayoutSettings
from partnerpay.payouts.run import create_payout_run
from partnerpay.payouts.settings import write_settings
from tests.api.test_approval_console import add_staff
from tests.api.test_pages import World, csrf_of, login, world
from tests.integration.payout_helpers import approved_line

__all__ = ["world"]  # the fixture, imported so pytest finds it here


def test_finance_saves_a_twice_monthly_schedule_with_minimums(world: World) -> None:
    finance = add_staff(world, "money", "finance")
    path = f"/settings/program/{world.program_id}/payouts"
    page = finance.get(path)
    assert page.status_code == 200 and "Nothing saved yet" in page.text
    form = {
        "csrf_token": csrf_of(finance, path), "schedule": "twice_monthly", "day_of_month": "1", "second_day": "15",
        "weekday": "friday", "run_hour": "10", "timezone": "Europe/Berlin", "minimums": "EUR 50\nusd 49.99",
        "require_verified_method": "true",
    }  # fmt: skip
    saved = finance.post(path, data=form)
    assert saved.status_code == 200, saved.text
    assert "twice monthly on days 1 and 15 at 10:00 Europe/Berlin" in saved.text
    with world.factory() as s:
        row = s.get(PayoutSettings, world.program_id)
        assert row is not None
        assert (row.minimums, row.require_verified_method, row.require_tax_form, row.weekday) == (
            {"EUR": 5000, "USD": 4999}, True, False, None
        )  # fmt: skip


def test_a_bad_minimum_is_shown_at_its_field_and_nothing_is_saved(world: World) -> None:
    finance = add_staff(world, "money", "finance")
    path = f"/settings/program/{world.program_id}/payouts"
    form = {"csrf_token": csrf_of(finance, path), "schedule": "monthly", "day_of_month": "31", "minimums": "EUR fifty"}
    page = finance.post(path, data=form)
    assert page.status_code == 422 and 'id="f-minimums"' in page.text and "EUR fifty" in page.text
    with world.factory() as s:
        assert s.get(PayoutSettings, world.program_id) is None


def test_a_manager_reads_but_cannot_save(world: World) -> None:
    manager = add_staff(world, "mgr", "manager")
    path = f"/settings/program/{world.program_id}/payouts"
    page = manager.get(path)
    assert page.status_code == 200 and "needs the finance or owner role" in page.text
    refused = manager.post(path, data={"csrf_token": csrf_of(manager, path), "schedule": "manual"})
    assert refused.status_code == 403


def test_the_partner_sees_why_the_balance_carried_over(world: World) -> None:
    with world.factory() as s:
        body = {"schedule": "manual", "require_verified_method": False, "minimums": {"EUR": 1_000_000}}
        write_settings(s, actor=SYSTEM, program_id=world.program_id, now=world.clock.now(), data=body)
        approved_line(s, world.program_id, world.acme_id, 2_500, world.clock.now())
        create_payout_run(s, actor=SYSTEM, program_id=world.program_id, now=world.clock.now())
        s.commit()
    page = login(world.client(), "portal@acme.example", portal=True).get("/portal")
    assert page.status_code == 200
    assert "below the minimum payout of €10,000.00; it carries over to the next run." in page.text


def test_a_run_in_two_currencies_flashes_both_batches_with_their_totals(world: World) -> None:
    finance = add_staff(world, "money", "finance")
    with world.factory() as s:
        approved_line(s, world.program_id, world.acme_id, 2_500, world.clock.now(), currency="USD")
        approved_line(s, world.program_id, world.beta_id, 1_000, world.clock.now())
        s.commit()
    token = csrf_of(finance, "/payouts")
    page = finance.post("/payouts/runs", data={"csrf_token": token, "program_id": world.program_id})
    assert page.status_code == 200
    assert "made 2 draft batches" in page.text and "$25.00" in page.text
