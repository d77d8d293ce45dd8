"""Partner CSV import: the whole file is checked before anything is written, then written set-based.

import_csv reads and checks the file; this module loads what only the database knows (groups, staff
owners, emails and referral codes already taken) and writes every row in the caller's transaction
with a few bulk statements (COPY on PostgreSQL), or nothing at all when any row is wrong.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import psycopg.errors
from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.partners.admin import need_write
from partnerpay.partners.import_csv import (
    ImportRejected,
    ImportReport,
    ImportRow,
    Known,
    Progress,
    check,
    parse,
)
from partnerpay.partners.models import Partner, PartnerGroup, PartnerStatus
from partnerpay.partners.service import referral_code_for
from partnerpay.partners.validation import PayoutType, check_payout_method
from partnerpay.programs.service import get_program

CHUNK = 10_000  # rows per bulk statement: the progress bar moves and memory per statement stays flat
PARTNER_COLUMNS = (
    "id", "program_id", "name", "email", "referral_code", "status", "group_id", "country",
    "created_at", "company", "website", "owner_id", "source",
)  # fmt: skip
ACTIVITY_COLUMNS = ("id", "partner_id", "at", "kind", "text", "actor_id", "ref_type", "ref_id")
PAYOUT_METHOD_COLUMNS = (
    "id", "partner_id", "type", "details_encrypted", "masked", "active", "verified", "created_by", "created_at",
)  # fmt: skip


def _taken_codes(session: Session, codes: list[str]) -> set[str]:
    """Which of these referral codes exist: one array parameter on PostgreSQL, chunks of IN on SQLite."""
    column = Partner.referral_code
    if session.get_bind().dialect.name == "postgresql":
        wanted = bindparam("codes", codes, type_=ARRAY(String))
        return set(session.scalars(select(column).where(column == any_(wanted))))
    taken: set[str] = set()
    for start in range(0, len(codes), 5000):
        taken.update(session.scalars(select(column).where(column.in_(codes[start : start + 5000]))))
    return taken


def _known(session: Session, program_id: str, rows: list[ImportRow]) -> Known:
    groups: dict[str, PartnerGroup] = {}
    sizes: dict[str, int] = {}
    if any(r.group is not None for r in rows):
        # Locked until commit (PostgreSQL): a capped group checked here cannot fill up before the rows land.
        mine = select(PartnerGroup).where(PartnerGroup.program_id == program_id).with_for_update()
        groups = {g.name: g for g in session.scalars(mine)}
        counted = select(Partner.group_id, func.count()).where(Partner.group_id.in_([g.id for g in groups.values()]))
        sizes = {gid: int(n) for gid, n in session.execute(counted.group_by(Partner.group_id)) if gid}
    owners: dict[str, str] = {}
    if any(r.owner_email is not None for r in rows):
        owners = {email.lower(): uid for uid, email in session.execute(select(StaffUser.id, StaffUser.email))}
    emails = {e.lower() for e in session.scalars(select(Partner.email).where(Partner.program_id == program_id))}
    named = [r.referral_code for r in rows if r.referral_code is not None]
    return Known(groups, sizes, owners, emails, _taken_codes(session, named))


def _new_codes(session: Session, rows: list[ImportRow]) -> list[str]:
    """The file's codes, and a fresh one for each row without: unique in the file and the database."""
    codes = [r.referral_code or "" for r in rows]
    used = set(codes)
    missing = [i for i, r in enumerate(rows) if r.referral_code is None]
    while missing:
        for i in missing:
            code = referral_code_for(rows[i].name)
            while code in used:
                code = referral_code_for(rows[i].name)
            codes[i] = code
            used.add(code)
        # A clash with the database is rare (24 random bits per name), so it is checked in bulk, not per row.
        taken = _taken_codes(session, [codes[i] for i in missing])
        missing = [i for i in missing if codes[i] in taken]
    return codes


