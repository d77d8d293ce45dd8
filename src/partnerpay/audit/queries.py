"""Reading the audit log: search with filters, newest first, paged by a `seq` cursor; one object's history;
who an actor id is; and before/after as a list of changed fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, or_, select, type_coerce
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.models import ApiKey, StaffUser
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.paging import check_limit
from partnerpay.partners.models import PartnerUser

MAX_TEXT = 200
EXPORT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None  # an actor id, or an email of a staff or partner user
    action: str | None = None  # exact, or a prefix ending in "." ("payout." = every payout action)
    object_type: str | None = None
    object_id: str | None = None
    program_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # anywhere in the object id, action or the before/after values

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (for links to the next page and the exports)."""
        out = {}
        for name in ("actor", "action", "object_type", "object_id", "program_id", "text"):
            value = getattr(self, name)
            if value:
                out[name] = value
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        return out


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None
    actors: dict[str, str]  # actor id → readable name (email, key name)


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    before: str | None  # JSON text of the old value; None when the field is new
    after: str | None  # None when the field was removed


def require_audit_reader(actor: Actor) -> None:
    """Staff users and API keys with the read scope; never a partner (whose portal session cannot get here)."""
    if actor.type is ActorType.PARTNER or actor.partner_id is not None:
        raise Forbidden("the audit log is for staff only")
    if not actor.can("read"):
        raise Forbidden("reading the audit log needs the 'read' scope")


def check_filter(raw: dict[str, Any]) -> AuditFilter:
    """A filter from query parameters, each problem named by its field."""
    values: dict[str, Any] = {}
    for name in ("actor", "action", "object_type", "object_id", "program_id", "text"):
        value = raw.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValidationError(f"{name} must be text of at most {MAX_TEXT} characters", field=name)
        values[name] = value.strip()
    for name in ("since", "until"):
        value = raw.get(name)
        if value is None or value == "":
            continue
        try:
            when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(
                f"{name} must be an RFC 3339 time or a date (2026-01-31), got {value!r}", field=name
            ) from None
        if when.tzinfo is None:
            raise ValidationError(f"{name} needs a UTC offset, e.g. 2026-01-31T00:00:00+00:00", field=name)
        values[name] = when
    if "since" in values and "until" in values and values["since"] > values["until"]:
        raise ValidationError("since must not be after until", field="since")
    return AuditFilter(**values)


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _actor_ids(session: Session, who: str) -> list[str]:
    if "@" not in who:
        return [who]
    email = who.lower()
    ids = list(session.scalars(select(StaffUser.id).where(StaffUser.email == email)))
    ids += list(session.scalars(select(PartnerUser.id).where(PartnerUser.email == email)))
    return ids or ["-"]  # an unknown email matches nothing rather than everything


def filtered(session: Session, actor: Actor, f: AuditFilter) -> Select[Any]:
    """The SELECT for a filter, limited to what the reader may see (a program's key: its program's rows)."""
    require_audit_reader(actor)
    stmt = select(AuditEntry)
    if actor.program_id is not None:
        stmt = stmt.where(AuditEntry.program_id == actor.program_id)
    if f.actor:
        stmt = stmt.where(AuditEntry.actor_id.in_(_actor_ids(session, f.actor)))
    if f.action:
        stmt = stmt.where(
            AuditEntry.action.startswith(f.action, autoescape=True)
            if f.action.endswith(".")
            else AuditEntry.action == f.action
        )
    if f.object_type:
        stmt = stmt.where(AuditEntry.object_type == f.object_type)
    if f.object_id:
        stmt = stmt.where(AuditEntry.object_id == f.object_id)
    if f.program_id:
        stmt = stmt.where(AuditEntry.program_id == f.program_id)
    if f.since is not None:
        stmt = stmt.where(AuditEntry.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEntry.at < f.until)
    if f.text:
        pattern = _like(f.text)
        table = AuditEntry.__table__.c
        # before/after are stored as canonical JSON text; compare that text, not a re-encoded parameter.
        stmt = stmt.where(
            or_(
                AuditEntry.object_id.ilike(pattern, escape="\\"),
                AuditEntry.action.ilike(pattern, escape="\\"),
                type_coerce(table.before, Text).ilike(pattern, escape="\\"),
                type_coerce(table.after, Text).ilike(pattern, escape="\\"),
            )
        )
    return stmt


def _cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise ValidationError("cursor must be the next_cursor of an earlier page", field="cursor")
    return int(cursor)


def actor_names(session: Session, ids: set[str]) -> dict[str, str]:
    """Readable names of actor ids: staff and partner users by email, API keys by name."""
    names: dict[str, str] = {}
    if not ids:
        return names
    wanted = sorted(ids)
    for model, label in ((StaffUser, StaffUser.email), (PartnerUser, PartnerUser.email), (ApiKey, ApiKey.name)):
        for actor_id, name in session.execute(select(model.id, label).where(model.id.in_(wanted))):
            names[actor_id] = name or actor_id
    return names


def search(session: Session, actor: Actor, f: AuditFilter, *, cursor: str | None, limit: int) -> AuditPage:
    """One page, newest first; next_cursor is the seq to continue below."""
    check_limit(limit)
    stmt = filtered(session, actor, f)
    below = _cursor(cursor)
    if below is not None:
        stmt = stmt.where(AuditEntry.seq < below)
    rows: list[AuditEntry] = list(session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        rows, str(rows[-1].seq) if more and rows else None, actor_names(session, {r.actor_id for r in rows})
    )


def history(session: Session, actor: Actor, object_type: str, object_id: str, *, limit: int = 50) -> AuditPage:
    """The audit entries of one object, newest first (the History panel on the partner, line, payout, deal pages)."""
    return search(session, actor, AuditFilter(object_type=object_type, object_id=object_id), cursor=None, limit=limit)


def iterate(session: Session, actor: Actor, f: AuditFilter) -> Iterator[AuditEntry]:
    """Every matching entry, newest first, read in batches by keyset (an export of millions stays flat in memory)."""
    stmt = filtered(session, actor, f)
    below: int | None = None
    while True:
        page = stmt if below is None else stmt.where(AuditEntry.seq < below)
        rows: list[AuditEntry] = list(session.scalars(page.order_by(AuditEntry.seq.desc()).limit(EXPORT_BATCH)))
        if not rows:
            return
        yield from rows
        below = rows[-1].seq
        session.expunge_all()  # the ORM's identity map must not keep every exported row


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix or "(value)"] = _text(value)


def diff(before: Any, after: Any) -> list[Change]:
    """The fields that differ, by dotted path; lists and scalars compare whole."""
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    if before is not None:
        _flatten(before, "", old)
    if after is not None:
        _flatten(after, "", new)
    return [
        Change(name, old.get(name), new.get(name))
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
