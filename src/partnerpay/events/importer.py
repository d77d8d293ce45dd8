"""Events CSV import: every row is checked before anything is written, then all are recorded in one
transaction through the inbox (source csv:{program}), or none at all when any row is wrong.

Rows are recorded in the order the events happened (occurred_at; file order among equal times), not in
file order: that is the order live events arrive in, so attribution windows and refunds see the same
history, and a file listing a refund above its invoice still imports. A refund that happened before
anything it could refund is refused, naming its row.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.events.import_csv import (
    COLUMNS,
    EventRow,
    ImportRejected,
    ImportReport,
    Known,
    Named,
    Target,
    check,
    parse,
    summary,
)
from partnerpay.fx.service import rated_currencies
from partnerpay.inbox.batch import BatchReport, ingest_batch
from partnerpay.inbox.ingest import CSV
from partnerpay.kit.csv_import import Progress, RowError
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.admin import need_write
from partnerpay.partners.models import Partner
from partnerpay.programs.service import get_program
from partnerpay.tracking.models import Coupon

_ROW_PREFIX = re.compile(r"^row \d+: ")  # ingest numbers rows by their place in its list, not the file's


def _known(session: Session, program_id: str, named: list[Named]) -> Known:
    """The program's partners, referral codes and coupons, read only when some row names one."""
    partner_ids: set[str] = set()
    codes: set[str] = set()
    if any(n.partner_id or n.referral_code for n in named):
        found = session.execute(select(Partner.id, Partner.referral_code).where(Partner.program_id == program_id))
        for pid, code in found:
            partner_ids.add(pid)
            codes.add(code)
    coupons: set[str] = set()
    if any(n.coupon for n in named):
        coupons = set(session.scalars(select(Coupon.code_key).where(Coupon.program_id == program_id)))
    return Known(partner_ids, codes, coupons)


def import_events(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    data: bytes,
    filename: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Check every row, then record them all (a dry run records them in a savepoint it rolls back, so that
    errors only recording finds are reported too); any bad row raises ImportRejected and nothing is written."""
    need_write(actor, "importing events")
    program = get_program(session, actor, program_id)
    target = Target(
        program.id, program.currency, frozenset(program.custom_event_types or ()), rated_currencies(session, program)
    )
    parsed = parse(data, target=target, progress=progress)
    if parsed.named:
        check(parsed, _known(session, program.id, parsed.named))
    report = ImportReport(
        program_id=program.id,
        filename=filename,
        rows=parsed.count,
        dry_run=dry_run,
        errors=parsed.errors.in_file_order(),
        error_count=parsed.errors.count,
    )
    if report.error_count:
        raise ImportRejected(report)
    if not parsed.rows:
        raise ValidationError(f"{filename} has a header but no event rows", field="file")
    ordered = sorted(parsed.rows, key=lambda r: r.event.occurred_at)  # stable: file order among equal times
    savepoint = session.begin_nested()
    try:
        results = _record(session, actor=actor, program_id=program.id, rows=ordered, now=now, progress=progress)
    except PartnerpayError as exc:
        savepoint.rollback()
        report.errors, report.error_count = [_located(exc, ordered)], 1
        raise ImportRejected(report) from None
    new = [r for r, created in zip(ordered, results.new, strict=True) if created]
    report.created = len(new)
    report.duplicates = len(ordered) - len(new) + parsed.repeated
    report.by_type, report.amounts = summary(new)
    report.commissions = results.lines
    if dry_run:
        savepoint.rollback()
        return report
    savepoint.commit()
    report.import_id = new_id("imp")
    created_ids = [event_id for event_id, created in zip(results.event_ids, results.new, strict=True) if created]
    _audit(session, actor=actor, report=report, data=data, event_ids=created_ids, now=now)
    return report


def _record(
    session: Session, *, actor: Actor, program_id: str, rows: list[EventRow], now: datetime, progress: Progress | None
) -> BatchReport:
    def moved(done: int, total: int) -> None:
        if progress is not None:
            progress("recording events", done, total)

    # Set-based where it can be (inbox/batch.py); the import writes its own audit row for the file.
    return ingest_batch(
        session, actor=actor, program_id=program_id, rows=[r.event for r in rows], now=now, provider=CSV,
        progress=moved, audited=False,
    )  # fmt: skip


def _located(exc: PartnerpayError, rows: list[EventRow]) -> RowError:
    """The error recording raised, placed at the file's row and column it concerns."""
    index = exc.extra.get("row")
    if not isinstance(index, int) or not 1 <= index <= len(rows):
        index = 1 if len(rows) == 1 else None
    column = exc.field if exc.field in COLUMNS else None
    message = _ROW_PREFIX.sub("", exc.message)
    if index is None:  # an error of no single row (none known today): shown at the header row
        return RowError(1, column, message)
    return RowError(rows[index - 1].row, column, message)


def _audit(
    session: Session, *, actor: Actor, report: ImportReport, data: bytes, event_ids: list[str], now: datetime
) -> None:
    """One audit row per import, not per event on top of each event's own: the file's SHA-256, the counts,
    and a SHA-256 over the ids of the events it created (in the order recorded)."""
    assert report.import_id is not None
    digest = hashlib.sha256("\n".join(event_ids).encode()).hexdigest()
    after = {k: v for k, v in report.as_dict().items() if k not in ("errors", "error_count")}
    after |= {"file_sha256": hashlib.sha256(data).hexdigest(), "events_sha256": digest}
    audit.record(
        session,
        actor=actor,
        action="events.import",
        object_type="event_import",
        object_id=report.import_id,
        program_id=report.program_id,
        now=now,
        after=after,
    )
