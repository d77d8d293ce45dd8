"""Event ingest throughput: partnerpay's batch ingest against a raw insert of the identical output rows.

ours:  inbox.batch.ingest_batch on JSON event bodies, 10,000 per transaction (a CSV import or an API
       batch): validate each body (EventIn), check type and money, dedupe against the batch and the
       program's events, plan set-based vs one-by-one, decide new customers' partners, fold each
       customer's lifecycle, compute commission lines, then write inbox items, customers, events,
       attribution decisions, lines, ledger transactions + postings + balances and one audit row.
       The mix: 55 % first invoices of new customers named by a partner's referral code, 10 % their
       signups, 34 % renewals of customers attributed before the run, 1 % duplicates (rows repeated).
limit: exactly the rows ours wrote (read back after each run, ids and program renamed before the clock
       starts), written raw in one transaction: sqlite3 executemany / PostgreSQL COPY, plus the same
       customer and account-balance updates. No validation, no decisions, no audit chain.
Then the same batch is replayed through ingest_batch, which must write no row at all.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from common import alternate, fresh_database, median_rate, result_line
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import SQLITE_CACHE_KIB, make_engine, make_session_factory, unit_of_work
from partnerpay.events.schemas import EventIn
from partnerpay.inbox.batch import ingest_batch
from partnerpay.kit.ids import new_id
from partnerpay.partners.service import create_partner
from partnerpay.programs.service import create_program

SIZES = {"ci": 50_000, "full": 1_000_000}
CHUNK = 10_000
PARTNERS = 500
TARGETS = {"sqlite": 0.3, "postgresql": 0.4}
NOW = datetime(2026, 3, 1, tzinfo=UTC)
# Tables ingest writes, parents first (the raw side inserts in this order).
TABLES = ("customers", "events", "attributions", "inbox_items", "commission_lines", "ledger_transactions")
ID = re.compile(r"\b(?:cus|evt|att|inb|com|ltx|prg)_[0-9a-z]{26}\b")


def bodies(program_id: str, codes: list[str], renewing: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    day = timedelta(days=1)
    for i in range(n):
        roll = rng.random()
        if roll < 0.01 and out:
            out.append(dict(out[rng.randrange(len(out))]))  # a duplicate delivery
            continue
        at = (NOW + day + timedelta(seconds=i)).isoformat()
        if roll < 0.35:
            customer = renewing[i % len(renewing)]
            out.append({"program_id": program_id, "type": "invoice_paid", "external_id": f"in_{seed}_{i}",
                        "occurred_at": at, "customer_external_id": customer, "amount": 4_900 + i % 300 * 100,
                        "currency": "EUR", "product": "pro"})  # fmt: skip
            continue
        customer = f"cus_new_{seed}_{i}"
        code = codes[rng.randrange(len(codes))]
        kind = "signup" if roll < 0.45 else "invoice_paid"
        money = {"amount": 9_900 + i % 50 * 100, "currency": "EUR"} if kind == "invoice_paid" else {}
        out.append({"program_id": program_id, "type": kind, "external_id": f"{kind}_{seed}_{i}", "occurred_at": at,
                    "customer_external_id": customer, "referral_code": code, "product": "pro", **money})  # fmt: skip
    return out


def setup(factory: sessionmaker[Session], n: int, run: int) -> tuple[str, list[str], list[str]]:
    """A program with partners and customers attributed to them (recorded by the same ingest, untimed)."""
    with unit_of_work(factory) as session:
        program = create_program(session, actor=SYSTEM, name=f"Bench {run}", currency="EUR", hold_days=30,
                                 default_percent_bp=2_000, now=NOW)  # fmt: skip
        codes = [
            create_partner(session, actor=SYSTEM, program_id=program.id, name=f"Partner {run}-{i}",
                           email=f"p{i}@run{run}.example", now=NOW).referral_code
            for i in range(PARTNERS)
        ]  # fmt: skip
        program_id = program.id
    renewing = [f"cus_old_{run}_{i}" for i in range(max(n // 10, 100))]
    first = [
        {"program_id": program_id, "type": "invoice_paid", "external_id": f"old_{run}_{i}", "occurred_at":
         NOW.isoformat(), "customer_external_id": c, "referral_code": codes[i % PARTNERS], "amount": 4_900,
         "currency": "EUR"}
        for i, c in enumerate(renewing)
    ]  # fmt: skip
    ingest(factory, first)
    return program_id, codes, renewing


def ingest(factory: sessionmaker[Session], rows: list[dict[str, Any]]) -> int:
    created = 0
    for start in range(0, len(rows), CHUNK):
        with unit_of_work(factory) as session:
            batch = [EventIn.model_validate(body) for body in rows[start : start + CHUNK]]
            created += ingest_batch(session, actor=SYSTEM, program_id=batch[0].program_id, rows=batch, now=NOW).created
    return created


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = (*TABLES, "ledger_postings", "audit_log")
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in names}


class Output:
    """The rows one ours run wrote, as stored, ready to be written again under new ids."""

    def __init__(self, engine: Engine, program_id: str, renewing: list[str]) -> None:
        self.tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            mark = "?" if engine.dialect.name == "sqlite" else "%s"
            for table in TABLES:
                cur.execute(f"SELECT * FROM {table} WHERE program_id = {mark}", (program_id,))
                self.tables[table] = ([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
            cur.execute(
                "SELECT p.* FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
                f"WHERE t.program_id = {mark}",
                (program_id,),
            )
            # Postings are keyed by a sequence: the raw side lets the database number them, as ours did.
            self.tables["ledger_postings"] = (
                [d[0] for d in cur.description][1:],
                [tuple(r)[1:] for r in cur.fetchall()],
            )
            cur.execute(
                f"SELECT * FROM audit_log WHERE action = 'events.ingest' AND program_id = {mark}", (program_id,)
            )
            names = [d[0] for d in cur.description]
            keep_cols = [k for k, name in enumerate(names) if name not in ("id", "seq")]  # the log numbers its rows
            self.audit = ([names[k] for k in keep_cols], [tuple(r[k] for k in keep_cols) for r in cur.fetchall()])
            old = set(renewing)
            customers_cols, customer_rows = self.tables["customers"]
            ext = customers_cols.index("external_id")
            self.updates = [r for r in customer_rows if r[ext] in old]
            self.tables["customers"] = (customers_cols, [r for r in customer_rows if r[ext] not in old])
        finally:
            raw.close()

    def renamed(self, program_id: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        """Every row this run created (and the program) under a new id, so the rows can be inserted again.
        Ids of rows made before the run (partners, old customers, accounts) stay as they are."""
        mapping = {self.program_id: program_id}
        for table in TABLES:
            for row in self.tables[table][1]:
                mapping[row[0]] = new_id(row[0].split("_", 1)[0])

        def keep(value: Any) -> Any:
            if isinstance(value, dict | list):
                value = json.dumps(value)
            if isinstance(value, str) and ID.search(value):
                return ID.sub(lambda m: mapping.get(m.group(0), m.group(0)), value)
            return value

        out = {t: (cols, [tuple(keep(v) for v in row) for row in rows]) for t, (cols, rows) in self.tables.items()}
        out["audit_log"] = (self.audit[0], [tuple(keep(v) for v in row) for row in self.audit[1]])
        return out

    program_id = ""


def run_ours(
    factory: sessionmaker[Session], engine: Engine, n: int, counter: list[int], keep: list[Output]
) -> tuple[int, float]:
    counter[0] += 1
    program_id, codes, renewing = setup(factory, n, counter[0])
    rows = bodies(program_id, codes, renewing, n, counter[0])
    start = time.perf_counter()
    ingest(factory, rows)
    elapsed = time.perf_counter() - start
    output = Output(engine, program_id, renewing)
    output.program_id = program_id
    keep[:] = [output]
    return n, elapsed


def run_raw(factory: sessionmaker[Session], engine: Engine, url: str, keep: list[Output]) -> tuple[int, float]:
    output = keep[0]
    with unit_of_work(factory) as session:
        target = create_program(session, actor=SYSTEM, name="Raw", currency="EUR", hold_days=30, now=NOW).id
    tables = output.renamed(target)
    n = len(tables["events"][1])
    updates = output.updates
    update_cols = ("status", "lifetime_revenue", "first_paid_at", "last_event_at", "status_changed_at")
    cust_cols = tables["customers"][0]
    update_rows = [(*tuple(r[cust_cols.index(c)] for c in update_cols), r[0]) for r in updates]
    postings_cols, postings = tables["ledger_postings"]
    deltas: dict[str, int] = {}
    for row in postings:
        account = row[postings_cols.index("account_id")]
        deltas[account] = deltas.get(account, 0) + row[postings_cols.index("amount")]
    order = [*TABLES, "ledger_postings", "audit_log"]
    if engine.dialect.name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", f"cache_size=-{SQLITE_CACHE_KIB}"):
            conn.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        for chunk in _chunks(tables, order):
            conn.execute("BEGIN IMMEDIATE")
            for table, (cols, rows) in chunk.items():
                marks = ", ".join("?" * len(cols))
                conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"UPDATE customers SET {', '.join(c + ' = ?' for c in update_cols)} WHERE id = ?", update_rows)
        conn.executemany(
            "UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?", [(d, a) for a, d in deltas.items()]
        )
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return n, elapsed
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        start = time.perf_counter()
        for chunk in _chunks(tables, order):
            with pg.cursor() as cur:
                for table, (cols, rows) in chunk.items():
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            pg.commit()
        with pg.cursor() as cur:
            cur.executemany(
                f"UPDATE customers SET {', '.join(c + ' = %s' for c in update_cols)} WHERE id = %s", update_rows
            )
            cur.execute(
                "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
                "FROM unnest(%s::varchar[], %s::bigint[]) AS d(id, delta) WHERE a.id = d.id",
                (list(deltas), list(deltas.values())),
            )
        pg.commit()
        return n, time.perf_counter() - start


def _chunks(
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]], order: list[str]
) -> Iterator[dict[str, tuple[list[str], list[tuple[Any, ...]]]]]:
    """All rows in one transaction, parents first: splitting would have to follow every foreign key, and
    one transaction only makes the limit faster (fewer commits than ours), never slower."""
    yield {t: tables[t] for t in order}


def check_replay(factory: sessionmaker[Session], engine: Engine, n: int) -> int:
    """The same batch again: every row a duplicate, no row written anywhere."""
    program_id, codes, renewing = setup(factory, n, 0)
    rows = bodies(program_id, codes, renewing, n, 0)
    ingest(factory, rows)
    before = counts(engine)
    created = ingest(factory, rows)
    after = counts(engine)
    written = sum(after[t] - before[t] for t in before)
    if created or written:
        raise SystemExit(f"replaying the batch created {created} events and wrote {written} rows")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = SIZES[args.size]
    with fresh_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        counter = [0]
        keep: list[Output] = []
        ours_run: Callable[[], tuple[int, float]] = lambda: run_ours(factory, engine, n, counter, keep)  # noqa: E731
        ours, raw = alternate(args.repeat, ours_run, lambda: run_raw(factory, engine, url, keep))
        written = check_replay(factory, engine, min(n, 20_000))
        engine.dispose()
    print(f"replay of the same batch: {written} rows written")
    print(f"ours {median_rate(ours):,.0f} events/s, raw {median_rate(raw):,.0f} events/s")
    print(result_line("ingest_batch", args.db, median_rate(ours), median_rate(raw), TARGETS[args.db]))


if __name__ == "__main__":
    main()
