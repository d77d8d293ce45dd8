"""Decrypted webhook secrets kept for a few seconds per program and provider.

Checking a signature needs the program's secrets; reading and decrypting them took more time than all the
rest of a delivery. A change through PUT /programs/{id}/integrations/{provider} forgets the entry in the
process that served it at once; other processes see it within `ttl` seconds (a removed secret keeps
working that long at most: the old secret of a rotation is kept for hours anyway).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.integrations.settings_store import WebhookSecret, get_integration, webhook_secrets
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.programs.models import Program

DEFAULT_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Known:
    secrets: list[WebhookSecret]
    config: dict[str, Any]


class SecretCache:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, Known]] = {}
        self._lock = threading.Lock()

    def get(self, program_id: str, provider: str) -> Known | None:
        entry = self._entries.get((program_id, provider))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def load(self, session: Session, box: SecretBox, program_id: str, provider: str) -> Known:
        """Read (and remember) the secrets; an unknown program is a 404, never remembered."""
        integration = get_integration(session, program_id, provider)
        # An integration row implies its program (foreign key): the program is only looked up without one.
        if integration is None and session.get(Program, program_id) is None:
            raise NotFound(f"program {program_id} not found", field="program_id")
        known = (
            Known(webhook_secrets(integration, box), dict(integration.config or {}))
            if integration is not None
            else Known([], {})
        )
        if self.ttl > 0:
            with self._lock:
                self._entries[(program_id, provider)] = (time.monotonic() + self.ttl, known)
        return known

    def forget(self, program_id: str, provider: str) -> None:
        with self._lock:
            self._entries.pop((program_id, provider), None)
