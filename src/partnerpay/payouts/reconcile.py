"""Reconciliation: what the rail or the bank says happened to each payout (issue 7, part 6).

`record_results` is the one function that moves a payout to paid, failed or returned. It is called by
the rails after a provider answered (payouts/sending.py), by the bank-returns upload (payouts/returns.py)
and by "mark batch paid". Decisions:

- Idempotent: a result for the state the payout is already in changes nothing (a duplicated webhook, a
  re-uploaded file, a poll after a crash). A result that contradicts a final state (paid after returned,
  failed after paid) is refused and listed; `strict=True` raises instead.
- Where a result may arrive from (RESULTS below): paid, failed and returned from approved, sending or
  sent; returned also from paid. "approved" is there because a batch whose file finance gave to the
  bank by hand never passes through sending/sent in partnerpay, yet the bank answers for it. "paid →
  returned" is there because a bank return (R01, AC04...) arrives days after the credit was confirmed:
  DESIGN.md's `sent → returned` is the common case, not the only one.
- failed and returned are final for the payout: its amount goes back to the partner's payable (the
  run's ledger entries negated, see reconcile_ledger.py) and its lines back to approved with payout_id
  cleared, so the next run pays them again; payout_line_releases keeps which payout carried them and why.
  A line is therefore never in two live payouts, and a failed payout is never retried as such (C's
  transient errors keep a payout in sending; only a provider's final "failed" comes here).
- A batch is settled (status paid, paid_at set) once none of its payouts is still open; failed and
  returned payouts stay listed on it (the tie-out shows them).
- Partners are told on each change, in the portal (notify.partner) and by email, with the reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert
from partnerpay.db.chunks import in_chunks
from partnerpay.db.engine import is_postgres
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.state import StateMachine
from partnerpay.ledger import service as ledger
from partnerpay.payouts import reconcile_ledger as rl
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutStatus
from partnerpay.payouts.notices import notify_outcomes
from partnerpay.payouts.reconcile_types import PayoutInfo, ReconcileSummary, Refusal, Step
from partnerpay.payouts.service import BATCHES
from partnerpay.webhooks_out import emit as webhooks_out

OUTCOMES = (PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED)
FINAL = frozenset({PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED})
OPEN = frozenset({PayoutStatus.DRAFT, PayoutStatus.APPROVED, PayoutStatus.SENDING, PayoutStatus.SENT})
RESULTS = StateMachine(
    "payout",
    {
        PayoutStatus.APPROVED: {PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED},
        PayoutStatus.SENDING: {PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED},
        PayoutStatus.SENT: {PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.RETURNED},
        PayoutStatus.PAID: {PayoutStatus.RETURNED},
    },
)
MAX_REASON = 500
DEFAULT_REASON = {
    PayoutStatus.FAILED: "the payment provider reported a failure without a reason",
    PayoutStatus.RETURNED: "the bank returned the payment without a reason",
}


@dataclass(frozen=True, slots=True)
class RailResult:
    payout_id: str
    outcome: str  # "paid" | "failed" | "returned"
    provider_ref: str | None = None
    reason: str | None = None  # shown to the partner and staff for failed/returned
    at: datetime | None = None  # when the provider says it happened (default: now)


def check_result(result: RailResult, index: int = 0) -> None:
    """Shape of one result; raises ValidationError naming the field."""
    if not isinstance(result.payout_id, str) or not result.payout_id.strip():
        raise ValidationError(f"result {index + 1}: payout_id is empty", field="payout_id")
    if result.outcome not in {o.value for o in OUTCOMES}:
        raise ValidationError(
            f"result {index + 1}: outcome {result.outcome!r} is not one of paid, failed, returned", field="outcome"
        )
    if result.reason is not None and len(result.reason) > MAX_REASON:
        raise ValidationError(f"result {index + 1}: reason is longer than {MAX_REASON} characters", field="reason")
    if result.at is not None and result.at.tzinfo is None:
        raise ValidationError(f"result {index + 1}: at must carry a time zone", field="at")


def load_payouts(session: Session, actor: Actor, ids: Sequence[str], *, lock: bool) -> dict[str, Payout]:
    """Payouts by id that the actor may see, locked in id order on PostgreSQL (SQLite's writer lock is enough)."""
    found: dict[str, Payout] = {}
    wanted = sorted(set(ids))
    for chunk in in_chunks(wanted):
        stmt = select(Payout).where(Payout.id.in_(chunk)).order_by(Payout.id)
        if lock and is_postgres(session):
            stmt = stmt.with_for_update()
        for payout in session.scalars(stmt):
            if actor.sees_program(payout.program_id):
                found[payout.id] = payout
    return found


def plan_results(payouts: dict[str, Payout], results: Sequence[RailResult], now: datetime) -> ReconcileSummary:
    """Pure: replay the results in order over the payouts' states; nothing is written."""
    summary = ReconcileSummary()
    state = {pid: PayoutStatus(p.status) for pid, p in payouts.items()}
    for index, result in enumerate(results):
        check_result(result, index)
        outcome = PayoutStatus(result.outcome)
        current = state.get(result.payout_id)
        if current is None:
            message = f"payout {result.payout_id} not found"
            summary.refused.append(Refusal(index, result.payout_id, result.outcome, message))
        elif current is outcome:
            summary.unchanged.append(index)
        elif not RESULTS.allowed(current, outcome):
            message = f"payout {result.payout_id} is {current.value}; a {outcome.value} result cannot change it"
            summary.refused.append(Refusal(index, result.payout_id, result.outcome, message))
        else:
            reason = (result.reason or "").strip() or DEFAULT_REASON.get(outcome)
            summary.applied.append(
                Step(index, result.payout_id, current, outcome, result.at or now, reason, result.provider_ref)
            )
            state[result.payout_id] = outcome
    return summary


def record_results(
    session: Session, *, actor: Actor, results: Sequence[RailResult], now: datetime, strict: bool = False
) -> ReconcileSummary:
    """Apply provider/bank results: statuses, lines, ledger, batch roll-up, audit and partner notices."""
    if not actor.can("payouts"):
        raise Forbidden("recording payout results needs the finance or owner role (scope 'payouts')")
    payouts = load_payouts(session, actor, [r.payout_id for r in results], lock=True)
    summary = plan_results(payouts, results, now)
    if strict and summary.refused:
        first = summary.refused[0]
        error = NotFound if first.message.endswith("not found") else InvalidTransition
        raise error(first.message, field="payout_id")
    if not summary.applied:
        return summary
    steps: dict[str, list[Step]] = defaultdict(list)
    for step in summary.applied:
        steps[step.payout_id].append(step)
    info = {pid: PayoutInfo.of(payouts[pid]) for pid in steps}
    _update_payouts(session, payouts, steps)
    _update_lines(session, steps, now)
    _post_ledger(session, info, steps, now)
    summary.settled_batches = _settle_batches(session, actor, {p.batch_id for p in info.values()}, now)
    audit.record_many(
        session,
        actor=actor,
        action="payout.reconcile",
        now=now,
        items=[
            (
                "payout",
                s.payout_id,
                info[s.payout_id].program_id,
                {"status": s.src.value},
                {
                    "status": s.dst.value,
                    "at": s.at.isoformat(),
                    "reason": s.reason if s.dst is not PayoutStatus.PAID else None,
                    "provider_ref": s.provider_ref,
                },
            )
            for s in summary.applied
        ],
    )
    notify_outcomes(session, [(info[s.payout_id], s.dst.value, s.at, s.reason) for s in summary.applied], now)
    webhooks_out.payout_outcomes(  # payout.paid / payout.failed (issue 8)
        session, [(info[s.payout_id], s.dst.value, s.at, s.reason) for s in summary.applied], now
    )
    return summary


_PAYOUT_COLUMNS = ("status", "paid_at", "failed_at", "returned_at", "failure_reason", "provider_ref")


def _update_payouts(session: Session, payouts: dict[str, Payout], steps: dict[str, list[Step]]) -> None:
    """Compare-and-set from the status each payout was read in to its final one: one executemany, then a
    count of the rows that arrived (the rows are locked on PostgreSQL; SQLite has one writer)."""
    params = []
    for pid, chain in steps.items():
        p = payouts[pid]
        values: dict[str, object] = {name: getattr(p, name) for name in _PAYOUT_COLUMNS}
        values["status"] = chain[-1].dst.value
        for step in chain:
            if step.dst is PayoutStatus.PAID:
                values["paid_at"] = step.at
            elif step.dst is PayoutStatus.FAILED:
                values["failed_at"] = step.at
            else:
                values["returned_at"] = step.at
            if step.dst is not PayoutStatus.PAID:
                values["failure_reason"] = step.reason
            if step.provider_ref:
                values["provider_ref"] = step.provider_ref
        params.append({"pid": pid, "src": chain[0].src.value, **{f"v_{k}": v for k, v in values.items()}})
    table = Payout.__table__
    assert isinstance(table, Table)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("pid"), table.c.status == bindparam("src"))
        .values({name: bindparam(f"v_{name}") for name in _PAYOUT_COLUMNS}),
        params,
    )
    ids = sorted(steps)
    final = {pid: chain[-1].dst.value for pid, chain in steps.items()}
    arrived = 0
    for chunk in in_chunks(ids):
        arrived += sum(
            1
            for pid, status in session.execute(select(Payout.id, Payout.status).where(Payout.id.in_(chunk)))
            if status == final[pid]
        )
    if arrived != len(ids):
        raise InvalidTransition(
            f"{len(ids) - arrived} payout(s) changed state meanwhile; nothing was recorded", field="status"
        )
    for pid in ids:
        session.expire(payouts[pid])


