"""A program's funding account (the account SEPA and ACH payouts are sent from): set, read back masked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.payouts import funding
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now, reader

router = APIRouter()

_BODY = {
    "type": "object",
    "properties": {
        "sepa": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 70, "examples": ["Acme Software GmbH"]},
                "iban": {"type": "string", "examples": ["DE89 3704 0044 0532 0130 00"]},
                "bic": {"type": "string", "description": "derived from the IBAN when known"},
            },
            "required": ["name", "iban"],
        },
        "ach": {
            "type": "object",
            "properties": {
                "company_name": {"type": "string", "examples": ["ACME SOFTWARE"]},
                "company_id": {"type": "string", "description": "1 to 10 characters, usually 1 + EIN"},
                "odfi_routing": {"type": "string", "description": "your bank's routing number (ABA checked)"},
                "immediate_destination": {"type": "string", "description": "routing number the file goes to"},
                "immediate_origin": {"type": "string", "description": "9 digits or the 10 characters the bank gave"},
                "immediate_destination_name": {"type": "string"},
                "immediate_origin_name": {"type": "string"},
            },
            "required": ["company_name", "company_id", "odfi_routing", "immediate_destination", "immediate_origin"],
        },
    },
    "additionalProperties": False,
}


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


@router.put(
    "/programs/{program_id}/funding-account",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY}}}},
)
def put_funding_account(
    request: Request, program_id: str, body: dict[str, Any] = Body(...), actor: Actor = Caller
) -> JSONResponse:
    """Set the sepa and/or ach funding account (validated, stored encrypted, audited); returns it masked."""
    need(actor, "payouts")
    box = _box(request)

    def work(session: Any) -> tuple[int, Any]:
        funding.put_funding_account(session, actor=actor, box=box, program_id=program_id, body=body, now=now(request))
        return 200, funding.masked_funding(session, actor, program_id)

    # Only a keyed fingerprint of the body is kept for Idempotency-Key, never the account numbers.
    return idempotency.run(request, actor, {"fingerprint": box.fingerprint(body)}, work)


@router.get("/programs/{program_id}/funding-account")
def get_funding_account(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as session:
        return funding.masked_funding(session, actor, program_id)
