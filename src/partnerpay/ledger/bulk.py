"""Set-based ledger postings: many two-leg transfers written from a staging table in a few statements.

ledger.service.post builds an Entry per transfer in Python; a payout run of 100k partners would build
100k entries, look up 100k accounts and update 100k balances one parameter set at a time. Here the
transfers sit in a (temporary) table the caller filled, and the transactions, postings and balance
updates are INSERT … SELECT and UPDATE … FROM over it. The rules stay those of ledger.service: every
transaction has exactly two legs in one currency that sum to zero (by construction: +amount and -amount,
both legs' counts checked), rows are only ever inserted (append-only), and balances move in the same
transaction as the postings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, and_, func, insert, literal, literal_column, select, update
from sqlalchemy.orm import Session

from partnerpay.db.base import UTCDateTime
from partnerpay.kit.errors import UnbalancedEntry
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.ledger.service import ensure_accounts


def transfer_from_stage(
    session: Session,
    *,
    program_id: str,
    stage: Table,
    kind: str,
    ref_type: str,
    debit_kind: AccountKind,
    credit: tuple[str, AccountKind],
    now: datetime,
) -> int:
    """One transfer per stage row: debit (row.owner_id, debit_kind), credit `credit`, row.amount in row.currency.

    `stage` needs the columns tx_id (new transaction id), ref_id, owner_id, amount (> 0) and currency.
    Returns the number of transactions written; raises (the caller rolls back) if any leg is missing.
    """
    s = stage.c
    n = int(session.scalar(select(func.count()).select_from(stage)) or 0)
    if n == 0:
        return 0
    if session.scalar(select(func.count()).select_from(stage).where(s.amount <= 0)):
        raise UnbalancedEntry("a staged transfer has a zero or negative amount", field="amount")
    accounts = LedgerAccount.__table__
    assert isinstance(accounts, Table)
    a = accounts.c
    debit_join = and_(
        a.program_id == program_id, a.owner_id == s.owner_id, a.kind == debit_kind.value, a.currency == s.currency
    )
    # Accounts first: the debit owners almost always have theirs (their lines were posted to them); the
    # credit account is one per currency.
    missing = session.execute(
        select(s.owner_id, s.currency).select_from(stage.outerjoin(accounts, debit_join)).where(a.id.is_(None))
    ).all()
    currencies = list(session.scalars(select(s.currency).distinct()))
    ensure_accounts(
        session,
        program_id,
        [(owner, debit_kind, cur) for owner, cur in missing] + [(credit[0], credit[1], cur) for cur in currencies],
        now,
    )
    credit_join = and_(
        a.program_id == program_id, a.owner_id == credit[0], a.kind == credit[1].value, a.currency == s.currency
    )
    tx = LedgerTransaction.__table__
    postings = LedgerPosting.__table__
    assert isinstance(tx, Table) and isinstance(postings, Table)
    session.execute(
        insert(tx).from_select(
            ["id", "program_id", "kind", "ref_type", "ref_id", "reverses_id", "memo", "created_at"],
            select(
                s.tx_id,
                literal(program_id),
                literal(kind),
                literal(ref_type),
                s.ref_id,
                literal_column("NULL"),
                literal(""),
                literal(now, UTCDateTime()),
            ),
        )
    )
    for sign, join in ((1, debit_join), (-1, credit_join)):
        session.execute(
            insert(postings).from_select(
                ["transaction_id", "account_id", "amount", "currency"],
                select(s.tx_id, a.id, s.amount * sign, s.currency).select_from(stage.join(accounts, join)),
            )
        )
    # Counted, not taken from rowcount (psycopg reports -1 for INSERT … SELECT through the ORM session).
    p = postings.c
    legs = session.scalar(select(func.count()).select_from(postings.join(stage, p.transaction_id == s.tx_id)))
    if legs != 2 * n:
        raise UnbalancedEntry(f"{2 * n} legs expected for {n} transfers, {legs} written; nothing was posted")
    # Balances: the debit accounts by their staged sums, the credit account per currency.
    per_account = (
        select(s.owner_id, s.currency, func.sum(s.amount).label("delta")).group_by(s.owner_id, s.currency).subquery()
    )
    session.execute(
        update(accounts)
        .where(
            a.program_id == program_id,
            a.kind == debit_kind.value,
            a.owner_id == per_account.c.owner_id,
            a.currency == per_account.c.currency,
        )
        .values(balance=a.balance + per_account.c.delta)
        .execution_options(synchronize_session=False)
    )
    for currency, total in session.execute(select(s.currency, func.sum(s.amount)).group_by(s.currency)).all():
        session.execute(
            update(accounts)
            .where(
                a.program_id == program_id, a.owner_id == credit[0], a.kind == credit[1].value, a.currency == currency
            )
            .values(balance=a.balance - int(total))
            .execution_options(synchronize_session=False)
        )
    return n