def _update_lines(session: Session, steps: dict[str, list[Step]], now: datetime) -> None:
    paid = sorted(pid for pid, chain in steps.items() if chain[-1].dst is PayoutStatus.PAID)
    released = {pid: chain[-1] for pid, chain in steps.items() if chain[-1].dst is not PayoutStatus.PAID}
    for chunk in in_chunks(paid):
        session.execute(
            update(CommissionLine)
            .where(
                CommissionLine.payout_id.in_(chunk),
                CommissionLine.status == LineStatus.IN_BATCH.value,
            )
            .values(status=LineStatus.PAID.value)
            .execution_options(synchronize_session=False)
        )
    ids = sorted(released)
    for chunk in in_chunks(ids):
        lines = session.execute(
            select(CommissionLine.id, CommissionLine.payout_id, CommissionLine.amount, CommissionLine.currency)
            .where(CommissionLine.payout_id.in_(chunk))
            .order_by(CommissionLine.id)
        ).all()
        bulk_insert(
            session,
            "payout_line_releases",
            ("payout_id", "line_id", "amount", "currency", "outcome", "reason", "released_at"),
            [
                (pid, lid, amount, cur, released[str(pid)].dst.value, released[str(pid)].reason or "", now)
                for lid, pid, amount, cur in lines
            ],
        )
        # Back to approved, free for the next run; the approval itself still stands.
        session.execute(
            update(CommissionLine)
            .where(
                CommissionLine.payout_id.in_(chunk),
                CommissionLine.status.in_([LineStatus.IN_BATCH.value, LineStatus.PAID.value]),
            )
            .values(status=LineStatus.APPROVED.value, payout_id=None)
            .execution_options(synchronize_session=False)
        )
    # The UPDATEs above bypass the ORM: lines the caller loaded must be read again.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, CommissionLine):
            session.expire(obj, ["status", "payout_id"])


