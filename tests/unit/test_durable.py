"""The Flusher (inbox/durable.py) with SQLite's WalFile: a batch is settled only after a flush of the WAL
file that began after the batch was handed over, one flush covers every batch waiting, and a failed flush
refuses what it covered and everything after it."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from partnerpay.inbox.durable import Flusher, NotDurable
from partnerpay.inbox.sqlite_wal import WalFile, wal_path


class Recorder:
    """The order of hand-overs, flush starts and settlements, as one list of events."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, slow_flush: float = 0.0) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.settled = threading.Semaphore(0)
        real = os.fdatasync

        def flush(fd: int) -> None:
            with self.lock:
                self.events.append(("flush", fd))
            time.sleep(slow_flush)  # batches handed over meanwhile wait for the next flush
            real(fd)

        monkeypatch.setattr(os, "fdatasync", flush)  # what WalSync calls

    def handed(self, sync: Flusher, batch: str) -> None:
        with self.lock:
            self.events.append(("handed", batch))
        sync.after_flush(batch, [f"{batch}-outcome"])

    def settle(self, batch: Any, outcomes: list[Any]) -> None:
        with self.lock:
            self.events.append(("settled", (batch, outcomes)))
        self.settled.release()

    def wait(self, n: int) -> None:
        for _ in range(n):
            assert self.settled.acquire(timeout=5), "a batch was never settled"


def test_each_batch_is_settled_after_a_flush_that_began_after_it_was_handed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = tmp_path / "app.db-wal"
    wal.write_bytes(b"frames")
    recorder = Recorder(monkeypatch, slow_flush=0.02)
    sync = _flusher(wal, recorder.settle)
    batches = [f"b{n}" for n in range(12)]
    for batch in batches:
        recorder.handed(sync, batch)
        time.sleep(0.005)  # some arrive while a flush is running, some between flushes
    recorder.wait(len(batches))
    sync.stop()
    events = recorder.events
    for batch in batches:
        handed = events.index(("handed", batch))
        settled = events.index(("settled", (batch, [f"{batch}-outcome"])))
        assert any(kind == "flush" for kind, _ in events[handed:settled]), f"{batch} settled before its flush"
    flushes = sum(1 for kind, _ in events if kind == "flush")
    assert 1 <= flushes < len(batches)  # batches waiting together share one flush
    assert sync.failed is None


def test_stop_flushes_and_settles_what_is_still_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal = tmp_path / "app.db-wal"
    wal.write_bytes(b"frames")
    recorder = Recorder(monkeypatch, slow_flush=0.05)
    sync = _flusher(wal, recorder.settle)
    for batch in ("a", "b", "c"):
        recorder.handed(sync, batch)
    sync.stop()
    assert [e for e in recorder.events if e[0] == "settled"] == [
        ("settled", (b, [f"{b}-outcome"])) for b in ("a", "b", "c")
    ]


def test_a_failed_flush_refuses_every_delivery_it_covered_and_marks_the_sync_failed(tmp_path: Path) -> None:
    settled: list[list[Any]] = []
    done = threading.Event()

    def settle(_batch: Any, outcomes: list[Any]) -> None:
        settled.append(outcomes)
        done.set()

    sync = _flusher(tmp_path / "gone" / "app.db-wal", settle)  # a WAL that cannot be opened: OSError
    failure = ValueError("this delivery failed on its own")
    sync.after_flush("batch", ["stored", failure])
    assert done.wait(5)
    done.clear()
    assert isinstance(sync.failed, OSError)
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "app.db-wal").write_bytes(b"frames")  # the file is back: still nothing vouched for
    sync.after_flush("later", ["stored"])
    assert done.wait(5)
    sync.stop()
    first, later = settled
    assert isinstance(first[0], NotDurable) and first[0].status == 503
    assert "flushed" in first[0].message
    assert first[1] is failure  # its own error is kept
    assert isinstance(later[0], NotDurable)


def test_wal_path_names_the_main_databases_wal_and_none_in_memory_or_without_wal(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "app.db")) as raw:
        assert wal_path(raw) is None  # a rollback journal: its commits keep flushing themselves
        raw.execute("PRAGMA journal_mode=WAL")
        assert wal_path(raw) == f"{tmp_path / 'app.db'}-wal"
    with closing(sqlite3.connect(":memory:")) as raw:
        assert wal_path(raw) is None


def _flusher(path: Path, settle: Any) -> Flusher:
    wal = WalFile(str(path))
    return Flusher(wal.flush, settle, close=wal.close)
