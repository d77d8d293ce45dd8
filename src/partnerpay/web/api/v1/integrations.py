"""A program's provider integrations: credentials in (encrypted), only masked values out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from partnerpay.auth.actor import Actor
from partnerpay.integrations.settings_store import get_integration, masked, put_integration
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.programs.service import get_program
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now, reader

router = APIRouter()

_BODY = {
    "type": "object",
    "properties": {
        "webhook_secret": {
            "type": "string",
            "description": "new signing secret; the previous one stays valid for previous_secret_hours (default 24)",
        },
        "webhook_secrets": {"type": "array", "items": {"type": "string"}, "description": "replace all secrets"},
        "previous_secret_hours": {"type": "integer", "minimum": 0, "maximum": 168},
        "api_key": {"type": "string"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "base_url": {"type": "string"},
        "net_of_tax": {"type": "boolean", "description": "count invoices net of tax (default true)"},
        "access_token": {"type": "string", "description": "HubSpot private-app or OAuth token (sealed)"},
        "stage_map": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "HubSpot stage id → stage",
        },
        "pipeline": {"type": "string", "description": "HubSpot pipeline of pushed deals (default: default)"},
        "deal_stage_on_push": {
            "type": "string",
            "description": "HubSpot stage of a pushed deal whose stage is unmapped",
        },
        "refresh_token": {"type": "string", "description": "Google Calendar OAuth refresh token (sealed)"},
        "calendar_id": {"type": "string", "description": "Google calendar the events go to (default: primary)"},
    },
    "additionalProperties": False,
}


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


@router.put(
    "/programs/{program_id}/integrations/{provider}",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY}}}},
)
def put_program_integration(
    request: Request, program_id: str, provider: str, body: dict[str, Any] = Body(...), actor: Actor = Caller
) -> JSONResponse:
    """Set credentials and settings (omitted fields keep their value); the answer shows secrets masked."""
    need(actor, "write")
    box = _box(request)

    def work(session: Any) -> tuple[int, Any]:
        row = put_integration(
            session, actor=actor, box=box, program_id=program_id, provider=provider, body=body, now=now(request)
        )
        return 200, jsonable_encoder(masked(row, box, now(request)))

    # Only a keyed fingerprint of the body is kept for Idempotency-Key, never the secrets.
    answer = idempotency.run(request, actor, {"fingerprint": box.fingerprint(body)}, work)
    request.app.state.webhook_secrets.forget(program_id, provider)  # this process uses the new secrets at once
    return answer


@router.get("/programs/{program_id}/integrations/{provider}")
def get_program_integration(request: Request, program_id: str, provider: str, actor: Actor = Caller) -> JSONResponse:
    """Which fields are set, secrets by their last four characters, and bad-signature counts."""
    with reader(request, actor) as session:
        program = get_program(session, actor, program_id)
        row = get_integration(session, program.id, provider)
        if row is None:
            raise NotFound(f"program {program.id} has no {provider} integration", field="provider")
        return JSONResponse(jsonable_encoder(masked(row, _box(request), now(request))))
