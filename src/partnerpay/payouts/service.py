"""Payout runs (set-based), batch approval and marking a batch paid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import format_money
from partnerpay.kit.state import StateMachine
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutRun, PayoutStatus
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

BATCHES = StateMachine(
    "payout batch",
    {
        BatchStatus.DRAFT: {BatchStatus.APPROVED},
        BatchStatus.APPROVED: {BatchStatus.SENDING, BatchStatus.PAID},
        BatchStatus.SENDING: {BatchStatus.SENT},
        BatchStatus.SENT: {BatchStatus.PAID},
    },
)
PAYOUTS = StateMachine(
    "payout",
    {
        PayoutStatus.DRAFT: {PayoutStatus.APPROVED},
        PayoutStatus.APPROVED: {PayoutStatus.SENDING, PayoutStatus.PAID},
        PayoutStatus.SENDING: {PayoutStatus.SENT, PayoutStatus.FAILED},
        PayoutStatus.FAILED: {PayoutStatus.SENDING},
        PayoutStatus.SENT: {PayoutStatus.PAID, PayoutStatus.RETURNED},
    },
)


@dataclass
class RunResult:
    run: PayoutRun
    batch: PayoutBatch | None
    payouts: list[Payout] = field(default_factory=list)
    skipped: list[dict[str, object]] = field(default_factory=list)


# Tests pass a hook to crash at a named point and prove the run is all-or-nothing.
CrashHook = Callable[[str], None]


def _lock_program(session: Session, program_id: str) -> None:
    """Runs of one program queue behind each other (SQLite's BEGIN IMMEDIATE already serialises)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM programs WHERE id = :id FOR UPDATE"), {"id": program_id})


def create_payout_run(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    now: datetime,
    as_of: datetime | None = None,
    crash: CrashHook | None = None,
) -> RunResult:
    """Gather approved lines past their hold, net them per partner, and make one draft batch.

    A line joins at most one payout: it moves to in_batch here, so a second run finds only what
    became payable since.
    """
    if not actor.can("payouts"):
        raise Forbidden("creating payout runs needs the finance or owner role (scope 'payouts')")
    program = get_program(session, actor, program_id)
    _lock_program(session, program.id)
    cutoff = as_of or now
    eligible = and_(
        CommissionLine.program_id == program.id,
        CommissionLine.status == LineStatus.APPROVED.value,
        CommissionLine.hold_until <= cutoff,
        CommissionLine.payout_id.is_(None),
    )
    sums = session.execute(
        select(
            CommissionLine.partner_id,
            CommissionLine.currency,
            Partner.status,
            Partner.payout_review_until,
            func.sum(CommissionLine.amount),
            func.count(),
        )
        .join(Partner, Partner.id == CommissionLine.partner_id)
        .where(eligible)
        .group_by(CommissionLine.partner_id, CommissionLine.currency, Partner.status, Partner.payout_review_until)
        .order_by(CommissionLine.partner_id)
    ).all()
    run = PayoutRun(id=new_id("run"), program_id=program.id, as_of=cutoff, created_by=actor.id, created_at=now)
    session.add(run)
    result = RunResult(run=run, batch=None)
    payable: list[tuple[str, str, int, int]] = []
    for partner_id, currency, status, review_until, total, count in sums:
        total = int(total)
        if status != PartnerStatus.ACTIVE.value:
            result.skipped.append({"partner_id": partner_id, "reason": f"partner_{status}", "amount": total})
        elif total < 0:
            result.skipped.append({"partner_id": partner_id, "reason": "negative_balance_carried", "amount": total})
        elif total == 0:
            result.skipped.append({"partner_id": partner_id, "reason": "nets_to_zero", "amount": 0})
        elif review_until is not None and review_until > cutoff:
            # Changed payout details hold the payout for review (a hijacked login redirecting money).
            result.skipped.append(
                {
                    "partner_id": partner_id,
                    "reason": "payout_details_changed",
                    "amount": total,
                    "until": review_until.isoformat(),
                }
            )
        else:
            payable.append((partner_id, currency, total, int(count)))
    session.flush()
    if payable:
        result.batch, result.payouts = _make_batch(session, actor, program, run, payable, eligible, now, crash)
    audit.record(
        session,
        actor=actor,
        action="payout_run.create",
        object_type="payout_run",
        object_id=run.id,
        program_id=program.id,
        now=now,
        after={
            "as_of": cutoff.isoformat(),
            "batch_id": result.batch.id if result.batch else None,
            "payouts": len(result.payouts),
            "total": sum(p.amount for p in result.payouts),
            "skipped": result.skipped,
        },
    )
    return result


def _make_batch(
    session: Session,
    actor: Actor,
    program: Program,
    run: PayoutRun,
    payable: list[tuple[str, str, int, int]],
    eligible: object,
    now: datetime,
    crash: CrashHook | None,
) -> tuple[PayoutBatch, list[Payout]]:
    currency = program.currency
    batch = PayoutBatch(
        id=new_id("bat"),
        run_id=run.id,
        program_id=program.id,
        currency=currency,
        status=BatchStatus.DRAFT.value,
        total=sum(p[2] for p in payable),
        payout_count=len(payable),
        created_at=now,
    )
    session.add(batch)
    session.flush()
    rows = [
        (new_id("pay"), batch.id, program.id, partner_id, total, cur, count, PayoutStatus.DRAFT.value, now)
        for partner_id, cur, total, count in payable
    ]
    bulk_insert(
        session,
        "payouts",
        ("id", "batch_id", "program_id", "partner_id", "amount", "currency", "line_count", "status", "created_at"),
        rows,
    )
    if crash:
        crash("after_payouts_insert")
    payout_of_partner = (
        select(Payout.id)
        .where(Payout.batch_id == batch.id, Payout.partner_id == CommissionLine.partner_id)
        .scalar_subquery()
    )
    partner_ids = [p[0] for p in payable]
    moved = 0
    for start in range(0, len(partner_ids), 1000):
        moved += session.execute(
            update(CommissionLine)
            .where(eligible, CommissionLine.partner_id.in_(partner_ids[start : start + 1000]))  # type: ignore[arg-type]
            .values(status=LineStatus.IN_BATCH.value, payout_id=payout_of_partner)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    expected = sum(p[3] for p in payable)
    if moved != expected:
        raise InvalidTransition(f"{expected - moved} line(s) changed while the run was made; nothing was written")
    if crash:
        crash("after_lines_moved")
    ledger.post(
        session,
        program_id=program.id,
        now=now,
        entries=[
            ledger.transfer(
                kind="payout",
                ref_type="payout",
                ref_id=row[0],
                currency=row[5],
                amount=row[4],
                debit=(row[3], AccountKind.PARTNER_PAYABLE),
                credit=(program.id, AccountKind.PAYOUT_CLEARING),
            )
            for row in rows
        ],
    )
    audit.record_many(
        session,
        actor=actor,
        action="payout.create",
        now=now,
        items=[
            ("payout", r[0], program.id, None, {"partner_id": r[3], "amount": r[4], "currency": r[5]}) for r in rows
        ],
    )
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.partner_id)))
    return batch, payouts


