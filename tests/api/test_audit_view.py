"""The audit view: search and cursor paging over the API, streamed CSV / JSON lines exports (formula-escaped),
the hash-chain status (incremental, a tampered tail shows), the console page and History panel, and who may
look: staff and API keys with the read scope; partners never."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from partnerpay.audit.models import AuditChainCheck, AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_api_key, create_staff_user
from partnerpay.programs.service import create_program
from tests.api import test_pages
from tests.api.test_pages import PASSWORD, World, csrf_of, login, staff
from tests.integration.test_audit import tamper

world = test_pages.world  # a program, Acme and Beta with portal logins, finance/manager/viewer staff


def key(w: World, **kw: Any) -> str:
    with w.factory() as s:
        _, secret = create_api_key(s, actor=SYSTEM, now=w.clock.now(), **kw)
        s.commit()
    return secret


def get(client: TestClient, path: str, secret: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.get(f"/api/v1{path}", params=params, headers=headers)


def all_pages(client: TestClient, secret: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = get(client, "/audit", secret, limit=limit, **({"cursor": cursor} if cursor else {}), **params).json()
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


class TestSearch:
    def test_cursor_pages_walk_every_entry_newest_first_without_overlap(self, world: World) -> None:
        secret = key(world, scopes=["read"])
        with world.factory() as s:
            total = len(s.scalars(select(AuditEntry.seq)).all())
        seqs = [e["seq"] for e in all_pages(world.client(), secret, limit=3)]
        assert len(seqs) == total > 6 and seqs == sorted(seqs, reverse=True) and len(set(seqs)) == total

    def test_filters_by_object_action_prefix_actor_email_program_time_and_text(self, world: World) -> None:
        client, secret = world.client(), key(world, scopes=["read"])
        acme = get(client, "/audit", secret, object_type="partner", object_id=world.acme_id).json()["data"]
        assert acme and {e["object_id"] for e in acme} == {world.acme_id}
        assert "partner.create" in {e["action"] for e in acme}
        created = next(e for e in acme if e["action"] == "partner.create")
        assert {"field": "name", "before": None, "after": '"Acme Media"'} in created["changes"]
        prefixed = get(client, "/audit", secret, action="partner.").json()["data"]
        assert prefixed and all(e["action"].startswith("partner.") for e in prefixed)
        by_email = get(client, "/audit", secret, actor="finance@example.com").json()["data"]
        assert by_email == []  # finance has done nothing yet
        by_system = get(client, "/audit", secret, actor="system").json()["data"]
        assert by_system and all(e["actor_id"] == "system" for e in by_system)
        text = get(client, "/audit", secret, text="beta blog").json()["data"]
        assert text and all("Beta Blog" in json.dumps(e["after"]) or "beta" in e["object_id"] for e in text)
        assert get(client, "/audit", secret, text="100%_nothing").json()["data"] == []
        at = world.clock.now().isoformat()
        assert get(client, "/audit", secret, until=at).json()["data"] == []  # everything happened at T0
        assert get(client, "/audit", secret, since=at, program_id=world.program_id).json()["data"]

    def test_bad_filters_name_their_field(self, world: World) -> None:
        client, secret = world.client(), key(world, scopes=["read"])
        response = get(client, "/audit", secret, since="yesterday")
        assert response.status_code == 422 and response.json()["error"]["field"] == "since"
        assert get(client, "/audit", secret, cursor="abc").json()["error"]["field"] == "cursor"
        assert get(client, "/audit", secret, limit=501).status_code == 422


class TestExport:
    def test_csv_is_streamed_complete_and_formula_escaped(self, world: World) -> None:
        # An API key named like a formula acts: its name lands in the export's actor column.
        evil = key(world, name='=HYPERLINK("http://x")', scopes=["read", "write"])
        response = world.client().post(
            "/api/v1/partners",
            json={"program_id": world.program_id, "name": "@SUM(1+1)", "email": "evil@example.com"},
            headers={"Authorization": f"Bearer {evil}"},
        )
        assert response.status_code == 201, response.text
        secret = key(world, scopes=["read"])
        export = get(world.client(), "/audit/export", secret, format="csv")
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert "attachment" in export.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(export.text)))
        with world.factory() as s:
            assert len(rows) == len(s.scalars(select(AuditEntry.seq)).all())
        mine = next(r for r in rows if r["action"] == "partner.create" and "@SUM" in r["after"])
        assert mine["actor"] == '\'=HYPERLINK("http://x")'  # escaped: a spreadsheet shows text, runs nothing
        assert json.loads(mine["after"])["name"] == "@SUM(1+1)"  # JSON cells start with "{": kept as they are
        assert not [c for r in rows for c in r.values() if c and c[0] in "=+-@"]

    def test_jsonl_has_one_entry_per_line_and_honours_the_filters(self, world: World) -> None:
        secret = key(world, scopes=["read"])
        export = get(world.client(), "/audit/export", secret, format="jsonl", object_id=world.acme_id)
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert lines and {e["object_id"] for e in lines} == {world.acme_id}
        assert get(world.client(), "/audit/export", secret, format="xml").status_code == 422


class TestChainStatus:
    def test_new_rows_are_verified_incrementally_and_a_tampered_tail_shows(
        self, world: World, engine: Engine, backend: str
    ) -> None:
        client, secret = world.client(), key(world, scopes=["read"])
        first = get(client, "/audit/chain", secret).json()
        assert first["ok"] and first["rows_checked"] == first["last_seq"] > 0
        world.invoice(world.acme_id, "inv_more", 10_000)  # appends rows
        second = get(client, "/audit/chain", secret).json()
        assert second["ok"] and second["last_seq"] > first["last_seq"]
        with world.factory() as s:
            tamper(
                s,
                engine,
                backend,
                "UPDATE audit_log SET actor_id = 'usr_mallory' WHERE seq = :seq",
                seq=second["last_seq"],
            )
        broken = get(client, "/audit/chain", secret).json()
        assert not broken["ok"] and f"audit row {second['last_seq']}" in broken["problems"][0]

    def test_the_checkpoint_is_shared_by_processes_and_kept_across_restarts(self, world: World) -> None:
        from partnerpay.web.app import create_app

        secret = key(world, scopes=["read"])
        first = get(world.client(), "/audit/chain", secret).json()
        other = create_app(world.app.state.settings, clock=world.clock)  # another process, or a restart
        try:
            again = get(TestClient(other), "/audit/chain", secret).json()
        finally:
            other.state.engine.dispose()
        assert again["ok"] and again["rows_checked"] == first["rows_checked"] and again["last_seq"] == first["last_seq"]
        with world.factory() as s:
            stored = s.get(AuditChainCheck, "audit_log")
            assert stored is not None and stored.last_seq == first["last_seq"] and stored.problems == []

    def test_the_owner_can_verify_all_again_and_finds_an_edit_deep_in_old_rows(
        self, world: World, engine: Engine, backend: str
    ) -> None:
        with world.factory() as s:
            create_staff_user(
                s, actor=SYSTEM, email="owner@example.com", role="owner", password=PASSWORD, now=world.clock.now()
            )
            s.commit()
        owner = login(world.client(), "owner@example.com")
        assert "intact" in owner.get("/audit").text  # verified up to the last row, remembered
        with world.factory() as s:
            tamper(s, engine, backend, "UPDATE audit_log SET object_id = 'ptn_x' WHERE seq = 1")
        assert "intact" in owner.get("/audit").text  # old rows are not walked again on each view
        page = owner.post("/audit/verify", data={"csrf_token": csrf_of(owner, "/audit")})
        assert page.status_code == 200 and "BROKEN" in page.text and "audit row 1" in page.text
        viewer = staff(world, "viewer")
        assert viewer.post("/audit/verify", data={"csrf_token": csrf_of(viewer, "/audit")}).status_code == 403


class TestAccess:
    @pytest.mark.parametrize("role", ["viewer", "manager", "finance"])
    def test_every_staff_role_sees_the_audit_page(self, world: World, role: str) -> None:
        page = staff(world, role).get("/audit")
        assert page.status_code == 200
        assert "Hash chain" in page.text and "partner.create" in page.text and 'aria-current="page">Audit' in page.text

    def test_partners_cannot_reach_the_log(self, world: World) -> None:
        partner = login(world.client(), "portal@acme.example", portal=True)
        assert partner.get("/audit", follow_redirects=False).status_code == 303  # to the staff login
        assert partner.get(f"/audit/history/partner/{world.acme_id}", follow_redirects=False).status_code == 303
        assert partner.get("/api/v1/audit").status_code == 401
        assert partner.get("/api/v1/audit/export").status_code == 401

    def test_a_key_needs_read_and_a_program_key_sees_only_its_program(self, world: World) -> None:
        client = world.client()
        assert get(client, "/audit", key(world, scopes=["write"])).status_code == 403
        with world.factory() as s:
            other = create_program(s, actor=SYSTEM, name="Other", currency="USD", hold_days=0, now=world.clock.now())
            s.commit()
            other_id = other.id
        scoped = key(world, program_id=world.program_id, scopes=["read"])
        programs = {e["program_id"] for e in all_pages(client, scoped, limit=200)}
        assert programs == {world.program_id}
        assert get(client, "/audit", scoped, program_id=other_id).json()["data"] == []


class TestConsole:
    def test_the_page_filters_pages_and_shows_before_and_after(self, world: World) -> None:
        client = staff(world, "viewer")
        page = client.get("/audit", params={"object_id": world.acme_id})
        assert page.status_code == 200 and world.acme_id in page.text and "Acme Media" in page.text
        assert "<ins>" in page.text and f"export?format=csv&amp;object_id={world.acme_id}" in page.text
        assert "Beta Blog" not in page.text
        bad = client.get("/audit", params={"since": "never"})
        assert bad.status_code == 422 and "since must be" in bad.text

    def test_the_history_panel_shows_one_objects_entries_escaped(self, world: World) -> None:
        client = staff(world, "manager")
        fragment = client.get(f"/audit/history/partner/{world.acme_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "partner.create" in fragment.text
        assert "<html" not in fragment.text and world.beta_id not in fragment.text
        full = client.get(f"/audit/history/partner/{world.acme_id}")
        assert "<html" in full.text and "History" in full.text
        partner_page = client.get(f"/partners/{world.acme_id}")
        assert f'hx-get="/audit/history/partner/{world.acme_id}"' in partner_page.text

    def test_a_commission_line_has_its_history_linked_from_its_row(self, world: World) -> None:
        finance = staff(world, "finance")
        approved = finance.post(
            "/api/v1/commissions/approve",
            json={"ids": [world.acme_line]},
            headers={"X-CSRF-Token": csrf_of(finance, "/commissions")},
        )
        assert approved.status_code == 200, approved.text
        assert f'href="/audit/history/commission_line/{world.beta_line}"' in finance.get("/commissions").text
        history = finance.get(f"/audit/history/commission_line/{world.acme_line}")
        assert history.status_code == 200 and "commission.approve" in history.text

    def test_html_in_values_is_escaped(self, world: World) -> None:
        client = world.client()
        secret = key(world, scopes=["read", "write"])
        client.post(
            "/api/v1/partners",
            json={"program_id": world.program_id, "name": "<script>x</script>", "email": "xss@example.com"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        page = staff(world, "viewer").get("/audit", params={"text": "script"})
        assert "<script>x" not in page.text and "&lt;script&gt;" in page.text


class TestCli:
    def test_audit_export_writes_the_filtered_log_and_names_a_bad_option(
        self, world: World, database_url: str, tmp_path: Any
    ) -> None:
        from typer.testing import CliRunner

        from partnerpay.cli import app

        runner = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})
        target = tmp_path / "audit.csv"
        done = runner.invoke(app, ["audit", "export", "--object-id", world.acme_id, "--out", str(target)])
        assert done.exit_code == 0, done.output
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert rows and {r["object_id"] for r in rows} == {world.acme_id}
        lines = runner.invoke(app, ["audit", "export", "--format", "jsonl", "--action", "partner."])
        assert lines.exit_code == 0 and all(
            json.loads(x)["action"].startswith("partner.") for x in lines.stdout.splitlines()
        )
        bad = runner.invoke(app, ["audit", "export", "--since", "yesterday"])
        assert bad.exit_code == 1 and "since" in bad.output
