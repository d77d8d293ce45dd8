"""The webhook secret cache (integrations/secret_cache.py): an entry in use is read again before it expires,
so a busy endpoint never finds it cold; a change forgotten meanwhile is never undone by that read."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import make_session_factory, unit_of_work
from partnerpay.integrations.secret_cache import REFRESH_SHARE, SecretCache
from partnerpay.integrations.settings_store import put_integration
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.programs.service import create_program

BOX = SecretBox("test-secret-key-" + "k" * 32)
TTL = 0.6


def _program(session_factory: sessionmaker[Session], clock: FixedClock, secret: str) -> str:
    with unit_of_work(session_factory) as s:
        program = create_program(s, actor=SYSTEM, name="Acme", currency="EUR", hold_days=0, now=clock.now())
        _set(s, program.id, secret, clock)
        return program.id


def _set(session: Session, program_id: str, secret: str, clock: FixedClock) -> None:
    body = {"webhook_secrets": [secret]}
    put_integration(
        session, actor=SYSTEM, box=BOX, program_id=program_id, provider="stripe", body=body, now=clock.now()
    )


def _secrets(cache: SecretCache, program_id: str) -> list[str] | None:
    known = cache.get(program_id, "stripe")
    return None if known is None else [s.secret for s in known.secrets]


def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_entry_used_near_its_expiry_is_read_again_and_never_goes_cold(
    session_factory: sessionmaker[Session], engine: Any, clock: FixedClock
) -> None:
    program_id = _program(session_factory, clock, "whsec_one")
    cache = SecretCache(TTL, readers=make_session_factory(engine, readonly=True), box=BOX)
    with session_factory() as s:
        cache.load(s, BOX, program_id, "stripe")
    with unit_of_work(session_factory) as s:  # changed as another process would: no forget() here
        _set(s, program_id, "whsec_two", clock)
    assert _secrets(cache, program_id) == ["whsec_one"]  # young: served as cached, nothing read
    time.sleep(TTL * (1 - REFRESH_SHARE) + 0.05)
    assert _secrets(cache, program_id) == ["whsec_one"]  # still valid, and its use starts a read
    _wait_for(lambda: _secrets(cache, program_id) == ["whsec_two"])
    time.sleep(TTL * (1 - REFRESH_SHARE))
    assert _secrets(cache, program_id) == ["whsec_two"]  # past the first entry's expiry: still warm


def test_a_secret_forgotten_during_a_background_read_does_not_come_back(
    session_factory: sessionmaker[Session], engine: Any, clock: FixedClock
) -> None:
    program_id = _program(session_factory, clock, "whsec_one")
    readers = make_session_factory(engine, readonly=True)
    reading, release = threading.Event(), threading.Event()

    @event.listens_for(readers, "after_begin")
    def _hold(*_: Any) -> None:
        if threading.current_thread().name == "secret-refresh":
            reading.set()
            release.wait(5)

    cache = SecretCache(TTL, readers=readers, box=BOX)
    with session_factory() as s:
        cache.load(s, BOX, program_id, "stripe")
    time.sleep(TTL * (1 - REFRESH_SHARE) + 0.05)
    assert _secrets(cache, program_id) == ["whsec_one"]
    assert reading.wait(5)
    cache.forget(program_id, "stripe")  # a PUT in this process, while the refresh reads the old row
    release.set()
    time.sleep(0.2)
    assert cache.get(program_id, "stripe") is None


def test_without_a_reader_an_entry_simply_expires_and_an_unknown_program_is_never_kept(
    session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    program_id = _program(session_factory, clock, "whsec_one")
    cache = SecretCache(0.2)
    with session_factory() as s:
        cache.load(s, BOX, program_id, "stripe")
        assert _secrets(cache, program_id) == ["whsec_one"]
        with pytest.raises(NotFound):
            cache.load(s, BOX, "prg_missing", "stripe")
    assert cache.get("prg_missing", "stripe") is None
    time.sleep(0.25)
    assert cache.get(program_id, "stripe") is None
