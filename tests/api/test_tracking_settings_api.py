"""Program settings for tracking, attribution and deals through PATCH /programs/{id}: checked, normalised, cleared."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api


def patch(api: Api, program_id: str, body: dict[str, Any]) -> Any:
    return api.client.patch(f"/api/v1/programs/{program_id}", json=body, headers=api.headers())


class TestTrackingSettings:
    def test_defaults_then_changes_read_back_normalised(self, api: Api) -> None:
        program = api.program()
        before = patch(api, program["id"], {}).json()
        assert (before["attribution_model"], before["coupon_overrides_link"], before["attribution_months"]) == (
            "last_click",
            True,
            None,
        )
        assert (before["lead_protection_days"], before["update_reminder_days"], before["hold_flagged_events"]) == (
            90,
            3,
            True,
        )
        response = patch(
            api,
            program["id"],
            {
                "site_url": "https://acme.example",
                "fallback_url": "https://acme.example/partners",
                "allowed_domains": ["https://www.Shop.Acme.example/", "docs.acme.example", "shop.acme.example"],
                "attribution_model": "first_click",
                "attribution_months": 12,
                "deal_stages": ["Qualified", "demo", "proposal"],
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["allowed_domains"] == ["shop.acme.example", "docs.acme.example"]
        assert body["deal_stages"] == ["qualified", "demo", "proposal"]
        assert (body["attribution_model"], body["attribution_months"]) == ("first_click", 12)
        cleared = patch(api, program["id"], {"attribution_months": None, "allowed_domains": None}).json()
        assert (cleared["attribution_months"], cleared["allowed_domains"]) == (None, None)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"site_url": "javascript:alert(1)"}, "site_url"),
            ({"fallback_url": "https://localhost"}, "fallback_url"),
            ({"allowed_domains": ["not a host"]}, "allowed_domains"),
            ({"attribution_model": "linear"}, "attribution_model"),
            ({"attribution_months": 0}, "attribution_months"),
            ({"deal_stages": ["demo", "won"]}, "deal_stages"),
            ({"deal_stages": ["demo", "Demo"]}, "deal_stages"),
            ({"update_reminder_days": 0}, "update_reminder_days"),
            ({"lead_protection_days": -1}, "lead_protection_days"),
        ],
    )
    def test_bad_values_name_the_field_and_change_nothing(self, api: Api, body: dict[str, Any], field: str) -> None:
        program = api.program()
        response = patch(api, program["id"], {"site_url": "https://acme.example", **body})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert patch(api, program["id"], {}).json()["site_url"] is None
