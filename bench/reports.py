"""Dashboard reads: a partner's 30-day series and a program's top 100 partners, from partnerpay's rollups,
against the same SQL on a hand-built rollup.

Setup (untimed): one program, PARTNERS partners, CLICKS clicks over 180 days (1 in 20 naming no partner),
CONVERSIONS invoice_paid events (EUR, each with its customer and a signup) and one commission line per
conversion, written raw. Then reports.rollups.roll_up builds the rollups (its time is printed), and a late
batch (1 % more clicks and conversions on old days) is rolled up incrementally (time printed).

ours:  reports.queries.partner_series (30 days, a random partner each call) and reports.queries.top_partners
       (limit 100, the last 30 days), through a SQLAlchemy session as the API calls them. The dashboards' top
       list of the last 7 or 30 days is read from the program's summed window (reports/windows.py: refreshed by
       each rollup run, so the read is the first 100 entries of a ranking index).
limit: a rollup built by hand for exactly these questions (CREATE TABLE … AS SELECT … GROUP BY over the raw
       tables: one wide row per partner and day with the EUR revenue in it, and the last 30 days summed per
       partner, with the indexes that serve the reads), read with the same shape of SQL on the bare DBAPI
       cursor.
also:  top_partners_any_range: the top 100 of the last 29 days, a range no window keeps, so both sides group
       the partner days of the range on every call (the API's `days` may be 1 to 366).
Each measurement is CALLS calls of each side, interleaved one by one; its p99 per side is kept; it is done
REPEAT times and the median p99 is printed. The targets of issue 8: partner series p99 <= 20 ms, top-100 p99 <= 200 ms.

ratio = limit p99 / our p99 (a duration: higher is better, 1.0 is as fast as the hand-built rollup).

Figures (26 Nov 2026, shared 2-core machine, load average 4-12 from other work; p99 there is mostly the
scheduler's):
- full size, SQLite (setup 691 s, rollup from scratch 162 s, late 1 % batch re-rolled over all 181 days in
  266 s, hand-built rollup 142 s): series 7.19 ms (hand 4.16, ratio 0.58), top-100 of 30 days 6.99 ms (hand
  window 8.55, 1.22), any range 874 ms (hand GROUP BY 648, 0.74: over 200 ms on both sides). Before the windows
  the 30-day top-100 was 440 ms at full size (hand GROUP BY 291).
- CI size: SQLite series 4.66 ms (hand 0.17), top-100 6.35 ms (hand window 4.63, 0.73), any range 36.9 ms
  (hand 27.0, 0.73); PostgreSQL series 8.42 ms (hand 5.43, 0.64), top-100 6.56 ms (hand 9.25, 1.41), any range
  37.0 ms (hand 29.2, 0.79).
The series' low ratio on a quiet machine is the API's shape: the hand-built read is 30 bare rows of five
columns, ours builds each day's figures with money per currency (a fraction of a millisecond either way).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from common import fresh_database
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.bulk import bulk_insert
from partnerpay.db.engine import make_engine, make_session_factory
from partnerpay.kit.ids import new_ids
from partnerpay.programs.service import create_program
from partnerpay.reports.queries import partner_series, top_partners
from partnerpay.reports.rollups import roll_up

# partners, clicks, conversions: full = 5M clicks + 500k conversions over 10k partners; ci scales all down.
SIZES = {"ci": (500, 250_000, 25_000), "full": (10_000, 5_000_000, 500_000)}
TARGET_RATIO = 0.5
P99_TARGETS_MS = {"partner_series": 20.0, "top_partners": 200.0, "top_partners_any_range": 200.0}
DAYS = 180
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
TODAY = NOW.date()
CHUNK = 100_000
CLICK_COLUMNS = ("id", "program_id", "partner_id", "code", "at", "ua_class", "destination")


def _at(rng: random.Random, days: int = DAYS) -> datetime:
    return NOW - timedelta(seconds=rng.randrange(days * 86_400))


def write_clicks(factory: sessionmaker[Session], program_id: str, partners: list[str], n: int, seed: int) -> None:
    rng = random.Random(seed)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        ids = new_ids("clk", size)
        rows = [
            (i, program_id, None if rng.random() < 0.05 else rng.choice(partners), "code", _at(rng), "desktop", "x")
            for i in ids
        ]
        with factory.begin() as s:
            bulk_insert(s, "clicks", CLICK_COLUMNS, rows)


def write_conversions(factory: sessionmaker[Session], program_id: str, partners: list[str], n: int, seed: int) -> None:
    """n paying customers: a signup, an invoice_paid event (EUR) and a commission line of 20 % each."""
    rng = random.Random(seed)
    for start in range(0, n, CHUNK // 4):
        size = min(CHUNK // 4, n - start)
        customers, signups, paid, lines = (
            new_ids("cus", size),
            new_ids("evt", size),
            new_ids("evt", size),
            new_ids("com", size),
        )
        c_rows: list[tuple[Any, ...]] = []
        e_rows: list[tuple[Any, ...]] = []
        l_rows: list[tuple[Any, ...]] = []
        for k in range(size):
            partner, at = rng.choice(partners), _at(rng)
            amount = rng.randrange(1_000, 50_000)
            c_rows.append((customers[k], program_id, f"{seed}-{start + k}", partner, at, "paying", amount, at))
            e_rows.append((signups[k], program_id, "signup", f"s{seed}-{start + k}", at - timedelta(hours=1),
                           customers[k], partner, None, None, "0" * 64, at))  # fmt: skip
            e_rows.append((paid[k], program_id, "invoice_paid", f"p{seed}-{start + k}", at, customers[k], partner,
                           amount, "EUR", "0" * 64, at))  # fmt: skip
            l_rows.append((lines[k], program_id, partner, customers[k], paid[k], "commission", amount // 5, "EUR",
                           "half_even", "pending", at, "20 % of the invoice", at))  # fmt: skip
        with factory.begin() as s:
            bulk_insert(s, "customers", ("id", "program_id", "external_id", "partner_id", "created_at", "status",
                                         "lifetime_revenue", "first_paid_at"), c_rows)  # fmt: skip
            bulk_insert(s, "events", ("id", "program_id", "type", "external_id", "occurred_at", "customer_id",
                                      "partner_id", "amount", "currency", "content_hash", "created_at"),
                        e_rows)  # fmt: skip
            bulk_insert(s, "commission_lines", ("id", "program_id", "partner_id", "customer_id", "event_id", "kind",
                                                "amount", "currency", "rounding", "status", "hold_until",
                                                "explanation", "created_at"), l_rows)  # fmt: skip


def make_world(factory: sessionmaker[Session], n_partners: int, n_clicks: int, n_conversions: int) -> str:
    with factory.begin() as s:
        program = create_program(s, actor=SYSTEM, now=NOW, name="Bench", currency="EUR", hold_days=30)
        program_id = program.id
        partners = new_ids("ptn", n_partners)
        bulk_insert(
            s,
            "partners",
            ("id", "program_id", "name", "email", "referral_code", "status", "created_at", "source"),
            [(p, program_id, f"Partner {i}", f"p{i}@bench.example", f"ref{i}", "active", NOW, "import")
             for i, p in enumerate(partners)],
        )  # fmt: skip
    write_clicks(factory, program_id, partners, n_clicks, seed=1)
    write_conversions(factory, program_id, partners, n_conversions, seed=2)
    return program_id


HAND_BUILT = [
    "CREATE TABLE hand_days AS SELECT partner_id, day, SUM(clicks) AS clicks, SUM(signups) AS signups, "
    "SUM(conversions) AS conversions, SUM(revenue) AS revenue FROM ("
    " SELECT partner_id, {day_at} AS day, 1 AS clicks, 0 AS signups, 0 AS conversions, 0 AS revenue"
    "  FROM clicks WHERE program_id = :p AND partner_id IS NOT NULL"
    " UNION ALL SELECT partner_id, {day_occurred}, 0, CASE WHEN type = 'signup' THEN 1 ELSE 0 END,"
    "  CASE WHEN type = 'invoice_paid' THEN 1 ELSE 0 END, CASE WHEN type = 'invoice_paid' THEN amount ELSE 0 END"
    "  FROM events WHERE program_id = :p AND partner_id IS NOT NULL"
    ") AS raw GROUP BY partner_id, day",
    "CREATE INDEX hand_days_partner ON hand_days (partner_id, day)",
    "CREATE INDEX hand_days_day ON hand_days (day, partner_id, revenue, conversions, clicks, signups)",
    # The last 30 days summed per partner, as partnerpay keeps its dashboard windows.
    "CREATE TABLE hand_window AS SELECT partner_id, SUM(clicks) AS clicks, SUM(signups) AS signups,"
    " SUM(conversions) AS conversions, SUM(revenue) AS revenue FROM hand_days"
    " WHERE day >= :lo AND day <= :hi GROUP BY partner_id",
    "CREATE INDEX hand_window_rank ON hand_window (revenue DESC, conversions DESC, clicks DESC, partner_id)",
]
HAND_SERIES = (
    "SELECT day, clicks, signups, conversions, revenue FROM hand_days"
    " WHERE partner_id = {ph} AND day >= {ph} AND day <= {ph}"
)
HAND_TOP = (  # any range: {ph} twice, the first and last day
    "SELECT p.id, p.name, t.clicks, t.signups, t.conversions, t.revenue FROM ("
    " SELECT partner_id, SUM(clicks) AS clicks, SUM(signups) AS signups, SUM(conversions) AS conversions,"
    " SUM(revenue) AS revenue FROM hand_days WHERE day >= {ph} AND day <= {ph} GROUP BY partner_id"
    " ORDER BY revenue DESC, conversions DESC, clicks DESC, partner_id LIMIT 100"
    ") AS t JOIN partners p ON p.id = t.partner_id ORDER BY t.revenue DESC, t.conversions DESC, t.clicks DESC, p.id"
)
HAND_TOP_WINDOW = (  # the last 30 days
    "SELECT p.id, p.name, t.clicks, t.signups, t.conversions, t.revenue FROM ("
    " SELECT partner_id, clicks, signups, conversions, revenue FROM hand_window"
    " ORDER BY revenue DESC, conversions DESC, clicks DESC, partner_id LIMIT 100"
    ") AS t JOIN partners p ON p.id = t.partner_id ORDER BY t.revenue DESC, t.conversions DESC, t.clicks DESC, p.id"
)


def build_hand_rollup(factory: sessionmaker[Session], program_id: str, db: str) -> None:
    day_of = "substr({c}, 1, 10)" if db == "sqlite" else "CAST(timezone('UTC', {c}) AS DATE)"
    lo, hi = TODAY - timedelta(days=29), TODAY
    dates = {"lo": lo.isoformat(), "hi": hi.isoformat()} if db == "sqlite" else {"lo": lo, "hi": hi}
    with factory.begin() as s:
        for sql in HAND_BUILT:
            s.execute(
                text(sql.format(day_at=day_of.format(c="at"), day_occurred=day_of.format(c="occurred_at"))),
                {"p": program_id, **dates},
            )
        s.execute(text("ANALYZE"))


def p99_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def measure(ours: Callable[[int], Any], limit: Callable[[int], Any], calls: int) -> tuple[float, float]:
    """p99 of each side, the calls interleaved one by one: a burst of load on this shared machine then hits
    both sides alike instead of one side's whole block."""
    a, b = [], []
    for i in range(calls):
        t0 = time.perf_counter()
        ours(i)
        t1 = time.perf_counter()
        limit(i)
        b.append(time.perf_counter() - t1)
        a.append(t1 - t0)
    return p99_ms(a), p99_ms(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement of the partner series")
    args = parser.parse_args()
    n_partners, n_clicks, n_conversions = SIZES[args.size]
    with fresh_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        t0 = time.perf_counter()
        program_id = make_world(factory, n_partners, n_clicks, n_conversions)
        print(f"setup: {n_partners} partners, {n_clicks} clicks, {n_conversions} conversions "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
        t0 = time.perf_counter()
        with factory.begin() as s:
            roll_up(s, now=NOW)
        print(f"rollup built from scratch in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        with factory() as s:
            partners = list(s.scalars(text("SELECT id FROM partners WHERE program_id = :p"), {"p": program_id}))
        # Late data: 1 % more clicks and conversions, on any of the 180 days; rolled up incrementally.
        write_clicks(factory, program_id, partners, n_clicks // 100, seed=3)
        write_conversions(factory, program_id, partners, n_conversions // 100, seed=4)
        t0 = time.perf_counter()
        with factory.begin() as s:
            late = roll_up(s, now=NOW + timedelta(minutes=5))
        print(f"late batch: {late.day_count} days re-rolled in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        t0 = time.perf_counter()
        build_hand_rollup(factory, program_id, args.db)
        if args.db == "sqlite":
            with factory.begin() as s:
                s.execute(text("ANALYZE"))
        print(f"hand-built rollup in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        start, end = TODAY - timedelta(days=29), TODAY
        results = run_measurements(factory, engine, program_id, partners, start, end, args)
        check(factory, program_id, start, end)
        for bench, (ours, limit) in results.items():
            ok = "met" if ours <= P99_TARGETS_MS[bench] else "MISSED"
            print(f"{bench}: our p99 {ours:.2f} ms ({ok}: target <= {P99_TARGETS_MS[bench]:.0f} ms), "
                  f"hand-built {limit:.2f} ms", file=sys.stderr)  # fmt: skip
            print(
                f"RESULT bench=reports_{bench} db={args.db} ours={ours:.2f}ms limit={limit:.2f}ms "
                f"ratio={limit / ours:.2f} target={TARGET_RATIO:.2f} p99_target={P99_TARGETS_MS[bench]:.0f}ms",
                flush=True,
            )
        engine.dispose()


def run_measurements(
    factory: sessionmaker[Session],
    engine: Any,
    program_id: str,
    partners: list[str],
    start: date,
    end: date,
    args: argparse.Namespace,
) -> dict[str, tuple[float, float]]:
    rng = random.Random(5)
    picks = [rng.choice(partners) for _ in range(args.calls)]
    ph = "?" if args.db == "sqlite" else "%s"
    raw = engine.raw_connection()
    cursor = raw.cursor()
    # SQLite stores DATE as 'YYYY-MM-DD' text; the driver binds the same text for the hand-built table.
    lo, hi = (start.isoformat(), end.isoformat()) if args.db == "sqlite" else (start, end)
    series_sql, top_sql, window_sql = HAND_SERIES.format(ph=ph), HAND_TOP.format(ph=ph), HAND_TOP_WINDOW
    # A range the rollup keeps no window for (29 days): summed from the days on each read, on both sides.
    any_start = start + timedelta(days=1)
    any_lo = any_start.isoformat() if args.db == "sqlite" else any_start
    top_calls = max(20, args.calls // 5)
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in P99_TARGETS_MS}
    with factory() as s:

        def ours_series(i: int) -> None:
            partner_series(s, partner_id=picks[i], start=start, end=end)

        def hand_series(i: int) -> None:
            cursor.execute(series_sql, (picks[i], lo, hi))
            cursor.fetchall()

        def ours_top(i: int) -> None:
            top_partners(s, program_id=program_id, currency="EUR", start=start, end=end, limit=100)

        def hand_top(i: int) -> None:
            cursor.execute(window_sql)
            cursor.fetchall()

        def ours_any(i: int) -> None:
            top_partners(s, program_id=program_id, currency="EUR", start=any_start, end=end, limit=100)

        def hand_any(i: int) -> None:
            cursor.execute(top_sql, (any_lo, hi))
            cursor.fetchall()

        measure(ours_series, hand_series, 3)  # one untimed round: caches and plans
        measure(ours_top, hand_top, 3)
        measure(ours_any, hand_any, 3)
        for _ in range(args.repeat):
            for name, ours, hand, calls in (
                ("partner_series", ours_series, hand_series, args.calls),
                ("top_partners", ours_top, hand_top, top_calls),
                ("top_partners_any_range", ours_any, hand_any, top_calls),
            ):
                our_p99, hand_p99 = measure(ours, hand, calls)
                figures[name][0].append(our_p99)
                figures[name][1].append(hand_p99)
    raw.close()
    return {name: (statistics.median(o), statistics.median(h)) for name, (o, h) in figures.items()}


def check(factory: sessionmaker[Session], program_id: str, start: date, end: date) -> None:
    """Our top 100 and the hand-built one agree on who and how much (the rollup is right, not just fast)."""
    with factory() as s:
        ours = top_partners(s, program_id=program_id, currency="EUR", start=start, end=end, limit=100)
        hand = s.execute(
            text(HAND_TOP.format(ph=":x").replace(":x", ":lo", 1).replace(":x", ":hi", 1)),
            {"lo": start, "hi": end},
        ).all()
    mine = [(t.partner_id, t.clicks, t.conversions, t.revenue) for t in ours]
    theirs = [(r[0], int(r[2]), int(r[4]), int(r[5])) for r in hand]
    if mine != theirs:
        raise SystemExit(f"top partners differ from the hand-built rollup: {mine[:3]} vs {theirs[:3]}")
    print(f"checked: our top {len(mine)} = the hand-built rollup's", file=sys.stderr)


if __name__ == "__main__":
    main()
