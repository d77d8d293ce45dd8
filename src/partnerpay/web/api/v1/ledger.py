"""The tie-out, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden
from partnerpay.ledger.verify import verify
from partnerpay.web.api.v1.common import Caller, need, reader

router = APIRouter()


@router.get("/ledger/verify")
def verify_ledger(request: Request, actor: Actor = Caller) -> dict[str, Any]:
    """Recompute balances from postings, tie lines to payouts, batches, files and ledger, and walk the audit chain."""
    need(actor, "read")
    if actor.program_id is not None:
        raise Forbidden("the tie-out covers every program; use a staff login or a key without a program")
    with reader(request, actor) as s:
        return verify(s).as_dict()
