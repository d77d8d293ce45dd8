"""The audit log over the API: search (cursor-paged, newest first), streamed exports and the chain status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from partnerpay.audit.chain_status import ChainMonitor, ChainStatus
from partnerpay.audit.export import csv_chunks, jsonl_chunks
from partnerpay.audit.models import AuditEntry
from partnerpay.audit.queries import (
    AuditFilter,
    actor_names,
    check_filter,
    diff,
    filtered,
    iterate,
    require_audit_reader,
    search,
)
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import ValidationError
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, now, reader
from partnerpay.web.security import factory, read_factory

router = APIRouter()
FILTERS = ("actor", "action", "object_type", "object_id", "program_id", "since", "until", "text")


def chain_monitor(request: Request) -> ChainMonitor:
    """The chain checkpoint on this app's database (audit/chain_status.py)."""
    return ChainMonitor(read_factory(request), factory(request))


def filter_of(request: Request) -> AuditFilter:
    return check_filter({name: request.query_params.get(name) for name in FILTERS})


def entry_json(entry: AuditEntry, names: dict[str, str]) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "actor": names.get(entry.actor_id),
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "program_id": entry.program_id,
        "before": entry.before,
        "after": entry.after,
        "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in diff(entry.before, entry.after)],
        "hash": entry.hash,
    }


def status_json(status: ChainStatus) -> dict[str, Any]:
    return {
        "ok": status.ok,
        "rows_checked": status.rows_checked,
        "last_seq": status.last_seq,
        "checked_at": status.checked_at.isoformat() if status.checked_at else None,
        "problems": list(status.problems),
    }


@router.get("/audit")
def list_audit(
    request: Request,
    actor: Actor = Caller,
    cursor: str | None = CursorParam,
    limit: int = Limit,
    who: str | None = Query(None, alias="actor", description="actor id, or the email of a staff or partner user"),
    action: str | None = Query(None, description="exact action, or a prefix ending in '.' such as payout."),
    object_type: str | None = None,
    object_id: str | None = None,
    program_id: str | None = None,
    since: str | None = Query(None, description="RFC 3339, inclusive"),
    until: str | None = Query(None, description="RFC 3339, exclusive"),
    text: str | None = Query(None, description="free text in the object id, action, before or after"),
) -> dict[str, Any]:
    """Audit entries newest first, with before/after and the changed fields; staff and API keys only."""
    require_audit_reader(actor)
    f = filter_of(request)
    with reader(request, actor) as session:
        page = search(session, actor, f, cursor=cursor, limit=limit)
        return {"data": [entry_json(e, page.actors) for e in page.entries], "next_cursor": page.next_cursor}


@router.get("/audit/chain")
def audit_chain(request: Request, actor: Actor = Caller) -> dict[str, Any]:
    """The hash chain's status: rows appended since the last look are verified, earlier ones are remembered."""
    require_audit_reader(actor)
    reader(request, actor).close()  # the read scope check
    return status_json(chain_monitor(request).check(now(request)))


def stream(request: Request, actor: Actor, f: AuditFilter, fmt: str) -> Iterator[str]:
    """Rows read in the generator's own session: the response body is sent after the endpoint returned."""
    with read_factory(request)() as session:
        ids = set(session.scalars(filtered(session, actor, f).with_only_columns(AuditEntry.actor_id).distinct()))
        names = actor_names(session, ids)
        chunks = csv_chunks if fmt == "csv" else jsonl_chunks
        yield from chunks(iterate(session, actor, f), names)


@router.get("/audit/export")
def export_audit(
    request: Request,
    actor: Actor = Caller,
    format: str = Query("csv", description="csv (formula-escaped) or jsonl"),
) -> StreamingResponse:
    """Every matching entry (same filters as GET /audit), newest first, streamed."""
    require_audit_reader(actor)
    reader(request, actor).close()  # the read scope check, before the stream starts
    if format not in ("csv", "jsonl"):
        raise ValidationError(f"format must be csv or jsonl, got {format!r}", field="format")
    f = filter_of(request)
    stamp = now(request).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        stream(request, actor, f, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{format}"'},
    )
