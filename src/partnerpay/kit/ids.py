"""Opaque, type-prefixed, time-sortable ids (ULID layout) so cursors can page by id."""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())

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
        "pm",  # payout method
        "tax",  # tax profile
        "act",  # partner activity (timeline)
        "note",  # staff note on a partner
        "prs",  # recruitment prospect
        "inv",  # portal invitation (welcome, invitation, reset)
        "trm",  # program terms version
        "tac",  # terms acceptance
        "imp",  # partner CSV import
        "clk",  # referral click
        "cpn",  # coupon
        "att",  # attribution decision
        "flg",  # fraud flag
        "upd",  # "ask for an update" request on a lead or deal
        "dact",  # lead/deal timeline line
        "inb",  # inbox item (a raw incoming fact)
        "itg",  # a program's provider integration
        "fxr",  # recorded currency rate
        "plv",  # commission plan version
        "pla",  # commission plan assignment
        "fund",  # a program's funding account (payouts/funding.py)
        "pfl",  # a stored payout file (payouts/files.py)
        "cal",  # a user's calendar feed URL (calendars/service.py)
        "gce",  # an item mirrored as a Google Calendar event (calendars/google_sync.py)
        "whs",  # outgoing webhook subscription (webhooks_out/)
        "whe",  # outgoing webhook event (its id is the Partnerpay-Event-Id header)
        "whd",  # one delivery of an outgoing webhook event to one subscription
        "alr",  # alert rule (alerts/)
        "alt",  # raised alert
        "file",  # an uploaded attachment (messaging/attachments.py; "att" is the attribution decision)
        "thr",  # a message thread (messaging/threads.py)
        "ann",  # an announcement to partners (messaging/announcements.py)
        "tpl",  # a program's notification template (messaging/templates.py)
    }
)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


# Every two-character pair of the alphabet, by its 10-bit value: an id is a few look-ups, not 26 divisions.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]

# The last millisecond encoded and its text: ids made in bursts (a replay's lines) share the clock's text.
_last_millis: tuple[int, str] = (-1, "")


def _millis_text(millis: int) -> str:
    global _last_millis
    last = _last_millis  # one read: another thread may replace the pair, never tear it
    if last[0] != millis:
        p = _PAIRS  # 50 bits, as _encode(millis, 10) writes them
        text = p[(millis >> 40) & 1023] + p[(millis >> 30) & 1023] + p[(millis >> 20) & 1023]
        last = _last_millis = (millis, text + p[(millis >> 10) & 1023] + p[millis & 1023])
    return last[1]


def _random_text() -> str:
    """16 characters of 80 random bits: what _encode(bits, 16) writes, at a third of its cost."""
    r = int.from_bytes(os.urandom(10), "big")
    p = _PAIRS
    return "".join(
        (p[r >> 70], p[(r >> 60) & 1023], p[(r >> 50) & 1023], p[(r >> 40) & 1023],
         p[(r >> 30) & 1023], p[(r >> 20) & 1023], p[(r >> 10) & 1023], p[r & 1023])
    )  # fmt: skip


def new_id(prefix: str) -> str:
    """prefix_ + 10 chars of millisecond time + 16 random chars: sortable, unguessable.

    An evaluated commission line and its ledger entry take one each, so the clock's text is shared by the
    ids of one millisecond and the random part is encoded by table."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{_millis_text(time.time_ns() // 1_000_000)}{_random_text()}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids at once for bulk writes: new_id's layout, one clock read, one random draw."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    head = f"{prefix}_{_millis_text(time.time_ns() // 1_000_000)}"
    # 10 random bytes are exactly 16 base32 characters, so one encoding of all of them serves every id.
    text = base64.b32encode(os.urandom(10 * count)).translate(_FROM_RFC4648).decode()
    return [head + text[i : i + 16] for i in range(0, 16 * count, 16)]


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_")
