"""A batch's tie-out: lines = payouts = batch total = file control sums = ledger, per currency.

Shown on the console batch page, served at GET /payout-batches/{id}/tie-out and run over every batch by
`partnerpay verify`. Amounts are compared in the currency each side is kept in:

- the batch header, its payouts and the payout files are in what is SENT (payout.amount/currency);
- the lines and the ledger are in the lines' own currency (payout.source_amount/source_currency when
  the program converts, else the same as what is sent).

A failed or returned payout keeps its place in the batch (the file held it, the bank answered for it)
and ties out with the lines it released (payout_line_releases) and the ledger entries that gave its
amount back to the partner.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.commissions.models import CommissionLine
from partnerpay.db.chunks import in_chunks
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.payouts.exporters.csv_file import control_sum_of, export_csv
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutFile, PayoutLineRelease, PayoutStatus
from partnerpay.payouts.reconcile_ledger import FAILED_KIND, PAID_KIND, RETURNED_KIND

OPEN = (PayoutStatus.DRAFT, PayoutStatus.APPROVED, PayoutStatus.SENDING, PayoutStatus.SENT)
BACK = (PayoutStatus.FAILED, PayoutStatus.RETURNED)


@dataclass(frozen=True)
class TieRow:
    label: str
    currency: str
    amount: int
    count: int | None
    unit: str
    expected: int
    expected_count: int | None = None

    @property
    def ok(self) -> bool:
        return self.amount == self.expected and (self.expected_count is None or self.count == self.expected_count)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "currency": self.currency,
            "amount": self.amount,
            "count": self.count,
            "unit": self.unit,
            "expected": self.expected,
            "expected_count": self.expected_count,
            "ok": self.ok,
        }


@dataclass
class BatchTieOut:
    batch_id: str
    status: str
    rows: list[TieRow] = field(default_factory=list)
    by_status: dict[str, dict[str, int]] = field(default_factory=dict)  # status -> {count, amount}

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def problems(self) -> list[str]:
        return [
            f"batch {self.batch_id}: {r.label} is {r.amount}"
            + (f" over {r.count} {r.unit}" if r.count is not None else "")
            + f" {r.currency}, expected {r.expected}"
            + (f" over {r.expected_count}" if r.expected_count is not None else "")
            for r in self.rows
            if not r.ok
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "ok": self.ok,
            "rows": [r.as_dict() for r in self.rows],
            "by_status": self.by_status,
            "problems": self.problems(),
        }


def _source(p: Payout) -> tuple[int, str]:
    """What the payout's lines sum to, in their currency (B's source_* columns when the program converts)."""
    if p.source_amount is not None and p.source_currency:
        return p.source_amount, p.source_currency
    return p.amount, p.currency


def _stored_files(session: Session, batch_id: str) -> list[tuple[str, int, int, list[str]]]:
    """(format, control sum, item count, payout ids) of the batch's stored payout files."""
    rows = session.execute(
        select(PayoutFile.format, PayoutFile.control_sum, PayoutFile.item_count, PayoutFile.payout_ids)
        .where(PayoutFile.batch_id == batch_id)
        .order_by(PayoutFile.format, PayoutFile.created_at)
    ).all()
    return [(str(f), int(s), int(n), list(ids)) for f, s, n, ids in rows]


def batch_tie_out(session: Session, batch: PayoutBatch) -> BatchTieOut:
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id).order_by(Payout.id)))
    report = BatchTieOut(batch_id=batch.id, status=batch.status)
    by_status: dict[str, Counter[str]] = defaultdict(Counter)
    for p in payouts:
        by_status[p.status]["count"] += 1
        by_status[p.status]["amount"] += p.amount
    report.by_status = {s: dict(c) for s, c in sorted(by_status.items())}
    sent_total = sum(p.amount for p in payouts if p.currency == batch.currency)
    other = sorted({p.currency for p in payouts} - {batch.currency})
    rows = report.rows
    rows.append(
        TieRow("Sum of payouts", batch.currency, sent_total, len(payouts), "payouts", batch.total, batch.payout_count)
    )
    for cur in other:  # a payout in another currency than its batch's is itself a problem
        amount = sum(p.amount for p in payouts if p.currency == cur)
        rows.append(TieRow("Payouts in another currency than the batch", cur, amount, None, "", 0))
    files = _stored_files(session, batch.id)
    if files:
        # A Pay all file holds only its own rail's payouts (the SEPA file of a batch that also pays by Stripe), so
        # each file is held to the payouts it lists, not to the whole batch.
        amount_of = {p.id: p.amount for p in payouts}
        for fmt, control_sum, count, ids in files:
            listed = sum(amount_of.get(i, 0) for i in ids)
            rows.append(
                TieRow(f"File control sum ({fmt})", batch.currency, control_sum, count, "items", listed, len(ids))
            )
    else:
        file_sum, file_rows = control_sum_of(export_csv(session, batch).content)
        rows.append(
            TieRow(
                "Export file control sum (csv)", batch.currency, file_sum, file_rows, "rows", batch.total, len(payouts)
            )
        )
    rows += _lines_rows(session, payouts)
    rows += _ledger_rows(session, batch.program_id, payouts)
    return report


