"""ledger.post_transfers (many two-leg entries, column-wise) writes what ledger.post of the same transfers writes,
and refuses a batch with one bad row before writing anything."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import UnbalancedEntry, ValidationError
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.ledger.service import Transfer, balance, post, post_transfers, transfer
from tests.integration.test_ledger import make_program, row_counts

EXPENSE = AccountKind.COMMISSION_EXPENSE
PAYABLE = AccountKind.PARTNER_PAYABLE
ROWS = [
    ("commission", "com_1", "EUR", 1_000, None, "ptn_a"),
    ("two_tier", "com_2", "EUR", 250, None, "ptn_b"),
    ("clawback", "com_3", "EUR", -400, None, "ptn_a"),
    ("commission", "com_4", "USD", 700, None, "ptn_a"),
    ("bonus", "com_5", "EUR", 0, None, "ptn_c"),
]


def transfers(program_id: str) -> list[Transfer]:
    return [(kind, ref, cur, amount, program_id, credit) for kind, ref, cur, amount, _, credit in ROWS]


def written(session: Session, program_id: str) -> list[tuple[Any, ...]]:
    """Every transaction with its postings, accounts named by (owner, kind, currency), program id as "prg"."""
    rows = session.execute(
        select(
            LedgerTransaction.kind, LedgerTransaction.ref_type, LedgerTransaction.ref_id, LedgerTransaction.memo,
            LedgerTransaction.reverses_id, LedgerTransaction.created_at, LedgerAccount.owner_id, LedgerAccount.kind,
            LedgerPosting.amount, LedgerPosting.currency,
        )
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerTransaction.program_id == program_id)
        .order_by(LedgerTransaction.ref_id, LedgerPosting.id)
    ).all()  # fmt: skip
    return [tuple("prg" if v == program_id else v for v in row) for row in rows]


def test_post_transfers_writes_what_post_writes(session: Session, clock: FixedClock) -> None:
    by_entry, by_columns = make_program(session, clock.now()), make_program(session, clock.now())
    post(
        session,
        program_id=by_entry,
        now=clock.now(),
        entries=[
            transfer(kind=k, ref_type="commission_line", ref_id=r, currency=c, amount=a, debit=(by_entry, EXPENSE),
                     credit=(p, PAYABLE))
            for k, r, c, a, _, p in transfers(by_entry)
        ],
    )  # fmt: skip
    ids = post_transfers(
        session, program_id=by_columns, ref_type="commission_line", debit_kind=EXPENSE, credit_kind=PAYABLE,
        transfers=transfers(by_columns), now=clock.now(),
    )  # fmt: skip
    session.commit()

    assert len(ids) == len(set(ids)) == len(ROWS) and all(i.startswith("ltx_") for i in ids)
    assert written(session, by_columns) == written(session, by_entry)
    assert len(written(session, by_columns)) == 2 * len(ROWS)
    for owner, kind, currency, amount in [
        ("prg", EXPENSE, "EUR", 850), ("ptn_a", PAYABLE, "EUR", -600), ("ptn_b", PAYABLE, "EUR", -250),
        ("prg", EXPENSE, "USD", 700), ("ptn_a", PAYABLE, "USD", -700), ("ptn_c", PAYABLE, "EUR", 0),
    ]:  # fmt: skip
        for program_id in (by_entry, by_columns):
            assert balance(session, program_id, program_id if owner == "prg" else owner, kind, currency) == amount


@pytest.mark.parametrize(
    ("bad", "error", "field"),
    [
        (("commission", "com_9", "EUR", 10.5, None, "ptn_a"), UnbalancedEntry, "amount"),
        (("commission", "com_9", "EUR", True, None, "ptn_a"), UnbalancedEntry, "amount"),
        (("commission", "com_9", "XYZ", 100, None, "ptn_a"), ValidationError, "currency"),
    ],
)
def test_one_bad_row_refuses_the_batch_and_nothing_is_written(
    session: Session, clock: FixedClock, bad: tuple[Any, ...], error: type[Exception], field: str
) -> None:
    program_id = make_program(session, clock.now())
    session.commit()
    before = row_counts(session)
    rows: list[Any] = [*transfers(program_id), (*bad[:4], program_id, bad[5])]
    with pytest.raises(error) as refused:
        post_transfers(
            session, program_id=program_id, ref_type="commission_line", debit_kind=EXPENSE, credit_kind=PAYABLE,
            transfers=rows, now=clock.now(),
        )  # fmt: skip
    assert getattr(refused.value, "field", None) == field
    session.rollback()
    assert row_counts(session) == before


def test_no_transfers_write_nothing(session: Session, clock: FixedClock) -> None:
    program_id = make_program(session, clock.now())
    assert post_transfers(
        session, program_id=program_id, ref_type="x", debit_kind=EXPENSE, credit_kind=PAYABLE, transfers=[],
        now=clock.now(),
    ) == []  # fmt: skip
