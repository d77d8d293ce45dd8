"""kit/queues.take_waiting: a group is what is queued now, up to a limit, and a stop ends it."""

from __future__ import annotations

import queue

from partnerpay.kit.queues import take_waiting


def _queue(*items: int | None) -> queue.SimpleQueue[int | None]:
    q: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    for item in items:
        q.put(item)
    return q


def test_takes_what_is_queued_without_waiting_for_more() -> None:
    q = _queue(2, 3)
    assert take_waiting(q, 1) == ([1, 2, 3], False)
    assert q.empty()


def test_stops_at_the_limit_and_leaves_the_rest_queued() -> None:
    q = _queue(2, 3, 4)
    assert take_waiting(q, 1, 2) == ([1, 2], False)
    assert take_waiting(q, q.get(), 2) == ([3, 4], False)  # type: ignore[arg-type]


def test_a_stop_ends_the_group_and_what_follows_it_stays_queued() -> None:
    q = _queue(2, None, 5)
    assert take_waiting(q, 1) == ([1, 2], True)
    assert q.get() == 5
