"""Program settings for tracking, attribution and deals: checked here, applied by update_program_settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from partnerpay.kit.errors import ValidationError
from partnerpay.programs.models import Program

ATTRIBUTION_MODELS = ("last_click", "first_click")
DEFAULT_DEAL_STAGES = ["registered", "qualified", "demo", "proposal", "negotiation"]
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def check_web_url(field: str) -> Callable[[Any], str | None]:
    """An absolute http(s) address with a real host name, or None to clear the setting."""

    def check(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = value.strip() if isinstance(value, str) else ""
        parts = urlsplit(text) if text else None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or not HOSTNAME.match(parts.hostname)
            or any(c.isspace() or c in "\"'<>\\" for c in text)
            or len(text) > 500
        ):
            raise ValidationError(f"{field} must be an http(s):// address such as https://example.com", field=field)
        return text

    return check


def normalise_host(value: str) -> str:
    """example.com from 'https://www.Example.com/x', 'Example.COM.' or 'www.example.com'."""
    text = value.strip().lower()
    host = urlsplit(text).hostname if "://" in text else text.split("/", 1)[0]
    host = (host or "").rstrip(".")
    return host.removeprefix("www.")


def check_allowed_domains(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 50 or not all(isinstance(v, str) for v in value):
        raise ValidationError("allowed_domains must be a list of at most 50 host names", field="allowed_domains")
    hosts: list[str] = []
    for raw in value:
        host = normalise_host(raw)
        if not HOSTNAME.match(host):
            raise ValidationError(
                f"allowed_domains: {raw!r} is not a host name such as example.com", field="allowed_domains"
            )
        if host not in hosts:
            hosts.append(host)
    return hosts or None


def _choice(field: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValidationError(f"{field} must be one of {', '.join(choices)}, got {value!r}", field=field)
        return str(value)

    return check


def _optional_months(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1200:
        raise ValidationError(
            "attribution_months must be a whole number of months from 1 to 1200, or null for for ever",
            field="attribution_months",
        )
    return value


def check_deal_stages(value: Any) -> list[str] | None:
    """Open stages in pipeline order; won and lost are outcomes, not stages."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 20:
        raise ValidationError("deal_stages must be a list of 1 to 20 stage names", field="deal_stages")
    stages: list[str] = []
    for raw in value:
        name = raw.strip().lower() if isinstance(raw, str) else ""
        if not name or len(name) > 64 or not re.match(r"^[a-z0-9][a-z0-9 _-]*$", name):
            raise ValidationError(
                f"deal_stages: {raw!r} is not a stage name (letters, digits, - and _)", field="deal_stages"
            )
        if name in ("won", "lost"):
            raise ValidationError(
                "deal_stages: won and lost are outcomes, not stages; leave them out", field="deal_stages"
            )
        if name in stages:
            raise ValidationError(f"deal_stages: {name} appears twice", field="deal_stages")
        stages.append(name)
    return stages


def check_custom_event_types(value: Any) -> list[str] | None:
    """Names of the program's own event types: snake_case, not a core type, at most 50."""
    from partnerpay.events.schemas import CORE_TYPES, CUSTOM_TYPE  # here: events import this module

    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 50:
        raise ValidationError("custom_event_types must be a list of at most 50 names", field="custom_event_types")
    names: list[str] = []
    for raw in value:
        name = raw.strip() if isinstance(raw, str) else ""
        if not CUSTOM_TYPE.match(name):
            raise ValidationError(
                f"custom_event_types: {raw!r} is not a type name (snake_case: a-z, 0-9 and _, 2 to 64 characters)",
                field="custom_event_types",
            )
        if name in CORE_TYPES:
            raise ValidationError(
                f"custom_event_types: {name} is a core event type; leave it out", field="custom_event_types"
            )
        if name in names:
            raise ValidationError(f"custom_event_types: {name} appears twice", field="custom_event_types")
        names.append(name)
    return names or None


def deal_stages(program: Program) -> list[str]:
    return list(program.deal_stages or DEFAULT_DEAL_STAGES)


def destination_allowed(program: Program, url: str) -> bool:
    """A link may point at the program's site or an allowed domain, or any subdomain of one."""
    host = normalise_host(url) if "://" in url else ""
    allowed = list(program.allowed_domains or [])
    if program.site_url:
        allowed.append(normalise_host(program.site_url))
    return bool(host) and any(host == d or host.endswith("." + d) for d in allowed)


def tracking_snapshot(program: Program) -> dict[str, Any]:
    return {
        "site_url": program.site_url,
        "fallback_url": program.fallback_url,
        "allowed_domains": program.allowed_domains,
        "attribution_model": program.attribution_model,
        "coupon_overrides_link": program.coupon_overrides_link,
        "attribution_months": program.attribution_months,
        "lead_protection_days": program.lead_protection_days,
        "deal_stages": program.deal_stages,
        "update_reminder_days": program.update_reminder_days,
        "hold_flagged_events": program.hold_flagged_events,
        "custom_event_types": program.custom_event_types,
    }


def tracking_checks(
    number: Callable[[str, int, int], Callable[[Any], int]], flag: Callable[[str], Callable[[Any], bool]]
) -> dict[str, Callable[[Any], Any]]:
    """The checks update_program_settings runs for these settings (number/flag are its own helpers)."""
    return {
        "site_url": check_web_url("site_url"),
        "fallback_url": check_web_url("fallback_url"),
        "allowed_domains": check_allowed_domains,
        "attribution_model": _choice("attribution_model", ATTRIBUTION_MODELS),
        "coupon_overrides_link": flag("coupon_overrides_link"),
        "attribution_months": _optional_months,
        "lead_protection_days": number("lead_protection_days", 0, 3650),
        "deal_stages": check_deal_stages,
        "update_reminder_days": number("update_reminder_days", 1, 90),
        "hold_flagged_events": flag("hold_flagged_events"),
        "custom_event_types": check_custom_event_types,
    }
