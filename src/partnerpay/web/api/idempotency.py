"""Idempotency-Key: the response is stored in the same transaction as the write it describes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnerpay.audit.service import canonical
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import IdempotencyRecord
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import ConcurrentWrite, Conflict, ValidationError
from partnerpay.web.security import factory

Work = Callable[[Session], tuple[int, Any]]


def _request_hash(request: Request, body: Any) -> str:
    text = canonical(
        {"method": request.method, "path": request.url.path, "query": str(request.url.query), "body": body}
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(record: IdempotencyRecord, digest: str) -> JSONResponse:
    if record.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request", field="Idempotency-Key")
    assert record.status_code is not None and record.response_body is not None
    return JSONResponse(
        json.loads(record.response_body), status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
    )


def run(request: Request, actor: Actor, body: Any, work: Work) -> JSONResponse:
    """Run `work` in one transaction; with an Idempotency-Key, replay the first success instead."""
    key = request.headers.get("idempotency-key")
    sessions = factory(request)
    now = request.app.state.clock.now()
    if key is None:
        with unit_of_work(sessions) as session:
            status, payload = work(session)
        return JSONResponse(payload, status_code=status)
    if not 1 <= len(key) <= 200:
        raise ValidationError("Idempotency-Key must have 1 to 200 characters", field="Idempotency-Key")
    digest = _request_hash(request, body)
    with sessions() as session:
        existing = session.get(IdempotencyRecord, (actor.id, key))
        if existing is not None:
            return _replay(existing, digest)
    try:
        with unit_of_work(sessions) as session:
            status, payload = work(session)
            session.add(
                IdempotencyRecord(
                    owner_id=actor.id,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    request_hash=digest,
                    status_code=status,
                    response_body=json.dumps(payload),
                    created_at=now,
                )
            )
            session.flush()
    except (IntegrityError, ConcurrentWrite):
        # A concurrent request with the same key won; its writes stand and ours rolled back.
        with sessions() as session:
            winner = session.get(IdempotencyRecord, (actor.id, key))
            if winner is None:
                raise
            return _replay(winner, digest)
    return JSONResponse(payload, status_code=status)
