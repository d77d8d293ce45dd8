"""Reading and checking a partner CSV without a database: every problem named by row and column."""

from __future__ import annotations

import pytest

from partnerpay.partners.import_csv import (
    MAX_BYTES,
    MAX_ERRORS,
    ImportRow,
    Known,
    PayloadTooLarge,
    RowError,
    check,
    parse,
)
from partnerpay.partners.models import PartnerGroup


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def errors_of(data: bytes) -> list[tuple[int, str | None]]:
    return [(e.row, e.column) for e in parse(data).errors.items]


class TestParse:
    def test_a_valid_file_gives_one_row_per_partner_with_cells_trimmed(self) -> None:
        parsed = parse(
            csv_bytes("name,email,company", " Acme Media , hello@acme.example ,Acme GmbH", "Beta,b@beta.example,")
        )
        assert parsed.errors.count == 0
        assert [(r.name, r.email, r.company) for r in parsed.rows] == [
            ("Acme Media", "hello@acme.example", "Acme GmbH"),
            ("Beta", "b@beta.example", None),
        ]
        assert parsed.count == 2

    def test_rows_are_numbered_as_in_a_spreadsheet_with_the_header_as_row_1(self) -> None:
        parsed = parse(csv_bytes("name,email", "A,a@x.example", "B,b@x.example"))
        assert [r.row for r in parsed.rows] == [2, 3]

    def test_a_byte_order_mark_as_excel_writes_it_is_accepted(self) -> None:
        parsed = parse(b"\xef\xbb\xbf" + csv_bytes("name,email", "A,a@x.example"))
        assert parsed.errors.count == 0 and parsed.rows[0].name == "A"

    def test_column_names_ignore_case_spaces_and_order(self) -> None:
        parsed = parse(csv_bytes("Payout Email,EMAIL,Name", "pay@x.example,a@x.example,A"))
        assert parsed.errors.count == 0
        assert (parsed.rows[0].name, parsed.rows[0].payout_email) == ("A", "pay@x.example")

    def test_an_unknown_column_is_refused_naming_it_and_the_known_ones(self) -> None:
        [error] = parse(csv_bytes("name,email,phone", "A,a@x.example,123")).errors.items
        assert (error.row, error.column) == (1, None)
        assert "unknown column(s) phone" in error.message and "owner_email" in error.message

    def test_a_missing_required_column_is_refused(self) -> None:
        [error] = parse(csv_bytes("name,company", "A,Acme")).errors.items
        assert error.row == 1 and "required column(s) missing: email" in error.message

    def test_a_column_named_twice_is_refused(self) -> None:
        assert errors_of(csv_bytes("name,email,email", "A,a@x.example,b@x.example")) == [(1, "email")]

    def test_an_empty_file_is_refused_with_the_columns_to_use(self) -> None:
        [error] = parse(b"").errors.items
        assert error.row == 1 and "empty" in error.message and "name, email" in error.message

    def test_a_file_that_is_not_utf8_names_the_row_of_the_bad_byte(self) -> None:
        data = csv_bytes("name,email", "A,a@x.example", "Caf\xe9,c@x.example").replace(b"\xc3\xa9", b"\xe9")
        [error] = parse(data).errors.items
        assert error.row == 3 and "0xE9 is not UTF-8" in error.message

    def test_a_file_over_the_size_limit_is_refused_as_too_large(self) -> None:
        with pytest.raises(PayloadTooLarge) as caught:
            parse(b"x" * (MAX_BYTES + 1))
        assert caught.value.status == 413

    @pytest.mark.parametrize(
        ("cells", "column", "words"),
        [
            (",a@x.example,,,,", "name", "name is required"),
            ("A,,,,,", "email", "email is required"),
            ("A,not-an-email,,,,", "email", "is not a valid email address"),
            ("A,a@x.example,XX,,,", "country", "is not an ISO 3166 alpha-2 country code"),
            ("A,a@x.example,,not a site,,", "website", "is not a web address"),
            ("A,a@x.example,,,x,", "referral_code", "must be 3 to 64 letters"),
            ("A,a@x.example,,,,pay@", "payout_email", "is not a valid email address"),
            (f"{'N' * 201},a@x.example,,,,", "name", "has 201 characters; at most 200"),
        ],
    )
    def test_a_bad_cell_is_named_by_its_row_and_column(self, cells: str, column: str, words: str) -> None:
        [error] = parse(csv_bytes("name,email,country,website,referral_code,payout_email", cells)).errors.items
        assert (error.row, error.column) == (2, column)
        assert words in error.message

    def test_a_country_written_out_suggests_its_code(self) -> None:
        [error] = parse(csv_bytes("name,email,country", "A,a@x.example,Germany")).errors.items
        assert error.message.endswith("use DE for Germany")

    def test_a_lower_case_country_code_is_stored_upper_case(self) -> None:
        assert parse(csv_bytes("name,email,country", "A,a@x.example,fr")).rows[0].country == "FR"

    def test_a_website_without_a_scheme_gets_https(self) -> None:
        assert parse(csv_bytes("name,email,website", "A,a@x.example,acme.example/p")).rows[0].website == (
            "https://acme.example/p"
        )

    def test_a_row_with_more_values_than_columns_is_named(self) -> None:
        [error] = parse(csv_bytes("name,email", "A,a@x.example,extra")).errors.items
        assert error.row == 2 and "has 3 values; the header has 2 columns" in error.message

    def test_blank_lines_are_skipped_but_still_counted_as_rows(self) -> None:
        parsed = parse(csv_bytes("name,email", "A,a@x.example", "", ",", "B,b@x.example"))
        assert [r.row for r in parsed.rows] == [2, 5]
        assert parsed.count == 2

    def test_a_quoted_cell_over_two_lines_names_the_line_where_its_row_starts(self) -> None:
        parsed = parse(csv_bytes("name,email", '"Acme', 'Media",a@x.example', "B,bad"))
        assert parsed.rows[0].name == "Acme\nMedia"
        assert [(e.row, e.column) for e in parsed.errors.items] == [(4, "email")]

    def test_an_email_twice_in_the_file_names_both_rows_whatever_its_case(self) -> None:
        [error] = parse(csv_bytes("name,email", "A,ann@x.example", "B,b@x.example", "C,Ann@X.example")).errors.items
        assert (error.row, error.column) == (4, "email")
        assert "Ann@X.example is also on row 2" in error.message

    def test_a_referral_code_twice_in_the_file_names_both_rows(self) -> None:
        data = csv_bytes("name,email,referral_code", "A,a@x.example,acme", "B,b@x.example,acme")
        [error] = parse(data).errors.items
        assert (error.row, error.column) == (3, "referral_code") and "also on row 2" in error.message

    def test_every_error_is_counted_but_only_the_first_thousand_are_kept(self) -> None:
        parsed = parse(csv_bytes("name,email", *(f"P{i},bad{i}" for i in range(MAX_ERRORS + 500))))
        assert parsed.errors.count == MAX_ERRORS + 500
        assert len(parsed.errors.items) == MAX_ERRORS
        assert parsed.errors.items[-1].row == MAX_ERRORS + 1

    def test_the_quote_our_csv_exports_put_before_formula_like_text_is_removed(self) -> None:
        assert parse(csv_bytes("name,email", "'=Acme,a@x.example")).rows[0].name == "=Acme"

    @pytest.mark.parametrize("broken", ['A,"a@x.example"oops', 'A,"a@x.example'])
    def test_a_broken_quote_is_named_by_the_row_where_it_starts(self, broken: str) -> None:
        [error] = parse(csv_bytes("name,email", "Z,z@x.example", broken, "B,b@x.example")).errors.items
        assert (error.row, error.column) == (3, None)
        assert "is not valid CSV" in error.message


