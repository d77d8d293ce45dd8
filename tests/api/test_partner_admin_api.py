"""Partner administration through /api/v1: lists and export, lifecycle, owners, notes, timeline, groups, prospects."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from tests.api.conftest import Api


def assert_error(response: Any, status: int, field: str | None = None, text: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert error.get("field") == field, error
    if text is not None:
        assert text in error["message"], error


def patch(api: Api, path: str, body: Any, key: str | None = None) -> Any:
    return api.client.patch(f"/api/v1{path}", json=body, headers=api.headers(key))


@pytest.fixture
def program(api: Api) -> dict[str, Any]:
    return api.program()


@pytest.fixture
def partner(api: Api, program: dict[str, Any]) -> dict[str, Any]:
    return api.partner(program["id"])


@pytest.fixture
def viewer(api: Api, session_factory: sessionmaker[Session]) -> str:
    return api.key_for(session_factory, scopes=["read"])


@pytest.fixture
def outsider(api: Api, session_factory: sessionmaker[Session]) -> str:
    """A key of another program: everything of the first program is 404 to it."""
    other = api.program(name="Other program")
    return api.key_for(session_factory, program_id=other["id"])


@pytest.fixture
def staff_id(session_factory: sessionmaker[Session], api: Api) -> str:
    with session_factory() as s:
        user = create_staff_user(
            s,
            actor=SYSTEM,
            email="alice@example.com",
            role="manager",
            password="correct horse battery",
            now=api.clock.now(),
        )
        s.commit()
        return user.id


class TestListPartners:
    def test_the_original_filters_and_shape_still_work(self, api: Api, program: dict[str, Any]) -> None:
        a = api.partner(program["id"], "Acme Media")
        api.partner(program["id"], "Beta Blog")
        api.post(f"/partners/{a['id']}/suspend", {"reason": "checking"})
        body = api.get("/partners", program_id=program["id"], status="suspended").json()
        assert [p["id"] for p in body["data"]] == [a["id"]] and body["next_cursor"] is None
        assert set(a) <= set(body["data"][0])  # every field of POST /partners' answer is still there
        first = api.get("/partners", program_id=program["id"], limit=1).json()
        assert first["next_cursor"] == first["data"][0]["id"]  # without sort the cursor is still the last id

    def test_search_country_and_sort_combine(self, api: Api, program: dict[str, Any]) -> None:
        for name, country in (("Zed Media", "DE"), ("acme media", "DE"), ("Media France", "FR")):
            api.post(
                "/partners",
                {
                    "program_id": program["id"],
                    "name": name,
                    "email": f"{country}{len(name)}@x.example",
                    "country": country,
                },
            )
        body = api.get("/partners", q="MEDIA", country="de", sort="name").json()
        assert [p["name"] for p in body["data"]] == ["acme media", "Zed Media"]

    def test_sorted_pages_follow_the_opaque_cursor(self, api: Api, program: dict[str, Any]) -> None:
        for name in ("C", "A", "B"):
            api.partner(program["id"], name)
        names, cursor = [], None
        for _ in range(3):
            params: dict[str, Any] = {"sort": "-name", "limit": 1} | ({"cursor": cursor} if cursor else {})
            body = api.get("/partners", **params).json()
            names += [p["name"] for p in body["data"]]
            cursor = body["next_cursor"]
        assert names == ["C", "B", "A"] and cursor is None

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "gone"}, "status"),
            ({"tax": "maybe"}, "tax"),
            ({"sort": "email"}, "sort"),
            ({"mine": "true"}, "mine"),
        ],
    )
    def test_a_bad_filter_is_a_422_naming_it(self, api: Api, params: dict[str, str], field: str) -> None:
        assert_error(api.get("/partners", **params), 422, field)

    def test_tax_and_payout_method_filters(self, api: Api, program: dict[str, Any]) -> None:
        paid = api.partner(program["id"], "Has PayPal")
        api.partner(program["id"], "Nothing yet")
        put = api.client.put(
            f"/api/v1/partners/{paid['id']}/payout-method",
            json={"type": "paypal", "email": "p@example.com"},
            headers=api.headers(),
        )
        assert put.status_code == 200, put.text
        with_method = api.get("/partners", has_payout_method="true").json()["data"]
        without = api.get("/partners", has_payout_method="false", tax="tax_missing").json()["data"]
        assert [p["name"] for p in with_method] == ["Has PayPal"]
        assert [p["name"] for p in without] == ["Nothing yet"]

    def test_another_programs_key_sees_none_of_them(self, api: Api, partner: dict[str, Any], outsider: str) -> None:
        assert api.get("/partners", key=outsider).json()["data"] == []


class TestExportPartners:
    def test_the_csv_escapes_formulas_and_keeps_the_filters(
        self, api: Api, program: dict[str, Any], viewer: str
    ) -> None:
        api.post(
            "/partners",
            {"program_id": program["id"], "name": '=HYPERLINK("http://evil.example","x")', "email": "e@x.example"},
        )
        api.post("/partners", {"program_id": program["id"], "name": "Plain", "email": "p@x.example", "country": "DE"})
        response = api.client.get("/api/v1/partners/export", headers=api.headers(viewer))
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert {r["name"] for r in rows} == {'\'=HYPERLINK("http://evil.example","x")', "Plain"}
        only_de = api.client.get("/api/v1/partners/export?country=DE", headers=api.headers()).text
        assert "Plain" in only_de and "HYPERLINK" not in only_de

    def test_a_bad_filter_is_refused_not_ignored(self, api: Api) -> None:
        assert_error(api.client.get("/api/v1/partners/export?tax=yes", headers=api.headers()), 422, "tax")


class TestLifecycle:
    def test_suspend_needs_a_reason(self, api: Api, partner: dict[str, Any]) -> None:
        assert_error(api.post(f"/partners/{partner['id']}/suspend", {}), 422, "reason")
        assert api.get(f"/partners/{partner['id']}").json()["status"] == "active"

    def test_suspend_reinstate_and_terminate(self, api: Api, partner: dict[str, Any]) -> None:
        suspended = api.post(f"/partners/{partner['id']}/suspend", {"reason": "chargebacks"})
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["status"] == "suspended" and suspended.json()["status_reason"] == "chargebacks"
        assert api.post(f"/partners/{partner['id']}/reinstate", {}).json()["status"] == "active"
        assert_error(api.post(f"/partners/{partner['id']}/terminate", {"reason": ""}), 422, "reason")
        assert api.post(f"/partners/{partner['id']}/terminate", {"reason": "left"}).json()["status"] == "terminated"
        assert_error(api.post(f"/partners/{partner['id']}/reinstate", {}), 409, "status")

    def test_a_suspended_partners_balance_stays_visible(
        self, api: Api, program: dict[str, Any], partner: dict[str, Any]
    ) -> None:
        event = {
            "program_id": program["id"],
            "type": "invoice_paid",
            "external_id": "inv_1",
            "occurred_at": "2026-01-15T12:00:00+00:00",
            "customer_external_id": "cus_1",
            "partner_id": partner["id"],
            "amount": 10_000,
            "currency": "EUR",
        }
        assert api.post("/events", event).status_code == 201
        api.post(f"/partners/{partner['id']}/suspend", {"reason": "review"})
        assert api.get(f"/partners/{partner['id']}/balance").json()["pending"] == 2_000

    def test_the_same_idempotency_key_replays_the_answer(self, api: Api, partner: dict[str, Any]) -> None:
        path = f"/partners/{partner['id']}/suspend"
        first = api.post(path, {"reason": "x"}, **{"Idempotency-Key": "k1"})
        again = api.post(path, {"reason": "x"}, **{"Idempotency-Key": "k1"})
        assert (
            again.status_code == 200 and again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        )
        assert_error(api.post(path, {"reason": "y"}, **{"Idempotency-Key": "k1"}), 409)

    def test_a_viewer_gets_403_and_another_program_404(
        self, api: Api, partner: dict[str, Any], viewer: str, outsider: str
    ) -> None:
        assert_error(api.post(f"/partners/{partner['id']}/suspend", {"reason": "x"}, key=viewer), 403)
        assert_error(api.post(f"/partners/{partner['id']}/suspend", {"reason": "x"}, key=outsider), 404)


class TestOwners:
    def test_assigning_one_owner(self, api: Api, partner: dict[str, Any], staff_id: str) -> None:
        response = api.post(f"/partners/{partner['id']}/owner", {"owner_id": staff_id})
        assert response.status_code == 200 and response.json()["owner_id"] == staff_id
        assert [p["id"] for p in api.get("/partners", owner_id=staff_id).json()["data"]] == [partner["id"]]
        assert api.post(f"/partners/{partner['id']}/owner", {"owner_id": None}).json()["owner_id"] is None

    def test_bulk_assignment_is_all_or_nothing(self, api: Api, program: dict[str, Any], staff_id: str) -> None:
        ids = [api.partner(program["id"], n)["id"] for n in ("A", "B")]
        assert_error(api.post("/partners/assign-owner", {"partner_ids": [*ids, "ptn_nope"], "owner_id": staff_id}), 404)
        assert api.get("/partners", owner_id=staff_id).json()["data"] == []
        done = api.post("/partners/assign-owner", {"partner_ids": ids, "owner_id": staff_id})
        assert done.status_code == 200 and {p["owner_id"] for p in done.json()["data"]} == {staff_id}

    def test_an_unknown_owner_is_a_422(self, api: Api, partner: dict[str, Any]) -> None:
        assert_error(
            api.post(f"/partners/{partner['id']}/owner", {"owner_id": "usr_ghost"}), 422, "owner_id", "usr_ghost"
        )

    def test_a_viewer_cannot_assign(self, api: Api, partner: dict[str, Any], viewer: str, staff_id: str) -> None:
        assert_error(api.post(f"/partners/{partner['id']}/owner", {"owner_id": staff_id}, key=viewer), 403)


class TestNotesAndTimeline:
    def test_notes_are_added_and_listed_newest_first(self, api: Api, partner: dict[str, Any]) -> None:
        for body in ("first", "second"):
            assert api.post(f"/partners/{partner['id']}/notes", {"body": body}).status_code == 201
        notes = api.get(f"/partners/{partner['id']}/notes").json()
        assert [n["body"] for n in notes["data"]] == ["second", "first"]

    def test_an_empty_note_is_a_422(self, api: Api, partner: dict[str, Any]) -> None:
        assert_error(api.post(f"/partners/{partner['id']}/notes", {"body": ""}), 422, "body")
        assert_error(api.post(f"/partners/{partner['id']}/notes", {"body": "   "}), 422, "body")

    def test_the_timeline_shows_what_happened(self, api: Api, partner: dict[str, Any]) -> None:
        api.post(f"/partners/{partner['id']}/notes", {"body": "met at SaaStr"})
        api.post(f"/partners/{partner['id']}/suspend", {"reason": "paused"})
        kinds = [a["kind"] for a in api.get(f"/partners/{partner['id']}/timeline").json()["data"]]
        assert set(kinds) >= {"note.added", "status.suspended"}

    def test_another_programs_partner_is_404_for_notes_and_timeline(
        self, api: Api, partner: dict[str, Any], outsider: str
    ) -> None:
        assert_error(api.post(f"/partners/{partner['id']}/notes", {"body": "x"}, key=outsider), 404)
        assert_error(api.get(f"/partners/{partner['id']}/notes", key=outsider), 404)
        assert_error(api.get(f"/partners/{partner['id']}/timeline", key=outsider), 404)


class TestGroups:
    def new(self, api: Api, program: dict[str, Any], **kw: Any) -> Any:
        return api.post(
            "/groups", {"program_id": program["id"], "name": "Pilot", "is_pilot": True, "size_cap": 1, **kw}
        )

    def test_create_read_list_and_patch(self, api: Api, program: dict[str, Any]) -> None:
        created = self.new(api, program, percent_bp=2500, starts_on="2026-02-01", ends_on="2026-04-30")
        assert created.status_code == 201, created.text
        group = created.json()
        assert group["id"].startswith("grp_") and group["size"] == 0 and group["ends_on"] == "2026-04-30"
        assert api.get(f"/groups/{group['id']}").json() == group
        assert [g["id"] for g in api.get("/groups", program_id=program["id"]).json()["data"]] == [group["id"]]
        patched = patch(api, f"/groups/{group['id']}", {"size_cap": 5, "percent_bp": None})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["size_cap"], patched.json()["percent_bp"], patched.json()["starts_on"]) == (
            5,
            None,
            "2026-02-01",
        )

    @pytest.mark.parametrize(
        ("kw", "field"),
        [
            ({"starts_on": "2026-03-01", "ends_on": "2026-02-01"}, "ends_on"),
            ({"percent_bp": 12_000}, "percent_bp"),
            ({"percent_bp": 20.5}, "percent_bp"),
            ({"size_cap": 0}, "size_cap"),
            ({"starts_on": "March"}, "starts_on"),
        ],
    )
    def test_bad_fields_are_a_422_naming_the_field(
        self, api: Api, program: dict[str, Any], kw: dict[str, Any], field: str
    ) -> None:
        assert_error(self.new(api, program, **kw), 422, field)
        assert api.get("/groups").json()["data"] == []

    def test_a_pilot_over_its_cap_refuses_the_move_naming_the_group(self, api: Api, program: dict[str, Any]) -> None:
        group = self.new(api, program).json()
        ids = [api.partner(program["id"], n)["id"] for n in ("A", "B")]
        assert_error(
            api.post(f"/groups/{group['id']}/members", {"partner_ids": ids}),
            409,
            "group_id",
            "pilot Pilot is capped at 1",
        )
        moved = api.post(f"/groups/{group['id']}/members", {"partner_ids": ids[:1]})
        assert moved.status_code == 200 and moved.json()["size"] == 1
        assert [p["id"] for p in api.get("/partners", group_id=group["id"]).json()["data"]] == ids[:1]
        assert_error(
            patch(api, f"/groups/{group['id']}", {"size_cap": 1, "ends_on": "2020-01-01", "starts_on": "2021-01-01"}),
            422,
            "ends_on",
        )

    def test_the_cap_cannot_drop_below_the_members(self, api: Api, program: dict[str, Any]) -> None:
        group = self.new(api, program, size_cap=3).json()
        ids = [api.partner(program["id"], n)["id"] for n in ("A", "B")]
        api.post(f"/groups/{group['id']}/members", {"partner_ids": ids})
        assert_error(patch(api, f"/groups/{group['id']}", {"size_cap": 1}), 422, "size_cap")

    def test_another_programs_group_is_404_and_a_viewer_403(
        self, api: Api, program: dict[str, Any], outsider: str, viewer: str
    ) -> None:
        group = self.new(api, program).json()
        assert_error(api.get(f"/groups/{group['id']}", key=outsider), 404)
        assert_error(patch(api, f"/groups/{group['id']}", {"name": "Mine now"}, key=outsider), 404)
        assert_error(api.post(f"/groups/{group['id']}/members", {"partner_ids": ["ptn_x"]}, key=outsider), 404)
        assert_error(api.post("/groups", {"program_id": program["id"], "name": "V"}, key=viewer), 403)
        assert_error(patch(api, f"/groups/{group['id']}", {"name": "V"}, key=viewer), 403)

    def test_the_comparison_puts_the_pilot_beside_the_rest(self, api: Api, program: dict[str, Any]) -> None:
        group = self.new(api, program, size_cap=3).json()
        inside = api.partner(program["id"], "Inside")
        api.partner(program["id"], "Outside")
        api.post(f"/groups/{group['id']}/members", {"partner_ids": [inside["id"]]})
        body = api.get("/groups/comparison", program_id=program["id"]).json()
        assert [(c["label"], c["partners"]) for c in body["data"]] == [("Pilot", 1), ("Everyone else", 1)]


class TestProspects:
    def test_create_list_patch_and_read(self, api: Api, program: dict[str, Any], staff_id: str) -> None:
        created = api.post(
            "/prospects",
            {
                "program_id": program["id"],
                "company": "Northwind",
                "email": "ceo@northwind.example",
                "due_on": "2026-01-20",
                "owner_id": staff_id,
            },
        )
        assert created.status_code == 201, created.text
        prospect = created.json()
        assert prospect["stage"] == "prospect" and prospect["id"].startswith("prs_")
        moved = patch(api, f"/prospects/{prospect['id']}", {"stage": "contacted", "next_step": "send deck"})
        assert (
            moved.status_code == 200 and moved.json()["stage"] == "contacted" and moved.json()["due_on"] == "2026-01-20"
        )
        assert [p["id"] for p in api.get("/prospects", stage="contacted").json()["data"]] == [prospect["id"]]
        assert api.get("/prospects", stage="prospect").json()["data"] == []
        assert api.get(f"/prospects/{prospect['id']}").json()["next_step"] == "send deck"

    @pytest.mark.parametrize(
        ("kw", "field"),
        [
            ({"stage": "won"}, "stage"),
            ({"email": "nope"}, "email"),
            ({"owner_id": "usr_ghost"}, "owner_id"),
            ({"due_on": "soon"}, "due_on"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(
        self, api: Api, program: dict[str, Any], kw: dict[str, Any], field: str
    ) -> None:
        assert_error(api.post("/prospects", {"program_id": program["id"], "company": "N", **kw}), 422, field)
        assert api.get("/prospects").json()["data"] == []

    def test_a_bad_stage_in_a_patch_or_a_filter_is_a_422(self, api: Api, program: dict[str, Any]) -> None:
        prospect = api.post("/prospects", {"program_id": program["id"], "company": "N"}).json()
        assert_error(patch(api, f"/prospects/{prospect['id']}", {"stage": "won"}), 422, "stage")
        assert_error(api.get("/prospects", stage="won"), 422, "stage")

    def test_converting_sends_the_invitation(self, api: Api, program: dict[str, Any]) -> None:
        prospect = api.post(
            "/prospects", {"program_id": program["id"], "company": "Northwind", "email": "ceo@northwind.example"}
        ).json()
        converted = api.post(f"/prospects/{prospect['id']}/convert")
        assert converted.status_code == 201, converted.text
        body = converted.json()
        assert body["prospect"]["stage"] == "invited" and body["partner_id"] == body["prospect"]["partner_id"]
        assert api.get(f"/partners/{body['partner_id']}").json()["email"] == "ceo@northwind.example"
        assert_error(api.post(f"/prospects/{prospect['id']}/convert"), 409)

    def test_another_programs_prospect_is_404_and_a_viewer_403(
        self, api: Api, program: dict[str, Any], outsider: str, viewer: str
    ) -> None:
        prospect = api.post("/prospects", {"program_id": program["id"], "company": "N"}).json()
        assert_error(api.get(f"/prospects/{prospect['id']}", key=outsider), 404)
        assert_error(patch(api, f"/prospects/{prospect['id']}", {"stage": "dropped"}, key=outsider), 404)
        assert api.get("/prospects", key=outsider).json()["data"] == []
        assert_error(patch(api, f"/prospects/{prospect['id']}", {"stage": "dropped"}, key=viewer), 403)
        assert_error(api.post("/prospects", {"program_id": program["id"], "company": "V"}, key=viewer), 403)
