"""Long id lists looked up in slices, one bounded `IN (...)` list per statement.

SQLite refuses a statement with more bound parameters than its limit (999 before 3.32, 32,766 since) and a
very long IN list plans slowly on PostgreSQL, so a look-up of thousands of ids is made a slice at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_LIST_SIZE = 500  # ids per statement: far under SQLite's oldest limit, with room for the query's own binds


def in_chunks(values: Sequence[T], size: int = IN_LIST_SIZE) -> Iterator[list[T]]:
    """Consecutive slices of `values` in order, each at most `size` long; none for an empty list."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one value, not {size}")
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
