"""An app on the test database, an admin API key, and helpers to build a program quickly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_api_key
from partnerpay.kit.clock import FixedClock
from partnerpay.settings import Settings
from partnerpay.web.app import create_app


@dataclass
class Api:
    client: TestClient
    key: str
    clock: FixedClock

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}", **extra}

    def post(self, path: str, json: Any = None, key: str | None = None, **headers: str) -> Any:
        return self.client.post(f"/api/v1{path}", json=json, headers=self.headers(key, **headers))

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params=params, headers=self.headers(key))

    def program(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": "Test program", "currency": "EUR", "hold_days": 30, "default_percent_bp": 2000, **overrides}
        response = self.post("/programs", body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def partner(self, program_id: str, name: str = "Acme Media", email: str | None = None) -> dict[str, Any]:
        email = email or f"{name.lower().replace(' ', '.')}@example.com"
        response = self.post("/partners", {"program_id": program_id, "name": name, "email": email})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def key_for(self, session_factory: sessionmaker[Session], **kwargs: Any) -> str:
        with session_factory() as s:
            _, secret = create_api_key(s, actor=SYSTEM, now=self.clock.now(), **kwargs)
            s.commit()
        return secret


@pytest.fixture
def api(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[Api]:
    settings = Settings(database_url=database_url, secret_key="k" * 40, in_process_worker=False)
    app = create_app(settings, clock=clock)
    with session_factory() as s:
        _, secret = create_api_key(s, actor=SYSTEM, now=clock.now(), scopes=["read", "write", "approve", "payouts"])
        s.commit()
    with TestClient(app) as client:
        yield Api(client, secret, clock)
    app.state.engine.dispose()
