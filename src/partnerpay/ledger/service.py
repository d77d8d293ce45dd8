"""Posting to the ledger: balanced or refused, append-only, balances maintained in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, event, select, update
from sqlalchemy.orm import Session

from partnerpay.db.bulk import bulk_insert
from partnerpay.kit.errors import UnbalancedEntry
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.kit.money import check_currency
from partnerpay.ledger.models import AccountKind, LedgerAccount

AccountKey = tuple[str, AccountKind, str]  # (owner_id, kind, currency)
_ACCOUNTS = "ledger_accounts"


@event.listens_for(Session, "after_transaction_end")
def _forget_accounts(session: Session, transaction: Any) -> None:
    # Accounts created in a transaction (or savepoint) that rolls back vanish with it; a cached id
    # outliving it would make the next posting point at a missing account.
    session.info.pop(_ACCOUNTS, None)


@dataclass(frozen=True, slots=True)
class Leg:
    owner_id: str
    kind: AccountKind
    amount: int  # debit positive, credit negative
    currency: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger transaction: legs in one currency that sum to zero."""

    kind: str
    ref_type: str
    ref_id: str
    legs: tuple[Leg, ...]
    memo: str = ""
    reverses_id: str | None = None
    id: str = field(default_factory=lambda: new_id("ltx"))


def transfer(
    *,
    kind: str,
    ref_type: str,
    ref_id: str,
    currency: str,
    amount: int,
    debit: tuple[str, AccountKind],
    credit: tuple[str, AccountKind],
    memo: str = "",
) -> Entry:
    """The common two-leg entry: debit one account, credit another by the same amount."""
    return Entry(
        kind=kind,
        ref_type=ref_type,
        ref_id=ref_id,
        memo=memo,
        legs=(Leg(debit[0], debit[1], amount, currency), Leg(credit[0], credit[1], -amount, currency)),
    )


def check_entry(entry: Entry) -> None:
    """Refuse anything that is not a balanced, single-currency, integer entry."""
    if len(entry.legs) < 2:
        raise UnbalancedEntry(f"entry {entry.ref_type} {entry.ref_id} needs at least two legs", field="legs")
    currencies = {leg.currency for leg in entry.legs}
    if len(currencies) != 1:
        raise UnbalancedEntry(
            f"entry {entry.ref_type} {entry.ref_id} mixes currencies {sorted(currencies)}", field="currency"
        )
    check_currency(next(iter(currencies)))
    total = 0
    for leg in entry.legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise UnbalancedEntry(f"leg amount must be integer minor units, got {leg.amount!r}", field="amount")
        total += leg.amount
    if total != 0:
        raise UnbalancedEntry(
            f"entry {entry.ref_type} {entry.ref_id} does not balance: debits - credits = {total}",
            field="legs",
        )


def ensure_accounts(
    session: Session, program_id: str, keys: Iterable[AccountKey], now: datetime
) -> dict[AccountKey, str]:
    """Account ids for (owner, kind, currency) keys, creating missing accounts; cached per transaction."""
    cache: dict[tuple[str, AccountKey], str] = session.info.setdefault(_ACCOUNTS, {})
    wanted = {k for k in keys if (program_id, k) not in cache}
    owners = sorted({k[0] for k in wanted})
    for start in range(0, len(owners), 500):
        chunk = owners[start : start + 500]
        rows = session.execute(
            select(LedgerAccount.id, LedgerAccount.owner_id, LedgerAccount.kind, LedgerAccount.currency).where(
                LedgerAccount.program_id == program_id, LedgerAccount.owner_id.in_(chunk)
            )
        )
        for acc_id, owner, kind, currency in rows:
            cache[(program_id, (owner, AccountKind(kind), currency))] = acc_id
    missing = [k for k in wanted if (program_id, k) not in cache]
    if missing:
        new_rows = []
        for key in sorted(missing):
            acc_id = new_id("acc")
            cache[(program_id, key)] = acc_id
            new_rows.append((acc_id, program_id, key[0], key[1].value, key[2], 0, now))
        bulk_insert(
            session,
            "ledger_accounts",
            ("id", "program_id", "owner_id", "kind", "currency", "balance", "created_at"),
            new_rows,
        )
    return {k: cache[(program_id, k)] for k in keys}


