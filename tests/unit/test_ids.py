"""Ids keep their layout: prefix, 10 characters of the millisecond clock, 16 of 80 random bits."""

from __future__ import annotations

import os
import time

import pytest

from partnerpay.kit.ids import _encode, new_id, new_ids


def test_an_id_is_its_prefix_the_clock_and_the_random_bits_in_crockford_base32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn = [bytes(range(10)), b"\xff" * 10, b"\x00" * 10, bytes.fromhex("0123456789abcdef0123")]
    for raw in drawn:
        monkeypatch.setattr(os, "urandom", lambda n, raw=raw: raw)
        monkeypatch.setattr(time, "time_ns", lambda: 1_767_225_600_123_456_789)
        made = new_id("com")
        assert made == f"com_{_encode(1_767_225_600_123, 10)}{_encode(int.from_bytes(raw, 'big'), 16)}"


def test_ids_sort_by_time_and_do_not_repeat() -> None:
    before = new_id("ltx")
    time.sleep(0.002)
    after = [new_id("ltx") for _ in range(5_000)] + new_ids("ltx", 5_000)
    assert len(set(after)) == 10_000
    assert all(len(x) == 30 and x > before for x in after)
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("nope")
