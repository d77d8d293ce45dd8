"""Jinja2 setup: money and date filters shared by the console and the portal."""

from __future__ import annotations

from datetime import datetime

from fastapi.templating import Jinja2Templates

from partnerpay.kit.money import format_money


def _date(value: datetime | None, fmt: str = "%d %b %Y") -> str:
    return value.strftime(fmt) if value else ""


def configure(templates: Jinja2Templates) -> Jinja2Templates:
    env = templates.env
    env.filters["money"] = lambda amount, currency: format_money(int(amount), currency)
    env.filters["date"] = _date
    env.autoescape = True
    return templates
