"""The inbox console page and `partnerpay inbox`: failed items show why, and a retry queues them again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.cli import app
from partnerpay.inbox.models import InboxItem
from partnerpay.inbox.processing import process_item
from partnerpay.inbox.service import receive
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from tests import factories
from tests.api import test_pages
from tests.api.stripe_helpers import body_of, event, invoice
from tests.api.test_pages import World, csrf_of, staff
from tests.integration.test_cli import cli, end  # noqa: F401  (the fixture)

world = test_pages.world


def failed_item(factory: sessionmaker[Session], program_id: str, now: datetime, evt: str = "evt_usd") -> str:
    """An invoice in a currency the program does not pay in: stored, processed, failed."""
    with factory() as s:
        item, _ = receive(
            s,
            program_id=program_id,
            provider="stripe",
            external_id=evt,
            kind="invoice.paid",
            body=body_of(event(evt, "invoice.paid", invoice(currency="usd"))).decode(),
            headers={},
            now=now,
        )
        s.commit()
        process_item(s, item_id=item.id, now=now)
        s.commit()
        assert item.status == "failed"
        return item.id


def jobs(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxJob)) or 0)


class TestInboxPage:
    def test_a_failed_item_shows_its_error_and_is_retried_with_an_audit_row(self, world: World) -> None:
        item_id = failed_item(world.factory, world.program_id, world.clock.now())
        client = staff(world, "finance")
        page = client.get("/inbox?status=failed")
        assert page.status_code == 200
        assert item_id in page.text and "pays in EUR" in page.text
        assert client.get("/inbox?status=processed").text.count(item_id) == 0
        queued = jobs(world.factory)
        token = csrf_of(client, "/inbox")
        response = client.post(f"/inbox/{item_id}/retry", data={"csrf_token": token}, follow_redirects=False)
        assert response.status_code == 303
        with world.factory() as s:
            item = s.get(InboxItem, item_id)
            assert item is not None and item.status == "received"
            retried = s.scalars(select(AuditEntry).where(AuditEntry.action == "inbox.retry")).all()
            assert [a.object_id for a in retried] == [item_id]
        assert jobs(world.factory) == queued + 1

    def test_retrying_a_processed_item_is_refused_with_the_reason(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/inbox")
        response = client.post("/inbox/inb_nope/retry", data={"csrf_token": token})
        assert response.status_code == 404 and "inb_nope" in response.text

    def test_a_viewer_sees_the_inbox_but_cannot_retry(self, world: World) -> None:
        item_id = failed_item(world.factory, world.program_id, world.clock.now())
        client = staff(world, "viewer")
        page = client.get("/inbox")
        assert item_id in page.text and f"/inbox/{item_id}/retry" not in page.text
        token = csrf_of(client, "/inbox")
        response = client.post(f"/inbox/{item_id}/retry", data={"csrf_token": token})
        assert response.status_code == 403
        with world.factory() as s:
            item = s.get(InboxItem, item_id)
            assert item is not None and item.status == "failed"


class TestInboxCli:
    def test_list_failed_then_retry_them(
        self,
        cli: CliRunner,  # noqa: F811
        session: Session,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
    ) -> None:
        prog = factories.program(session, clock.now())
        session.commit()
        end(session)
        item_id = failed_item(session_factory, prog.id, clock.now())
        listed = cli.invoke(app, ["inbox", "list", "--status", "failed"])
        assert listed.exit_code == 0, listed.output
        assert item_id in listed.output and "pays in EUR" in listed.output
        retried = cli.invoke(app, ["inbox", "retry", "--failed", "--program", prog.id])
        assert retried.exit_code == 0, retried.output
        assert "Queued 1 item" in retried.output and item_id in retried.output
        item = session.get(InboxItem, item_id)
        assert item is not None and item.status == "received"
        end(session)
        again = cli.invoke(app, ["inbox", "retry", "--id", item_id])
        assert again.exit_code == 1 and "only failed or waiting items" in again.output

    def test_retry_without_a_choice_or_with_a_bad_status_exits_1(self, cli: CliRunner) -> None:  # noqa: F811
        assert cli.invoke(app, ["inbox", "retry"]).exit_code == 1
        bad = cli.invoke(app, ["inbox", "list", "--status", "lost"])
        assert bad.exit_code == 1 and "status" in bad.output
