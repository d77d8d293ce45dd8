"""Read side of partner administration: the filtered partners list and its CSV, the partner page, notes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, exists, func, or_, select, union_all
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import ApiKey, StaffUser
from partnerpay.commissions.queries import Balance, partner_balance
from partnerpay.kit.csvsafe import write_csv
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import Page, check_limit, paginate
from partnerpay.partners.activity import lines_of, timeline
from partnerpay.partners.models import (
    Invitation,
    Partner,
    PartnerActivity,
    PartnerGroup,
    PartnerNote,
    PartnerStatus,
    PartnerUser,
    PayoutMethod,
    TaxProfile,
)
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program, ProgramTerms, TermsAcceptance

STATUSES = [s.value for s in PartnerStatus]
TAX_STATES = ("tax_ok", "tax_missing")
SORTS = ("name", "-name", "created", "-created", "status", "-status")
NONE = "none"  # group_id=none / owner_id=none: partners without one
COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class PartnerFilter:
    """What the partners list (API, console and CSV export) is narrowed to; every field is optional."""

    program_id: str | None = None
    status: str | None = None
    group_id: str | None = None
    owner_id: str | None = None
    country: str | None = None
    tax: str | None = None
    has_payout_method: bool | None = None
    q: str | None = None
    sort: str | None = None

    def checked(self) -> PartnerFilter:
        if self.status and self.status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}", field="status")
        if self.tax and self.tax not in TAX_STATES:
            raise ValidationError(f"tax must be tax_ok or tax_missing; got {self.tax!r}", field="tax")
        if self.sort and self.sort not in SORTS:
            raise ValidationError(f"sort must be one of {', '.join(SORTS)}; got {self.sort!r}", field="sort")
        country = self.country.strip().upper() if self.country else None
        if country and not COUNTRY.match(country):
            raise ValidationError(f"country must be an ISO 3166 code such as DE; got {self.country!r}", field="country")
        return PartnerFilter(**{**self.__dict__, "country": country or None})


def has_tax_form() -> ColumnElement[bool]:
    return exists().where(TaxProfile.partner_id == Partner.id, TaxProfile.active.is_(True), TaxProfile.valid.is_(True))


def has_payout_method() -> ColumnElement[bool]:
    return exists().where(PayoutMethod.partner_id == Partner.id, PayoutMethod.active.is_(True))


def partners_stmt(actor: Actor, f: PartnerFilter) -> Select[Partner]:
    """SELECT partners the actor may see, narrowed by the filter (validated here, each error naming its field)."""
    f = f.checked()
    stmt = select(Partner)
    if actor.program_id is not None:
        stmt = stmt.where(Partner.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(Partner.id == actor.partner_id)
    if f.program_id:
        stmt = stmt.where(Partner.program_id == f.program_id)
    if f.status:
        stmt = stmt.where(Partner.status == f.status)
    if f.group_id:
        stmt = stmt.where(Partner.group_id.is_(None) if f.group_id == NONE else Partner.group_id == f.group_id)
    if f.owner_id:
        stmt = stmt.where(Partner.owner_id.is_(None) if f.owner_id == NONE else Partner.owner_id == f.owner_id)
    if f.country:
        stmt = stmt.where(Partner.country == f.country)
    if f.tax:
        stmt = stmt.where(has_tax_form() if f.tax == "tax_ok" else ~has_tax_form())
    if f.has_payout_method is not None:
        stmt = stmt.where(has_payout_method() if f.has_payout_method else ~has_payout_method())
    if f.q and f.q.strip():
        needle = f.q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(Partner.name).contains(needle, autoescape=True),
                func.lower(Partner.email).contains(needle, autoescape=True),
                func.lower(Partner.referral_code).contains(needle, autoescape=True),
            )
        )
    return stmt


def _sort_column(sort: str) -> tuple[Any, bool]:
    name = sort.lstrip("-")
    column = {"name": func.lower(Partner.name), "created": Partner.created_at, "status": Partner.status}[name]
    return column, sort.startswith("-")


def encode_cursor(value: object, row_id: str) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, as_datetime: bool) -> tuple[Any, str]:
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return (datetime.fromisoformat(value) if as_datetime else str(value)), str(row_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationError("cursor is not one this list handed out; start again without it", field="cursor") from exc


def keyset(
    session: Session,
    stmt: Select[Any],
    *,
    key: Any,
    id_column: Any,
    desc: bool,
    cursor: str | None,
    limit: int,
    key_of: Any,
    as_datetime: bool = False,
) -> Page[Any]:
    """Cursor paging over (key, id) in either direction: stable while rows are added."""
    check_limit(limit)
    if cursor:
        value, row_id = decode_cursor(cursor, as_datetime=as_datetime)
        after = (key < value) if desc else (key > value)
        beyond = (id_column < row_id) if desc else (id_column > row_id)
        stmt = stmt.where(or_(after, and_(key == value, beyond)))
    order = (key.desc(), id_column.desc()) if desc else (key, id_column)
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(key_of(rows[-1]), rows[-1].id) if more and rows else None)


def _key_of(sort: str) -> Any:
    name = sort.lstrip("-")
    if name == "name":
        return lambda p: p.name.lower()
    if name == "created":
        return lambda p: p.created_at
    return lambda p: p.status


def list_partners(
    session: Session, actor: Actor, f: PartnerFilter, *, cursor: str | None = None, limit: int = 50
) -> Page[Partner]:
    """Without a sort the cursor is the last partner id (the original API behaviour); with one it is opaque."""
    stmt = partners_stmt(actor, f)
    if not f.sort:
        return paginate(session, stmt, Partner.id, cursor=cursor, limit=limit)
    column, desc = _sort_column(f.sort)
    return keyset(
        session,
        stmt,
        key=column,
        id_column=Partner.id,
        desc=desc,
        cursor=cursor,
        limit=limit,
        key_of=_key_of(f.sort),
        as_datetime=f.sort.lstrip("-") == "created",
    )


@dataclass(frozen=True)
class RowFacts:
    """What a partners table shows next to each partner besides its own columns."""

    group: str | None
    owner: str | None
    tax_ok: bool
    payout_method: str | None


def row_facts(session: Session, partners: Iterable[Partner]) -> dict[str, RowFacts]:
    rows = list(partners)
    ids = [p.id for p in rows]
    if not ids:
        return {}
    groups = dict(
        session.execute(
            select(PartnerGroup.id, PartnerGroup.name).where(
                PartnerGroup.id.in_({p.group_id for p in rows if p.group_id})
            )
        ).all()
    )
    owners = staff_emails(session, {p.owner_id for p in rows if p.owner_id})
    taxed = set(
        session.scalars(
            select(TaxProfile.partner_id).where(
                TaxProfile.partner_id.in_(ids), TaxProfile.active.is_(True), TaxProfile.valid.is_(True)
            )
        )
    )
    methods = dict(
        session.execute(
            select(PayoutMethod.partner_id, PayoutMethod.type).where(
                PayoutMethod.partner_id.in_(ids), PayoutMethod.active.is_(True)
            )
        ).all()
    )
    return {
        p.id: RowFacts(
            groups.get(p.group_id) if p.group_id else None,
            owners.get(p.owner_id) if p.owner_id else None,
            p.id in taxed,
            methods.get(p.id),
        )
        for p in rows
    }


_WHO = ("id", "name", "email", "company", "status", "group", "owner", "country")
EXPORT_HEADER = (*_WHO, "referral_code", "tax_form", "payout_method", "created_at")


def export_partners(session: Session, actor: Actor, f: PartnerFilter, *, chunk: int = 1000) -> str:
    """Every partner matching the filter as CSV; cells that look like formulas are escaped."""
    stmt = partners_stmt(actor, f)
    if f.sort:
        column, desc = _sort_column(f.sort)
        stmt = stmt.order_by(column.desc() if desc else column, Partner.id.desc() if desc else Partner.id)
    else:
        stmt = stmt.order_by(Partner.id)
    partners = list(session.scalars(stmt))
    rows: list[list[object]] = []
    for start in range(0, len(partners), chunk):
        part = partners[start : start + chunk]
        facts = row_facts(session, part)
        for p in part:
            fact = facts[p.id]
            tax = "ok" if fact.tax_ok else "missing"
            when = p.created_at.isoformat()
            rows.append([p.id, p.name, p.email, p.company, p.status, fact.group, fact.owner, p.country])
            rows[-1] += [p.referral_code, tax, fact.payout_method, when]
    return write_csv(EXPORT_HEADER, rows)


def staff_emails(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(wanted))).all())


def staff_users(session: Session) -> list[StaffUser]:
    """The team, for owner pickers."""
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def actor_labels(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """Readable names for actor ids: a staff user's email, an API key's name."""
    wanted = set(ids)
    labels = staff_emails(session, wanted)
    for key_id, name in session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(wanted - set(labels)))):
        labels[key_id] = f"API key {name or key_id}"
    return labels


def notes_page(
    session: Session, actor: Actor, partner_id: str, *, cursor: str | None = None, limit: int = 50
) -> Page[PartnerNote]:
    """Newest first."""
    partner = get_partner(session, actor, partner_id)
    stmt = select(PartnerNote).where(PartnerNote.partner_id == partner.id)
    return keyset(
        session,
        stmt,
        key=PartnerNote.id,
        id_column=PartnerNote.id,
        desc=True,
        cursor=cursor,
        limit=limit,
        key_of=lambda n: n.id,
    )


def timeline_page(
    session: Session, actor: Actor, partner_id: str, *, cursor: str | None = None, limit: int = 50
) -> Page[PartnerActivity]:
    """The partner's activity, newest first."""
    partner = get_partner(session, actor, partner_id)
    line = lines_of(partner.id)
    return keyset(
        session,
        select(line),
        key=line.at,
        id_column=line.id,
        desc=True,
        cursor=cursor,
        limit=limit,
        key_of=lambda a: a.at,
        as_datetime=True,
    )


