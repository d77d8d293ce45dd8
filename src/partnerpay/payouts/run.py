"""The payout run, set-based: every approved, payable line of a program into one payout per partner and currency.

What one run does, in the caller's transaction (all of it or nothing):
1. SUM … GROUP BY the eligible lines per partner and line currency (approved, past hold, in no payout;
   with a net-N schedule also approved N days ago). Negative lines (clawbacks) net against positive ones;
   a negative total carries forward.
2. Decide per partner and currency (a loop over partners, never over lines) whether it is paid, or
   skipped with a reason (payouts/run_skips.py), converting to the partner's own currency at the batch's
   recorded rate when the program pays partners in their own currency.
3. One draft batch per currency sent (and lines' currency), the payouts COPY'd in, the lines moved to
   in_batch with UPDATE … FROM a staging table, payable → clearing posted set-based (ledger/bulk.py),
   the skips stored for the partner to see, one audit row per payout and one for the run.

A line moves to in_batch here and carries its payout id, so a second run for the same period finds nothing.
Named crash points (`crash`) let the tests prove a failure anywhere leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, and_, case, func, select, text, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.kit.errors import Forbidden, InvalidTransition
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.ledger.bulk import transfer_from_stage
from partnerpay.ledger.models import AccountKind
from partnerpay.partners.models import Partner, PayoutMethod, TaxProfile
from partnerpay.payouts.models import BatchStatus, PartnerPayoutCurrency, PayoutBatch, PayoutRun, PayoutStatus
from partnerpay.payouts.run_skips import Candidate, Decision, decide, rates_for_pairs
from partnerpay.payouts.schedules import ScheduleKind
from partnerpay.payouts.settings import settings_of
from partnerpay.programs.service import get_program

# Tests pass a hook to crash at a named point and prove the run is all-or-nothing.
CrashHook = Callable[[str], None]
CRASH_POINTS = ("after_batch_insert", "after_payouts_insert", "after_lines_moved", "after_ledger_posted", "after_audit")

_STAGE = Table(
    "payout_run_stage",
    MetaData(),  # not the app's metadata: a per-connection scratch table, no migration
    Column("tx_id", String(40), primary_key=True),
    Column("ref_id", String(40), nullable=False),  # the payout id
    Column("owner_id", String(40), nullable=False),  # the partner id
    Column("amount", BigInteger, nullable=False),  # in the lines' currency
    Column("currency", String(3), nullable=False),  # the lines' currency
    # The lines' UPDATE … FROM looks payouts up by partner and currency (or the planner walks the stage per line).
    Index("ix_payout_run_stage_owner", "owner_id", "currency", unique=True),
    prefixes=["TEMPORARY"],
)
_PAYOUT_COLUMNS = (
    "id", "batch_id", "program_id", "partner_id", "amount", "currency", "line_count", "status", "created_at",
    "source_amount", "source_currency", "fx_rate_id", "fx_rate",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PayoutRow:
    """A payout the run made, as written (amount/currency: sent; source_*: what its lines sum to)."""

    id: str
    batch_id: str
    partner_id: str
    amount: int
    currency: str
    line_count: int
    source_amount: int
    source_currency: str
    fx_rate: str | None


@dataclass
class RunResult:
    run: PayoutRun
    batch: PayoutBatch | None  # the first batch (most runs make one); all of them in `batches`
    payouts: list[PayoutRow] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    batches: list[PayoutBatch] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        """Amount sent per currency."""
        out: dict[str, int] = defaultdict(int)
        for b in self.batches:
            out[b.currency] += b.total
        return dict(sorted(out.items()))

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(str(s["reason"]) for s in self.skipped).items()))


def _lock_program(session: Session, program_id: str) -> None:
    """Runs of one program queue behind each other (SQLite's BEGIN IMMEDIATE already serialises)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM programs WHERE id = :id FOR UPDATE"), {"id": program_id})


def _candidates(
    session: Session, eligible: Any, *, with_method: bool, with_tax: bool, with_currency: bool
) -> list[Candidate]:
    """One row per partner and line currency with its sum and what the gates need to know (one query)."""
    line = CommissionLine
    sums = (
        select(line.partner_id, line.currency, func.sum(line.amount).label("total"), func.count().label("n"))
        .where(eligible)
        .group_by(line.partner_id, line.currency)
        .subquery()
    )
    cols: list[Any] = [
        sums.c.partner_id, sums.c.currency, sums.c.total, sums.c.n,
        Partner.status, Partner.payout_review_until, Partner.country,
    ]  # fmt: skip
    source: Any = sums.join(Partner, Partner.id == sums.c.partner_id)
    if with_method:
        # Grouped subqueries joined, not correlated per row: payout_methods has no partner index to lean on.
        methods = (
            select(PayoutMethod.partner_id)
            .where(PayoutMethod.active.is_(True), PayoutMethod.verified.is_(True))
            .group_by(PayoutMethod.partner_id)
            .subquery()
        )
        source = source.outerjoin(methods, methods.c.partner_id == sums.c.partner_id)
        cols.append(methods.c.partner_id.is_not(None))
    if with_tax:
        usable = and_(TaxProfile.active.is_(True), TaxProfile.valid.is_(True))
        forms = (
            select(
                TaxProfile.partner_id,
                func.max(case((TaxProfile.form == "w9", 1), else_=0)).label("w9"),
                func.max(case((TaxProfile.form == "w8ben", 1), else_=0)).label("w8ben"),
            )
            .where(usable)
            .group_by(TaxProfile.partner_id)
            .subquery()
        )
        source = source.outerjoin(forms, forms.c.partner_id == sums.c.partner_id)
        cols += [forms.c.w9, forms.c.w8ben]
    if with_currency:
        source = source.outerjoin(PartnerPayoutCurrency, PartnerPayoutCurrency.partner_id == sums.c.partner_id)
        cols.append(PartnerPayoutCurrency.currency)
    out = []
    for row in session.execute(select(*cols).select_from(source).order_by(sums.c.partner_id, sums.c.currency)):
        values = list(row)
        partner_id, currency, total, n, status, review_until, country = values[:7]
        rest = values[7:]
        verified = bool(rest.pop(0)) if with_method else True
        forms_on_file: set[str] = set()
        if with_tax:
            w9, w8 = rest.pop(0), rest.pop(0)
            forms_on_file = {f for f, has in (("w9", w9), ("w8ben", w8)) if has}
        pay_in = rest.pop(0) if with_currency else None
        out.append(
            Candidate(
                partner_id,
                currency,
                int(total),
                int(n),
                status,
                review_until,
                country,
                verified,
                frozenset(forms_on_file),
                pay_in or currency,
            )
        )
    return out


def create_payout_run(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    now: datetime,
    as_of: datetime | None = None,
    crash: CrashHook | None = None,
    scheduled_for: datetime | None = None,
) -> RunResult:
    """Pay what is approved and past hold, skip (with a reason) whom the program's gates hold back."""
    if not actor.can("payouts"):
        raise Forbidden("creating payout runs needs the finance or owner role (scope 'payouts')")
    program = get_program(session, actor, program_id)
    _lock_program(session, program.id)
    settings = settings_of(session, program.id)
    cutoff = as_of or now
    line = CommissionLine
    conditions = [
        line.program_id == program.id,
        line.status == LineStatus.APPROVED.value,
        line.hold_until <= cutoff,
        line.payout_id.is_(None),
    ]
    if settings.schedule.kind is ScheduleKind.NET and settings.schedule.net_days is not None:
        conditions.append(line.approved_at <= cutoff - timedelta(days=settings.schedule.net_days))
    eligible = and_(*conditions)
    candidates = _candidates(
        session,
        eligible,
        with_method=settings.require_verified_method,
        with_tax=settings.require_tax_form,
        with_currency=settings.pay_in_partner_currency,
    )
    rates = rates_for_pairs(session, program.id, {(c.currency, c.pay_in) for c in candidates if c.total > 0}, cutoff)
    run = PayoutRun(id=new_id("run"), program_id=program.id, as_of=cutoff, created_by=actor.id, created_at=now)
    session.add(run)
    result = RunResult(run=run, batch=None)
    paid: list[tuple[Candidate, Decision]] = []
    for cand in candidates:
        decision = decide(cand, settings=settings, cutoff=cutoff, rates=rates, rounding=program.rounding)
        if decision.reason is None:
            paid.append((cand, decision))
        else:
            result.skipped.append(decision.skip_row(cand))
    session.flush()
    if paid:
        _write_payouts(session, actor, result, program.id, paid, eligible, now, scheduled_for, crash)
    _write_skips(session, run.id, result.skipped, now)
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
            "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
            "batch_ids": [b.id for b in result.batches],
            "payouts": len(result.payouts),
            "totals": result.totals,
            "skipped": result.skipped_by_reason,
        },
    )
    if crash:
        crash("after_audit")
    return result


