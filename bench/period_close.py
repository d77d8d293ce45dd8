"""Period close: one payout run over a program's approved lines plus the CSV files, against the raw SQL of the
identical output.

Setup (untimed): a program, PARTNERS partners (1 in 50 suspended, 1 in 20 without a verified payout method,
each partner's payable account already open as its lines' postings would have left it) and LINES approved
lines in two currencies (EUR and, for 1 partner in 4, also USD), 1 in 10 still on hold, 1 in 20 a clawback
(negative). The program's payout settings: a minimum of 50.00 per currency, the verified-method gate on.

ours:  payouts.run.create_payout_run (sums, gates and skips with reasons, one batch per currency, payouts,
       lines → in_batch with their payout, payable → clearing in the ledger, skips stored, one audit row per
       payout) plus payouts.exporters.csv_file.export_csv of each batch written to a file.
limit: the same output in raw SQL on the same data: INSERT INTO payouts … SELECT SUM(amount) … GROUP BY
       partner and currency with the same gates and minimums, UPDATE commission_lines … FROM payouts, and a
       csv.writer of the same columns. No ledger, no audit, no skip rows.
Both run in one transaction that is rolled back after the clock stops (the next measurement needs the same
lines approved again, and the ledger is append-only); the commit is therefore in neither figure. After the
measurements ours runs once more and commits: its payouts are checked against an independent recount of the
generated lines, and a second run for the same period must create 0 payouts.

ratio = limit time / our time (DESIGN.md: a duration within 2x of the raw time is ratio >= 0.5).

Figures (26 Nov 2026, shared 2-core machine, load average 4-8 from other work for most of the run):
- full size on SQLite, `--size full --repeat 1 --no-warm-up`: setup 690 s; ours 530 s, raw 422 s for 116,209
  payouts, ratio 0.80; the committed run's payouts equal the recount and a re-run created 0. Both sides spend
  most of their time moving the lines to in_batch (the UPDATE … FROM of 10M rows), which grows faster than
  linearly with the lines because the rows it rewrites lie all over the table.
- full size on PostgreSQL (same options; ANALYZE after the setup): setup 434 s; ours 499 s, raw 712 s for
  116,259 payouts, ratio 1.43; the committed run equals the recount and a re-run created 0.
- 2M lines (profiled earlier): ours 87 s, raw 83 s; CI size: ratio 0.9 or more.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from common import alternate, fresh_database
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.bulk import bulk_insert, json_value
from partnerpay.db.engine import make_engine, make_session_factory
from partnerpay.kit.ids import new_ids
from partnerpay.payouts.exporters.csv_file import export_csv
from partnerpay.payouts.run import create_payout_run
from partnerpay.payouts.settings import write_settings
from partnerpay.programs.service import create_program

SIZES = {"ci": (5_000, 500_000), "full": (100_000, 10_000_000)}  # partners, lines
TARGETS = {"sqlite": 0.5, "postgresql": 0.5}
MINIMUM = 5_000
NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)
CHUNK = 200_000


def make_world(
    factory: sessionmaker[Session], n_partners: int, n_lines: int
) -> tuple[str, dict[tuple[str, str], tuple[int, int]]]:
    """Program, partners, methods, accounts and lines, written raw; returns the expected payouts (recount)."""
    rng = random.Random(7)
    with factory() as s:
        program = create_program(s, actor=SYSTEM, name="Close", currency="EUR", hold_days=0, now=NOW)
        settings = {"schedule": "monthly", "day_of_month": 1, "minimums": {"EUR": MINIMUM, "USD": MINIMUM}}
        write_settings(s, actor=SYSTEM, program_id=program.id, now=NOW, data=settings)
        pid = program.id
        partners = new_ids("ptn", n_partners)
        suspended = {p for i, p in enumerate(partners) if i % 50 == 7}
        unverified = {p for i, p in enumerate(partners) if i % 20 == 3}
        bulk_insert(s, "partners", ("id", "program_id", "name", "email", "referral_code", "status", "country",
                                    "created_at", "source"),
                    [(p, pid, f"Partner {i}", f"p{i}@bench.example", f"ref{i}-{pid[-6:]}",
                      "suspended" if p in suspended else "active", "DE", NOW, "import")
                     for i, p in enumerate(partners)])  # fmt: skip
        bulk_insert(s, "payout_methods", ("id", "partner_id", "type", "details_encrypted", "masked", "active",
                                          "verified", "created_by", "created_at"),
                    [(m, p, "paypal", "sealed", json_value(s, {"email": "p***@bench.example"}), True,
                      p not in unverified, "system", NOW)
                     for m, p in zip(new_ids("pm", n_partners), partners, strict=True)])  # fmt: skip
        expected: dict[tuple[str, str], tuple[int, int]] = {}
        sums: dict[tuple[str, str], int] = defaultdict(int)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        eligible_sums: dict[tuple[str, str], int] = defaultdict(int)
        past, future = NOW - timedelta(days=40), NOW + timedelta(days=20)
        for start in range(0, n_lines, CHUNK):
            count = min(CHUNK, n_lines - start)
            rows = []
            for lid in new_ids("com", count):
                p = partners[rng.randrange(n_partners)]
                currency = "USD" if (hash(p) % 4 == 0 and rng.random() < 0.5) else "EUR"
                amount = rng.randrange(100, 3_000)
                if rng.random() < 0.05:
                    amount = -amount * 2
                held = rng.random() < 0.1
                rows.append((lid, pid, p, "commission", amount, currency, "half_even", "approved",
                             future if held else past, "bench", past, past))  # fmt: skip
                sums[(p, currency)] += amount
                if not held:
                    eligible_sums[(p, currency)] += amount
                    counts[(p, currency)] += 1
            bulk_insert(s, "commission_lines", ("id", "program_id", "partner_id", "kind", "amount", "currency",
                                                "rounding", "status", "hold_until", "explanation", "created_at",
                                                "approved_at"), rows)  # fmt: skip
        # Payable accounts as the lines' postings leave them (credits: negative balances).
        keys = sorted(sums)
        bulk_insert(s, "ledger_accounts", ("id", "program_id", "owner_id", "kind", "currency", "balance", "created_at"),
                    [(a, pid, p, "partner_payable", c, -sums[(p, c)], NOW)
                     for a, (p, c) in zip(new_ids("acc", len(keys)), keys, strict=True)])  # fmt: skip
        s.commit()
    for key, total in eligible_sums.items():
        partner = key[0]
        if partner in suspended or partner in unverified or total < MINIMUM:
            continue
        expected[key] = (total, counts[key])
    return pid, expected


def run_ours(factory: sessionmaker[Session], program_id: str, out: Path, commit: bool = False) -> tuple[int, float]:
    with factory() as s:
        start = time.perf_counter()
        result = create_payout_run(s, actor=SYSTEM, program_id=program_id, now=NOW)
        for batch in result.batches:
            file = export_csv(s, batch)
            (out / file.filename).write_text(file.content, encoding="utf-8")
        elapsed = time.perf_counter() - start
        if commit:
            s.commit()
        else:
            s.rollback()
    return len(result.payouts), elapsed


RAW_PAYOUTS = """
INSERT INTO payouts (id, batch_id, program_id, partner_id, amount, currency, line_count, status, created_at,
                     source_amount, source_currency)
