"""The click buffer on a real database: flushed by count, by time, at close, and kept across a failed write."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.ids import new_id
from partnerpay.programs.models import Program
from partnerpay.tracking.click_buffer import ClickRow, ClickWriter
from partnerpay.tracking.click_ids import ClickIds
from partnerpay.tracking.clicks import IpHasher, country, find_click, ua_class
from partnerpay.tracking.models import Click


def _row(clock: FixedClock, program_id: str | None = None) -> ClickRow:
    return (new_id("clk"), program_id, None, None, "nobody", clock.now(), None, "other", None, None, "/")


def _count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Click)) or 0)


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def writers(session_factory: sessionmaker[Session]) -> Iterator[Callable[..., ClickWriter]]:
    made: list[ClickWriter] = []

    def make(**kw: int) -> ClickWriter:
        writer = ClickWriter(session_factory, **kw).start()
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=5)


class TestClickWriter:
    def test_a_full_batch_is_written_without_waiting_for_the_interval(
        self, writers: Callable[..., ClickWriter], session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        writer = writers(batch_size=3, interval_ms=60_000)
        for _ in range(3):
            writer.add(_row(clock))
        assert _eventually(lambda: _count(session_factory) == 3)
        writer.add(_row(clock))
        time.sleep(0.3)
        assert _count(session_factory) == 3 and writer.waiting() == 1

    def test_a_partial_batch_is_written_after_the_interval(
        self, writers: Callable[..., ClickWriter], session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        writer = writers(batch_size=1000, interval_ms=100)
        writer.add(_row(clock))
        assert _count(session_factory) == 0
        assert _eventually(lambda: _count(session_factory) == 1, seconds=3)

    def test_closing_writes_what_is_left(self, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
        writer = ClickWriter(session_factory, batch_size=1000, interval_ms=60_000).start()
        rows = [_row(clock) for _ in range(7)]
        for row in rows:
            writer.add(row)
        writer.close()
        assert _count(session_factory) == 7
        with session_factory() as s:
            assert find_click(s, rows[3][0]) is not None

    def test_a_failed_write_keeps_the_clicks_and_retries_until_it_succeeds(
        self, writers: Callable[..., ClickWriter], session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        writer = writers(batch_size=1000, interval_ms=20, max_backoff=0.2)
        # A real failure: the click names a program that does not exist yet (foreign key).
        stuck = _row(clock, program_id="prg_later")
        writer.add(stuck)
        assert _eventually(lambda: writer.failures >= 4, seconds=20)
        assert _count(session_factory) == 0 and writer.pending(stuck[0]) == stuck
        with unit_of_work(session_factory) as s:
            s.add(Program(id="prg_later", name="Later", currency="EUR", hold_days=0, created_at=clock.now()))
        assert _eventually(lambda: _count(session_factory) == 1, seconds=10)
        assert writer.pending(stuck[0]) is None and writer.refused == 0

    def test_a_row_the_database_always_refuses_does_not_block_the_others(
        self, writers: Callable[..., ClickWriter], session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        writer = writers(batch_size=1000, interval_ms=20, max_backoff=0.2)
        writer.add(_row(clock, program_id="prg_never"))
        good = [_row(clock) for _ in range(3)]
        for row in good:
            writer.add(row)
        assert _eventually(lambda: _count(session_factory) == 3, seconds=20)
        assert writer.refused == 1 and writer.waiting() == 0

    def test_a_writer_started_by_its_first_click_still_writes(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        writer = ClickWriter(session_factory, batch_size=1000, interval_ms=20)
        writer.add(_row(clock))
        assert _eventually(lambda: _count(session_factory) == 1)
        writer.close()


class TestClickIds:
    def test_ids_have_the_kit_layout_are_unique_and_sort_by_time(self) -> None:
        ids = ClickIds()
        first = [ids() for _ in range(5000)]
        time.sleep(0.002)
        later = ids()
        assert len(set(first)) == 5000 and all(re.fullmatch(r"clk_[0-9a-hjkmnp-tv-z]{26}", i) for i in first)
        assert all(i[:14] <= later[:14] for i in first) and later > max(first)
        assert len(first[0]) == len(new_id("clk"))

    def test_the_time_part_is_the_millisecond_the_id_was_made_across_32_ms_spans(self) -> None:
        alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
        ids = ClickIds()
        made: list[tuple[int, str, int]] = []
        for _ in range(40):  # over 80 ms: several changes of the cached first 9 characters
            before = time.time_ns() // 1_000_000
            made.append((before, ids(), time.time_ns() // 1_000_000))
            time.sleep(0.002)
        for before, click_id, after in made:
            millis = 0
            for char in click_id[4:14]:
                millis = millis * 32 + alphabet.index(char)
            assert before <= millis <= after

    def test_the_random_part_uses_the_whole_alphabet_evenly(self) -> None:
        ids = ClickIds()
        chars = "".join(ids()[14:] for _ in range(10_000))
        counts = [chars.count(c) for c in "0123456789abcdefghjkmnpqrstvwxyz"]
        assert len(chars) == 160_000 and min(counts) > 4_000 and max(counts) < 6_000  # 5,000 each expected


class TestVisitorFacts:
    def test_the_address_hash_is_keyed_and_stable(self) -> None:
        one, other = IpHasher("a" * 40), IpHasher("b" * 40)
        assert one("203.0.113.9") == one("203.0.113.9") != other("203.0.113.9")
        assert one("203.0.113.9") != one("203.0.113.10") and one(None) is None
        assert "203.0.113.9" not in (one("203.0.113.9") or "")

    @pytest.mark.parametrize(
        ("agent", "expected"),
        [
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36", "mobile"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15", "desktop"),
            ("facebookexternalhit/1.1", "bot"),
            ("curl/8.5.0", "bot"),
            ("", "other"),
            (None, "other"),
        ],
    )
    def test_user_agents_fall_in_four_classes(self, agent: str | None, expected: str) -> None:
        assert ua_class(agent) == expected

    @pytest.mark.parametrize(
        ("value", "expected"), [("de", "DE"), (" US ", "US"), ("XX", None), ("D1", None), ("", None)]
    )
    def test_country_is_two_letters_or_nothing(self, value: str, expected: str | None) -> None:
        assert country(value) == expected


class TestClickIndexes:
    def test_the_fraud_sweep_reads_clicks_by_program_and_time_not_the_whole_table(self, session: Session) -> None:
        # Clicks keep only the indexes a query uses (each one costs every click written); the sweep's
        # burst query must still find its hour of clicks through ix_clicks_program_at.
        bind = session.get_bind()
        query = (
            "SELECT partner_id, ip_hash, count(*), max(id) FROM clicks WHERE program_id = 'prg_x' "
            "AND partner_id IS NOT NULL AND ip_hash IS NOT NULL AND at > '2026-01-01' AND at <= '2026-01-02' "
            "GROUP BY partner_id, ip_hash"
        )
        if bind.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + query)))
        else:
            session.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table would be scanned otherwise
            plan = " ".join(str(row[0]) for row in session.execute(text("EXPLAIN " + query)))
        assert "ix_clicks_program_at" in plan
        indexes = {ix["name"] for ix in inspect(session.connection()).get_indexes("clicks")}
        assert indexes == {"ix_clicks_partner_at", "ix_clicks_program_at"}