def _write_payouts(
    session: Session,
    actor: Actor,
    result: RunResult,
    program_id: str,
    paid: list[tuple[Candidate, Decision]],
    eligible: Any,
    now: datetime,
    scheduled_for: datetime | None,
    crash: CrashHook | None,
) -> None:
    groups: dict[tuple[str, str], list[tuple[Candidate, Decision]]] = defaultdict(list)
    for cand, decision in paid:
        groups[(decision.currency, cand.currency)].append((cand, decision))
    rows: list[tuple[Any, ...]] = []
    for (sent, source), members in sorted(groups.items()):
        rate = members[0][1].rate
        batch = PayoutBatch(
            id=new_id("bat"), run_id=result.run.id, program_id=program_id, currency=sent,
            status=BatchStatus.DRAFT.value, total=sum(d.amount for _, d in members), payout_count=len(members),
            created_at=now, scheduled_for=scheduled_for, source_currency=source,
            source_total=sum(c.total for c, _ in members), fx_rate_id=rate.id if rate else None,
            fx_rate=rate.text if rate else None,
        )  # fmt: skip
        session.add(batch)
        result.batches.append(batch)
        ids = new_ids("pay", len(members))
        for pid, (cand, d) in zip(ids, members, strict=True):
            result.payouts.append(
                PayoutRow(
                    pid,
                    batch.id,
                    cand.partner_id,
                    d.amount,
                    sent,
                    cand.count,
                    cand.total,
                    source,
                    rate.text if rate else None,
                )
            )
            rows.append(
                (
                    pid,
                    batch.id,
                    program_id,
                    cand.partner_id,
                    d.amount,
                    sent,
                    cand.count,
                    PayoutStatus.DRAFT.value,
                    now,
                    cand.total,
                    source,
                    rate.id if rate else None,
                    rate.text if rate else None,
                )
            )
    result.batch = result.batches[0]
    session.flush()
    if crash:
        crash("after_batch_insert")
    bulk_insert(session, "payouts", _PAYOUT_COLUMNS, rows)
    if crash:
        crash("after_payouts_insert")
    conn = session.connection()
    conn.exec_driver_sql("DROP TABLE IF EXISTS payout_run_stage")
    _STAGE.create(conn)
    tx_ids = new_ids("ltx", len(result.payouts))
    bulk_insert(
        session,
        "payout_run_stage",
        ("tx_id", "ref_id", "owner_id", "amount", "currency"),
        [
            (t, p.id, p.partner_id, p.source_amount, p.source_currency)
            for t, p in zip(tx_ids, result.payouts, strict=True)
        ],
    )
    lines = CommissionLine.__table__
    assert isinstance(lines, Table)
    st = _STAGE.c
    moved = session.execute(
        update(lines)
        .where(eligible, lines.c.partner_id == st.owner_id, lines.c.currency == st.currency)
        .values(status=LineStatus.IN_BATCH.value, payout_id=st.ref_id)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    expected = sum(p.line_count for p in result.payouts)
    if moved != expected:
        raise InvalidTransition(f"{expected - moved} line(s) changed while the run was made; nothing was written")
    if crash:
        crash("after_lines_moved")
    transfer_from_stage(
        session,
        program_id=program_id,
        stage=_STAGE,
        kind="payout",
        ref_type="payout",
        debit_kind=AccountKind.PARTNER_PAYABLE,
        credit=(program_id, AccountKind.PAYOUT_CLEARING),
        now=now,
    )
    if crash:
        crash("after_ledger_posted")
    _STAGE.drop(conn)
    audit.record_many(
        session,
        actor=actor,
        action="payout.create",
        now=now,
        items=[
            (
                "payout",
                p.id,
                program_id,
                None,
                {
                    "partner_id": p.partner_id,
                    "amount": p.amount,
                    "currency": p.currency,
                    "source_amount": p.source_amount,
                    "source_currency": p.source_currency,
                    "fx_rate": p.fx_rate,
                },
            )
            for p in result.payouts
        ],
    )


def _write_skips(session: Session, run_id: str, skipped: list[dict[str, Any]], now: datetime) -> None:
    bulk_insert(
        session,
        "payout_skips",
        ("run_id", "partner_id", "currency", "reason", "amount", "detail", "created_at"),
        [
            (
                run_id,
                s["partner_id"],
                s["currency"],
                s["reason"],
                s["amount"],
                json_value(
                    session, {k: v for k, v in s.items() if k not in ("partner_id", "currency", "reason", "amount")}
                ),
                now,
            )
            for s in skipped
        ],
    )
