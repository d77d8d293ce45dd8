"""Links and clicks through /api/v1: create, list with click counts, deactivate, page clicks, scoping, errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Api


def _setup(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    program = api.program()
    response = api.client.patch(
        f"/api/v1/programs/{program['id']}",
        json={"site_url": "https://shop.example.com", "allowed_domains": ["example.org"]},
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    return program, api.partner(program["id"])


def _click(api: Api, code: str) -> str:
    response = api.client.get(f"/r/{code}", follow_redirects=False)
    assert response.status_code == 302
    return str(response.headers["location"])


def _flush(api: Api) -> None:
    api.client.app.state.click_writer.flush()  # type: ignore[attr-defined]


class TestCreate:
    def test_a_link_comes_back_with_its_code_and_full_url(self, api: Api) -> None:
        _, partner = _setup(api)
        body = {
            "campaign": "Spring sale",
            "destination_url": "https://blog.example.org/review",
            "params": {"utm_source": "blog", "sub_id": "7"},
        }
        response = api.post(f"/partners/{partner['id']}/links", body)
        assert response.status_code == 201, response.text
        link = response.json()
        code = f"{partner['referral_code']}.spring-sale"
        assert link["code"] == code and link["url"] == f"http://127.0.0.1:8000/r/{code}"
        assert link["id"].startswith("lnk_") and link["params"] == {"utm_source": "blog", "sub_id": "7"}
        assert (link["active"], link["is_default"], link["clicks"]) == (True, False, 0)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"destination_url": "https://evil.com/"}, "destination_url"),
            ({"destination_url": "javascript:alert(1)"}, "destination_url"),
            ({"params": {"gclid": "x"}}, "params.gclid"),
            ({"params": {"utm_medium": "x" * 101}}, "params.utm_medium"),
            ({"campaign": 5}, "campaign"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, api: Api, body: dict[str, Any], field: str) -> None:
        _, partner = _setup(api)
        response = api.post(f"/partners/{partner['id']}/links", body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    def test_an_unknown_partner_is_a_404(self, api: Api) -> None:
        _setup(api)
        assert api.post("/partners/ptn_nobody/links", {}).status_code == 404

    def test_the_same_idempotency_key_replays_the_first_link(self, api: Api) -> None:
        _, partner = _setup(api)
        first = api.post(f"/partners/{partner['id']}/links", {"campaign": "x"}, **{"Idempotency-Key": "k1"})
        again = api.post(f"/partners/{partner['id']}/links", {"campaign": "x"}, **{"Idempotency-Key": "k1"})
        assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]

    def test_a_read_only_key_cannot_create(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        _, partner = _setup(api)
        key = api.key_for(session_factory, scopes=["read"])
        assert api.post(f"/partners/{partner['id']}/links", {}, key=key).status_code == 403


class TestListAndClicks:
    def test_the_list_has_the_default_link_and_click_counts(self, api: Api) -> None:
        _, partner = _setup(api)
        link = api.post(f"/partners/{partner['id']}/links", {"campaign": "News"}).json()
        for code in (partner["referral_code"], link["code"], link["code"], "nobody"):
            _click(api, f"{code}")
        _flush(api)
        data = api.get(f"/partners/{partner['id']}/links").json()["data"]
        assert [(d["code"], d["is_default"], d["clicks"]) for d in data] == [
            (partner["referral_code"], True, 1),
            (link["code"], False, 2),
        ]
        assert data[0]["url"].endswith(f"/r/{partner['referral_code']}") and data[0]["id"] is None

    def test_clicks_page_by_cursor_and_show_no_full_address_hash(self, api: Api) -> None:
        _, partner = _setup(api)
        refs = [_click(api, partner["referral_code"]).split("ref=")[1] for _ in range(3)]
        _flush(api)
        first = api.get(f"/partners/{partner['id']}/clicks", limit=2).json()
        second = api.get(f"/partners/{partner['id']}/clicks", limit=2, cursor=first["next_cursor"]).json()
        assert [c["id"] for c in first["data"] + second["data"]] == refs and second["next_cursor"] is None
        click = first["data"][0]
        assert "ip_hash" not in click and len(click["visitor"]) == 12
        assert click["partner_id"] == partner["id"] and click["destination"] == "https://shop.example.com/"

    def test_deactivating_stops_the_link_crediting_clicks(self, api: Api) -> None:
        _, partner = _setup(api)
        link = api.post(f"/partners/{partner['id']}/links", {"campaign": "Old"}).json()
        assert "ref=" in _click(api, link["code"])
        response = api.post(f"/links/{link['id']}/deactivate")
        assert response.status_code == 200 and response.json()["active"] is False
        assert _click(api, link["code"]) == "https://shop.example.com/"
        _flush(api)
        counts = {d["code"]: d["clicks"] for d in api.get(f"/partners/{partner['id']}/links").json()["data"]}
        assert counts[link["code"]] == 1

    def test_a_key_of_another_program_sees_nothing(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        _, partner = _setup(api)
        link = api.post(f"/partners/{partner['id']}/links", {}).json()
        other = api.program(name="Other")
        key = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"])
        assert api.get(f"/partners/{partner['id']}/links", key=key).status_code == 404
        assert api.get(f"/partners/{partner['id']}/clicks", key=key).status_code == 404
        assert api.post(f"/links/{link['id']}/deactivate", key=key).status_code == 404
        assert api.post(f"/partners/{partner['id']}/links", {}, key=key).status_code == 404