def import_partners(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    data: bytes,
    filename: str,
    now: datetime,
    box: SecretBox | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Check every row, then (unless dry_run) create them all as active partners; else raise ImportRejected.

    `box` encrypts the PayPal emails of a payout_email column; a file without one needs no box.
    """
    need_write(actor, "importing partners")
    program = get_program(session, actor, program_id)
    parsed = parse(data, progress=progress)
    rows = parsed.rows
    if rows:
        check(parsed, _known(session, program.id, rows))
    # Without an owner_email the staff user who imports becomes the owner: every partner has one.
    default_owner = actor.id if actor.type is ActorType.STAFF else None
    by_group = Counter(r.group_id for r in rows if r.group_id)
    names = dict(session.execute(select(PartnerGroup.id, PartnerGroup.name).where(PartnerGroup.id.in_(by_group))).all())
    report = ImportReport(
        program_id=program.id,
        filename=filename,
        rows=parsed.count,
        dry_run=dry_run,
        groups={names[g]: n for g, n in by_group.items()},
        with_owner=sum(1 for r in rows if r.owner_id or default_owner),
        with_payout_email=sum(1 for r in rows if r.payout_email),
        errors=parsed.errors.in_file_order(),
        error_count=parsed.errors.count,
    )
    if report.error_count:
        raise ImportRejected(report)
    if not rows:
        raise ValidationError(f"{filename} has a header but no partner rows", field="file")
    if report.with_payout_email and box is None:
        raise ValidationError(
            "payout_email is stored encrypted: set PARTNERPAY_SECRET_KEY (32 characters or more)", field="payout_email"
        )
    if dry_run:
        return report
    report.import_id = new_id("imp")
    try:
        _write(session, actor=actor, rows=rows, report=report, owner=default_owner, box=box, now=now, progress=progress)
    except (IntegrityError, psycopg.errors.IntegrityError):  # COPY on PostgreSQL raises the driver's own
        raise Conflict(
            "another import or new partner took one of these emails or referral codes meanwhile; nothing was "
            "imported: run the import again to see which rows",
            field="file",
        ) from None
    report.created = len(rows)
    return report


def _write(
    session: Session,
    *,
    actor: Actor,
    rows: list[ImportRow],
    report: ImportReport,
    owner: str | None,
    box: SecretBox | None,
    now: datetime,
    progress: Progress | None,
) -> None:
    """Partners, their PayPal payout methods, one audit row for the import and one per partner, a timeline line each."""
    program_id, import_id = report.program_id, report.import_id
    assert import_id is not None
    codes = _new_codes(session, rows)
    ids = new_ids("ptn", len(rows))
    summary = {k: v for k, v in report.as_dict().items() if k not in ("errors", "error_count", "created")}
    audit.record(
        session,
        actor=actor,
        action="partner.import",
        object_type="partner_import",
        object_id=import_id,
        program_id=program_id,
        now=now,
        after=summary,
    )
    active, text = PartnerStatus.ACTIVE.value, f"Imported from {report.filename} by {actor.label or actor.id}"
    for start in range(0, len(rows), CHUNK):
        part = list(
            zip(ids[start : start + CHUNK], codes[start : start + CHUNK], rows[start : start + CHUNK], strict=True)
        )
        partners = [
            (pid, program_id, r.name, r.email, code, active, r.group_id, r.country, now, r.company, r.website,
             r.owner_id or owner, "import")
            for pid, code, r in part
        ]  # fmt: skip
        bulk_insert(session, "partners", PARTNER_COLUMNS, partners)
        masked = _payout_methods(session, box, actor, [(pid, r) for pid, _, r in part if r.payout_email], now)
        items: list[tuple[str, str, str | None, Any, Any]] = [
            ("partner", pid, program_id, None,
             {"name": r.name, "email": r.email, "referral_code": code, "status": active, "import_id": import_id}
             | ({"payout_method": masked[pid]} if pid in masked else {}))
            for pid, code, r in part
        ]  # fmt: skip
        audit.record_many(session, actor=actor, action="partner.create", now=now, items=items)
        # The activity id reuses the partner id's time and randomness: unique, and no new id per row.
        lines = [
            ("act_" + pid[4:], pid, now, "partner.imported", f"{text} (row {r.row})", actor.id, "partner_import",
             import_id)
            for pid, _, r in part
        ]  # fmt: skip
        bulk_insert(session, "partner_activity", ACTIVITY_COLUMNS, lines)
        if progress is not None:
            progress("writing partners", start + len(part), len(rows))


def _payout_methods(
    session: Session, box: SecretBox | None, actor: Actor, pairs: list[tuple[str, ImportRow]], now: datetime
) -> dict[str, dict[str, Any]]:
    """A PayPal payout method per (partner id, row with payout_email), encrypted; partner id → what people see.

    A first method set by staff at onboarding is not a change of details: no review hold, no warning email.
    """
    if not pairs:
        return {}
    assert box is not None
    checked = [check_payout_method({"type": PayoutType.PAYPAL.value, "email": r.payout_email}) for _, r in pairs]
    rows = [
        (mid, pid, c.kind, box.encrypt(c.details), json_value(session, c.masked), True, False, actor.id, now)
        for mid, (pid, _), c in zip(new_ids("pm", len(pairs)), pairs, checked, strict=True)
    ]
    bulk_insert(session, "payout_methods", PAYOUT_METHOD_COLUMNS, rows)
    return {pid: {"type": c.kind, **c.masked} for (pid, _), c in zip(pairs, checked, strict=True)}