def post(session: Session, *, program_id: str, entries: Sequence[Entry], now: datetime) -> list[str]:
    """Write balanced entries and update account balances, all in the caller's transaction."""
    if not entries:
        return []
    for entry in entries:
        check_entry(entry)
    keys = {(leg.owner_id, leg.kind, leg.currency) for e in entries for leg in e.legs}
    accounts = ensure_accounts(session, program_id, keys, now)
    tx_rows = []
    posting_rows = []
    deltas: dict[str, int] = defaultdict(int)
    for e in entries:
        tx_rows.append((e.id, program_id, e.kind, e.ref_type, e.ref_id, e.reverses_id, e.memo, now))
        for leg in e.legs:
            account_id = accounts[(leg.owner_id, leg.kind, leg.currency)]
            posting_rows.append((e.id, account_id, leg.amount, leg.currency))
            deltas[account_id] += leg.amount
    bulk_insert(
        session,
        "ledger_transactions",
        ("id", "program_id", "kind", "ref_type", "ref_id", "reverses_id", "memo", "created_at"),
        tx_rows,
    )
    bulk_insert(session, "ledger_postings", ("transaction_id", "account_id", "amount", "currency"), posting_rows)
    _apply_deltas(session, {acc: d for acc, d in deltas.items() if d != 0})
    return [e.id for e in entries]


# One two-leg transfer of post_transfers: (kind, ref_id, currency, amount, debit owner, credit owner).
Transfer = tuple[str, str, str, int, str, str]


def post_transfers(
    session: Session,
    *,
    program_id: str,
    ref_type: str,
    debit_kind: AccountKind,
    credit_kind: AccountKind,
    transfers: Sequence[Transfer],
    now: datetime,
) -> list[str]:
    """Many two-leg entries at once, as `post` writes `transfer`s, without an Entry per row: a batch of commission
    lines posts thousands. Each debits its debit owner's `debit_kind` account and credits its credit owner's
    `credit_kind` account by its amount: balanced by construction. Integer amounts and known currencies are
    checked for all of them before anything is written; one bad row refuses the batch."""
    if not transfers:
        return []
    for transfer in transfers:
        amount = transfer[3]
        if type(amount) is not int:  # not bool, not float: exactly check_entry's refusal
            raise UnbalancedEntry(f"leg amount must be integer minor units, got {amount!r}", field="amount")
    currencies = {t[2] for t in transfers}
    for currency in currencies:
        check_currency(currency)
    keys = {(t[4], debit_kind, t[2]) for t in transfers} | {(t[5], credit_kind, t[2]) for t in transfers}
    accounts = ensure_accounts(session, program_id, keys, now)
    ids = new_ids("ltx", len(transfers))
    tx_rows = []
    posting_rows = []
    deltas: dict[str, int] = defaultdict(int)
    for tx_id, (kind, ref_id, currency, amount, debit_owner, credit_owner) in zip(ids, transfers, strict=True):
        tx_rows.append((tx_id, program_id, kind, ref_type, ref_id, None, "", now))
        debit = accounts[(debit_owner, debit_kind, currency)]
        credit = accounts[(credit_owner, credit_kind, currency)]
        posting_rows.append((tx_id, debit, amount, currency))
        posting_rows.append((tx_id, credit, -amount, currency))
        deltas[debit] += amount
        deltas[credit] -= amount
    bulk_insert(
        session,
        "ledger_transactions",
        ("id", "program_id", "kind", "ref_type", "ref_id", "reverses_id", "memo", "created_at"),
        tx_rows,
    )
    bulk_insert(session, "ledger_postings", ("transaction_id", "account_id", "amount", "currency"), posting_rows)
    _apply_deltas(session, {acc: d for acc, d in deltas.items() if d != 0})
    return ids


def _apply_deltas(session: Session, deltas: dict[str, int]) -> None:
    """Add each delta to its account's maintained balance, in id order (a stable lock order)."""
    if not deltas:
        return
    ordered = sorted(deltas.items())
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One statement for the whole batch instead of one UPDATE per account.
        conn.exec_driver_sql(
            "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
            "FROM unnest(%s::varchar[], %s::bigint[]) AS d(id, delta) WHERE a.id = d.id",
            ([acc for acc, _ in ordered], [d for _, d in ordered]),
        )
        return
    accounts = LedgerAccount.__table__
    assert isinstance(accounts, Table)
    conn.execute(
        update(accounts)
        .where(accounts.c.id == bindparam("acc_id"))
        .values(balance=accounts.c.balance + bindparam("delta")),
        [{"acc_id": acc, "delta": d} for acc, d in ordered],
    )


def reverse(entry_id: str, original: Entry, *, ref_type: str, ref_id: str, memo: str) -> Entry:
    """The correcting entry for a mistake: every leg negated, pointing back at the original."""
    return Entry(
        kind="reversal",
        ref_type=ref_type,
        ref_id=ref_id,
        memo=memo,
        reverses_id=entry_id,
        legs=tuple(Leg(leg.owner_id, leg.kind, -leg.amount, leg.currency) for leg in original.legs),
    )


def balance(session: Session, program_id: str, owner_id: str, kind: AccountKind, currency: str) -> int:
    value = session.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.program_id == program_id,
            LedgerAccount.owner_id == owner_id,
            LedgerAccount.kind == kind.value,
            LedgerAccount.currency == currency,
        )
    )
    return int(value or 0)