def _post_ledger(session: Session, info: dict[str, PayoutInfo], steps: dict[str, list[Step]], now: datetime) -> None:
    known = rl.PayoutEntries(session, steps)
    by_program: dict[str, list[ledger.Entry]] = defaultdict(list)
    for pid, chain in steps.items():
        payout = info[pid]
        paid_now: list[ledger.Entry] = []
        for step in chain:
            memo = f"{step.dst.value}: {step.reason}" if step.reason else step.dst.value
            if step.dst is PayoutStatus.PAID:
                paid_now = rl.paid_entries(
                    known,
                    program_id=payout.program_id,
                    payout_id=pid,
                    amount=payout.amount,
                    currency=payout.currency,
                    memo=memo[:500],
                )
                by_program[payout.program_id] += paid_now
            else:
                kind = rl.FAILED_KIND if step.dst is PayoutStatus.FAILED else rl.RETURNED_KIND
                by_program[payout.program_id] += rl.undo_entries(
                    known,
                    payout_id=pid,
                    kind=kind,
                    after_paid=step.src is PayoutStatus.PAID,
                    memo=memo[:500],
                    paid_now=paid_now,
                )
    for program_id, entries in by_program.items():
        ledger.post(session, program_id=program_id, entries=entries, now=now)


def _settle_batches(session: Session, actor: Actor, batch_ids: set[str], now: datetime) -> list[str]:
    """A batch none of whose payouts is open any more is settled: status paid, paid_at now."""
    settled = []
    for batch_id in sorted(batch_ids):
        statuses = set(session.scalars(select(Payout.status).where(Payout.batch_id == batch_id)))
        batch = session.get(PayoutBatch, batch_id)
        assert batch is not None
        if statuses & {s.value for s in OPEN} or batch.status == BatchStatus.PAID.value:
            continue
        src = BatchStatus(batch.status)
        if src is BatchStatus.SENDING:  # every payout answered while the send was still marked running
            BATCHES.transition(session, PayoutBatch, [batch_id], src=src, dst=BatchStatus.SENT)
            src = BatchStatus.SENT
        BATCHES.transition(session, PayoutBatch, [batch_id], src=src, dst=BatchStatus.PAID, values={"paid_at": now})
        counts = Counter(session.scalars(select(Payout.status).where(Payout.batch_id == batch_id)))
        audit.record(
            session,
            actor=actor,
            action="payout_batch.settle",
            object_type="payout_batch",
            object_id=batch_id,
            program_id=batch.program_id,
            now=now,
            before={"status": src.value},
            after={"status": BatchStatus.PAID.value, "payouts": dict(sorted(counts.items()))},
        )
        settled.append(batch_id)
    return settled


def settle_batch_paid(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> ReconcileSummary:
    """Every open payout of an approved or sent batch is paid ("mark batch paid"), through record_results."""
    if not actor.can("payouts"):
        raise Forbidden("marking a payout batch paid needs the finance or owner role (scope 'payouts')")
    from partnerpay.payouts.service import get_batch  # the service module imports nothing of this one

    batch = get_batch(session, actor, batch_id)
    BATCHES.check(BatchStatus(batch.status), BatchStatus.PAID, object_id=batch.id)
    ids = session.scalars(
        select(Payout.id).where(Payout.batch_id == batch.id, Payout.status.in_([s.value for s in OPEN]))
    )
    results = [RailResult(payout_id=pid, outcome=PayoutStatus.PAID.value) for pid in ids]
    return record_results(session, actor=actor, results=results, now=now, strict=True)