@dataclass
class PartnerOverview:
    """Everything the console's partner page shows, read in one session."""

    partner: Partner
    program: Program
    group: PartnerGroup | None
    owner: StaffUser | None
    accepted_terms: TermsAcceptance | None
    current_terms: int | None
    balance: Balance
    payout_method: PayoutMethod | None
    tax_profile: TaxProfile | None
    notes: list[PartnerNote]
    timeline: list[PartnerActivity]
    audit: list[AuditEntry]
    labels: dict[str, str]


def partner_overview(session: Session, actor: Actor, partner_id: str, now: datetime) -> PartnerOverview:
    partner = get_partner(session, actor, partner_id)
    program = session.get(Program, partner.program_id)
    assert program is not None  # a partner's program is a foreign key
    notes = list(
        session.scalars(
            select(PartnerNote).where(PartnerNote.partner_id == partner.id).order_by(PartnerNote.id.desc()).limit(100)
        )
    )
    entries = partner_audit(session, partner.id)
    return PartnerOverview(
        partner=partner,
        program=program,
        group=session.get(PartnerGroup, partner.group_id) if partner.group_id else None,
        owner=session.get(StaffUser, partner.owner_id) if partner.owner_id else None,
        accepted_terms=session.scalar(
            select(TermsAcceptance)
            .where(TermsAcceptance.partner_id == partner.id)
            .order_by(TermsAcceptance.version.desc())
            .limit(1)
        ),
        current_terms=session.scalar(
            select(func.max(ProgramTerms.version)).where(ProgramTerms.program_id == program.id)
        ),
        balance=partner_balance(session, partner, program.currency, now),
        payout_method=_active(session, PayoutMethod, partner.id),
        tax_profile=_active(session, TaxProfile, partner.id),
        notes=notes,
        timeline=timeline(session, partner.id, limit=100),
        audit=entries,
        labels=actor_labels(session, [n.author_id for n in notes] + [e.actor_id for e in entries]),
    )


def _active(session: Session, model: Any, partner_id: str) -> Any:
    return session.scalar(
        select(model)
        .where(model.partner_id == partner_id, model.active.is_(True))
        .order_by(model.created_at.desc())
        .limit(1)
    )


def partner_audit(session: Session, partner_id: str, *, limit: int = 100) -> list[AuditEntry]:
    """Audit rows about the partner and about its notes, users, invitations, payout and tax details.

    An imported partner's creation is audited once for the whole import, which the partner row names.
    """
    imports = select(Partner.import_id).where(Partner.id == partner_id, Partner.import_id.is_not(None))
    related: CompoundSelect[tuple[str]] = union_all(
        *(
            select(m.id).where(m.partner_id == partner_id)
            for m in (PartnerNote, PartnerUser, Invitation, PayoutMethod, TaxProfile)
        ),
        imports,
    )
    return list(
        session.scalars(
            select(AuditEntry)
            .where(or_(AuditEntry.object_id == partner_id, AuditEntry.object_id.in_(select(related.subquery()))))
            .order_by(AuditEntry.seq.desc())
            .limit(limit)
        )
    )
