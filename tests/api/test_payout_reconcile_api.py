"""Bank returns upload and tie-out over HTTP: all-or-nothing, rows and columns named, other programs 404."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.payouts.models import Payout
from tests.api.conftest import Api
from tests.integration.test_reconcile import approved_batch


def upload(api: Api, batch_id: str, text: str, key: str | None = None, **params: Any) -> Any:
    return api.client.post(
        f"/api/v1/payout-batches/{batch_id}/reconcile",
        params=params,
        files={"file": ("returns.csv", text.encode(), "text/csv")},
        headers=api.headers(key),
    )


def statuses(session_factory: sessionmaker[Session], batch_id: str) -> dict[str, str]:
    with session_factory() as s:
        return dict(s.execute(select(Payout.id, Payout.status).where(Payout.batch_id == batch_id)).all())


def batch(api: Api, session_factory: sessionmaker[Session], partners: int = 3) -> list[Payout]:
    with session_factory() as s:
        payouts = approved_batch(s, api.clock, partners=partners, sent=True)
        s.expunge_all()
    return payouts


class TestReconcileUpload:
    def test_a_returns_file_marks_payouts_and_a_second_upload_changes_nothing(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        a, b, c = batch(api, session_factory)
        text = (
            "payout_id,end_to_end_id,status,reason,date\n"
            f"{a.id},,paid,,2026-01-10\n"
            f",{b.id.replace('_', '-')},returned,AC04 closed account,2026-01-12\n"
            f"{c.id},,paid,,\n"
        )
        r = upload(api, a.batch_id, text)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["paid"], body["returned"], body["failed"], body["batch_settled"]) == (2, 1, 0, True)
        assert statuses(session_factory, a.batch_id) == {a.id: "paid", b.id: "returned", c.id: "paid"}
        again = upload(api, a.batch_id, text).json()
        assert (again["paid"], again["returned"], again["unchanged"]) == (0, 0, 3)
        tie = api.get(f"/payout-batches/{a.batch_id}/tie-out").json()
        assert tie["ok"], tie["problems"]
        assert tie["by_status"] == {"paid": {"count": 2, "amount": 8_000}, "returned": {"count": 1, "amount": 4_000}}
        assert api.get("/ledger/verify").json()["ok"]

    def test_bad_rows_reject_the_whole_file_naming_row_and_column(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        a, b, _ = batch(api, session_factory)
        other = batch(api, session_factory, partners=1)[0]
        text = (
            "payout_id,status,reason,date\n"
            f"{a.id},paid,,\n"
            f"{other.id},paid,,\n"
            f"{b.id},bounced,,\n"
            f"{a.id},paid,,2026-13-01\n"
        )
        before = statuses(session_factory, a.batch_id)
        r = upload(api, a.batch_id, text)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert (error["row"], error["column"]) == (3, "payout_id")
        assert [(e["row"], e["column"]) for e in error["errors"]] == [(3, "payout_id"), (4, "status"), (5, "date")]
        assert f"is not a payout of batch {a.batch_id}" in error["errors"][0]["message"]
        assert statuses(session_factory, a.batch_id) == before

    def test_a_row_the_payout_state_forbids_is_named_at_its_status(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        a, _, _ = batch(api, session_factory)
        r = upload(api, a.batch_id, f"payout_id,status,reason\n{a.id},failed,R01\n{a.id},paid,\n")
        assert r.status_code == 422
        error = r.json()["error"]
        assert (error["row"], error["column"]) == (3, "status") and "is failed" in error["message"]
        assert statuses(session_factory, a.batch_id)[a.id] == "sent"

    def test_dry_run_writes_nothing(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        a, _, _ = batch(api, session_factory)
        r = upload(api, a.batch_id, f"payout_id,status\n{a.id},paid\n", dry_run="true")
        assert r.status_code == 200 and r.json()["paid"] == 1 and r.json()["dry_run"] is True
        assert statuses(session_factory, a.batch_id)[a.id] == "sent"

    def test_another_programs_batch_is_not_found_and_a_reader_is_forbidden(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        a, _, _ = batch(api, session_factory)
        elsewhere = api.key_for(session_factory, program_id=api.program()["id"], scopes=["read", "payouts"])
        r = upload(api, a.batch_id, f"payout_id,status\n{a.id},paid\n", key=elsewhere)
        assert r.status_code == 404
        assert api.get(f"/payout-batches/{a.batch_id}/tie-out", key=elsewhere).status_code == 404
        reader = api.key_for(session_factory, scopes=["read"])
        assert upload(api, a.batch_id, f"payout_id,status\n{a.id},paid\n", key=reader).status_code == 403
