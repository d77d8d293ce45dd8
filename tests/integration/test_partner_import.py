"""The partner CSV import on a real database: all or nothing, set-based, audited, and its command line."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import verify_chain
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.cli import app
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.partners import importer
from partnerpay.partners import service as partner_service
from partnerpay.partners.activity import record_activity, timeline
from partnerpay.partners.groups import create_group
from partnerpay.partners.import_csv import ImportRejected
from partnerpay.partners.models import Partner, PartnerActivity, PayoutMethod
from partnerpay.partners.queries import partner_audit, timeline_page
from partnerpay.programs.models import Program
from tests import factories

BOX = SecretBox("s" * 40)


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def run(session: Session, program: Program, data: bytes, now: datetime, **kw: Any) -> importer.ImportReport:
    kw.setdefault("actor", SYSTEM)
    kw.setdefault("box", BOX)
    return importer.import_partners(session, program_id=program.id, data=data, filename="partners.csv", now=now, **kw)


def partners_of(session: Session, program: Program) -> list[Partner]:
    return list(session.scalars(select(Partner).where(Partner.program_id == program.id).order_by(Partner.name)))


def count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestImportPartners:
    def test_every_row_becomes_an_active_imported_partner_with_a_referral_code(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        data = csv_bytes(
            "name,email,country,company,website",
            "Acme Media,hello@acme.example,de,Acme GmbH,acme.example",
            "Beta Blog,beta@blog.example,,,",
        )
        report = run(session, program, data, clock.now())
        session.commit()
        assert (report.rows, report.created, report.dry_run) == (2, 2, False)
        acme, beta = partners_of(session, program)
        assert (acme.name, acme.status, acme.source, acme.country, acme.company, acme.website) == (
            "Acme Media", "active", "import", "DE", "Acme GmbH", "https://acme.example",
        )  # fmt: skip
        assert acme.referral_code.startswith("acme-media-") and beta.referral_code.startswith("beta-blog-")
        assert acme.created_at == clock.now()

    def test_groups_and_owners_are_named_in_the_file_and_stored_as_ids(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        pilot = create_group(session, actor=SYSTEM, program_id=program.id, name="Pilot Q1", now=clock.now())
        ana = create_staff_user(
            session,
            actor=SYSTEM,
            email="ana@staff.example",
            role="manager",
            password="a long password",
            now=clock.now(),
        )
        data = csv_bytes("name,email,group,owner_email", "A,a@x.example,Pilot Q1,ANA@staff.example", "B,b@x.example,,")
        report = run(session, program, data, clock.now())
        a, b = partners_of(session, program)
        assert (a.group_id, a.owner_id) == (pilot.id, ana.id)
        assert (b.group_id, b.owner_id) == (None, None)
        assert report.groups == {"Pilot Q1": 1} and report.with_owner == 1

    def test_the_staff_user_who_imports_owns_the_rows_without_an_owner_email(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        user = create_staff_user(
            session,
            actor=SYSTEM,
            email="mia@staff.example",
            role="manager",
            password="a long password",
            now=clock.now(),
        )
        run(session, program, csv_bytes("name,email", "A,a@x.example"), clock.now(), actor=staff_actor(user))
        assert partners_of(session, program)[0].owner_id == user.id

    def test_one_audit_row_pins_the_file_and_every_created_partner_and_keeps_the_chain_intact(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        data = csv_bytes("name,email", "A,a@x.example", "B,b@x.example")
        report = run(session, program, data, clock.now())
        session.commit()
        rows = session.scalars(select(AuditEntry).where(AuditEntry.program_id == program.id)).all()
        summary = [e for e in rows if e.action == "partner.import"]
        assert len(summary) == 1 and not [e for e in rows if e.action == "partner.create"]
        entry = summary[0]
        assert (entry.object_type, entry.object_id) == ("partner_import", report.import_id)
        assert entry.after is not None and entry.after["rows"] == 2 and entry.after["filename"] == "partners.csv"
        assert entry.after["file_sha256"] == hashlib.sha256(data).hexdigest()
        created = sorted(partners_of(session, program), key=lambda p: p.email)
        lines = "".join(f"{p.id},{p.email},{p.referral_code},{row}\n" for row, p in enumerate(created, start=2))
        assert entry.after["partners_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
        assert verify_chain(session)[1] == []

    def test_each_imported_partners_audit_history_shows_the_import(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        report = run(session, program, csv_bytes("name,email", "A,a@x.example", "B,b@x.example"), clock.now())
        other = factories.partner(session, program, clock.now())
        session.commit()
        for partner in partners_of(session, program):
            history = partner_audit(session, partner.id)
            if partner.id == other.id:
                assert "partner.import" not in {e.action for e in history}
            else:
                assert [(e.action, e.object_id) for e in history] == [("partner.import", report.import_id)]

    def test_drawn_referral_codes_that_clash_in_the_file_or_the_database_are_drawn_again(
        self, session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        program = factories.program(session, clock.now())
        factories.partner(session, program, clock.now(), name="Acme", referral_code="acme-000001")
        draws = iter(["000001000001", "000002000002", "000003"])  # a database clash, then a clash in the file
        monkeypatch.setattr(partner_service, "secrets", SimpleNamespace(token_hex=lambda n: next(draws)))
        run(session, program, csv_bytes("name,email", "Acme,a@x.example", "Acme,b@x.example"), clock.now())
        codes = {p.email: p.referral_code for p in partners_of(session, program)}
        assert codes == {"acme@example.com": "acme-000001", "a@x.example": "acme-000002", "b@x.example": "acme-000003"}

    def test_each_partner_gets_a_timeline_line_naming_the_file_and_its_row(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        report = run(session, program, csv_bytes("name,email", "A,a@x.example", "B,b@x.example"), clock.now())
        assert count(session, PartnerActivity) == 0  # provenance lives on the partner row, not a row per partner
        lines = {p.email: timeline(session, p.id) for p in partners_of(session, program)}
        assert {email: [line.text for line in got] for email, got in lines.items()} == {
            "a@x.example": ["Imported from partners.csv by partnerpay (row 2)"],
            "b@x.example": ["Imported from partners.csv by partnerpay (row 3)"],
        }
        assert {(line.kind, line.ref_type, line.ref_id) for got in lines.values() for line in got} == {
            ("partner.imported", "partner_import", report.import_id)
        }

    def test_the_import_line_pages_after_later_activity_newest_first(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        run(session, program, csv_bytes("name,email", "A,a@x.example"), clock.now())
        partner = partners_of(session, program)[0]
        for n in range(2):
            clock.advance(timedelta(minutes=1))
            record_activity(
                session, partner_id=partner.id, kind="note", text=f"later {n}", actor=SYSTEM, now=clock.now()
            )
        session.flush()
        texts: list[str] = []
        cursor: str | None = None
        while True:
            page = timeline_page(session, SYSTEM, partner.id, cursor=cursor, limit=1)
            texts += [line.text for line in page.data]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert texts == ["later 1", "later 0", "Imported from partners.csv by partnerpay (row 2)"]

    def test_a_payout_email_becomes_an_encrypted_paypal_method_that_reads_back_masked(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        run(session, program, csv_bytes("name,email,payout_email", "A,a@x.example,money@acme.example"), clock.now())
        session.commit()
        method = session.scalars(select(PayoutMethod)).one()
        assert (method.type, method.active, method.partner_id) == ("paypal", True, partners_of(session, program)[0].id)
        assert "money@acme.example" not in method.details_encrypted
        assert BOX.decrypt(method.details_encrypted) == {"email": "money@acme.example"}
        assert "money@acme.example" not in str(method.masked)
        audit_after = session.scalars(select(AuditEntry.after).where(AuditEntry.action == "partner.import")).one()
        assert "money@acme.example" not in str(audit_after)

    def test_payout_emails_without_an_encryption_key_are_refused(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        with pytest.raises(ValidationError, match="PARTNERPAY_SECRET_KEY"):
            run(
                session,
                program,
                csv_bytes("name,email,payout_email", "A,a@x.example,m@x.example"),
                clock.now(),
                box=None,
            )

    def test_a_dry_run_reports_the_counts_and_writes_nothing(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        report = run(
            session, program, csv_bytes("name,email", "A,a@x.example", "B,b@x.example"), clock.now(), dry_run=True
        )
        assert (report.rows, report.created, report.import_id, report.dry_run) == (2, 0, None, True)
        assert count(session, Partner) == 0 and count(session, PartnerActivity) == 0

    def test_any_bad_row_rejects_the_file_and_writes_nothing(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        audit_before = count(session, AuditEntry)
        with pytest.raises(ImportRejected) as caught:
            run(session, program, csv_bytes("name,email", "A,a@x.example", "B,b-at-x", "C,c@x.example"), clock.now())
        assert [(e.row, e.column) for e in caught.value.report.errors] == [(3, "email")]
        assert caught.value.to_dict()["row"] == 3 and caught.value.to_dict()["column"] == "email"
        assert count(session, Partner) == 0 and count(session, AuditEntry) == audit_before

    def test_an_email_of_the_program_is_refused_but_another_program_may_have_it(
        self, session: Session, clock: FixedClock
    ) -> None:
        first, second = factories.program(session, clock.now()), factories.program(session, clock.now(), name="Other")
        factories.partner(session, first, clock.now(), name="Ann", email="ann@x.example")
        with pytest.raises(ImportRejected) as caught:
            run(session, first, csv_bytes("name,email", "Ann,ANN@x.example"), clock.now())
        assert "already exists in this program" in caught.value.report.errors[0].message
        assert run(session, second, csv_bytes("name,email", "Ann,ann@x.example"), clock.now()).created == 1

    def test_referral_codes_in_the_file_are_kept_and_one_already_taken_is_refused(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        factories.partner(session, program, clock.now(), name="Old", referral_code="taken")
        with pytest.raises(ImportRejected) as caught:
            run(session, program, csv_bytes("name,email,referral_code", "A,a@x.example,taken"), clock.now())
        assert [(e.row, e.column) for e in caught.value.report.errors] == [(2, "referral_code")]
        run(session, program, csv_bytes("name,email,referral_code", "A,a@x.example,acme-2026"), clock.now())
        assert session.scalar(select(Partner.referral_code).where(Partner.email == "a@x.example")) == "acme-2026"

    def test_a_pilot_that_the_file_would_fill_past_its_cap_refuses_the_file(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        create_group(
            session, actor=SYSTEM, program_id=program.id, name="Pilot", is_pilot=True, size_cap=2, now=clock.now()
        )
        rows = [f"P{n},p{n}@x.example,Pilot" for n in range(3)]
        with pytest.raises(ImportRejected) as caught:
            run(session, program, csv_bytes("name,email,group", *rows), clock.now())
        assert [(e.row, e.column) for e in caught.value.report.errors] == [(4, "group")]

    def test_a_partner_added_meanwhile_by_someone_else_turns_into_a_conflict_and_nothing_is_written(
        self, session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        program = factories.program(session, clock.now())
        factories.partner(session, program, clock.now(), name="Early", email="p199@x.example")
        session.commit()
        real = importer._known
        # As if the other writer committed between our check and our write (250 rows: COPY on PostgreSQL).
        monkeypatch.setattr(importer, "_known", lambda s, p, rows: replace(real(s, p, rows), emails=set()))
        rows = [f"P{n},p{n}@x.example" for n in range(250)]
        with pytest.raises(Conflict, match="run the import again"):
            run(session, program, csv_bytes("name,email", *rows), clock.now())
        session.rollback()
        assert count(session, Partner) == 1

    def test_a_reader_cannot_import(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        viewer = Actor(ActorType.STAFF, "usr_viewer", frozenset({"read"}))
        with pytest.raises(Forbidden):
            run(session, program, csv_bytes("name,email", "A,a@x.example"), clock.now(), actor=viewer)

    def test_a_key_of_another_program_does_not_see_the_program(self, session: Session, clock: FixedClock) -> None:
        program = factories.program(session, clock.now())
        other = Actor(ActorType.API_KEY, "key_other", frozenset({"read", "write"}), program_id="prg_other")
        with pytest.raises(NotFound):
            run(session, program, csv_bytes("name,email", "A,a@x.example"), clock.now(), actor=other)

    def test_a_file_larger_than_one_bulk_statement_is_written_whole(
        self, session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(importer, "CHUNK", 1000)
        program = factories.program(session, clock.now())
        rows = [
            f"Partner {n},p{n}@x.example,,{'pay' + str(n) + '@x.example' if n % 7 == 0 else ''}" for n in range(2500)
        ]
        report = run(session, program, csv_bytes("name,email,group,payout_email", *rows), clock.now())
        session.commit()
        assert report.created == 2500 == count(session, Partner)
        assert session.scalar(select(func.count()).where(Partner.import_id == report.import_id)) == 2500
        assert count(session, PayoutMethod) == len(range(0, 2500, 7))
        assert len({p.referral_code for p in partners_of(session, program)}) == 2500
        assert verify_chain(session)[1] == []

    def test_a_40000_row_file_with_one_bad_row_at_line_40000_writes_nothing_and_names_it(
        self, session: Session, clock: FixedClock
    ) -> None:
        program = factories.program(session, clock.now())
        lines = [f"Partner {n},partner{n}@agency{n % 97}.example,DE" for n in range(39_999)]
        lines[39_998] = "Partner 39998,partner-at-nowhere,DE"  # file line 40,000: the header is line 1
        with pytest.raises(ImportRejected) as caught:
            run(session, program, csv_bytes("name,email,country", *lines), clock.now())
        report = caught.value.report
        assert (report.rows, report.error_count) == (39_999, 1)
        assert str(report.errors[0]) == "row 40000, column email: 'partner-at-nowhere' is not a valid email address"
        assert count(session, Partner) == 0


SECRET = "s" * 40


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET})


@pytest.fixture
def program_id(session: Session, clock: FixedClock) -> str:
    program = factories.program(session, clock.now())
    session.commit()
    return program.id


class TestPartnersImportCommand:
    def test_imports_the_file_and_says_how_many(
        self, cli: CliRunner, program_id: str, session: Session, tmp_path: Any
    ) -> None:
        path = tmp_path / "partners.csv"
        path.write_text("name,email,payout_email\nAcme,a@x.example,pay@x.example\nBeta,b@x.example,\n")
        result = cli.invoke(app, ["partners", "import", str(path), "--program", program_id])
        assert result.exit_code == 0, result.output
        assert (
            "Imported 2 partners from partners.csv" in result.stdout and "1 with a PayPal payout email" in result.stdout
        )
        assert count(session, Partner) == 2 and count(session, PayoutMethod) == 1

    def test_a_dry_run_checks_and_writes_nothing(
        self, cli: CliRunner, program_id: str, session: Session, tmp_path: Any
    ) -> None:
        path = tmp_path / "partners.csv"
        path.write_text("name,email\nAcme,a@x.example\n")
        result = cli.invoke(app, ["partners", "import", str(path), "--program", program_id, "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "all valid" in result.stdout and "Nothing was written" in result.stdout
        assert count(session, Partner) == 0

    def test_bad_rows_exit_1_listing_each_by_row_and_column(
        self, cli: CliRunner, program_id: str, session: Session, tmp_path: Any
    ) -> None:
        path = tmp_path / "partners.csv"
        path.write_text("name,email,country\nAcme,a@x.example,DE\nBeta,b-at-x,DE\n,c@x.example,Narnia\n")
        result = cli.invoke(app, ["partners", "import", str(path), "--program", program_id])
        assert result.exit_code == 1
        assert "row 3, column email: 'b-at-x' is not a valid email address" in result.stdout
        assert "row 4, column name: name is required" in result.stdout
        assert "row 4, column country:" in result.stdout
        assert "nothing was imported" in result.stderr
        assert count(session, Partner) == 0

    def test_a_missing_file_or_program_is_one_clear_line(self, cli: CliRunner, program_id: str, tmp_path: Any) -> None:
        missing = cli.invoke(app, ["partners", "import", str(tmp_path / "nope.csv"), "--program", program_id])
        assert missing.exit_code == 1 and "is not a file" in missing.stderr
        path = tmp_path / "partners.csv"
        path.write_text("name,email\nAcme,a@x.example\n")
        unknown = cli.invoke(app, ["partners", "import", str(path), "--program", "prg_nope"])
        assert unknown.exit_code == 1 and "program prg_nope not found" in unknown.stderr
