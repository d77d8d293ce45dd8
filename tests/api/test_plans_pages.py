"""The plans console pages: the list with status and versions, a plan's rules in plain language and its
assignments, and the Publish button (overlapping rules refused in words, nothing published)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.models import PlanVersion
from partnerpay.plans.service import create_plan, publish
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world


def plan(world: World, name: str, rules: list[dict[str, Any]]) -> str:
    with world.factory() as s:
        created, _ = create_plan(
            s, actor=SYSTEM, program_id=world.program_id, name=name, rules=rules, now=world.clock.now()
        )
        assign_plan(
            s, actor=SYSTEM, plan_id=created.id, scope="partner", target_id=world.acme_id, reason="launch partner",
            now=world.clock.now(),
        )  # fmt: skip
        s.commit()
        return created.id


class TestPlanPages:
    def test_the_list_and_the_plan_page_show_rules_in_plain_language(self, world: World) -> None:
        plan_id = plan(world, "Standard", [{"trigger": "invoice_paid", "percent_bp": 2000, "recurring_months": 12}])
        client = staff(world, "viewer")
        listed = client.get("/plans")
        assert listed.status_code == 200 and "Standard" in listed.text and 'href="/plans"' in listed.text
        page = client.get(f"/plans/{plan_id}")
        assert page.status_code == 200
        assert "Rule 1: 20 % of the amount on invoice_paid, for 12 months from the first payment." in page.text
        assert "Acme Media" in page.text and "launch partner" in page.text
        assert "Publish version 1" not in page.text  # a viewer cannot publish
        assert "waiting for publish" in page.text  # assigned, but a draft pays nobody

    def test_publishing_from_the_console_and_an_overlap_refused_in_words(self, world: World) -> None:
        rules = [{"trigger": "signup", "flat": 500}, {"trigger": "signup", "flat": 700}]
        plan_id = plan(world, "Signups", rules)
        client = staff(world, "manager")
        token = csrf_of(client, f"/plans/{plan_id}")
        refused = client.post(f"/plans/{plan_id}/publish", data={"csrf_token": token})
        assert refused.status_code == 422
        assert "rules 1 and 2 both pay on signup; give one a higher priority" in refused.text
        with world.factory() as s:
            assert s.scalars(select(PlanVersion.status).where(PlanVersion.plan_id == plan_id)).one() == "draft"
        ok_id = plan(world, "Simple", [{"trigger": "signup", "flat": 500}])
        done = client.post(f"/plans/{ok_id}/publish", data={"csrf_token": token})
        assert done.status_code == 200 and "Version 1 is published" in done.text


def test_the_list_names_the_programs_default_rate(world: World) -> None:
    assert "default rate 20 %" in staff(world, "viewer").get("/plans").text


def test_an_older_program_assignment_shows_as_superseded(world: World) -> None:
    ids = []
    for name in ("Old", "New"):
        with world.factory() as s:
            created, _ = create_plan(
                s, actor=SYSTEM, program_id=world.program_id, name=name, rules=[{"trigger": "signup", "flat": 500}],
                now=world.clock.now(),
            )  # fmt: skip
            publish(s, actor=SYSTEM, plan_id=created.id, now=world.clock.now())
            assign_plan(s, actor=SYSTEM, plan_id=created.id, scope="program", now=world.clock.now())
            s.commit()
            ids.append(created.id)
        world.clock.advance(timedelta(minutes=1))
    client = staff(world, "viewer")
    assert "superseded" in client.get(f"/plans/{ids[0]}").text
    assert "superseded" not in client.get(f"/plans/{ids[1]}").text
