"""Ledger entries of reconciliation, derived from what the payout run actually posted for each payout.

The run moved each payout's amount from the partner's payable to the program's clearing account (in
whatever currencies it used: with an FX rate the legs need not all be in the payout's currency). So
reconciliation does not re-derive amounts from the payout row; it reads the payout's own entries:

- paid: the clearing balance the run left for the payout moves to cash (clearing → cash);
- failed/returned before paid: the run's entries are negated (clearing → payable), restoring the payable
  to the cent in the lines' currency;
- returned after paid: the paid entry and the run's entries are negated (net cash → payable).

Each new entry points at the one it undoes (`reverses_id`), with a kind of its own so reports can tell a
bank return from a staff correction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.db.chunks import in_chunks
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction

PAID_KIND = "payout_paid"
FAILED_KIND = "payout_failed"
RETURNED_KIND = "payout_returned"
RECONCILE_KINDS = frozenset({PAID_KIND, FAILED_KIND, RETURNED_KIND})


class PayoutEntries:
    """The ledger entries already posted for a set of payouts, grouped by payout and kind."""

    def __init__(self, session: Session, payout_ids: Iterable[str]) -> None:
        # payout id -> list of (transaction id, kind, legs)
        self.by_payout: dict[str, list[tuple[str, str, list[ledger.Leg]]]] = defaultdict(list)
        ids = sorted(set(payout_ids))
        for chunk in in_chunks(ids):
            rows = session.execute(
                select(
                    LedgerTransaction.ref_id,
                    LedgerTransaction.id,
                    LedgerTransaction.kind,
                    LedgerAccount.owner_id,
                    LedgerAccount.kind,
                    LedgerPosting.amount,
                    LedgerPosting.currency,
                )
                .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerTransaction.ref_type == "payout", LedgerTransaction.ref_id.in_(chunk))
                .order_by(LedgerTransaction.created_at, LedgerTransaction.id, LedgerPosting.id)
            )
            grouped: dict[str, tuple[str, str, list[ledger.Leg]]] = {}
            for ref_id, tx_id, tx_kind, owner, acc_kind, amount, currency in rows:
                if tx_id not in grouped:
                    grouped[tx_id] = (tx_id, tx_kind, [])
                    self.by_payout[ref_id].append(grouped[tx_id])
                grouped[tx_id][2].append(ledger.Leg(owner, AccountKind(acc_kind), int(amount), currency))

    def run_entries(self, payout_id: str) -> list[tuple[str, list[ledger.Leg]]]:
        """What the payout run (or anything but reconciliation) posted for the payout."""
        return [(tx, legs) for tx, kind, legs in self.by_payout.get(payout_id, []) if kind not in RECONCILE_KINDS]

    def paid_entries(self, payout_id: str) -> list[tuple[str, list[ledger.Leg]]]:
        return [(tx, legs) for tx, kind, legs in self.by_payout.get(payout_id, []) if kind == PAID_KIND]


def paid_entries(
    entries: PayoutEntries, *, program_id: str, payout_id: str, amount: int, currency: str, memo: str
) -> list[ledger.Entry]:
    """Clearing → cash for what the run put in clearing for this payout, per currency."""
    cleared: dict[str, int] = defaultdict(int)
    for _, legs in entries.run_entries(payout_id):
        for leg in legs:
            if leg.kind is AccountKind.PAYOUT_CLEARING and leg.owner_id == program_id:
                cleared[leg.currency] -= leg.amount  # the run credited clearing: a negative leg
    if not cleared:
        # A payout whose run entries are not found (older data): its own amount is what clearing holds.
        cleared[currency] = amount
    return [
        ledger.transfer(
            kind=PAID_KIND,
            ref_type="payout",
            ref_id=payout_id,
            currency=cur,
            amount=value,
            debit=(program_id, AccountKind.PAYOUT_CLEARING),
            credit=(program_id, AccountKind.CASH),
            memo=memo,
        )
        for cur, value in sorted(cleared.items())
        if value != 0
    ]


def undo_entries(
    entries: PayoutEntries, *, payout_id: str, kind: str, after_paid: bool, memo: str, paid_now: list[ledger.Entry]
) -> list[ledger.Entry]:
    """Negate the run's entries (and the paid ones when the money came back after it was paid).

    `paid_now` are paid entries made earlier in the same call (a paid and a return in one file).
    """
    originals: list[tuple[str | None, list[ledger.Leg]]] = list(entries.run_entries(payout_id))
    if after_paid:
        originals += entries.paid_entries(payout_id)
        originals += [(e.id, list(e.legs)) for e in paid_now]
    return [
        ledger.Entry(
            kind=kind,
            ref_type="payout",
            ref_id=payout_id,
            memo=memo,
            reverses_id=tx,
            legs=tuple(ledger.Leg(leg.owner_id, leg.kind, -leg.amount, leg.currency) for leg in legs),
        )
        for tx, legs in originals
    ]
