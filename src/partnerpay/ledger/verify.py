"""The tie-out: balances recomputed from postings, lines = payouts = batches = files = ledger, audit chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.service import verify_chain
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.payouts.exporters.csv_file import control_sum_of, export_csv
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutLineRelease, PayoutStatus


@dataclass
class Report:
    accounts_checked: int = 0
    entries_checked: int = 0
    audit_rows_checked: int = 0
    audit_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "accounts_checked": self.accounts_checked,
            "entries_checked": self.entries_checked,
            "audit_ok": self.audit_ok,
            "audit_rows_checked": self.audit_rows_checked,
            "problems": self.problems,
        }


def verify(session: Session) -> Report:
    report = Report()
    _balances(session, report)
    _entries(session, report)
    _lines_vs_ledger(session, report)
    _payouts_vs_lines(session, report)
    _batch_tie_outs(session, report)
    _payout_files(session, report)  # issue 7 parts 4-5
    checked, problems = verify_chain(session)
    report.audit_rows_checked = checked
    report.audit_ok = not problems
    report.problems += problems
    return report


def _balances(session: Session, report: Report) -> None:
    recomputed = dict(
        session.execute(
            select(LedgerPosting.account_id, func.sum(LedgerPosting.amount)).group_by(LedgerPosting.account_id)
        ).all()
    )
    for acc_id, kind, owner, balance in session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.owner_id, LedgerAccount.balance)
    ):
        report.accounts_checked += 1
        expected = int(recomputed.get(acc_id, 0))
        if expected != balance:
            report.problems.append(
                f"account {acc_id} ({kind} of {owner}): stored balance {balance} but postings sum to {expected}"
            )


def _entries(session: Session, report: Report) -> None:
    report.entries_checked = int(session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0)
    unbalanced = session.execute(
        select(LedgerPosting.transaction_id, LedgerPosting.currency, func.sum(LedgerPosting.amount), func.count())
        .group_by(LedgerPosting.transaction_id, LedgerPosting.currency)
        .having((func.sum(LedgerPosting.amount) != 0) | (func.count() < 2))
    ).all()
    for tx, currency, total, legs in unbalanced:
        report.problems.append(f"ledger transaction {tx} ({currency}) is unbalanced: sum {total} over {legs} leg(s)")
    wrong_currency = session.execute(
        select(LedgerPosting.id, LedgerPosting.currency, LedgerAccount.currency)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerPosting.currency != LedgerAccount.currency)
        .limit(20)
    ).all()
    for posting, pc, ac in wrong_currency:
        report.problems.append(f"posting {posting} in {pc} on an account in {ac}")


def _account_balances(session: Session, kind: AccountKind) -> dict[tuple[str, str, str], int]:
    return {
        (program, owner, currency): int(balance)
        for program, owner, currency, balance in session.execute(
            select(
                LedgerAccount.program_id, LedgerAccount.owner_id, LedgerAccount.currency, LedgerAccount.balance
            ).where(LedgerAccount.kind == kind.value)
        )
    }


def _compare(
    report: Report, label: str, ledger: dict[tuple[str, str, str], int], expected: dict[tuple[str, str, str], int]
) -> None:
    for key in sorted(set(ledger) | set(expected)):
        if ledger.get(key, 0) != expected.get(key, 0):
            program, owner, currency = key
            report.problems.append(
                f"{label} of {owner} in {program} ({currency}): ledger {ledger.get(key, 0)}, "
                f"documents {expected.get(key, 0)}"
            )


def _lines_vs_ledger(session: Session, report: Report) -> None:
    line = CommissionLine
    unpaid = {
        (p, o, c): -int(s)
        for p, o, c, s in session.execute(
            select(line.program_id, line.partner_id, line.currency, func.sum(line.amount))
            .where(line.status.in_([LineStatus.PENDING.value, LineStatus.APPROVED.value]))
            .group_by(line.program_id, line.partner_id, line.currency)
        )
    }
    _compare(report, "partner payable", _account_balances(session, AccountKind.PARTNER_PAYABLE), unpaid)
    earned = {
        (p, p, c): int(s)
        for p, c, s in session.execute(
            select(line.program_id, line.currency, func.sum(line.amount))
            .where(line.status != LineStatus.REJECTED.value)
            .group_by(line.program_id, line.currency)
        )
    }
    _compare(report, "commission expense", _account_balances(session, AccountKind.COMMISSION_EXPENSE), earned)
    open_states = [
        PayoutStatus.DRAFT.value,
        PayoutStatus.APPROVED.value,
        PayoutStatus.SENDING.value,
        PayoutStatus.SENT.value,
    ]
    for kind, states, sign in (
        (AccountKind.PAYOUT_CLEARING, open_states, -1),
        (AccountKind.CASH, [PayoutStatus.PAID.value], -1),
    ):
        # The ledger moves what a payout's lines summed to (source_*); amount/currency is what was sent, in
        # the partner's currency when the program converts (issue 7 part 7). Older payouts have no source_*.
        source_currency = func.coalesce(Payout.source_currency, Payout.currency)
        docs = {
            (p, p, c): sign * int(s)
            for p, c, s in session.execute(
                select(Payout.program_id, source_currency, func.sum(func.coalesce(Payout.source_amount, Payout.amount)))
                .where(Payout.status.in_(states))
                .group_by(Payout.program_id, source_currency)
            )
        }
        _compare(report, kind.value.replace("_", " "), _account_balances(session, kind), docs)


def _payouts_vs_lines(session: Session, report: Report) -> None:
    line_sums = dict(
        (pid, (int(s), int(n)))
        for pid, s, n in session.execute(
            select(CommissionLine.payout_id, func.sum(CommissionLine.amount), func.count())
            .where(CommissionLine.payout_id.is_not(None))
            .group_by(CommissionLine.payout_id)
        )
    )
    # A failed or returned payout's lines went back to approved (payouts/reconcile.py): it ties out with the
    # lines it released, kept in payout_line_releases.
    for pid, s, n in session.execute(
        select(PayoutLineRelease.payout_id, func.sum(PayoutLineRelease.amount), func.count())
        .join(Payout, Payout.id == PayoutLineRelease.payout_id)
        .where(Payout.status.in_([PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value]))
        .group_by(PayoutLineRelease.payout_id)
    ):
        total, count = line_sums.get(pid, (0, 0))
        line_sums[pid] = (total + int(s), count + int(n))
    for payout in session.scalars(select(Payout)):
        total, count = line_sums.get(payout.id, (0, 0))
        if (total, count) != (payout.source_amount or payout.amount, payout.line_count):
            report.problems.append(
                f"payout {payout.id}: {payout.amount} over {payout.line_count} lines, "
                f"but its lines sum to {total} over {count}"
            )
    stray = session.scalar(
        select(func.count())
        .select_from(CommissionLine)
        .where(
            CommissionLine.status.in_([LineStatus.IN_BATCH.value, LineStatus.PAID.value]),
            CommissionLine.payout_id.is_(None),
        )
    )
    if stray:
        report.problems.append(f"{stray} line(s) are in a batch or paid without a payout")
    for batch in session.scalars(select(PayoutBatch)):
        total, count = session.execute(
            select(func.coalesce(func.sum(Payout.amount), 0), func.count()).where(Payout.batch_id == batch.id)
        ).one()
        if (int(total), int(count)) != (batch.total, batch.payout_count):
            report.problems.append(
                f"batch {batch.id}: total {batch.total} over {batch.payout_count} payouts, "
                f"payouts sum to {total} over {count}"
            )
        file_sum, file_rows = control_sum_of(export_csv(session, batch).content)
        if (file_sum, file_rows) != (batch.total, batch.payout_count):
            report.problems.append(f"batch {batch.id}: export file sums to {file_sum} over {file_rows} rows")


def _batch_tie_outs(session: Session, report: Report) -> None:
    """Each batch's lines, stored files and ledger movements against its payouts' statuses (payouts/tieout.py);
    the batch header and generated CSV are compared above already."""
    from partnerpay.payouts.tieout import batch_tie_out  # it imports this package's models, not this module

    for batch in session.scalars(select(PayoutBatch).order_by(PayoutBatch.id)):
        tie = batch_tie_out(session, batch)
        report.problems += [
            problem
            for row, problem in zip([r for r in tie.rows if not r.ok], tie.problems(), strict=True)
            if row.label.startswith(("Ledger", "File control sum (", "Commission lines", "Payouts in another"))
        ]


def _payout_files(session: Session, report: Report) -> None:
    """Every stored payout file still hashes to its SHA-256 and adds up to the payouts it lists (payouts/rails.py)."""
    from partnerpay.payouts.rails import check_files  # rails reaches integrations and exporters: import late

    report.problems += check_files(session)
