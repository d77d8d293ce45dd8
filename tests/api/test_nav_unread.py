"""The unread count on "Messages" in the console and portal navigation: shown when there is something to read,
counted per thread for the viewer's side, gone once read, never another partner's, one COUNT per page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.api.test_messages_pages import portal, staff, start, world  # noqa: F401  (world is a fixture)
from tests.api.test_pages import World, csrf_of

BADGE = re.compile(r'>Messages <span class="nav-count" id="nav-unread">(\d+)<span class="visually-hidden"> unread')


def badge(client: TestClient, path: str) -> int | None:
    """The number on the navigation's Messages link, or None when no badge is drawn."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = BADGE.findall(page.text)
    assert len(found) <= 1 and page.text.count('id="nav-unread"') == len(found)
    return int(found[0]) if found else None


def write_to(w: World, partner_id: str, subject: str) -> str:
    console = staff(w)
    data = {"partner_id": partner_id, "subject": subject, "body": "hello", "csrf_token": csrf_of(console, "/messages")}
    sent = console.post("/messages", data=data, follow_redirects=False)
    assert sent.status_code == 303
    return str(sent.headers["location"]).rsplit("/", 1)[-1]


@contextmanager
def thread_counts(w: World) -> Iterator[list[str]]:
    """The statements that read message_threads while the block runs."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "message_threads" in statement:
            seen.append(statement)

    engine = w.app.state.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


class TestConsole:
    def test_staff_see_threads_with_unread_partner_messages_until_they_read_them(self, world: World) -> None:  # noqa: F811
        console = staff(world)
        assert badge(console, "/partners") is None
        acme = portal(world)
        first = start(acme, "One", "a")
        start(acme, "Two", "b")
        start(portal(world, "beta"), "Three", "c")
        assert badge(console, "/partners") == 3
        acme.post(f"/portal/messages/{first}", data={"body": "more", "csrf_token": csrf_of(acme, "/portal/messages")})
        assert badge(console, "/commissions") == 3  # threads, not messages
        console.get(f"/messages/{first}")
        assert badge(console, "/messages") == 2
        write_to(world, world.acme_id, "Ours")  # the team's own message is nothing for the team to read
        assert badge(console, "/") == 2
        for thread_id in re.findall(r"/messages/(thr_\w+)", console.get("/messages?unread=1").text):
            console.get(f"/messages/{thread_id}")
        assert badge(console, "/partners") is None


class TestPortal:
    def test_a_partner_counts_only_its_own_unread_threads(self, world: World) -> None:  # noqa: F811
        acme, beta = portal(world), portal(world, "beta")
        assert badge(acme, "/portal") is None
        mine = [write_to(world, world.acme_id, f"Acme {i}") for i in range(2)]
        for i in range(3):
            write_to(world, world.beta_id, f"Beta {i}")
        assert badge(acme, "/portal/links") == 2 and badge(beta, "/portal/links") == 3
        start(acme, "From me", "a partner's own message is nothing for it to read")
        assert badge(acme, "/portal") == 2
        acme.get(f"/portal/messages/{mine[0]}")
        assert badge(acme, "/portal/messages") == 1 and badge(beta, "/portal") == 3
        acme.get(f"/portal/messages/{mine[1]}")
        assert badge(acme, "/portal/payouts") is None and badge(beta, "/portal") == 3


class TestCost:
    def test_one_count_per_page_and_none_for_a_fragment(self, world: World) -> None:  # noqa: F811
        start(portal(world), "One", "a")
        console, acme = staff(world), portal(world)
        with thread_counts(world) as seen:
            assert badge(console, "/commissions") == 1
        assert len(seen) == 1 and "count" in seen[0].lower()
        with thread_counts(world) as seen:
            assert badge(acme, "/portal/links") is None
        assert len(seen) == 1 and "partner_id" in seen[0]
        with thread_counts(world) as seen:
            fragment = console.get(f"/partners/{world.acme_id}/statements", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "nav-unread" not in fragment.text and seen == []
