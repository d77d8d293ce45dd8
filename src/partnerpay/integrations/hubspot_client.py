"""A small HubSpot CRM client (PROVIDERS.md §4): create, read and find deals with a private-app or OAuth token.

Only what partnerpay needs, over httpx: `POST /crm/v3/objects/deals`, `GET /crm/v3/objects/deals/{id}` and
`POST /crm/v3/objects/deals/search`. A 429 is retried after its Retry-After (bounded); any other refusal is a
HubSpotError naming the status and HubSpot's own message, never the token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from partnerpay.integrations.settings_store import get_integration
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import PartnerpayError, ValidationError

DEFAULT_API_URL = "https://api.hubapi.com"
# The operator (not a program admin) may point partnerpay at another HubSpot host, or a test server: a program
# setting could send the sealed token to any host its admin chooses.
API_URL_ENV = "PARTNERPAY_HUBSPOT_API_URL"
MAX_429_RETRIES = 3
MAX_RETRY_AFTER_SECONDS = 10.0
DEALS = "/crm/v3/objects/deals"


class HubSpotError(PartnerpayError):
    """HubSpot refused or could not be reached; `retryable` when trying again later can help."""

    code = "hubspot_error"
    status = 502

    def __init__(self, message: str, *, http_status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message, field="hubspot")
        self.http_status = http_status
        self.retryable = retryable


def api_url() -> str:
    return os.environ.get(API_URL_ENV, "").strip() or DEFAULT_API_URL


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message") or body)[:300] if isinstance(body, dict) else str(body)[:300]


class HubSpotClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=(base_url or api_url()).rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._sleep = sleep

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        for attempt in range(MAX_429_RETRIES + 1):
            try:
                response = self._http.request(method, path, json=json)
            except httpx.HTTPError as exc:
                raise HubSpotError(f"HubSpot could not be reached ({type(exc).__name__})", retryable=True) from None
            if response.status_code == 429 and attempt < MAX_429_RETRIES:
                self._sleep(_retry_after(response))
                continue
            if response.status_code in (401, 403):
                raise HubSpotError(
                    f"HubSpot refused the access token ({response.status_code}: {_message(response)}); "
                    "set a valid access_token with the crm.objects.deals scopes",
                    http_status=response.status_code,
                )
            if response.status_code >= 400:
                raise HubSpotError(
                    f"HubSpot answered {response.status_code} to {method} {path}: {_message(response)}",
                    http_status=response.status_code,
                    retryable=response.status_code == 429 or response.status_code >= 500,
                )
            body = response.json()
            if not isinstance(body, dict):
                raise HubSpotError(f"HubSpot answered {method} {path} with something that is not an object")
            return body
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def create_deal(self, properties: dict[str, str]) -> str:
        """The new deal's id."""
        deal_id = self._call("POST", DEALS, {"properties": properties}).get("id")
        if not isinstance(deal_id, str | int) or not str(deal_id):
            raise HubSpotError("HubSpot created a deal but its answer has no id")
        return str(deal_id)

    def get_deal(self, deal_id: str, properties: list[str]) -> dict[str, Any]:
        """The deal's properties (strings or null), as HubSpot returns them."""
        body = self._call("GET", f"{DEALS}/{deal_id}?properties={','.join(properties)}")
        found = body.get("properties")
        return found if isinstance(found, dict) else {}

    def find_deal(self, property_name: str, value: str) -> str | None:
        """The id of a deal whose property equals value, if any (the first one)."""
        query = {
            "filterGroups": [{"filters": [{"propertyName": property_name, "operator": "EQ", "value": value}]}],
            "properties": [property_name],
            "limit": 1,
        }
        results = self._call("POST", f"{DEALS}/search", query).get("results") or []
        first = results[0] if results and isinstance(results[0], dict) else None
        return str(first["id"]) if first is not None and first.get("id") is not None else None


ClientFactory = Callable[[str], HubSpotClient]


def access_token(session: Session, program_id: str, box: SecretBox) -> str | None:
    """The program's HubSpot token, if one is set."""
    row = get_integration(session, program_id, "hubspot")
    token = box.decrypt(row.sealed).get("access_token") if row is not None else None
    return token if isinstance(token, str) and token else None


def client_for(
    session: Session, program_id: str, box: SecretBox, factory: ClientFactory | None = None
) -> HubSpotClient:
    token = access_token(session, program_id, box)
    if token is None:
        raise ValidationError(
            f"program {program_id} has no HubSpot access_token: set one under integrations/hubspot",
            field="access_token",
        )
    return (factory or HubSpotClient)(token)
