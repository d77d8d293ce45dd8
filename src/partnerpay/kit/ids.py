"""Opaque, type-prefixed, time-sortable ids (ULID layout) so cursors can page by id."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case

PREFIXES = frozenset(
    {
        "prg",
        "ptn",
        "grp",
        "lnk",
        "cus",
        "evt",
        "pln",
        "com",
        "apr",
        "run",
        "bat",
        "pay",
        "lead",
        "deal",
        "dsp",
        "msg",
        "usr",
        "key",
        "pu",
        "job",
        "ltx",
        "acc",
        "aud",
        "ntf",
    }
)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """prefix_ + 10 chars of millisecond time + 16 random chars: sortable, unguessable."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(rand, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_")
