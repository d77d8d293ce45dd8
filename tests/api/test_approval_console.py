"""Console pages of approval policies: the policy form, the approvals queue (overdue badge, awaiting a second
approval, "all matching" with a confirmation), and the batch page's second approval."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.approvals.models import ApprovalPolicy
from partnerpay.approvals.policy import put_policy
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.decisions import approve_lines
from partnerpay.payouts.models import PayoutBatch
from partnerpay.payouts.service import create_payout_run
from tests.api.test_pages import PASSWORD, World, csrf_of, login, staff, world
from tests.conftest import T0

__all__ = ["world"]  # the fixture, imported so pytest finds it here


def add_staff(w: World, name: str, role: str) -> TestClient:
    with w.factory() as s:
        create_staff_user(s, actor=SYSTEM, email=f"{name}@example.com", role=role, password=PASSWORD, now=T0)
        s.commit()
    return login(w.client(), f"{name}@example.com")


def set_policy(w: World, **values: object) -> None:
    with w.factory() as s:
        put_policy(s, actor=SYSTEM, program_id=w.program_id, raw=values, now=w.clock.now())
        s.commit()


class TestPolicyPage:
    def test_the_owner_saves_amounts_in_major_units_exactly(self, world: World) -> None:
        owner = add_staff(world, "boss", "owner")
        path = f"/settings/program/{world.program_id}/approvals"
        page = owner.get(path)
        assert page.status_code == 200 and "No policy saved yet" in page.text
        token = csrf_of(owner, path)
        form = {
            "csrf_token": token,
            "approver_roles": ["finance", "owner", "manager"],
            "second_approval_above": "1,000.50",
            "batch_second_approval_above": "5000",
            "auto_approve_below": "",
            "sla_days": "3",
        }
        saved = owner.post(path, data=form)
        assert saved.status_code == 200 and "Approval policy saved" in saved.text
        with world.factory() as s:
            row = s.get(ApprovalPolicy, world.program_id)
            assert row is not None
            assert (row.second_approval_above, row.batch_second_approval_above, row.auto_approve_below) == (
                100_050,
                500_000,
                None,
            )
            assert row.sla_days == 3 and sorted(row.approver_roles) == ["finance", "manager", "owner"]
        assert 'value="1000.50"' in owner.get(path).text

    def test_bad_amounts_are_named_and_nothing_is_saved(self, world: World) -> None:
        owner = add_staff(world, "boss", "owner")
        path = f"/settings/program/{world.program_id}/approvals"
        token = csrf_of(owner, path)
        for field, value, words in (
            ("second_approval_above", "12.345", "2 decimal places"),
            ("second_approval_above", "12e3", "write an amount like"),
            ("sla_days", "1.5", "whole number of days"),
        ):
            form = {"csrf_token": token, "approver_roles": ["finance"], field: value}
            response = owner.post(path, data=form)
            assert response.status_code == 422 and words in response.text, (field, value)
            assert 'aria-invalid="true"' in response.text
        no_roles = owner.post(path, data={"csrf_token": token})
        assert no_roles.status_code == 422 and "approver_roles" in no_roles.text
        with world.factory() as s:
            assert s.get(ApprovalPolicy, world.program_id) is None

    def test_finance_reads_it_but_cannot_change_it(self, world: World) -> None:
        client = staff(world, "finance")
        path = f"/settings/program/{world.program_id}/approvals"
        page = client.get(path)
        assert "changing it needs the owner role" in page.text and "Save approval policy" not in page.text
        response = client.post(path, data={"csrf_token": csrf_of(client, path), "approver_roles": ["finance"]})
        assert response.status_code == 403
        missing_csrf = client.post(path, data={"approver_roles": ["finance"]})
        assert missing_csrf.status_code == 403


class TestQueue:
    def test_overdue_lines_have_a_badge_and_a_filter(self, world: World) -> None:
        set_policy(world, sla_days=2)
        world.clock.advance(timedelta(days=2, hours=1))
        fresh = world.invoice(world.acme_id, "inv_new", 10_000)
        client = staff(world, "finance")
        page = client.get("/commissions").text
        row = re.search(rf'<tr id="line-{world.acme_line}".*?</tr>', page, re.S)
        assert row and "badge-overdue" in row.group(0)
        fresh_row = re.search(rf'<tr id="line-{fresh}".*?</tr>', page, re.S)
        assert fresh_row and "badge-overdue" not in fresh_row.group(0)
        only = client.get("/commissions?overdue=1").text
        assert world.acme_line in only and world.beta_line in only and fresh not in only
        assert 'id="f-overdue" name="overdue" value="1" checked' in only

    def test_a_first_approval_above_the_limit_says_it_awaits_a_second(self, world: World) -> None:
        set_policy(world, second_approval_above=10_000)  # acme's line is €240.00
        finance = staff(world, "finance")
        token = csrf_of(finance, "/commissions")
        response = finance.post("/commissions/approve", data={"ids": [world.acme_line], "csrf_token": token})
        assert "First approval recorded: 1 line is above" in response.text
        row = re.search(rf'<tr id="line-{world.acme_line}".*?</tr>', response.text, re.S)
        assert row and "awaiting second approval (first: finance@example.com" in row.group(0)
        again = finance.post("/commissions/approve", data={"ids": [world.acme_line], "csrf_token": token})
        assert again.status_code == 403 and "second approval must come from a different" in again.text
        owner = add_staff(world, "boss", "owner")
        done = owner.post(
            "/commissions/approve", data={"ids": [world.acme_line], "csrf_token": csrf_of(owner, "/commissions")}
        )
        assert "Approved 1 line" in done.text and world.status_of(world.acme_line) == "approved"

    def test_approve_all_matching_shows_count_and_total_then_decides_all(self, world: World) -> None:
        client = staff(world, "finance")
        page = client.get(f"/commissions?program_id={world.program_id}").text
        assert "Approve all matching" in page
        confirm = client.get(f"/commissions/all-matching?action=approve&program_id={world.program_id}&status=pending")
        assert confirm.status_code == 200
        assert re.search(r'id="bulk-count"><strong>2</strong>', confirm.text)
        assert "€340.01" in confirm.text  # 240.00 + 100.01
        token = csrf_of(client, "/commissions")
        form = {"csrf_token": token, "action": "approve", "program_id": world.program_id, "status": "pending"}
        stale = client.post("/commissions/all-matching", data={**form, "expected": "3"})
        assert stale.status_code == 422 and "2 lines match now, not the 3 you confirmed" in stale.text
        assert world.status_of(world.acme_line) == "pending"
        no_csrf = client.post("/commissions/all-matching", data={**form, "csrf_token": "", "expected": "2"})
        assert no_csrf.status_code == 403
        done = client.post("/commissions/all-matching", data={**form, "expected": "2"})
        assert done.status_code == 200 and "Approved 2 lines" in done.text
        assert {world.status_of(world.acme_line), world.status_of(world.beta_line)} == {"approved"}

    def test_reject_all_matching_needs_a_reason(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions")
        form = {"csrf_token": token, "action": "reject", "program_id": world.program_id, "expected": "2"}
        missing = client.post("/commissions/all-matching", data=form)
        assert missing.status_code == 422 and "a reason is required" in missing.text
        assert world.status_of(world.acme_line) == "pending"
        done = client.post("/commissions/all-matching", data={**form, "reason": "test traffic"})
        assert "Rejected 2 line(s)" in done.text and world.status_of(world.beta_line) == "rejected"

    def test_a_manager_is_refused_with_the_reason(self, world: World) -> None:
        client = staff(world, "manager")
        token = csrf_of(client, "/commissions")
        form = {"csrf_token": token, "action": "approve", "program_id": world.program_id, "expected": "2"}
        response = client.post("/commissions/all-matching", data=form)
        assert response.status_code == 403 and "needs the finance or owner role" in response.text


class TestBatchPage:
    def test_the_batch_page_shows_who_gave_the_first_approval(self, world: World) -> None:
        set_policy(world, batch_second_approval_above=10_000)
        with world.factory() as s:
            approve_lines(s, actor=SYSTEM, ids=[world.acme_line, world.beta_line], now=world.clock.now())
            s.commit()
        world.clock.advance(timedelta(days=31))
        with world.factory() as s:
            run = create_payout_run(s, actor=SYSTEM, program_id=world.program_id, now=world.clock.now())
            s.commit()
            assert run.batch is not None
            batch_id = run.batch.id
        finance = staff(world, "finance")
        url = f"/payouts/batches/{batch_id}"
        first = finance.post(f"{url}/approve", data={"csrf_token": csrf_of(finance, url)})
        assert "First approval of batch" in first.text
        assert "Awaiting second approval by finance (first: finance@example.com" in first.text
        assert "Give second approval" in first.text
        same = finance.post(f"{url}/approve", data={"csrf_token": csrf_of(finance, url)})
        assert same.status_code == 403 and "first approval" in same.text
        owner = add_staff(world, "boss", "owner")
        done = owner.post(f"{url}/approve", data={"csrf_token": csrf_of(owner, url)})
        assert f"Batch {batch_id} approved" in done.text
        with world.factory() as s:
            status = s.scalar(select(PayoutBatch.status).where(PayoutBatch.id == batch_id))
        assert status == "approved"


class TestQueueFollowsThePolicy:
    def test_a_manager_allowed_by_the_policy_is_offered_the_approvals(self, world: World) -> None:
        manager = staff(world, "manager")
        assert "approving them needs the finance or owner role" in manager.get("/commissions").text
        set_policy(world, approver_roles=["manager", "finance"])
        page = manager.get("/commissions").text
        assert "approving them needs" not in page and "Approve all matching" in page
        token = csrf_of(manager, "/commissions")
        done = manager.post("/commissions/approve", data={"ids": [world.acme_line], "csrf_token": token})
        assert "Approved 1 line" in done.text and world.status_of(world.acme_line) == "approved"
        assert "approving them needs the manager or finance role" in staff(world, "viewer").get("/commissions").text