def row(line: int, email: str, **kw: str) -> ImportRow:
    return ImportRow(line, f"Partner {line}", email, **kw)  # type: ignore[arg-type]


def group(name: str, cap: int | None = None, pilot: bool = False) -> PartnerGroup:
    return PartnerGroup(id=f"grp_{name.lower()}", program_id="prg_x", name=name, size_cap=cap, is_pilot=pilot)


def known(**kw: object) -> Known:
    args: dict[str, object] = {"groups": {}, "group_sizes": {}, "owners": {}, "emails": set(), "codes": set(), **kw}
    return Known(**args)  # type: ignore[arg-type]


def checked(rows: list[ImportRow], facts: Known) -> list[tuple[int, str | None, str]]:
    from partnerpay.partners.import_csv import Errors, Parsed

    parsed = Parsed(rows, Errors(), len(rows))
    check(parsed, facts)
    return [(e.row, e.column, e.message) for e in parsed.errors.items]


class TestCheck:
    def test_a_row_in_a_known_group_gets_its_id_whatever_the_case(self) -> None:
        rows = [row(2, "a@x.example", group="pilot q1")]
        assert checked(rows, known(groups={"Pilot Q1": group("Pilot Q1")})) == []
        assert rows[0].group_id == "grp_pilot q1"

    def test_an_unknown_group_is_refused_listing_the_groups_there_are(self) -> None:
        [(line, column, message)] = checked(
            [row(2, "a@x.example", group="Gold")], known(groups={"EMEA": group("EMEA")})
        )
        assert (line, column) == (2, "group")
        assert "no group named 'Gold'" in message and "EMEA" in message

    def test_a_pilot_that_would_pass_its_cap_names_the_first_row_over_it(self) -> None:
        pilot = group("Pilot", cap=3, pilot=True)
        rows = [row(n, f"p{n}@x.example", group="Pilot") for n in range(2, 6)]
        [(line, column, message)] = checked(rows, known(groups={"Pilot": pilot}, group_sizes={pilot.id: 1}))
        assert (line, column) == (4, "group")
        assert message == "pilot Pilot is capped at 3 partners and has 1"

    def test_an_owner_email_becomes_the_staff_user_id_and_an_unknown_one_is_refused(self) -> None:
        rows = [
            row(2, "a@x.example", owner_email="Ana@Staff.example"),
            row(3, "b@x.example", owner_email="x@y.example"),
        ]
        errors = checked(rows, known(owners={"ana@staff.example": "usr_ana"}))
        assert rows[0].owner_id == "usr_ana"
        assert errors == [(3, "owner_email", "no staff user has the email x@y.example")]

    def test_an_email_already_in_the_program_is_refused_whatever_its_case(self) -> None:
        errors = checked([row(2, "Ann@X.example")], known(emails={"ann@x.example"}))
        assert errors == [(2, "email", "a partner with email Ann@X.example already exists in this program")]

    def test_a_referral_code_already_taken_is_refused(self) -> None:
        errors = checked([row(2, "a@x.example", referral_code="acme")], known(codes={"acme"}))
        assert errors == [(2, "referral_code", "referral code acme is taken")]


class TestRowError:
    def test_reads_as_row_then_column_then_the_problem(self) -> None:
        assert str(RowError(40000, "email", "bad")) == "row 40000, column email: bad"
        assert str(RowError(7, None, "has 3 values")) == "row 7: has 3 values"
