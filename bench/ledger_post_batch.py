"""Ledger posting throughput: partnerpay's ledger.post against a raw insert of the same rows.

ours:  commission transfers (expense → partner payable) through ledger.post in batches, one
       transaction per batch: validation, account lookup, transaction + posting rows, and the
       maintained balance updates.
limit: the identical transaction and posting rows written raw in the same batches
       (sqlite3 executemany / PostgreSQL COPY), without validation or balances.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy.orm import Session

from common import alternate, fresh_database, median_rate, result_line
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import SQLITE_CACHE_KIB, make_engine, make_session_factory
from partnerpay.kit.ids import new_id
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.programs.service import create_program

SIZES = {"ci": (30_000, 2_000), "full": (300_000, 5_000)}  # transfers per run, transfers per batch
PARTNERS = 1_000
TARGETS = {"sqlite": 0.45, "postgresql": 0.5}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entries(n: int, program_id: str, partners: list[str]) -> list[ledger.Entry]:
    return [
        ledger.transfer(
            kind="commission",
            ref_type="commission_line",
            ref_id=f"com_bench{i}",
            currency="EUR",
            amount=100 + i % 5000,
            debit=(program_id, AccountKind.COMMISSION_EXPENSE),
            credit=(partners[i % len(partners)], AccountKind.PARTNER_PAYABLE),
        )
        for i in range(n)
    ]


def run_ours(factory: object, program_id: str, partners: list[str], total: int, batch: int) -> tuple[int, float]:
    work = [entries(batch, program_id, partners) for _ in range(total // batch)]
    start = time.perf_counter()
    for chunk in work:
        with factory() as session:  # type: ignore[operator]
            ledger.post(session, program_id=program_id, entries=chunk, now=NOW)
            session.commit()
    return total, time.perf_counter() - start


def raw_rows(
    chunk: list[ledger.Entry], program_id: str, accounts: dict[str, str]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    txs = [(e.id, program_id, e.kind, e.ref_type, e.ref_id, None, e.memo, NOW) for e in chunk]
    posts = [(e.id, accounts[leg.owner_id], leg.amount, leg.currency) for e in chunk for leg in e.legs]
    return txs, posts


def run_raw(
    url: str, program_id: str, partners: list[str], accounts: dict[str, str], total: int, batch: int, db: str
) -> tuple[int, float]:
    # Row preparation happens before the clock starts: the limit is the database, not Python.
    work = [raw_rows(entries(batch, program_id, partners), program_id, accounts) for _ in range(total // batch)]
    if db == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        # The same connection settings partnerpay's engine uses, so only the work differs.
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", f"cache_size=-{SQLITE_CACHE_KIB}"):
            conn.execute(f"PRAGMA {pragma}")
        stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
        work = [([(*t[:7], stamp) for t in txs], posts) for txs, posts in work]
        start = time.perf_counter()
        for txs, posts in work:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO ledger_transactions (id, program_id, kind, ref_type, ref_id, reverses_id, "
                "memo, created_at) VALUES (?,?,?,?,?,?,?,?)",
                txs,
            )
            conn.executemany(
                "INSERT INTO ledger_postings (transaction_id, account_id, amount, currency) VALUES (?,?,?,?)", posts
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return total, elapsed
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        start = time.perf_counter()
        for txs, posts in work:
            with pg.cursor() as cur:
                with cur.copy(
                    "COPY ledger_transactions (id, program_id, kind, ref_type, ref_id, reverses_id, memo, "
                    "created_at) FROM STDIN"
                ) as copy:
                    for row in txs:
                        copy.write_row(row)
                with cur.copy("COPY ledger_postings (transaction_id, account_id, amount, currency) FROM STDIN") as copy:
                    for row in posts:
                        copy.write_row(row)
            pg.commit()
        return total, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total, batch = SIZES[args.size]
    with fresh_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            program = create_program(session, actor=SYSTEM, name="Bench", currency="EUR", hold_days=0, now=NOW)
            partners = [new_id("ptn") for _ in range(PARTNERS)]
            keys = [(p, AccountKind.PARTNER_PAYABLE, "EUR") for p in partners]
            keys.append((program.id, AccountKind.COMMISSION_EXPENSE, "EUR"))
            ids = ledger.ensure_accounts(session, program.id, keys, NOW)
            session.commit()
        accounts = {owner: acc for (owner, _, _), acc in ids.items()}
        ours, raw = alternate(
            args.repeat,
            lambda: run_ours(factory, program.id, partners, total, batch),
            lambda: run_raw(url, program.id, partners, accounts, total, batch, args.db),
        )
        with factory() as session:
            check(session, program.id)
        engine.dispose()
    print(result_line("ledger_post_batch", args.db, median_rate(ours), median_rate(raw), TARGETS[args.db]))


def check(session: Session, program_id: str) -> None:
    """The raw rows bypass balances, so only ours are checked: each maintained balance = its postings."""
    from sqlalchemy import text

    wrong = session.execute(
        text(
            "SELECT a.id FROM ledger_accounts a JOIN (SELECT p.account_id, SUM(p.amount) AS s FROM ledger_postings p "
            "JOIN ledger_transactions t ON t.id = p.transaction_id WHERE t.ref_id LIKE 'com_bench%' "
            "GROUP BY p.account_id) x "
            "ON x.account_id = a.id WHERE a.program_id = :p AND a.balance * 2 != x.s"
        ),
        {"p": program_id},
    ).all()
    # Raw runs wrote the same amounts again without touching balances, so postings are exactly twice the balance.
    if wrong:
        raise SystemExit(f"balances do not match postings on {len(wrong)} accounts")


if __name__ == "__main__":
    main()
