"""The fast webhook path (web/webhook_path.py) and the FastAPI route give the same answers and store the
same rows; the fast path takes only what it can (a warm secret cache, a valid signature)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.inbox.delivery_writer import DeliveryWriter
from partnerpay.inbox.durable import Flusher
from partnerpay.inbox.models import InboxItem, ProgramIntegration
from partnerpay.inbox.sqlite_wal import WalFile
from partnerpay.jobs.models import OutboxJob
from tests.api.conftest import Api
from tests.api.stripe_helpers import OTHER_SECRET, SECRET, body_of, event, header, invoice


def _setup(api: Api) -> str:
    program = api.program(currency="EUR", hold_days=0)
    answer = api.client.put(
        f"/api/v1/programs/{program['id']}/integrations/stripe", json={"webhook_secret": SECRET}, headers=api.headers()
    )
    assert answer.status_code == 200, answer.text
    return str(program["id"])


def _post(api: Api, program_id: str, payload: dict[str, Any], *secrets: str) -> Any:
    body = body_of(payload)
    t = int(api.clock.now().timestamp())
    return api.client.post(
        f"/api/v1/webhooks/stripe/{program_id}",
        content=body,
        headers={"Stripe-Signature": header(body, t, *secrets), "Content-Type": "application/json"},
    )


def test_a_warm_cache_sends_deliveries_down_the_fast_path_with_the_same_answers(
    api: Api, session_factory: sessionmaker[Session]
) -> None:
    program_id = _setup(api)
    path = api.client.app.webhook_path  # type: ignore[attr-defined]
    first = _post(api, program_id, event("evt_1", "invoice.paid", invoice("in_1")))
    assert first.status_code == 200 and first.json()["duplicate"] is False
    before = path.answered
    second = _post(api, program_id, event("evt_2", "invoice.paid", invoice("in_2")))
    again = _post(api, program_id, event("evt_2", "invoice.paid", invoice("in_2")))
    assert path.answered == before + 2
    assert second.json()["duplicate"] is False and again.json() == {**second.json(), "duplicate": True}
    # A bad signature goes to the route: 400, counted, nothing stored.
    refused = _post(api, program_id, event("evt_4", "invoice.paid", invoice("in_4")), OTHER_SECRET)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_signature"
    assert path.answered == before + 2
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(InboxItem)) == 2
        assert s.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "inbox.process")) == 2
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "inbox.receive")) == 2
        integration = s.scalars(select(ProgramIntegration)).one()
        assert integration.bad_signatures == 1


def test_concurrent_deliveries_share_group_commits_and_each_is_stored_once(
    api: Api, session_factory: sessionmaker[Session]
) -> None:
    program_id = _setup(api)
    _post(api, program_id, event("evt_warm", "invoice.paid", invoice("in_warm")))
    answers: list[Any] = []

    def send(n: int) -> None:
        for k in range(5):
            answers.append(_post(api, program_id, event(f"evt_{n % 4}_{k}", "invoice.paid", invoice(f"in_{n}_{k}"))))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a.status_code == 200 for a in answers)
    assert sum(1 for a in answers if not a.json()["duplicate"]) == 20  # 4 distinct ids in each of 5 rounds
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(InboxItem)) == 21


def test_a_changed_secret_is_used_at_once_by_the_process_that_changed_it(api: Api) -> None:
    program_id = _setup(api)
    assert _post(api, program_id, event("evt_a", "invoice.paid", invoice("in_a"))).status_code == 200
    answer = api.client.put(
        f"/api/v1/programs/{program_id}/integrations/stripe",
        json={"webhook_secrets": [OTHER_SECRET]},
        headers=api.headers(),
    )
    assert answer.status_code == 200
    assert _post(api, program_id, event("evt_b", "invoice.paid", invoice("in_b"))).status_code == 400
    assert _post(api, program_id, event("evt_c", "invoice.paid", invoice("in_c")), OTHER_SECRET).status_code == 200


def test_a_delivery_whose_wal_flush_fails_is_refused_with_503_and_the_route_takes_over(
    api: Api, session_factory: sessionmaker[Session], backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL flushes its own commits")
    program_id = _setup(api)
    for n in (1, 2):  # the first fills the secret cache (the route), the second takes the fast path
        assert _post(api, program_id, event(f"evt_{n}", "invoice.paid", invoice(f"in_{n}"))).status_code == 200
    writer: DeliveryWriter = api.client.app.state.delivery_writer  # type: ignore[attr-defined]
    assert writer._sync is not None and writer.running
    writer._sync.stop()
    # A disk that refuses the flush: here a WAL file that cannot be opened (the real one stays as it is).
    wal = WalFile(str(tmp_path / "gone" / "app.db-wal"))
    writer._sync = Flusher(wal.flush, writer._sync._settle, close=wal.close)
    refused = _post(api, program_id, event("evt_3", "invoice.paid", invoice("in_3")))
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "not_durable"
    assert not writer.running  # later deliveries take the route, each commit flushed by SQLite itself
    again = _post(api, program_id, event("evt_3", "invoice.paid", invoice("in_3")))
    assert again.status_code == 200 and again.json()["duplicate"] is True  # committed, now acknowledged
    third = _post(api, program_id, event("evt_4", "invoice.paid", invoice("in_4")))
    assert third.status_code == 200 and third.json()["duplicate"] is False
    with session_factory() as s:
        assert sorted(s.scalars(select(InboxItem.external_id))) == ["evt_1", "evt_2", "evt_3", "evt_4"]
