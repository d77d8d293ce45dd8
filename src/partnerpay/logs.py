"""Structured logs (structlog), with secrets masked before anything is written."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values never reach a log line, whatever they hold.
SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|api_?key|authorization|cookie|iban|account_number|routing_number|"
    r"address_(line1|postcode)|(^|_)(tin|ssn|vat_id)($|_)",
    re.IGNORECASE,
)
# Values that look like a credential even under an innocent key.
SECRET_VALUES = [
    (re.compile(r"pp_[A-Za-z0-9_\-]{20,}"), "pp_***"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer ***"),
    (re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
]


def mask_value(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in SECRET_VALUES:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: "***" if SECRET_KEYS.search(str(k)) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


def mask_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact secret keys and credential-looking values in every event."""
    for key in list(event):
        event[key] = "***" if SECRET_KEYS.search(key) else mask_value(event[key])
    return event


def configure(*, json: bool, level: int = logging.INFO) -> None:
    """Called once by the entry points (serve, worker); library code only asks for loggers."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
