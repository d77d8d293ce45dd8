"""Messages through HTTP: portal and console inboxes, XSS escaping, other partners' threads 404, CSRF, files,
announcements, templates, preferences, one-click unsubscribe and the threads API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.models import (
    MessageAttachment,
    MessageThread,
    NotificationPreference,
    NotificationTemplate,
)
from partnerpay.messaging.preferences import unsubscribe_token
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login

SECRET = "x" * 40
XSS = '<script>alert("pwned")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;"
PDF = b"%PDF-1.7\n%%EOF\n"


@pytest.fixture
def world(
    database_url: str, session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path
) -> Iterator[World]:
    """The shared pages world, served by an app whose attachments go to a temporary directory."""
    for w in test_pages.world.__wrapped__(database_url, session_factory, clock):  # type: ignore[attr-defined]
        w.app.state.engine.dispose()
        settings = Settings(
            database_url=database_url, secret_key=SECRET, in_process_worker=False, attachments_dir=str(tmp_path),
            attachment_max_bytes=1024,
        )  # fmt: skip
        w.app = create_app(settings, clock=clock)
        yield w
        w.app.state.engine.dispose()


def portal(world: World, who: str = "acme") -> TestClient:
    return login(world.client(), f"portal@{who}.example", portal=True)


def staff(world: World, role: str = "manager") -> TestClient:
    return login(world.client(), f"{role}@example.com")


def start(client: TestClient, subject: str, body: str, files: list[tuple[str, bytes, str]] | None = None) -> str:
    token = csrf_of(client, "/portal/messages")
    response = client.post(
        "/portal/messages",
        data={"subject": subject, "body": body, "csrf_token": token},
        files=[("file", f) for f in files or []] or None,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[-1]


class TestPortalInbox:
    def test_a_partner_writes_and_the_team_reads_it_escaped_on_both_sides(self, world: World) -> None:
        acme = portal(world)
        thread_id = start(acme, f"Hello {XSS}", f"Body {XSS}")
        page = acme.get(f"/portal/messages/{thread_id}")
        assert page.status_code == 200 and ESCAPED in page.text and XSS not in page.text
        assert 'href="/portal/messages" aria-current="page">Messages' in acme.get("/portal/messages").text  # nav
        console = staff(world)
        inbox = console.get("/messages?unread=1")
        assert 'href="/messages" aria-current="page">Messages' in inbox.text  # the console navigation
        assert thread_id in inbox.text and "1 new" in inbox.text and XSS not in inbox.text
        thread = console.get(f"/messages/{thread_id}")
        assert ESCAPED in thread.text and XSS not in thread.text

    def test_the_team_reply_is_unread_for_the_partner_until_opened(self, world: World) -> None:
        acme = portal(world)
        thread_id = start(acme, "Payout date", "When?")
        console = staff(world)
        token = csrf_of(console, f"/messages/{thread_id}")
        reply = console.post(f"/messages/{thread_id}", data={"body": "On the 15th", "csrf_token": token},
                             follow_redirects=False)  # fmt: skip
        assert reply.status_code == 303
        assert "1 unread conversation," in acme.get("/portal/messages").text
        assert "Read 1 new message from the team" in acme.get("/portal").text
        assert "On the 15th" in acme.get(f"/portal/messages/{thread_id}").text
        assert "0 unread conversations," in acme.get("/portal/messages").text
        assert "new message from the team" not in acme.get("/portal").text

    def test_another_partners_thread_and_files_are_404(self, world: World) -> None:
        acme = portal(world)
        thread_id = start(acme, "Private", "mine", [("proof.pdf", PDF, "application/pdf")])
        with world.factory() as s:
            att_id = s.scalars(select(MessageAttachment.attachment_id)).one()
        beta = portal(world, "beta")
        assert beta.get(f"/portal/messages/{thread_id}").status_code == 404
        assert beta.get(f"/portal/messages/{thread_id}/files/{att_id}").status_code == 404
        token = csrf_of(beta, "/portal/messages")
        sneaky = beta.post(f"/portal/messages/{thread_id}", data={"body": "hi", "csrf_token": token})
        assert sneaky.status_code == 404
        assert thread_id not in beta.get("/portal/messages").text
        own = acme.get(f"/portal/messages/{thread_id}/files/{att_id}")
        assert own.status_code == 200 and own.content == PDF
        assert own.headers["content-disposition"] == 'attachment; filename="proof.pdf"'

    def test_a_post_without_the_csrf_token_is_refused(self, world: World) -> None:
        acme = portal(world)
        response = acme.post("/portal/messages", data={"subject": "x", "body": "y"})
        assert response.status_code == 403
        with world.factory() as s:
            assert s.scalar(select(MessageThread.id)) is None

    def test_a_wrong_type_or_oversized_file_is_refused_naming_the_limit(self, world: World) -> None:
        acme = portal(world)
        token = csrf_of(acme, "/portal/messages")
        exe = acme.post("/portal/messages", data={"subject": "s", "body": "b", "csrf_token": token},
                        files=[("file", ("a.pdf", b"MZ\x90\x00", "application/pdf"))])  # fmt: skip
        assert exe.status_code == 422 and "not one of the accepted types" in exe.text
        big = acme.post("/portal/messages", data={"subject": "s", "body": "b", "csrf_token": token},
                        files=[("file", ("a.pdf", PDF + b"x" * 2000, "application/pdf"))])  # fmt: skip
        assert big.status_code == 413 and "1 KB" in big.text
        with world.factory() as s:
            assert s.scalar(select(MessageThread.id)) is None


class TestConsole:
    def test_staff_writes_from_the_partner_page_section(self, world: World) -> None:
        console = staff(world)
        assert f'hx-get="/partners/{world.acme_id}/messages"' in console.get(f"/partners/{world.acme_id}").text
        section = console.get(f"/partners/{world.acme_id}/messages", headers={"HX-Request": "true"})
        assert section.status_code == 200 and "Write to Acme Media" in section.text and "<html" not in section.text
        token = csrf_of(console, "/messages")
        sent = console.post("/messages", data={"partner_id": world.acme_id, "subject": "Welcome", "body": XSS,
                                                "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert sent.status_code == 303
        thread_id = sent.headers["location"].rsplit("/", 1)[-1]
        page = portal(world).get(f"/portal/messages/{thread_id}")
        assert ESCAPED in page.text and XSS not in page.text
        assert "Welcome" in console.get(f"/partners/{world.acme_id}/messages").text

    def test_a_viewer_cannot_write(self, world: World) -> None:
        viewer = staff(world, "viewer")
        token = csrf_of(viewer, "/messages")
        response = viewer.post("/messages", data={"partner_id": world.acme_id, "subject": "s", "body": "b",
                                                  "csrf_token": token})  # fmt: skip
        assert response.status_code == 403 and "manager, finance or owner" in response.text

    def test_an_announcement_reaches_each_partner_in_the_portal(self, world: World) -> None:
        console = staff(world)
        token = csrf_of(console, "/messages")
        sent = console.post("/messages/announcements", data={"program_id": world.program_id, "group_id": "",
                                                             "subject": "New tiers", "body": f"From May {XSS}",
                                                             "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert sent.status_code == 303
        for who in ("acme", "beta"):
            client = portal(world, who)
            inbox = client.get("/portal/messages")
            assert "New tiers" in inbox.text and "1 unread announcement." in inbox.text
            (ann_id,) = re.findall(r"/portal/messages/announcements/(ann_\w+)", inbox.text)
            page = client.get(f"/portal/messages/announcements/{ann_id}")
            assert ESCAPED in page.text and XSS not in page.text
            assert "0 unread announcements." in client.get("/portal/messages").text

    def test_a_template_with_an_unknown_placeholder_is_422_naming_it(self, world: World) -> None:
        console = staff(world)
        token = csrf_of(console, "/messages/templates")
        bad = console.post("/messages/templates/commission.approved", data={
            "program_id": world.program_id, "subject": "Paid {amount}", "body": "Hi {partner_name}",
            "csrf_token": token})  # fmt: skip
        assert bad.status_code == 422 and "unknown placeholder {partner_name} in body" in bad.text
        attack = console.post(
            "/messages/templates/commission.approved",
            data={"program_id": world.program_id, "subject": "x", "body": "{partner.__class__}", "csrf_token": token},
        )
        assert attack.status_code == 422
        good = console.post("/messages/templates/commission.approved", data={
            "program_id": world.program_id, "subject": "Approved: {amount}", "body": "Hi {partner}",
            "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert good.status_code == 303
        with world.factory() as s:
            (row,) = s.scalars(select(NotificationTemplate)).all()
            assert (row.kind, row.subject) == ("commission.approved", "Approved: {amount}")


class TestPreferencesAndUnsubscribe:
    def test_the_partner_turns_announcements_off_in_the_profile(self, world: World) -> None:
        acme = portal(world)
        assert 'href="/portal/profile/notifications"' in acme.get("/portal/profile").text
        page = acme.get("/portal/profile/notifications")
        assert page.status_code == 200 and 'value="announcement" checked' in page.text
        token = csrf_of(acme, "/portal/profile/notifications")
        saved = acme.post("/portal/profile/notifications", data={"kinds": ["message.received"], "csrf_token": token},
                          follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303
        page = acme.get("/portal/profile/notifications")
        assert 'value="announcement" checked' not in page.text and 'value="message.received" checked' in page.text

    def test_one_click_unsubscribe_needs_no_login_and_get_changes_nothing(self, world: World) -> None:
        token = unsubscribe_token(SECRET, partner_id=world.acme_id, kind="announcement")
        anonymous = world.client()
        confirm = anonymous.get(f"/unsubscribe/{token}")
        assert confirm.status_code == 200 and "Stop emails about" in confirm.text
        with world.factory() as s:
            assert s.scalar(select(NotificationPreference.kind)) is None
        done = anonymous.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        again = anonymous.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
        with world.factory() as s:
            (pref,) = s.scalars(select(NotificationPreference)).all()
            assert (pref.partner_id, pref.kind, pref.subscribed, pref.source) == (
                world.acme_id, "announcement", False, "unsubscribe_link")  # fmt: skip

    @pytest.mark.parametrize("mutate", ["tamper", "other_secret", "transactional", "garbage"])
    def test_a_forged_link_is_404(self, world: World, mutate: str) -> None:
        if mutate == "tamper":
            good = unsubscribe_token(SECRET, partner_id=world.acme_id, kind="announcement")
            other = unsubscribe_token(SECRET, partner_id=world.beta_id, kind="announcement")
            token = other.split(".")[0] + "." + good.split(".")[1]
        elif mutate == "other_secret":
            token = unsubscribe_token("y" * 40, partner_id=world.acme_id, kind="announcement")
        elif mutate == "transactional":
            token = unsubscribe_token(SECRET, partner_id=world.acme_id, kind="commission.approved")
        else:
            token = "not-a-token"
        assert world.client().post(f"/unsubscribe/{token}").status_code == 404


class TestThreadsApi:
    def headers(self, world: World) -> dict[str, str]:
        from partnerpay.auth.actor import SYSTEM
        from partnerpay.auth.service import create_api_key

        with world.factory() as s:
            _, secret = create_api_key(s, actor=SYSTEM, now=world.clock.now(), scopes=["read", "write"])
            s.commit()
        return {"Authorization": f"Bearer {secret}"}

    def test_create_list_show_and_reply(self, world: World) -> None:
        client, h = world.client(), self.headers(world)
        created = client.post("/api/v1/threads", headers=h, json={"partner_id": world.acme_id, "subject": "Hi",
                                                                  "body": XSS})  # fmt: skip
        assert created.status_code == 201, created.text
        thread = created.json()
        assert thread["id"].startswith("thr_") and thread["messages"][0]["body"] == XSS
        assert thread["partner_unread"] == 1
        listed = client.get("/api/v1/threads", headers=h, params={"partner_id": world.acme_id})
        assert [t["id"] for t in listed.json()["data"]] == [thread["id"]] and listed.json()["next_cursor"] is None
        reply = client.post(f"/api/v1/threads/{thread['id']}/messages", headers=h, json={"body": "second"})
        assert reply.status_code == 201 and reply.json()["thread_id"] == thread["id"]
        shown = client.get(f"/api/v1/threads/{thread['id']}", headers=h).json()
        assert [m["body"] for m in shown["messages"]] == [XSS, "second"]
        assert client.get("/api/v1/threads/thr_nope", headers=h).status_code == 404

    def test_bad_input_names_the_field(self, world: World) -> None:
        client, h = world.client(), self.headers(world)
        empty = client.post("/api/v1/threads", headers=h, json={"partner_id": world.acme_id, "subject": "s",
                                                                "body": "  "})  # fmt: skip
        assert empty.status_code == 422 and empty.json()["error"]["field"] == "body"
        no_partner = client.post("/api/v1/threads", headers=h, json={"subject": "s", "body": "b"})
        assert no_partner.status_code == 422 and no_partner.json()["error"]["field"] == "partner_id"

    def test_a_partner_session_sees_only_its_own_threads(self, world: World) -> None:
        client, h = world.client(), self.headers(world)
        theirs = client.post("/api/v1/threads", headers=h, json={"partner_id": world.beta_id, "subject": "Beta",
                                                                 "body": "b"}).json()  # fmt: skip
        acme = portal(world)
        assert acme.get(f"/api/v1/threads/{theirs['id']}").status_code == 404
        assert acme.get("/api/v1/threads").json()["data"] == []

    def test_upload_then_attach(self, world: World) -> None:
        client, h = world.client(), self.headers(world)
        up = client.post("/api/v1/attachments", headers=h, data={"partner_id": world.acme_id},
                         files={"file": ("a.pdf", PDF, "application/pdf")})  # fmt: skip
        assert up.status_code == 201, up.text
        att = up.json()
        assert att["id"].startswith("file_") and att["content_type"] == "application/pdf" and att["size"] == len(PDF)
        big = client.post("/api/v1/attachments", headers=h, data={"partner_id": world.acme_id},
                          files={"file": ("a.pdf", PDF + b"x" * 2000, "application/pdf")})  # fmt: skip
        assert big.status_code == 413 and big.json()["error"]["code"] == "attachment_too_large"
        created = client.post(
            "/api/v1/threads",
            headers=h,
            json={"partner_id": world.acme_id, "subject": "File", "body": "see", "attachment_ids": [att["id"]]},
        )
        assert created.json()["messages"][0]["attachments"][0]["sha256"] == att["sha256"]
        content = client.get(f"/api/v1/attachments/{att['id']}/content", headers=h)
        assert content.content == PDF and content.headers["x-attachment-sha256"] == att["sha256"]
