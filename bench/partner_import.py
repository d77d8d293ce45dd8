"""Partner CSV import: partnerpay's import against csv.reader + a raw insert of the same partner rows.

ours:  import_partners on a CSV file on disk, one transaction: read, decode, parse, check every cell,
       duplicates in the file and against the program, groups and owners, then write the import row,
       the partners (each naming the import and its line) and one hash-chained audit row for the import
       (file and partner digests).
limit: the same file through csv.reader, and the identical partner rows (ids, referral codes, group
       and owner ids, and an import row, made before the clock starts) written by sqlite3 executemany /
       PostgreSQL COPY in one transaction: no checks, no audit.
Then a file with one bad row at line 40,000 must write nothing and name that row.
"""

from __future__ import annotations

import argparse
import csv
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from common import alternate, fresh_database, median_rate, result_line
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.db.engine import SQLITE_CACHE_KIB, make_engine, make_session_factory, unit_of_work
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.partners.groups import create_group
from partnerpay.partners.import_csv import ImportRejected
from partnerpay.partners.importer import import_partners
from partnerpay.partners.models import Partner, PartnerImport
from partnerpay.partners.service import referral_codes_for
from partnerpay.programs.service import create_program

SIZES = {"ci": 10_000, "full": 50_000}
BAD_LINE = 40_000
TARGETS = {"sqlite": 0.4, "postgresql": 0.4}
NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = ["name", "email", "group", "country", "company", "website", "owner_email"]
GROUPS = ["EMEA resellers", "Pilot Q1"]
OWNERS = ["ana@staff.example", "ben@staff.example"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "SE", "PL"]
COLUMNS = (
    "id, program_id, name, email, referral_code, status, group_id, country, created_at, company, website, "
    "owner_id, source, import_id, import_row"
)


def write_file(path: Path, rows: int, bad_line: int | None = None) -> Path:
    """A realistic partner file; with bad_line, that line's email is broken."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            email = f"partner{i}@agency{i % 997}.example"
            if bad_line is not None and i + 2 == bad_line:
                email = "partner-at-nowhere"
            writer.writerow(
                [
                    f"Partner {i} Media",
                    email,
                    GROUPS[i % 2] if i % 3 == 0 else "",
                    COUNTRIES[i % len(COUNTRIES)],
                    f"Agency {i} GmbH" if i % 2 else "",
                    f"https://partner{i}.example.com" if i % 4 else "",
                    OWNERS[i % 2] if i % 5 == 0 else "",
                ]
            )
    return path


def new_program(factory: sessionmaker[Session], n: int) -> tuple[str, dict[str, str]]:
    """A fresh program (each run imports the same emails) with the file's groups: (id, group name → id)."""
    with factory() as session:
        program = create_program(session, actor=SYSTEM, name=f"Bench {n}", currency="EUR", hold_days=0, now=NOW)
        groups = {
            name: create_group(session, actor=SYSTEM, program_id=program.id, name=name, now=NOW).id for name in GROUPS
        }
        session.commit()
        return program.id, groups


def run_ours(factory: sessionmaker[Session], path: Path, n: int, counter: list[int]) -> tuple[int, float]:
    counter[0] += 1
    program_id, _ = new_program(factory, counter[0])
    start = time.perf_counter()
    with unit_of_work(factory) as session:
        report = import_partners(
            session, actor=SYSTEM, program_id=program_id, data=path.read_bytes(), filename=path.name, now=NOW
        )
    elapsed = time.perf_counter() - start
    assert report.created == n, report
    return n, elapsed


def run_raw(
    factory: sessionmaker[Session], url: str, db: str, path: Path, n: int, owners: dict[str, str], counter: list[int]
) -> tuple[int, float]:
    counter[0] += 1
    program_id, groups = new_program(factory, counter[0])
    # What partnerpay derives per row (ids, codes, group and owner ids) is ready before the clock starts.
    ids = new_ids("ptn", n)
    codes = referral_codes_for([f"Partner {i} Media" for i in range(n)])
    import_id = new_id("imp")
    with factory() as session:
        session.add(
            PartnerImport(
                id=import_id, program_id=program_id, filename=path.name, rows=n, file_sha256="0" * 64,
                created_by=SYSTEM.id, created_by_label="bench", created_at=NOW,
            )
        )  # fmt: skip
        session.commit()
    if db == "sqlite":
        import sqlite3

        stamp: object = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        # The same connection settings partnerpay's engine uses, so only the work differs.
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", f"cache_size=-{SQLITE_CACHE_KIB}"):
            conn.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        rows = _rows(path, ids, codes, program_id, groups, owners, stamp, import_id)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO partners ({COLUMNS}) VALUES ({', '.join('?' * 15)})", rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return n, elapsed
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        start = time.perf_counter()
        rows = _rows(path, ids, codes, program_id, groups, owners, NOW, import_id)
        with pg.cursor() as cur, cur.copy(f"COPY partners ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        pg.commit()
        return n, time.perf_counter() - start


def _rows(
    path: Path,
    ids: list[str],
    codes: list[str],
    program_id: str,
    groups: dict[str, str],
    owners: dict[str, str],
    stamp: object,
    import_id: str,
) -> list[tuple[object, ...]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [
            (pid, program_id, name, email, code, "active", groups.get(group), country or None, stamp,
             company or None, website or None, owners.get(owner), "import", import_id, line)
            for line, pid, code, (name, email, group, country, company, website, owner)
            in zip(range(2, len(ids) + 2), ids, codes, reader, strict=True)
        ]  # fmt: skip


def check_bad_row(factory: sessionmaker[Session], directory: Path, n: int) -> str:
    """One bad row at line 40,000 rejects the whole file, names that row, and writes no partner."""
    path = write_file(directory / "bad.csv", max(n, BAD_LINE), bad_line=BAD_LINE)
    program_id, _ = new_program(factory, 0)
    rejected: ImportRejected | None = None
    try:
        with unit_of_work(factory) as session:
            import_partners(
                session, actor=SYSTEM, program_id=program_id, data=path.read_bytes(), filename=path.name, now=NOW
            )
    except ImportRejected as exc:
        rejected = exc
    if rejected is None:
        raise SystemExit("a file with a bad row at line 40,000 was imported")
    errors = rejected.report.errors
    if rejected.report.error_count != 1 or (errors[0].row, errors[0].column) != (BAD_LINE, "email"):
        raise SystemExit(f"the bad row was not named alone: {errors[:3]}")
    with factory() as session:
        written = session.scalar(select(func.count()).select_from(Partner).where(Partner.program_id == program_id))
    if written:
        raise SystemExit(f"a rejected file wrote {written} partners")
    return str(errors[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--db", choices=sorted(TARGETS), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = SIZES[args.size]
    with fresh_database(args.db) as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            owners = {
                email: create_staff_user(
                    session, actor=SYSTEM, email=email, role="manager", password=secrets.token_urlsafe(), now=NOW
                ).id
                for email in OWNERS
            }
            session.commit()
        path = write_file(Path(tmp) / "partners.csv", n)
        counter = [0]
        ours_run: Callable[[], tuple[int, float]] = lambda: run_ours(factory, path, n, counter)  # noqa: E731
        ours, raw = alternate(args.repeat, ours_run, lambda: run_raw(factory, url, args.db, path, n, owners, counter))
        named = check_bad_row(factory, Path(tmp), n)
        engine.dispose()
    print(f"bad row check ({max(n, BAD_LINE):,} rows): rejected, nothing written; {named}")
    print(result_line("partner_import", args.db, median_rate(ours), median_rate(raw), TARGETS[args.db]))


if __name__ == "__main__":
    main()
