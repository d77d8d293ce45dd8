"""Partner CSV import: the whole file is checked before anything is written, then written set-based.

import_csv reads and checks the file; this module loads what only the database knows (groups, staff
owners, emails and referral codes already taken) and writes every row in the caller's transaction
with a few bulk statements (COPY on PostgreSQL), or nothing at all when any row is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime

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
from partnerpay.partners.models import Partner, PartnerGroup, PartnerImport, PartnerStatus
from partnerpay.partners.service import referral_codes_for
from partnerpay.partners.validation import PayoutType, check_payout_method
from partnerpay.programs.service import get_program

CHUNK = 10_000  # rows per bulk statement: the progress bar moves and memory per statement stays flat
PARTNER_COLUMNS = (
    "id", "program_id", "name", "email", "referral_code", "status", "group_id", "country",
    "created_at", "company", "website", "owner_id", "source", "import_id", "import_row",
)  # fmt: skip
PAYOUT_METHOD_COLUMNS = (
    "id", "partner_id", "type", "details_encrypted", "masked", "active", "verified", "created_by", "created_at",
)  # fmt: skip


def _taken_codes(session: Session, codes: list[str]) -> set[str]:
    """Which of these referral codes exist, with the whole list as one parameter (an array, or JSON on SQLite)."""
    column = Partner.referral_code
    if session.get_bind().dialect.name == "postgresql":
        wanted = bindparam("codes", codes, type_=ARRAY(String))
        return set(session.scalars(select(column).where(column == any_(wanted))))
    listed = func.json_each(json.dumps(codes)).table_valued("value")
    return set(session.scalars(select(column).where(column.in_(select(listed.c.value)))))


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
        fresh = referral_codes_for([rows[i].name for i in missing])
        clash: list[int] = []
        for i, code in zip(missing, fresh, strict=True):
            if code in used:
                clash.append(i)  # two names with one slug drew the same suffix: draw again
            else:
                codes[i] = code
                used.add(code)
        # A clash with the database is rare (24 random bits per name), so it is checked in bulk, not per row.
        drawn = [i for i in missing if codes[i]]
        taken = _taken_codes(session, [codes[i] for i in drawn])
        clash += [i for i in drawn if codes[i] in taken]  # the taken code stays in `used`: never drawn again
        for i in clash:
            codes[i] = ""
        missing = sorted(clash)
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
        _write(
            session, actor=actor, rows=rows, data=data, report=report, owner=default_owner, box=box, now=now,
            progress=progress,
        )  # fmt: skip
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
    data: bytes,
    report: ImportReport,
    owner: str | None,
    box: SecretBox | None,
    now: datetime,
    progress: Progress | None,
) -> None:
    """The import row, its partners (each naming the import and its line), their PayPal payout methods, one audit row.

    One audit row and one provenance row per import, not per partner: the import is one decision by one
    person, and a hash-chained audit row plus a timeline line per partner cost half of a 50,000-row import.
    The audit row still pins every partner: it holds the file's SHA-256 and a SHA-256 over each created
    partner (id, email, code, row); partner_audit and the timeline find it through partners.import_id.
    """
    program_id, import_id = report.program_id, report.import_id
    assert import_id is not None
    codes = _new_codes(session, rows)
    ids = new_ids("ptn", len(rows))
    file_sha256 = hashlib.sha256(data).hexdigest()
    session.add(
        PartnerImport(
            id=import_id,
            program_id=program_id,
            filename=report.filename[:255],
            rows=len(rows),
            file_sha256=file_sha256,
            created_by=actor.id,
            created_by_label=(actor.label or actor.id)[:320],
            created_at=now,
        )
    )
    session.flush()  # the partners' foreign key needs it
    summary = {k: v for k, v in report.as_dict().items() if k not in ("errors", "error_count", "created")}
    summary |= {"file_sha256": file_sha256, "partners_sha256": partners_digest(ids, codes, rows)}
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
    active = PartnerStatus.ACTIVE.value
    for start in range(0, len(rows), CHUNK):
        part = list(
            zip(ids[start : start + CHUNK], codes[start : start + CHUNK], rows[start : start + CHUNK], strict=True)
        )
        partners = [
            (pid, program_id, r.name, r.email, code, active, r.group_id, r.country, now, r.company, r.website,
             r.owner_id or owner, "import", import_id, r.row)
            for pid, code, r in part
        ]  # fmt: skip
        bulk_insert(session, "partners", PARTNER_COLUMNS, partners)
        _payout_methods(session, box, actor, [(pid, r) for pid, _, r in part if r.payout_email], now)
        if progress is not None:
            progress("writing partners", start + len(part), len(rows))


def partners_digest(ids: list[str], codes: list[str], rows: list[ImportRow]) -> str:
    """SHA-256 over "id,email,referral_code,row" lines in file order: what the import's audit row vouches for."""
    digest = hashlib.sha256()
    for pid, code, r in zip(ids, codes, rows, strict=True):
        digest.update(f"{pid},{r.email},{code},{r.row}\n".encode())
    return digest.hexdigest()


def _payout_methods(
    session: Session, box: SecretBox | None, actor: Actor, pairs: list[tuple[str, ImportRow]], now: datetime
) -> None:
    """A PayPal payout method per (partner id, row with payout_email), encrypted and shown masked.

    A first method set by staff at onboarding is not a change of details: no review hold, no warning email.
    """
    if not pairs:
        return
    assert box is not None
    checked = [check_payout_method({"type": PayoutType.PAYPAL.value, "email": r.payout_email}) for _, r in pairs]
    rows = [
        (mid, pid, c.kind, box.encrypt(c.details), json_value(session, c.masked), True, False, actor.id, now)
        for mid, (pid, _), c in zip(new_ids("pm", len(pairs)), pairs, checked, strict=True)
    ]
    bulk_insert(session, "payout_methods", PAYOUT_METHOD_COLUMNS, rows)
