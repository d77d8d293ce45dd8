"""kit/gc_batch.py: a batch changes the collector's settings only while it runs, however batches nest or end."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

from partnerpay.kit.gc_batch import BATCH_THRESHOLD, batch_collection


def batch_generator(n: int) -> Iterator[int]:
    with batch_collection():
        yield from range(n)


def test_a_batch_raises_the_threshold_and_freezes_then_puts_both_back() -> None:
    before = gc.get_threshold()
    with batch_collection():
        assert gc.get_threshold()[0] == max(before[0], BATCH_THRESHOLD)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_nested_and_overlapping_batches_restore_only_when_the_last_ends() -> None:
    before = gc.get_threshold()
    a, b = batch_generator(3), batch_generator(3)
    next(a)
    next(b)
    assert gc.get_threshold() != before
    list(a)  # a ends first, b is still running
    assert gc.get_threshold()[0] == max(before[0], BATCH_THRESHOLD)
    b.close()  # abandoned half-way: closing it ends its batch
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_inside_a_batch_still_restores() -> None:
    before = gc.get_threshold()
    try:
        with batch_collection():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


def test_batches_in_threads_share_one_setting() -> None:
    before = gc.get_threshold()
    inside, release = threading.Barrier(4), threading.Event()

    def work() -> None:
        with batch_collection():
            inside.wait()
            release.wait(5)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    inside.wait()
    assert gc.get_threshold()[0] == max(before[0], BATCH_THRESHOLD)
    release.set()
    for t in threads:
        t.join()
    assert gc.get_threshold() == before
