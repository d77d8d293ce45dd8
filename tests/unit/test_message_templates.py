"""Notification templates: only the kind's plain placeholders, values placed as text, never code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.messaging.templates import EDITABLE, KINDS, NON_TRANSACTIONAL, check_template, editable_kind, render

APPROVED = KINDS["commission.approved"]


class TestCheckTemplate:
    def test_known_placeholders_pass(self) -> None:
        assert check_template(APPROVED, " Approved:  {amount} ", "Hi {partner}, {count} lines\r\n") == (
            "Approved: {amount}",
            "Hi {partner}, {count} lines",
        )

    @pytest.mark.parametrize(
        ("subject", "body", "field", "placeholder"),
        [
            ("{amount}", "Hello {partner_name}", "body", "partner_name"),
            ("{secret_key}", "x", "subject", "secret_key"),
            ("x", "{partner.__class__}", "body", "partner.__class__"),
            ("x", "{partner[0]}", "body", "partner[0]"),
            ("x", "{partner!r}", "body", "partner"),
            ("x", "{amount:>999999}", "body", "amount"),
            ("x", "{0}", "body", "0"),
        ],
    )
    def test_anything_else_is_422_naming_it(self, subject: str, body: str, field: str, placeholder: str) -> None:
        with pytest.raises(ValidationError) as caught:
            check_template(APPROVED, subject, body)
        assert caught.value.status == 422 and caught.value.field == field
        assert caught.value.extra["placeholder"] == placeholder

    def test_a_lone_brace_is_explained(self) -> None:
        with pytest.raises(ValidationError, match="literal brace"):
            check_template(APPROVED, "x", "Hello {partner")

    def test_every_default_template_is_valid(self) -> None:
        for kind in KINDS.values():
            check_template(kind, kind.subject, kind.body)


class TestRender:
    def test_values_are_placed_and_missing_ones_are_empty(self) -> None:
        subject, body = render(APPROVED, "{count} approved ({program})", "Hi {partner}: {link}", {"count": 2,
                               "program": "Acme", "partner": "Ada"})  # fmt: skip
        assert (subject, body) == ("2 approved (Acme)", "Hi Ada: ")

    @given(st.text())
    def test_a_value_is_never_interpreted(self, value: str) -> None:
        subject, body = render(APPROVED, "{partner}", "{partner}", {"partner": value})
        assert body == value and subject == " ".join(value.split())[:200]


class TestReportKind:
    def test_the_weekly_report_can_be_turned_off_but_has_no_template(self) -> None:
        assert "report.weekly" in NON_TRANSACTIONAL and "report.weekly" not in EDITABLE
        with pytest.raises(ValidationError, match="not written from a template"):
            editable_kind("report.weekly")
