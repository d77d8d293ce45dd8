"""Decrypted webhook secrets kept for a few seconds per program and provider.

Checking a signature needs the program's secrets; reading and decrypting them took more time than all the
rest of a delivery. A change through PUT /programs/{id}/integrations/{provider} forgets the entry in the
process that served it at once; other processes see it within `ttl` seconds (a removed secret keeps
working that long at most: the old secret of a rotation is kept for hours anyway).

With a reader (the served app gives it one), an entry in use is read again in the background during the
last part of its life, so a busy endpoint never finds it expired: an expiry used to send every delivery in
flight at that moment down the slow route at once, each reading the secrets and committing alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.integrations.settings_store import WebhookSecret, get_integration, webhook_secrets
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.programs.models import Program

DEFAULT_TTL_SECONDS = 5.0
REFRESH_SHARE = 0.3  # the last 30 % of an entry's life: a use then reads it again in the background
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Known:
    secrets: list[WebhookSecret]
    config: dict[str, Any]


class SecretCache:
    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        readers: sessionmaker[Session] | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self.ttl = ttl_seconds
        # Both or neither: how a background refresh reads the secrets.
        self._source = (readers, box) if readers is not None and box is not None else None
        self._entries: dict[tuple[str, str], tuple[float, Known]] = {}
        # Bumped by forget(): a background read begun before a change must not bring the old secrets back.
        self._generation: dict[tuple[str, str], int] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def get(self, program_id: str, provider: str) -> Known | None:
        key = (program_id, provider)
        entry = self._entries.get(key)
        if entry is None:
            return None
        left = entry[0] - time.monotonic()
        if left < 0:
            return None
        if left < self.ttl * REFRESH_SHARE and self._source is not None and key not in self._refreshing:
            self._refresh(key)
        return entry[1]

    def load(self, session: Session, box: SecretBox, program_id: str, provider: str) -> Known:
        """Read (and remember) the secrets; an unknown program is a 404, never remembered."""
        key = (program_id, provider)
        generation = self._generation.get(key, 0)
        known = _read(session, box, program_id, provider)
        self._remember(key, known, generation)
        return known

    def forget(self, program_id: str, provider: str) -> None:
        with self._lock:
            key = (program_id, provider)
            self._entries.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1

    def _remember(self, key: tuple[str, str], known: Known, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if self._generation.get(key, 0) == generation:
                self._entries[key] = (time.monotonic() + self.ttl, known)

    def _refresh(self, key: tuple[str, str]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
        threading.Thread(target=self._reload, args=(key,), name="secret-refresh", daemon=True).start()

    def _reload(self, key: tuple[str, str]) -> None:
        assert self._source is not None
        readers, box = self._source
        try:
            generation = self._generation.get(key, 0)
            with readers() as session:
                known = _read(session, box, *key)
            self._remember(key, known, generation)
        except NotFound:
            self.forget(*key)
        except Exception as exc:  # the entry simply expires; the next miss reads it on the request's route
            log.warning("webhook secret refresh failed", program_id=key[0], provider=key[1], error=str(exc)[:300])
        finally:
            with self._lock:
                self._refreshing.discard(key)


def _read(session: Session, box: SecretBox, program_id: str, provider: str) -> Known:
    integration = get_integration(session, program_id, provider)
    # An integration row implies its program (foreign key): the program is only looked up without one.
    if integration is None and session.get(Program, program_id) is None:
        raise NotFound(f"program {program_id} not found", field="program_id")
    if integration is None:
        return Known([], {})
    return Known(webhook_secrets(integration, box), dict(integration.config or {}))