def _lines_rows(session: Session, payouts: list[Payout]) -> list[TieRow]:
    """Live lines of open and paid payouts, released lines of failed and returned ones, per line currency."""
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in payouts:
        amount, cur = _source(p)
        expected[cur][0] += amount
        expected[cur][1] += p.line_count
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    live = [p.id for p in payouts if p.status not in {s.value for s in BACK}]
    back = [p.id for p in payouts if p.status in {s.value for s in BACK}]
    for ids, model in ((live, CommissionLine), (back, PayoutLineRelease)):
        for chunk in in_chunks(ids):
            for cur, total, count in session.execute(
                select(model.currency, func.sum(model.amount), func.count())
                .where(model.payout_id.in_(chunk))
                .group_by(model.currency)
            ):
                found[cur][0] += int(total)
                found[cur][1] += int(count)
    return [
        TieRow("Commission lines", cur, found[cur][0], found[cur][1], "lines", expected[cur][0], expected[cur][1])
        for cur in sorted(set(expected) | set(found))
    ]


def _ledger_rows(session: Session, program_id: str, payouts: list[Payout]) -> list[TieRow]:
    """What the ledger moved for these payouts, against what their statuses say it should have."""
    want: dict[tuple[str, str], int] = defaultdict(int)
    for p in payouts:
        amount, cur = _source(p)
        want[("run", cur)] += amount
        if p.status in {s.value for s in OPEN}:
            want[("clearing", cur)] += amount
        elif p.status == PayoutStatus.PAID.value:
            want[("cash", cur)] += amount
        else:
            want[("back", cur)] += amount
    got: dict[tuple[str, str], int] = defaultdict(int)
    ids = [p.id for p in payouts]
    for chunk in in_chunks(ids):
        rows = session.execute(
            select(
                LedgerTransaction.kind,
                LedgerAccount.owner_id,
                LedgerAccount.kind,
                LedgerPosting.currency,
                LedgerPosting.amount,
            )
            .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(
                LedgerTransaction.ref_type == "payout",
                LedgerTransaction.ref_id.in_(chunk),
                LedgerTransaction.program_id == program_id,
            )
        )
        for tx_kind, owner, acc_kind, cur, amount in rows:
            if acc_kind == AccountKind.PAYOUT_CLEARING.value and owner == program_id:
                got[("clearing", cur)] -= int(amount)  # credits put money in clearing
                if tx_kind not in {PAID_KIND, FAILED_KIND, RETURNED_KIND}:
                    got[("run", cur)] -= int(amount)
            elif acc_kind == AccountKind.CASH.value and owner == program_id:
                got[("cash", cur)] -= int(amount)
            elif acc_kind == AccountKind.PARTNER_PAYABLE.value and tx_kind in {FAILED_KIND, RETURNED_KIND}:
                got[("back", cur)] -= int(amount)
    labels = {
        "run": "Ledger: payable → clearing by the run",
        "clearing": "Ledger: still in clearing (open payouts)",
        "cash": "Ledger: paid out, clearing → cash (paid payouts)",
        "back": "Ledger: back to partner payable (failed, returned)",
    }
    keys = sorted(set(want) | set(got), key=lambda k: (list(labels).index(k[0]), k[1]))
    return [TieRow(labels[what], cur, got[(what, cur)], None, "", want[(what, cur)]) for what, cur in keys]