SELECT 'pay_' || t.partner_id || t.currency, 'bat_raw_' || t.currency, :program, t.partner_id, t.total, t.currency,
       t.n, 'draft', :now, t.total, t.currency
FROM (SELECT l.partner_id, l.currency, SUM(l.amount) AS total, COUNT(*) AS n FROM commission_lines l
      WHERE l.program_id = :program AND l.status = 'approved' AND l.hold_until <= :now AND l.payout_id IS NULL
      GROUP BY l.partner_id, l.currency) t
JOIN partners p ON p.id = t.partner_id
WHERE p.status = 'active' AND t.total >= :minimum
  AND EXISTS (SELECT 1 FROM payout_methods m WHERE m.partner_id = t.partner_id AND m.active AND m.verified)
"""
RAW_RUN = """
INSERT INTO payout_runs (id, program_id, as_of, created_by, created_at)
VALUES ('run_raw', :program, :now, 'bench', :now)
"""
RAW_BATCHES = """
INSERT INTO payout_batches (id, run_id, program_id, currency, status, total, payout_count, created_at)
SELECT 'bat_raw_' || currency, 'run_raw', :program, currency, 'draft', 0, 0, :now FROM (SELECT 'EUR' AS currency
UNION ALL SELECT 'USD') c
"""
RAW_LINES = """
UPDATE commission_lines SET status = 'in_batch', payout_id = p.id FROM payouts p
WHERE p.batch_id LIKE 'bat_raw_%' AND commission_lines.partner_id = p.partner_id
  AND commission_lines.currency = p.currency AND commission_lines.program_id = :program
  AND commission_lines.status = 'approved' AND commission_lines.hold_until <= :now
  AND commission_lines.payout_id IS NULL
