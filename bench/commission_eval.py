"""Commission evaluation throughput: a year of events replayed through a 20-rule plan, against a raw insert of
the identical output rows.

Setup (untimed): a program, its partners (a tenth recruited by another partner), a published plan of 20 rules
assigned program-wide, and a year of events (signups, demos, leads, deals, invoices) of customers with a
product, SKU, country and channel, written to the database raw so the lines' foreign keys hold.

The plan, every rule type at once: flat per event, percent, percent + flat, conditions on product, SKU,
customer country, amount and metadata, first payment only, recurring 12 and 6 months from the first payment,
marginal tiers by quarter, retroactive tiers by month (true-ups), caps per event, per customer and per partner
per month and quarter, two one-time bonuses, two-tier shares for recruiters, and priorities deciding overlaps.

ours:  commissions.replay.replay, the evaluation live ingest uses (plan_earn.evaluation_for + engine.evaluate,
       the partner's history accumulated in memory), over the events in time order, given as the engine reads
       them (EventFacts and the partner id, as a backtest or a recalculation loads them). Every CHUNK events
       the lines made are written set-based in one transaction, as the batch ingest writes them
       (commissions.service.write_drafts): commission_lines (one bulk_insert), and their ledger entries
       through ledger.post_transfers (ledger_transactions, ledger_postings and the accounts' balances by
       one set statement; every amount and currency checked first, each entry balanced by construction).
limit: exactly the rows ours wrote (read back after the run, ids renamed before the clock starts), written
       raw in one transaction: sqlite3 executemany / PostgreSQL COPY, plus the same balance updates.
       No evaluation, no checks.
"The same output rows" are therefore the lines and their ledger postings, what a live line writes minus its
audit row (a replay writes no audit row per line; the batch ingest writes one per batch, not per line).

After every ours run the lines written are checked, so the bench cannot pass by doing nothing: their count
and total equal the lines replay returned and the ledger moved exactly that total; the totals of the twelve
rules that do not depend on invoice history (flat rules, caps per partner period, bonuses) equal an
independent recount from the events; no capped rule exceeds its cap and every two-tier share is its percent.

Figures (26 Nov 2026, shared 2-core machine; raw varies by a third between runs, so read ratios as a range):
- after the replay ran with the collector frozen and slowed (kit/gc_batch.py) and the per-line money and enum
  reads were trimmed: CI size, load average 1-4, ours 10,033 / 10,367 / 10,091 events/s against raw 32,352 /
  33,474 / 32,538, ratio 0.31 / 0.31 / 0.31, with the code before this round run between them at 0.24 / 0.25
  (7,195 and 7,778 against 30,231 and 30,548). Full size (1M events, 1,000 partners; a PostgreSQL bench ran
  beside it): ours 5,358 events/s against raw 17,431, ratio 0.31.
- the replay's CPU time at CI size went from 4.2-5.2 s to 3.3-3.5 s; under cProfile the replay took 25 s
  before and 8 s after, most of the difference collections that had rescanned the growing history.
- before this round: SQLite 0.22-0.33 under load (4,359-4,883 events/s); PostgreSQL 3,787 against 9,945 (0.38).
Where ours goes: the writes are a third; of the replay ~45 % is the partner's context from the indexed history
(indexing new records ~17 %, the counts ~10 %) and ~40 % the rules and their lines (explanation text, ids,
drafts).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from common import alternate, fresh_database, median_rate, result_line
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.plan_earn import plan_chooser
from partnerpay.commissions.replay import replay
from partnerpay.commissions.service import write_drafts
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.db.engine import SQLITE_CACHE_KIB, make_engine, make_session_factory, unit_of_work
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.ledger.models import LedgerPosting, LedgerTransaction
from partnerpay.partners.models import Partner
from partnerpay.partners.service import create_partner
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.resolve import load_book
from partnerpay.plans.service import create_plan, publish
from partnerpay.programs.models import Program
from partnerpay.programs.service import create_program

SIZES = {"ci": 50_000, "full": 1_000_000}
PARTNERS = {"ci": 100, "full": 1_000}
CHUNK = 20_000  # events evaluated per written transaction
TARGETS = {"sqlite": 0.3, "postgresql": 0.3}
START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = 365 * 86_400
PRODUCTS = {"pro": ("pro-monthly", "pro-annual"), "team": ("team-monthly", "team-annual"), "enterprise": ("ent",)}
COUNTRIES = ("DE", "FR", "US", "GB", "NL")
TIERS_QUARTER = [{"from_customers": 0, "percent_bp": 2000}, {"from_customers": 10, "percent_bp": 2500},
                 {"from_customers": 25, "percent_bp": 3000}]  # fmt: skip
TIERS_MONTH = [{"from_customers": 0, "percent_bp": 1500}, {"from_customers": 3, "percent_bp": 2000},
               {"from_customers": 6, "percent_bp": 2500}]  # fmt: skip
RULES: list[dict[str, Any]] = [
    {"name": "signup", "trigger": "signup", "flat": 200, "caps": {"per_partner_period": 5_000, "period": "month"}},
    {"name": "sales demo", "trigger": "demo_booked", "flat": 1_000,
     "conditions": {"metadata_equals": {"channel": "sales"}}},
    {"name": "demo", "trigger": "demo_booked", "flat": 500, "priority": -1},
    {"name": "EU lead", "trigger": "lead_qualified", "flat": 1_500, "conditions": {"customer_countries": ["DE", "FR"]}},
    {"name": "US lead", "trigger": "lead_qualified", "flat": 800, "conditions": {"customer_countries": ["US"]}},
    {"name": "big deal", "trigger": "deal_won", "percent_bp": 500, "flat": 10_000,
     "conditions": {"min_amount": 100_000}, "caps": {"per_event": 20_000}},
    {"name": "deal", "trigger": "deal_won", "flat": 5_000, "priority": -1},
    {"name": "enterprise", "trigger": "invoice_paid", "percent_bp": 1_500, "recurring_months": 12, "priority": 10,
     "conditions": {"products": ["enterprise"]}, "caps": {"per_customer": 50_000}},
    {"name": "annual pro first", "trigger": "invoice_paid", "percent_bp": 2_500, "priority": 20,
     "conditions": {"products": ["pro"], "skus": ["pro-annual"], "first_payment_only": True}},
    {"name": "pro tiers", "trigger": "invoice_paid", "tiers": TIERS_QUARTER, "tier_period": "quarter",
     "recurring_months": 12, "priority": 5, "conditions": {"products": ["pro"]}},
    {"name": "team true-up", "trigger": "invoice_paid", "tiers": TIERS_MONTH, "tier_period": "month",
     "tier_mode": "retroactive", "priority": 5, "conditions": {"products": ["team"]}, "two_tier_percent_bp": 1_000},
    {"name": "GB", "trigger": "invoice_paid", "percent_bp": 1_200, "priority": 1,
     "conditions": {"customer_countries": ["GB"]}},
    {"name": "base", "trigger": "invoice_paid", "percent_bp": 1_000,
     "caps": {"per_partner_period": 30_000, "period": "month"}},
    {"name": "5 customers", "trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50_000}},
    {"name": "25 customers", "trigger": "invoice_paid", "bonus": {"first_customers": 25, "amount": 150_000}},
    {"name": "enterprise sales", "trigger": "invoice_paid", "percent_bp": 2_000, "recurring_months": 6, "priority": 15,
     "conditions": {"products": ["enterprise"], "metadata_equals": {"channel": "sales"}}, "two_tier_percent_bp": 500},
    {"name": "US deal", "trigger": "deal_won", "flat": 20_000, "priority": 1,
     "conditions": {"customer_countries": ["US"]}, "caps": {"per_partner_period": 60_000, "period": "quarter"}},
    {"name": "webinar signup", "trigger": "signup", "flat": 300, "priority": 1,
     "conditions": {"metadata_equals": {"source": "webinar"}}},
    {"name": "team annual", "trigger": "invoice_paid", "percent_bp": 1_800, "priority": 7,
     "conditions": {"skus": ["team-annual"]}, "caps": {"per_customer": 20_000}},
    {"name": "lead", "trigger": "lead_qualified", "flat": 300, "priority": -1},
]  # fmt: skip
FLAT = {1: 200, 2: 1_000, 3: 500, 4: 1_500, 5: 800, 7: 5_000, 17: 20_000, 18: 300, 20: 300}


@dataclass
class World:
    program: Program
    partners: dict[str, Partner]
    events: list[tuple[EventFacts, str | None]]
    book: Any
    runs: int = 0
    last_now: datetime = START
    expected: dict[int, int] = field(default_factory=dict)


def customer_kind(rng: random.Random) -> dict[str, Any]:
    product = rng.choices(list(PRODUCTS), weights=(6, 3, 1))[0]
    return {"product": product, "sku": rng.choice(PRODUCTS[product]), "country": rng.choice(COUNTRIES),
            "channel": rng.choice(("web", "web", "sales"))}  # fmt: skip


def make_world(factory: sessionmaker[Session], size: str) -> World:
    """Program, partners, plan and a year of events, all written before any clock starts."""
    n, rng = SIZES[size], random.Random(6)
    with unit_of_work(factory) as session:
        program = create_program(session, actor=SYSTEM, name="Bench", currency="EUR", hold_days=30,
                                 default_percent_bp=1_000, now=START)  # fmt: skip
        partners = [
            create_partner(session, actor=SYSTEM, program_id=program.id, name=f"Partner {i}",
                           email=f"p{i}@bench.example", now=START)
            for i in range(PARTNERS[size])
        ]  # fmt: skip
        for i, partner in enumerate(partners):
            if i % 10 == 9:
                partner.recruited_by_id = partners[rng.randrange(i)].id
        session.flush()
        events, customers, event_rows = _events(session, program.id, [p.id for p in partners], n, rng)
        bulk_insert(session, "customers", ("id", "program_id", "external_id", "partner_id", "created_at", "status",
                                           "lifetime_revenue"), customers)  # fmt: skip
        bulk_insert(session, "events", ("id", "program_id", "type", "external_id", "occurred_at", "customer_id",
                                        "partner_id", "amount", "currency", "product", "metadata", "content_hash",
                                        "created_at"), event_rows)  # fmt: skip
        plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Bench", rules=RULES, now=START)
        publish(session, actor=SYSTEM, plan_id=plan.id, now=START, effective_from=START, allow_new_products=True)
        assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=START, effective_from=START)
        book = load_book(session, program.id)
        book.rules(next(iter(book.versions.values()))[0])
        by_id = {p.id: p for p in partners}
        session.expunge_all()
    return World(program, by_id, events, book)


def _events(
    session: Session, program_id: str, partner_ids: list[str], n: int, rng: random.Random
) -> tuple[list[tuple[EventFacts, str | None]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A year of events: per customer a signup, maybe a demo, a lead and a deal, and monthly invoices from a
    random month on; 2 % of customers have no partner. Sorted by time, as replay wants them."""
    raw: list[tuple[datetime, str, int | None, str, dict[str, Any]]] = []
    customers: list[tuple[Any, ...]] = []
    owner: dict[str, str | None] = {}
    external: dict[str, str] = {}
    while len(raw) < n:
        cid, kind = new_id("cus"), customer_kind(rng)
        # A twentieth of the partners bring a third of the customers (tiers and bonuses), the rest a few each;
        # 2 % of customers come with no partner.
        busy = rng.random() < 0.3
        pick = rng.randrange(max(1, len(partner_ids) // 20) if busy else len(partner_ids))
        partner = None if rng.random() < 0.02 else partner_ids[pick]
        owner[cid], external[cid] = partner, f"cust_{len(customers)}"
        customers.append((cid, program_id, external[cid], partner, START, "active", 0))
        t = rng.randrange(YEAR - 86_400 * 40)
        meta = {"sku": kind["sku"], "channel": kind["channel"], "customer_country": kind["country"],
                "source": rng.choice(("webinar", "ads", "search"))}  # fmt: skip
        raw.append((START + timedelta(seconds=t), "signup", None, cid, meta))
        for kind_name, p, amount in (("demo_booked", 0.5, None), ("lead_qualified", 0.5, None),
                                     ("deal_won", 0.3, rng.randrange(20_000, 500_000))):  # fmt: skip
            if rng.random() < p:
                t += rng.randrange(86_400, 86_400 * 10)
                raw.append((START + timedelta(seconds=t), kind_name, amount, cid, meta))
        t += rng.randrange(86_400, 86_400 * 20)
        amount = rng.randrange(29, 999) * 100
        while t < YEAR and len(raw) < n:
            raw.append((START + timedelta(seconds=t), "invoice_paid", amount, cid, meta))
            t += 30 * 86_400 + rng.randrange(-86_400, 86_400)
    raw.sort(key=lambda r: r[0])
    events: list[tuple[EventFacts, str | None]] = []
    rows: list[tuple[Any, ...]] = []
    for i, (at, kind_name, amount, cid, meta) in enumerate(raw[:n]):
        eid, ext = new_id("evt"), f"{kind_name}_{i}"
        product = next(p for p, skus in PRODUCTS.items() if meta["sku"] in skus)
        currency = "EUR" if amount is not None else None
        facts = EventFacts(eid, kind_name, ext, at, amount, currency, cid, external[cid], product, meta,
                           None, meta["customer_country"])  # fmt: skip
        events.append((facts, owner[cid]))
        rows.append((eid, program_id, kind_name, ext, at, cid, owner[cid], amount, currency, product,
                     json_value(session, meta), "0" * 64, at))  # fmt: skip
    return events, customers, rows


def write_lines(session: Session, program_id: str, lines: list[EngineLine], now: datetime) -> None:
    """As the batch ingest writes its lines (commissions.service.write_drafts): one set-based insert, then their
    ledger entries in one ledger.post_transfers call."""
    write_drafts(session, program_id, [line.draft for line in lines], now)


def chunks(world: World) -> Iterator[list[tuple[EventFacts, str | None]]]:
    for start in range(0, len(world.events), CHUNK):
        yield world.events[start : start + CHUNK]


def run_ours(factory: sessionmaker[Session], engine: Engine, world: World) -> tuple[int, float]:
    world.runs += 1
    now = START + timedelta(days=400, seconds=world.runs)
    world.last_now = now

    choose = plan_chooser(world.book)  # plan_rules, remembered between the book's boundaries
    made: list[EngineLine] = []
    start = time.perf_counter()
    replayed = replay(world.program, world.partners, iter(world.events), choose, now=now)
    for part in chunks(world):
        lines = [line for _ in part for line in next(replayed).lines]
        with unit_of_work(factory) as session:
            write_lines(session, world.program.id, lines, now)
        made.extend(lines)
    elapsed = time.perf_counter() - start
    check(engine, world, made, now)
    return len(world.events), elapsed


def check(engine: Engine, world: World, made: list[EngineLine], now: datetime) -> None:
    """What was written is what was evaluated, and the plan's simple rules add up independently."""
    drafts = [line.draft for line in made]
    line, tx, posting = CommissionLine, LedgerTransaction, LedgerPosting
    with engine.connect() as conn:
        count, total = conn.execute(
            select(func.count(), func.coalesce(func.sum(line.amount), 0)).where(line.created_at == now)
        ).one()
        moved = conn.execute(
            select(func.coalesce(func.sum(posting.amount), 0), func.count())
            .join(tx, tx.id == posting.transaction_id)
            .where(tx.created_at == now, posting.amount > 0)
        ).one()
        by_rule = dict(
            conn.execute(
                select(line.rule_number, func.sum(line.amount))
                .where(line.created_at == now, line.kind.in_(("commission", "bonus")))
                .group_by(line.rule_number)
            ).all()
        )
    if (count, total) != (len(drafts), sum(d.amount for d in drafts)) or total <= 0:
        raise SystemExit(f"wrote {count} lines of {total}, evaluated {len(drafts)} of {sum(d.amount for d in drafts)}")
    if tuple(moved) != (total, count):
        raise SystemExit(f"the ledger moved {moved[0]} in {moved[1]} postings for {count} lines of {total}")
    if not world.expected:
        world.expected = recount(world)
    for number, want in world.expected.items():
        if by_rule.get(number, 0) != want:
            raise SystemExit(f"rule {number} paid {by_rule.get(number, 0)}, the recount says {want}")
    capped: dict[tuple[int, str, object], int] = defaultdict(int)
    for d in drafts:
        assert d.amount > 0 and d.rule_number is not None
        if d.kind == "two_tier" and d.amount != percent_of(d.base_amount, d.rate_bp, Rounding.HALF_EVEN):
            raise SystemExit(f"two-tier line {d.id} is not {d.rate_bp} bp of {d.base_amount}")
        if d.rule_number in (8, 19) and d.kind == "commission":
            capped[(d.rule_number, d.customer_id, None)] += d.amount
    for (number, _, _), amount in capped.items():
        if amount > {8: 50_000, 19: 20_000}[number]:
            raise SystemExit(f"rule {number} paid {amount} to one customer, above its cap")


def recount(world: World) -> dict[int, int]:
    """The flat rules, their caps per partner period and the bonuses, counted from the events alone."""
    paid: dict[int, int] = Counter()
    per_period: dict[tuple[int, str, str], int] = Counter()
    customers: dict[str, set[str]] = defaultdict(set)
    for facts, partner in world.events:
        if partner is None:
            continue
        meta, country, kind = facts.metadata, facts.customer_country, facts.type
        number = None
        if kind == "signup":
            number = 18 if meta.get("source") == "webinar" else 1
        elif kind == "demo_booked":
            number = 2 if meta.get("channel") == "sales" else 3
        elif kind == "lead_qualified":
            number = 4 if country in ("DE", "FR") else 5 if country == "US" else 20
        elif kind == "deal_won":
            assert facts.amount is not None
            if country == "US":
                number = 17
            elif facts.amount >= 100_000:
                paid[6] += min(percent_of(facts.amount, 500, Rounding.HALF_EVEN) + 10_000, 20_000)
            else:
                number = 7
        elif kind == "invoice_paid" and facts.customer_id not in customers[partner]:
            customers[partner].add(facts.customer_id)
            got = len(customers[partner])
            paid[14] += 50_000 if got == 5 else 0
            paid[15] += 150_000 if got == 25 else 0
        if number in (1, 17):
            at = facts.occurred_at
            period = f"{at.year}-{at.month}" if number == 1 else f"{at.year}-Q{(at.month - 1) // 3}"
            per_period[(number, partner, period)] += FLAT[number]
        elif number is not None:
            paid[number] += FLAT[number]
    for (number, _, _), amount in per_period.items():
        paid[number] += min(amount, 5_000 if number == 1 else 60_000)
    return dict(paid)


@dataclass
class Output:
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    deltas: dict[str, int]


def read_output(engine: Engine, now: datetime) -> Output:
    """The rows the last ours run wrote, under new ids, ready to be written again."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        stamp: Any = now if engine.dialect.name != "sqlite" else now.isoformat(" ", "microseconds")[:26]
        tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        queries = {
            "commission_lines": f"SELECT * FROM commission_lines WHERE created_at = {mark}",
            "ledger_transactions": f"SELECT * FROM ledger_transactions WHERE created_at = {mark}",
            "ledger_postings": "SELECT p.* FROM ledger_postings p JOIN ledger_transactions t ON t.id = "
            f"p.transaction_id WHERE t.created_at = {mark}",
        }
        for table, query in queries.items():
            cur.execute(query, (stamp,))
            tables[table] = ([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
    finally:
        raw.close()
    mapping: dict[str, str] = {}
    lines_cols, lines = tables["commission_lines"]
    for row in lines:
        mapping[row[0]] = new_id("com")
    tables["commission_lines"] = (lines_cols, [(mapping[r[0]], *r[1:]) for r in lines])
    tx_cols, txs = tables["ledger_transactions"]
    ref = tx_cols.index("ref_id")
    renamed = []
    for row in txs:
        mapping[row[0]] = new_id("ltx")
        values = list(row)
        values[0], values[ref] = mapping[row[0]], mapping[row[ref]]
        renamed.append(tuple(values))
    tables["ledger_transactions"] = (tx_cols, renamed)
    post_cols, posts = tables["ledger_postings"]
    # Postings are keyed by a sequence: the raw side lets the database number them, as ours did.
    tx_at, acc_at, amount_at = (
        post_cols.index("transaction_id"),
        post_cols.index("account_id"),
        post_cols.index("amount"),
    )
    deltas: dict[str, int] = defaultdict(int)
    rows = []
    for row in posts:
        deltas[row[acc_at]] += row[amount_at]
        rows.append(tuple(mapping[v] if k == tx_at else v for k, v in enumerate(row) if k != 0))
    tables["ledger_postings"] = (post_cols[1:], rows)
    return Output(tables, dict(deltas))


def run_raw(engine: Engine, url: str, world: World) -> tuple[int, float]:
    output = read_output(engine, world.last_now)
    order = ("commission_lines", "ledger_transactions", "ledger_postings")
    deltas = sorted(output.deltas.items())
    if engine.dialect.name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", f"cache_size=-{SQLITE_CACHE_KIB}"):
            conn.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table in order:
            cols, rows = output.tables[table]
            marks = ", ".join("?" * len(cols))
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
        conn.executemany("UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?", [(d, a) for a, d in deltas])
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return len(world.events), elapsed
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        start = time.perf_counter()
        with pg.cursor() as cur:
            for table in order:
                cols, rows = output.tables[table]
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.execute(
                "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
                "FROM unnest(%s::varchar[], %s::bigint[]) AS d(id, delta) WHERE a.id = d.id",
                ([a for a, _ in deltas], [d for _, d in deltas]),
            )
        pg.commit()
        return len(world.events), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with fresh_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        setup = time.perf_counter()
        world = make_world(factory, args.size)
        print(f"setup: {len(world.events):,} events, {len(world.partners)} partners, "
              f"{time.perf_counter() - setup:.1f} s")  # fmt: skip
        lines_seen: list[int] = []

        def ours() -> tuple[int, float]:
            n, seconds = run_ours(factory, engine, world)
            with engine.connect() as conn:
                written = select(func.count()).where(CommissionLine.created_at == world.last_now)
                lines_seen.append(int(conn.execute(written).scalar_one()))
            return n, seconds

        runs: Callable[[], tuple[int, float]] = ours
        mine, raw = alternate(args.repeat, runs, lambda: run_raw(engine, url, world))
        engine.dispose()
    events_per_s, limit = median_rate(mine), median_rate(raw)
    lines_per_event = lines_seen[-1] / len(world.events)
    print(f"checked: every run's lines and ledger totals, {len(world.expected)} rules recounted independently")
    print(f"ours {events_per_s:,.0f} events/s ({events_per_s * lines_per_event:,.0f} lines/s, "
          f"{lines_per_event:.2f} lines per event), raw {limit:,.0f} events/s")  # fmt: skip
    print(result_line("commission_eval", args.db, events_per_s, limit, TARGETS[args.db]))


if __name__ == "__main__":
    main()
