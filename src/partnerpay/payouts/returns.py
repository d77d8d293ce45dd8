"""Bank returns upload: a CSV of what the bank says happened to a batch's payouts, all-or-nothing.

Columns: `payout_id` or `end_to_end_id` (one of them per row), `status` (paid | returned | failed),
`reason` (optional, shown to the partner), `date` (optional, YYYY-MM-DD or RFC 3339; default now).
An `end_to_end_id` is the SEPA EndToEndId of our files (the payout id with `-` for `_`), the payout id
itself, or the provider reference recorded when the payout was sent.

Every row is checked, against the batch and against the payout's state as the rows before it leave
it, before anything is written; any problem rejects the file, naming row and column. The rows are then
applied through record_results, so a file uploaded twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.csv_import import Errors, ImportRejected, Progress, RowError, check_size, read_rows
from partnerpay.kit.errors import Forbidden
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import MAX_REASON, RailResult, load_payouts, plan_results, record_results
from partnerpay.payouts.service import get_batch

COLUMNS = ("payout_id", "end_to_end_id", "status", "reason", "date")
REQUIRED = ("status",)
STATUSES = ("paid", "returned", "failed")


@dataclass
class ReturnsReport:
    batch_id: str
    filename: str
    dry_run: bool
    rows: int = 0
    paid: int = 0
    failed: int = 0
    returned: int = 0
    unchanged: int = 0
    settled: bool = False
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "filename": self.filename,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "paid": self.paid,
            "failed": self.failed,
            "returned": self.returned,
            "unchanged": self.unchanged,
            "batch_settled": self.settled,
            "errors": [{"row": e.row, "column": e.column, "message": e.message} for e in self.errors],
            "error_count": self.error_count,
        }


def _parse_date(text: str) -> datetime:
    """A day is taken at 12:00 UTC, so it stays the same calendar day in every time zone near UTC."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(12), tzinfo=UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a time needs its offset, e.g. 2026-11-26T10:00:00+00:00")
    return value.astimezone(UTC)


def _index(batch_payouts: list[Payout]) -> dict[str, str]:
    """Every name a bank file may use for a payout of this batch → the payout id."""
    names: dict[str, str] = {}
    for p in batch_payouts:
        names[p.id] = p.id
        names[p.id.replace("_", "-")] = p.id
        if p.provider_ref:
            names.setdefault(p.provider_ref, p.id)
    return names


def read_returns(
    session: Session,
    *,
    actor: Actor,
    batch_id: str,
    data: bytes,
    filename: str,
    now: datetime,
    progress: Progress | None = None,
) -> tuple[ReturnsReport, list[tuple[int, RailResult]]]:
    """Parse and check the file; raises ImportRejected listing every bad row, else (report, results)."""
    if not actor.can("payouts"):
        raise Forbidden("recording bank returns needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    check_size(data)
    report = ReturnsReport(batch_id=batch.id, filename=filename, dry_run=False)
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id)))
    names = _index(payouts)
    errors = Errors()
    results: list[tuple[int, RailResult]] = []
    for row, cells in read_rows(data, errors, columns=COLUMNS, required=REQUIRED, progress=progress):
        report.rows += 1
        if cells is None:
            continue
        key_column = "payout_id" if cells.get("payout_id") else "end_to_end_id"
        key = cells.get(key_column, "")
        status = cells.get("status", "").lower()
        reason = cells.get("reason", "")
        ok = True
        if not key:
            errors.add(row, "payout_id", "give the payout_id or the end_to_end_id of the payout")
            ok = False
        elif key not in names:
            errors.add(row, key_column, f"{key!r} is not a payout of batch {batch.id}")
            ok = False
        if status not in STATUSES:
            errors.add(row, "status", f"{cells.get('status', '')!r} is not one of {', '.join(STATUSES)}")
            ok = False
        if len(reason) > MAX_REASON:
            errors.add(row, "reason", f"is {len(reason)} characters long; at most {MAX_REASON}")
            ok = False
        at = None
        if cells.get("date"):
            try:
                at = _parse_date(cells["date"])
            except ValueError as exc:
                errors.add(row, "date", f"{cells['date']!r} is not a date (YYYY-MM-DD) or an RFC 3339 time: {exc}")
                ok = False
            else:
                if at > now:
                    errors.add(row, "date", f"{cells['date']} is in the future")
                    ok = False
        if ok:
            results.append((row, RailResult(names[key], status, reason=reason or None, at=at)))
    if not errors.count:
        # The rows in order over the payouts' states: a row the state forbids (paid after returned, a
        # draft payout) rejects the file at its status cell.
        by_id = load_payouts(session, actor, [r.payout_id for _, r in results], lock=False)
        planned = plan_results(by_id, [r for _, r in results], now)
        for refusal in planned.refused:
            errors.add(results[refusal.index][0], "status", refusal.message)
        report.unchanged = len(planned.unchanged)
        for step in planned.applied:
            setattr(report, step.dst.value, getattr(report, step.dst.value) + 1)
    if errors.count:
        report.errors, report.error_count = errors.in_file_order(COLUMNS), errors.count
        raise ImportRejected(report)
    if report.rows == 0:
        report.errors = [RowError(2, None, "the file has no rows after its header")]
        report.error_count = 1
        raise ImportRejected(report)
    return report, results


def reconcile_file(
    session: Session,
    *,
    actor: Actor,
    batch_id: str,
    data: bytes,
    filename: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ReturnsReport:
    """Check the whole file, then (unless dry_run) record every row's result in this transaction."""
    report, results = read_returns(
        session, actor=actor, batch_id=batch_id, data=data, filename=filename, now=now, progress=progress
    )
    report.dry_run = dry_run
    if dry_run:
        return report
    if progress is not None:
        progress("recording results", 0, len(results))
    summary = record_results(session, actor=actor, results=[r for _, r in results], now=now, strict=True)
    report.settled = batch_id in summary.settled_batches
    if progress is not None:
        progress("recording results", len(results), len(results))
    return report
