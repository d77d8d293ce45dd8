"""Many simultaneous deliveries for the webhook tests: the threads start together behind a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(post: Callable[[], Any], times: int = 16) -> list[Any]:
    """Call `post` from `times` threads released at the same moment; every answer, in no order."""
    gate = threading.Barrier(times)
    results: list[Any] = []

    def run() -> None:
        gate.wait()
        results.append(post())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