"""
RAW_CSV = """
SELECT p.id, p.partner_id, t.name, t.email, p.amount, p.currency, p.batch_id FROM payouts p
JOIN partners t ON t.id = p.partner_id WHERE p.batch_id = :batch ORDER BY p.partner_id
"""


def run_raw(engine: Engine, program_id: str, out: Path) -> tuple[int, float]:
    from sqlalchemy import text

    stamp = NOW if engine.dialect.name == "postgresql" else NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    params = {"program": program_id, "now": stamp, "minimum": MINIMUM}
    with engine.connect() as conn:
        trans = conn.begin()
        start = time.perf_counter()
        conn.execute(text(RAW_RUN), params)
        conn.execute(text(RAW_BATCHES), params)
        made = conn.execute(text(RAW_PAYOUTS), params).rowcount
        conn.execute(text(RAW_LINES), params)
        for currency in ("EUR", "USD"):
            with (out / f"raw-{currency}.csv").open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(("payout_id", "partner_id", "partner_name", "email", "amount", "currency",
                                 "amount_minor", "reference"))  # fmt: skip
                for pid, partner, name, email, amount, cur, batch in conn.execute(
                    text(RAW_CSV), {"batch": f"bat_raw_{currency}"}
                ):
                    whole, cents = divmod(amount, 100)
                    major = f"{whole}.{cents:02d}"
                    writer.writerow((pid, partner, name, email, major, cur, amount, f"partnerpay {batch}"))
        elapsed = time.perf_counter() - start
        trans.rollback()
    return made, elapsed


def check(
    factory: sessionmaker[Session], program_id: str, expected: dict[tuple[str, str], tuple[int, int]], out: Path
) -> None:
    made, _ = run_ours(factory, program_id, out, commit=True)
    from sqlalchemy import select

    from partnerpay.payouts.models import Payout

    with factory() as s:
        got = {
            (p.partner_id, p.currency): (p.amount, p.line_count)
            for p in s.scalars(select(Payout).where(Payout.program_id == program_id))
        }
    if got != expected:
        wrong = sorted(set(got.items()) ^ set(expected.items()))[:5]
        raise SystemExit(f"payouts differ from the recount of the generated lines: {wrong}")
    again, _ = run_ours(factory, program_id, out, commit=True)
    if again != 0:
        raise SystemExit(f"a second run for the same period created {again} payouts (expected 0)")
    print(f"checked: {made} payouts = the recount; a re-run created {again}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    # In-between sizes, to see how the times grow (e.g. --partners 20000 --lines 2000000).
    parser.add_argument("--partners", type=int, help="overrides the size's partner count")
    parser.add_argument("--lines", type=int, help="overrides the size's line count")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the untimed first round (full size)")
    args = parser.parse_args()
    n_partners = args.partners or SIZES[args.size][0]
    n_lines = args.lines or SIZES[args.size][1]
    with fresh_database(args.db) as url, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        t0 = time.perf_counter()
        program_id, expected = make_world(factory, n_partners, n_lines)
        if args.db == "postgresql":
            # Statistics for the planner, as autovacuum gathers them within a minute of a bulk load. This
            # machine's server runs with autovacuum off: without them the first full-size run planned 10M
            # lines as one row and was still in its first query after 45 minutes.
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        print(f"setup: {n_partners} partners, {n_lines} lines in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ours, raw = alternate(
            args.repeat,
            lambda: run_ours(factory, program_id, out),
            lambda: run_raw(engine, program_id, out),
            warm_up=not args.no_warm_up,
        )
        if {n for n, _ in ours} != {len(expected)} or {n for n, _ in raw} != {len(expected)}:
            raise SystemExit(f"payout counts differ: ours {ours}, raw {raw}, expected {len(expected)}")
        check(factory, program_id, expected, out)
        engine.dispose()
    our_time = sorted(t for _, t in ours)[len(ours) // 2]
    raw_time = sorted(t for _, t in raw)[len(raw) // 2]
    print(f"ours {our_time:.3f} s, raw {raw_time:.3f} s for {len(expected)} payouts", file=sys.stderr)
    # A duration: ours and limit are printed as seconds, the ratio is limit/ours (higher is better).
    print(
        f"RESULT bench=period_close db={args.db} ours={our_time:.2f}s limit={raw_time:.2f}s "
        f"ratio={raw_time / our_time:.2f} target={TARGETS[args.db]:.2f}"
    )


if __name__ == "__main__":
    main()
