"""Secrets never reach a log line."""

from __future__ import annotations

import json
import logging

import structlog

from partnerpay.logs import configure, mask_secrets


class TestMaskSecrets:
    def test_secret_keys_are_redacted_whatever_their_value(self) -> None:
        event = mask_secrets(
            None,
            "info",
            {
                "event": "x",
                "password": "hunter22",
                "iban": "DE89370400440532013000",
                "api_key": "abc",
                "nested": {"account_number": "123456789"},
            },
        )
        assert event["password"] == "***" and event["iban"] == "***" and event["api_key"] == "***"
        assert event["nested"] == {"account_number": "***"}

    def test_credentials_inside_text_are_masked(self) -> None:
        key = "pp_" + "A1b2C3d4" * 5
        event = mask_secrets(
            None,
            "info",
            {
                "event": f"used {key}",
                "header": "Bearer sk_live_123",
                "url": "postgresql+psycopg://app:s3cret@db:5432/pp",
            },
        )
        assert key not in event["event"] and "pp_***" in event["event"]
        assert event["header"] == "Bearer ***"
        assert "s3cret" not in event["url"] and event["url"].endswith("@db:5432/pp")

    def test_ordinary_fields_pass_through(self) -> None:
        event = mask_secrets(None, "info", {"event": "payout.sent", "amount": 1250, "partner_id": "ptn_1"})
        assert event == {"event": "payout.sent", "amount": 1250, "partner_id": "ptn_1"}


class TestConfigure:
    def test_json_logs_carry_the_masked_event(self, capsys: object) -> None:
        configure(json=True, level=logging.INFO)
        try:
            structlog.get_logger("t").info("login", password="hunter22", user="a@example.com")
            line = capsys.readouterr().out.strip().splitlines()[-1]  # type: ignore[attr-defined]
            record = json.loads(line)
            assert record["password"] == "***" and record["user"] == "a@example.com" and record["level"] == "info"
            assert "hunter22" not in line
        finally:
            structlog.reset_defaults()
