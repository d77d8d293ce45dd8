"""Reading an uploaded file no further than its limit: the one size check every upload goes through."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO


def read_at_most(stream: IO[bytes], limit: int, refuse: Callable[[], Exception]) -> bytes:
    """The stream's bytes, or `refuse()` raised as soon as it is known to hold more than `limit`.

    One byte past the limit is read to tell "exactly the limit" from "over it", never the whole file.
    """
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise refuse()
    return data