def get_batch(session: Session, actor: Actor, batch_id: str) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None or not actor.sees_program(batch.program_id):
        raise NotFound(f"payout batch {batch_id} not found", field="batch_id")
    return batch


def approve_batch(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    if not actor.can("payouts"):
        raise Forbidden("approving a payout batch needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    BATCHES.check(BatchStatus(batch.status), BatchStatus.APPROVED, object_id=batch.id)
    BATCHES.transition(
        session,
        PayoutBatch,
        [batch.id],
        src=BatchStatus.DRAFT,
        dst=BatchStatus.APPROVED,
        values={"approved_by": actor.id, "approved_at": now},
    )
    ids = list(session.scalars(select(Payout.id).where(Payout.batch_id == batch.id)))
    PAYOUTS.transition(session, Payout, ids, src=PayoutStatus.DRAFT, dst=PayoutStatus.APPROVED)
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.approve",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": "draft"},
        after={"status": batch.status},
    )
    return batch


def mark_batch_paid(session: Session, *, actor: Actor, batch_id: str, now: datetime) -> PayoutBatch:
    """The bank confirmed the batch: payouts and their lines are paid, clearing → cash in the ledger."""
    if not actor.can("payouts"):
        raise Forbidden("marking a payout batch paid needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    src = BatchStatus(batch.status)
    BATCHES.check(src, BatchStatus.PAID, object_id=batch.id)
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.id)))
    BATCHES.transition(session, PayoutBatch, [batch.id], src=src, dst=BatchStatus.PAID, values={"paid_at": now})
    PAYOUTS.transition(
        session,
        Payout,
        [p.id for p in payouts if p.status == src.value],
        src=PayoutStatus(src.value),
        dst=PayoutStatus.PAID,
        values={"paid_at": now},
    )
    session.execute(
        update(CommissionLine)
        .where(
            CommissionLine.payout_id.in_([p.id for p in payouts]), CommissionLine.status == LineStatus.IN_BATCH.value
        )
        .values(status=LineStatus.PAID.value)
        .execution_options(synchronize_session=False)
    )
    ledger.post(
        session,
        program_id=batch.program_id,
        now=now,
        entries=[
            ledger.transfer(
                kind="payout_paid",
                ref_type="payout",
                ref_id=p.id,
                currency=p.currency,
                amount=p.amount,
                debit=(batch.program_id, AccountKind.PAYOUT_CLEARING),
                credit=(batch.program_id, AccountKind.CASH),
            )
            for p in payouts
        ],
    )
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.mark_paid",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": src.value},
        after={"status": batch.status},
    )
    enqueue(
        session,
        "notify.partner",
        now=now,
        payloads=[
            {
                "partner_id": p.partner_id,
                "kind": "payout.paid",
                "text": f"Payout {p.id} of {format_money(p.amount, p.currency)} was paid",
            }
            for p in payouts
        ],
    )
    return batch
