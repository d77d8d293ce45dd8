"""The events CSV import on a real database: all or nothing, through the inbox, audited, and its command line."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import verify_chain
from partnerpay.auth.actor import SYSTEM
from partnerpay.cli import app
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.import_csv import ImportRejected, ImportReport
from partnerpay.events.importer import import_events
from partnerpay.events.models import Event
from partnerpay.inbox.models import InboxItem
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from tests import factories

HEADER = "type,external_id,occurred_at,customer_external_id,referral_code,amount,currency,product"


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def run(session: Session, program: Program, data: bytes, now: datetime, **kw: Any) -> ImportReport:
    kw.setdefault("actor", SYSTEM)
    return import_events(session, program_id=program.id, data=data, filename="events.csv", now=now, **kw)


def count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def written(session: Session) -> tuple[int, int, int]:
    return count(session, Event), count(session, InboxItem), count(session, CommissionLine)


def rejected(session: Session, program: Program, data: bytes, now: datetime) -> list[tuple[int, str | None, str]]:
    with pytest.raises(ImportRejected) as caught:
        run(session, program, data, now)
    return [(e.row, e.column, e.message) for e in caught.value.report.errors]


@pytest.fixture
def setup(session: Session, clock: FixedClock) -> tuple[Program, Partner]:
    program = factories.program(session, clock.now())
    partner = factories.partner(session, program, clock.now(), "Acme Media")
    session.commit()
    return program, partner


class TestImportEvents:
    def test_every_row_is_recorded_through_the_inbox_and_referral_coded_invoices_earn(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, partner = setup
        code = partner.referral_code
        data = csv_bytes(
            HEADER,
            f"signup,su-1,2026-01-10T09:00:00Z,cus-1,{code},,,",
            f"invoice_paid,inv-1,2026-01-11T09:00:00+01:00,cus-1,{code},10000,EUR,Pro plan",
            "invoice_paid,inv-2,2026-01-12T09:00:00Z,cus-2,,5000,eur,",
        )
        report = run(session, program, data, clock.now())
        session.commit()
        assert (report.rows, report.created, report.duplicates, report.dry_run) == (3, 3, 0, False)
        assert report.by_type == {"invoice_paid": 2, "signup": 1} and report.amounts == {"EUR": 15000}
        assert report.commissions == 1 and report.import_id is not None
        events = {e.external_id: e for e in session.scalars(select(Event))}
        assert events["inv-1"].partner_id == partner.id and events["inv-1"].product == "Pro plan"
        assert events["inv-2"].partner_id is None and events["inv-2"].currency == "EUR"
        [line] = session.scalars(select(CommissionLine)).all()
        assert (line.partner_id, line.event_id, line.amount) == (partner.id, events["inv-1"].id, 2000)
        sources = set(session.scalars(select(InboxItem.source)))
        assert sources == {f"csv:{program.id}"} and count(session, InboxItem) == 3

    def test_one_audit_row_pins_the_file_and_the_counts_and_keeps_the_chain_intact(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        data = csv_bytes(HEADER, "signup,su-1,2026-01-10T09:00:00Z,cus-1,,,,")
        report = run(session, program, data, clock.now())
        session.commit()
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "events.import")).all()
        assert entry.object_id == report.import_id
        assert entry.after["file_sha256"] == hashlib.sha256(data).hexdigest()
        assert (entry.after["created"], entry.after["rows"]) == (1, 1)
        assert verify_chain(session)[1] == []

    def test_bad_rows_anywhere_are_all_listed_by_row_and_column_and_nothing_is_written(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        before = written(session)
        data = csv_bytes(
            HEADER,
            "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,",
            "invoice_paid,inv-2,2026-01-11,cus-1,,12.50,EUR,",
            "signup,,2026-01-11T09:00:00Z,cus-3,,,,",
            "invoice_paid,inv-4,2026-01-11T09:00:00Z,cus-4,nobody-here,1e3,USD,",
            "teleport,inv-5,2026-01-11T09:00:00Z,cus-5,,,,",
            "refund,inv-6,2026-01-11T09:00:00Z,cus-1,,,,",
        )
        errors = rejected(session, program, data, clock.now())
        assert [(row, column) for row, column, _ in errors] == [
            (3, "occurred_at"),
            (3, "amount"),
            (4, "external_id"),
            (5, "referral_code"),
            (5, "amount"),
            (5, "currency"),
            (6, "type"),
            (7, "amount"),
            (7, "currency"),
        ]
        messages = {(row, column): message for row, column, message in errors}
        assert "not an RFC 3339 time" in messages[(3, "occurred_at")]
        assert "'12.50' is not a whole number of minor units" in messages[(3, "amount")]
        assert "'1e3' is not a whole number" in messages[(5, "amount")]
        assert messages[(5, "currency")].startswith(
            "this program pays in EUR; USD is not accepted without a USD→EUR rate"
        )
        assert "unknown referral code 'nobody-here'" in messages[(5, "referral_code")]
        assert messages[(7, "amount")] == "amount is required for refund events"
        assert written(session) == before

    def test_the_refusal_names_the_file_the_first_row_and_how_many_more(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        data = csv_bytes(HEADER, "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,9.99,EUR,", "x,,,,,,,")
        with pytest.raises(ImportRejected) as caught:
            run(session, program, data, clock.now())
        body = caught.value.to_dict()
        assert body["code"] == "validation_error" and (body["row"], body["column"], body["field"]) == (
            2,
            "amount",
            "amount",
        )
        assert body["message"].startswith("events.csv: nothing was imported. row 2, column amount:")
        assert "more)" in body["message"] and body["error_count"] == len(body["errors"]) > 2

    def test_an_unknown_or_missing_column_is_refused_naming_it(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        [(row, column, message)] = rejected(
            session, program, csv_bytes(HEADER + ",colour", "signup,a,2026-01-11T09:00:00Z,c,,,,,red"), clock.now()
        )
        assert (row, column) == (1, None) and "unknown column(s) colour" in message
        [(row, _, message)] = rejected(session, program, csv_bytes("type,external_id", "signup,a"), clock.now())
        assert row == 1 and "required column(s) missing: occurred_at, customer_external_id" in message

    def test_a_program_id_column_must_name_the_program_imported_into(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        data = csv_bytes(
            "program_id,type,external_id,occurred_at,customer_external_id",
            f"{program.id},signup,a,2026-01-11T09:00:00Z,c",
            "prg_other,signup,b,2026-01-11T09:00:00Z,c",
        )
        assert [(r, c) for r, c, _ in rejected(session, program, data, clock.now())] == [(3, "program_id")]

    def test_metadata_is_a_json_object_and_a_product_name_has_at_most_200_characters(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        head = "type,external_id,occurred_at,customer_external_id,product,metadata"
        data = csv_bytes(
            head,
            'signup,a,2026-01-11T09:00:00Z,c,Pro,"{""plan"": ""pro""}"',
            "signup,b,2026-01-11T09:00:00Z,c,Pro,[1]",
            f"signup,c,2026-01-11T09:00:00Z,c,{'x' * 201},",
        )
        errors = rejected(session, program, data, clock.now())
        assert [(r, c) for r, c, _ in errors] == [(3, "metadata"), (4, "product")]
        run(session, program, csv_bytes(head, data.decode().splitlines()[1]), clock.now())
        assert session.scalars(select(Event.metadata_json)).one() == {"plan": "pro"}

    def test_the_same_external_id_twice_in_a_file_is_recorded_once_or_refused_when_it_differs(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        row = "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,"
        report = run(session, program, csv_bytes(HEADER, row, row), clock.now())
        assert (report.rows, report.created, report.duplicates) == (2, 1, 1)
        changed = row.replace("1000", "2000")
        [(line, column, message)] = rejected(
            session, program, csv_bytes(HEADER, "signup,x,2026-01-11T09:00:00Z,c,,,,", row, changed), clock.now()
        )
        assert (line, column) == (4, "external_id") and "inv-1 is also on row 3 with different content" in message

    def test_importing_the_same_file_again_creates_nothing_new(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, partner = setup
        data = csv_bytes(HEADER, f"invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,{partner.referral_code},1000,EUR,")
        run(session, program, data, clock.now())
        session.commit()
        before = written(session)
        again = run(session, program, data, clock.now())
        session.commit()
        assert (again.created, again.duplicates, again.commissions, again.by_type) == (0, 1, 0, {})
        assert written(session) == before

    def test_a_row_recorded_before_with_other_content_is_refused_naming_its_row(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        run(
            session, program, csv_bytes(HEADER, "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,"), clock.now()
        )
        session.commit()
        data = csv_bytes(
            HEADER,
            "signup,new-1,2026-01-01T09:00:00Z,cus-9,,,,",
            "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1500,EUR,",
        )
        before = written(session)
        [(row, column, message)] = rejected(session, program, data, clock.now())
        assert (row, column) == (3, "external_id") and "already recorded with different content" in message
        assert not message.startswith("row ")
        session.rollback()
        assert written(session) == before

    def test_a_dry_run_reports_what_would_happen_including_duplicates_and_writes_nothing(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, partner = setup
        code = partner.referral_code
        first = f"invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,{code},1000,EUR,"
        run(session, program, csv_bytes(HEADER, first), clock.now())
        session.commit()
        before = written(session)
        audits = count(session, AuditEntry)
        data = csv_bytes(
            HEADER,
            first,
            f"invoice_paid,inv-2,2026-01-12T09:00:00Z,cus-1,{code},3000,EUR,",
            "signup,s-1,2026-01-12T09:00:00Z,cus-2,,,,",
        )
        report = run(session, program, data, clock.now(), dry_run=True)
        session.commit()
        assert (report.dry_run, report.rows, report.created, report.duplicates) == (True, 3, 2, 1)
        assert report.by_type == {"invoice_paid": 1, "signup": 1} and report.amounts == {"EUR": 3000}
        assert report.commissions == 1 and report.import_id is None
        assert written(session) == before and count(session, AuditEntry) == audits

    def test_a_dry_run_finds_what_only_recording_finds(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        data = csv_bytes(
            HEADER + ",original_external_id",
            "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,,",
            "refund,ref-1,2026-01-12T09:00:00Z,cus-1,,1500,EUR,,inv-1",
        )
        with pytest.raises(ImportRejected) as caught:
            run(session, program, data, clock.now(), dry_run=True)
        [error] = caught.value.report.errors
        assert (error.row, error.column) == (3, "amount") and "exceeds" in error.message

    def test_a_refund_listed_above_its_invoice_is_recorded_after_it_by_occurred_at(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, partner = setup
        data = csv_bytes(
            HEADER + ",original_external_id",
            "refund,ref-1,2026-01-12T09:00:00Z,cus-1,,400,EUR,,inv-1",
            f"invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,{partner.referral_code},1000,EUR,,",
        )
        report = run(session, program, data, clock.now())
        assert report.created == 2 and report.commissions == 2  # earned, then clawed back in part
        refund = session.scalars(select(Event).where(Event.external_id == "ref-1")).one()
        assert refund.original_event_id is not None

    def test_a_refund_that_happened_before_its_invoice_is_refused_naming_its_row(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        before = written(session)
        data = csv_bytes(
            HEADER + ",original_external_id",
            "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,,",
            "refund,ref-1,2026-01-10T09:00:00Z,cus-1,,400,EUR,,inv-1",
        )
        [(row, column, message)] = rejected(session, program, data, clock.now())
        assert (row, column) == (3, "original_external_id") and "no paying event 'inv-1'" in message
        session.rollback()
        assert written(session) == before

    def test_formula_cells_are_data(self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]) -> None:
        program, _ = setup
        data = csv_bytes(
            HEADER,
            'invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,1000,EUR,"=HYPERLINK(""http://x.example"",""Pro"")"',
            "signup,s-1,2026-01-11T09:00:00Z,'=cmd|' /C calc'!A0,,,,'@SUM(1)",
        )
        run(session, program, data, clock.now())
        products = dict(session.execute(select(Event.external_id, Event.product)).all())
        assert products == {"inv-1": '=HYPERLINK("http://x.example","Pro")', "s-1": "@SUM(1)"}
        formula = session.scalars(select(Event).where(Event.external_id == "inv-1")).one()
        assert formula.amount == 1000
        [(row, column, _)] = rejected(
            session, program, csv_bytes(HEADER, "invoice_paid,inv-9,2026-01-11T09:00:00Z,c,,=1+1,EUR,"), clock.now()
        )
        assert (row, column) == (2, "amount")

    def test_a_custom_type_must_be_one_of_the_programs(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        data = csv_bytes(
            HEADER, "trial_started,t-1,2026-01-11T09:00:00Z,cus-1,,,,", "Not A Type,t-2,2026-01-11T09:00:00Z,c,,,,"
        )
        errors = rejected(session, program, data, clock.now())
        assert [(row, column) for row, column, _ in errors] == [(2, "type"), (3, "type")]
        assert "unknown event type 'trial_started'" in errors[0][2]
        program.custom_event_types = ["trial_started"]
        session.flush()
        report = run(session, program, csv_bytes(HEADER, data.decode().splitlines()[1]), clock.now())
        assert report.by_type == {"trial_started": 1}
        assert session.scalars(select(Event.type)).one() == "trial_started"

    def test_an_empty_file_a_header_alone_and_an_unknown_program_are_refused(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, _ = setup
        with pytest.raises(ImportRejected):
            run(session, program, b"", clock.now())
        with pytest.raises(ValidationError, match="no event rows"):
            run(session, program, csv_bytes(HEADER), clock.now())
        with pytest.raises(NotFound):
            import_events(session, actor=SYSTEM, program_id="prg_nope", data=b"", filename="e.csv", now=clock.now())

    def test_a_partner_may_not_import(
        self, session: Session, clock: FixedClock, setup: tuple[Program, Partner]
    ) -> None:
        program, partner = setup
        from partnerpay.auth.actor import Actor, ActorType

        actor = Actor(type=ActorType.PARTNER, id=partner.id, partner_id=partner.id, program_id=program.id)
        with pytest.raises(Forbidden):
            run(session, program, csv_bytes(HEADER, "signup,a,2026-01-11T09:00:00Z,c,,,,"), clock.now(), actor=actor)


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})


class TestEventsImportCommand:
    def test_imports_the_file_and_says_what_was_recorded(
        self, cli: CliRunner, session: Session, setup: tuple[Program, Partner], tmp_path: Any
    ) -> None:
        program, partner = setup
        path = tmp_path / "events.csv"
        path.write_bytes(
            csv_bytes(
                HEADER,
                f"invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,{partner.referral_code},1000,EUR,",
                "signup,s-1,2026-01-11T09:00:00Z,cus-2,,,,",
            )
        )
        result = cli.invoke(app, ["events", "import", str(path), "--program", program.id])
        assert result.exit_code == 0, result.output
        assert "Imported 2 events from events.csv" in result.stdout and "1 commission line" in result.stdout
        assert count(session, Event) == 2

    def test_a_dry_run_checks_and_writes_nothing(
        self, cli: CliRunner, session: Session, setup: tuple[Program, Partner], tmp_path: Any
    ) -> None:
        program, _ = setup
        path = tmp_path / "events.csv"
        path.write_bytes(csv_bytes(HEADER, "signup,s-1,2026-01-11T09:00:00Z,cus-2,,,,"))
        result = cli.invoke(app, ["events", "import", str(path), "--program", program.id, "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "all valid" in result.stdout and "Nothing was written" in result.stdout
        assert count(session, Event) == 0

    def test_bad_rows_exit_1_listing_each_by_row_and_column(
        self, cli: CliRunner, session: Session, setup: tuple[Program, Partner], tmp_path: Any
    ) -> None:
        program, _ = setup
        path = tmp_path / "events.csv"
        path.write_bytes(
            csv_bytes(
                HEADER,
                "invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,,12.50,EUR,",
                "signup,s-1,2026-01-11T09:00:00Z,cus-2,,,,",
                "invoice_paid,inv-3,yesterday,cus-1,,1250,GBP,",
            )
        )
        result = cli.invoke(app, ["events", "import", str(path), "--program", program.id])
        assert result.exit_code == 1
        assert "row 2, column amount: '12.50' is not a whole number" in result.stdout
        assert "row 4, column occurred_at:" in result.stdout and "row 4, column currency:" in result.stdout
        assert "nothing was imported" in result.stderr
        assert count(session, Event) == 0

    def test_a_missing_file_or_program_is_one_clear_line(
        self, cli: CliRunner, setup: tuple[Program, Partner], tmp_path: Any
    ) -> None:
        program, _ = setup
        missing = cli.invoke(app, ["events", "import", str(tmp_path / "nope.csv"), "--program", program.id])
        assert missing.exit_code == 1 and "is not a file" in missing.stderr
        path = tmp_path / "events.csv"
        path.write_bytes(csv_bytes(HEADER, "signup,s-1,2026-01-11T09:00:00Z,cus-2,,,,"))
        unknown = cli.invoke(app, ["events", "import", str(path), "--program", "prg_nope"])
        assert unknown.exit_code == 1 and "program prg_nope not found" in unknown.stderr
