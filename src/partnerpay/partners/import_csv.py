"""Reading and checking a partner CSV, with no database: every problem named by row and column.

`parse` checks the file on its own (size, encoding, header, each cell, duplicates within the file);
`check` checks its rows against what the database already holds, handed in as `Known`. Rows are
numbered as in a spreadsheet: the header is row 1, the first partner row 2.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pycountry

from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners.models import PartnerGroup
from partnerpay.partners.service import check_email

COLUMNS = ("name", "email", "group", "country", "company", "website", "payout_email", "referral_code", "owner_email")
REQUIRED = ("name", "email")
MAX_BYTES = 50 * 1024 * 1024
MAX_ERRORS = 1000
LENGTHS = {"name": 200, "company": 200, "website": 500}
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
WEBSITE = re.compile(r"^(https?://)?[^\s/?#@]+\.[^\s/?#@]+([/?#]\S*)?$", re.IGNORECASE)
# The same ISO 3166 list as validation.check_country, as a set: one lookup per row.
COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
_COUNTRY_BY_NAME = {
    name.lower(): c.alpha_2
    for c in pycountry.countries
    for name in (c.name, getattr(c, "common_name", None), getattr(c, "official_name", None))
    if name
}
_ESCAPED = ("'=", "'+", "'-", "'@")  # formula-like cells our own CSV exports quoted (kit/csvsafe)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class PayloadTooLarge(PartnerpayError):
    code = "payload_too_large"
    status = 413


@dataclass(frozen=True)
class RowError:
    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.column else f"row {self.row}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ImportRow:
    row: int
    name: str
    email: str
    group: str | None = None
    country: str | None = None
    company: str | None = None
    website: str | None = None
    payout_email: str | None = None
    referral_code: str | None = None
    owner_email: str | None = None
    group_id: str | None = None
    owner_id: str | None = None


@dataclass
class Errors:
    """Every error is counted; the first MAX_ERRORS are kept to show."""

    items: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, row: int, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(row, column, message))

    def in_file_order(self) -> list[RowError]:
        """By row, then by column; a problem of the whole row before its cells'."""
        return sorted(self.items, key=lambda e: (e.row, COLUMNS.index(e.column) if e.column in COLUMNS else -1))


@dataclass
class Parsed:
    rows: list[ImportRow]  # the rows whose cells are valid on their own
    errors: Errors
    count: int = 0  # partner rows in the file, good or bad


@dataclass
class ImportReport:
    program_id: str
    filename: str
    rows: int
    dry_run: bool
    created: int = 0
    import_id: str | None = None
    groups: dict[str, int] = field(default_factory=dict)  # group name → partners going into it
    with_owner: int = 0
    with_payout_email: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImportRejected(ValidationError):
    """Any bad row rejects the whole file; the error carries every problem found (up to MAX_ERRORS)."""

    def __init__(self, report: ImportReport) -> None:
        first = report.errors[0]
        more = f" (and {report.error_count - 1:,} more)" if report.error_count > 1 else ""
        super().__init__(
            f"{report.filename}: nothing was imported. {first}{more}",
            field=first.column,
            row=first.row,
            column=first.column,
            errors=[asdict(e) for e in report.errors],
            error_count=report.error_count,
            rows=report.rows,
        )
        self.report = report


def _cells(columns: list[str], values: list[str]) -> dict[str, str]:
    """Column → trimmed text ("" when empty), without the quote our exports put before formula-like text."""
    cells = dict(zip(columns, map(str.strip, values), strict=True))
    if "'" in "".join(values):  # one C-level scan; most rows have no quote at all
        for column in [c for c, v in cells.items() if v.startswith(_ESCAPED)]:
            cells[column] = cells[column][1:]
    return cells


def _header(values: list[str], errors: Errors) -> list[str]:
    columns = [v.strip().lower().replace(" ", "_").replace("-", "_") for v in values]
    unknown = [c or "(empty)" for c in columns if c not in COLUMNS]
    if unknown:
        errors.add(1, None, f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}")
    for name, times in Counter(columns).items():
        if times > 1 and name:
            errors.add(1, name, f"column {name} appears {times} times")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        errors.add(1, None, f"required column(s) missing: {', '.join(missing)}")
    return columns


def _row(line: int, cells: dict[str, str], errors: Errors) -> ImportRow | None:
    """One row's cells checked on their own; None (and errors added) when any is wrong."""
    before = errors.count
    get = cells.get
    for column in REQUIRED:
        if not get(column):
            errors.add(line, column, f"{column} is required")
    for column, most in LENGTHS.items():
        value = get(column)
        if value and len(value) > most:
            errors.add(line, column, f"{column} has {len(value)} characters; at most {most}")
    for column in ("email", "payout_email", "owner_email"):
        value = get(column)
        if value:
            try:
                check_email(value, column)
            except ValidationError as exc:
                errors.add(line, column, exc.message)
    country = get("country") or None
    if country is not None and country.upper() not in COUNTRIES:
        hint = _COUNTRY_BY_NAME.get(country.lower())
        tip = f"; use {hint} for {country}" if hint else ""
        errors.add(line, "country", f"{country!r} is not an ISO 3166 alpha-2 country code such as DE or US{tip}")
    website = get("website") or None
    if website is not None and not WEBSITE.match(website):
        errors.add(line, "website", f"{website!r} is not a web address such as https://example.com")
    code = get("referral_code") or None
    if code is not None and not CODE.match(code):
        errors.add(line, "referral_code", f"{code!r} must be 3 to 64 letters, digits, - or _, starting with one")
    name, email = get("name"), get("email")
    if errors.count != before or not name or not email:
        return None
    if website is not None and not website.lower().startswith(("http://", "https://")):
        website = "https://" + website
    return ImportRow(
        line,
        name,
        email,
        group=get("group") or None,
        country=country.upper() if country else None,
        company=get("company") or None,
        website=website,
        payout_email=get("payout_email") or None,
        referral_code=code,
        owner_email=get("owner_email") or None,
    )


def parse(data: bytes, *, progress: Progress | None = None) -> Parsed:
    """Check the file on its own: size, encoding, header, every cell, and duplicates within the file."""
    errors = Errors()
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"the file has {len(data):,} bytes; at most {MAX_BYTES:,} per import", field="file")
    try:
        text = data.decode("utf-8-sig")  # a BOM, as Excel writes, is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        errors.add(line, None, f"byte 0x{data[exc.start]:02X} is not UTF-8; save the file as “CSV UTF-8”")
        return Parsed([], errors)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader, None)
    if header is None:
        errors.add(1, None, f"the file is empty; the first row must name the columns ({', '.join(COLUMNS)})")
        return Parsed([], errors)
    columns = _header(header, errors)
    if errors.count:
        return Parsed([], errors)
    width, total, last, count = len(columns), text.count("\n"), reader.line_num, 0
    rows: list[ImportRow] = []
    emails: dict[str, int] = {}
    codes: dict[str, int] = {}
    try:
        for values in reader:
            line, last = last + 1, reader.line_num  # a quoted cell may span lines: name where the row starts
            if not any(values):
                continue
            count += 1
            if len(values) != width:
                errors.add(line, None, f"has {len(values)} values; the header has {width} columns")
                continue
            row = _row(line, _cells(columns, values), errors)
            if row is None:
                continue
            first = emails.setdefault(row.email.lower(), line)
            if first != line:
                errors.add(line, "email", f"{row.email} is also on row {first}; each partner appears once")
            if row.referral_code is not None:
                first = codes.setdefault(row.referral_code, line)
                if first != line:
                    errors.add(line, "referral_code", f"{row.referral_code} is also on row {first}")
            rows.append(row)
            if progress is not None and count % 5000 == 0:
                progress("checking rows", last, total)
    except csv.Error as exc:  # nothing after a broken quote can be read reliably: stop at its row
        errors.add(last + 1, None, f"is not valid CSV ({exc}); check the quotes in this row")
    return Parsed(rows, errors, count)


@dataclass
class Known:
    """What the database already holds that the file's rows are checked against."""

    groups: dict[str, PartnerGroup]  # name → group of the program
    group_sizes: dict[str, int]  # group id → partners in it now
    owners: dict[str, str]  # staff email (lower case) → staff user id
    emails: set[str]  # partner emails in the program (lower case)
    codes: set[str]  # referral codes named in the file that are taken


def check(parsed: Parsed, known: Known) -> None:
    """Rows against the database: groups and owners exist, emails and codes are free, group caps hold."""
    errors = parsed.errors
    folded = {name.lower(): g for name, g in known.groups.items()}
    incoming: Counter[str] = Counter()
    for row in parsed.rows:
        if row.group is not None:
            group = known.groups.get(row.group) or folded.get(row.group.lower())
            if group is None:
                names = ", ".join(sorted(known.groups)[:10]) or "none yet"
                errors.add(row.row, "group", f"no group named {row.group!r} in this program (groups: {names})")
            else:
                row.group_id = group.id
                incoming[group.id] += 1
                has = known.group_sizes.get(group.id, 0)
                if group.size_cap is not None and has + incoming[group.id] == group.size_cap + 1:  # named once
                    kind = "pilot" if group.is_pilot else "group"
                    errors.add(
                        row.row, "group", f"{kind} {group.name} is capped at {group.size_cap} partners and has {has}"
                    )
        if row.owner_email is not None:
            row.owner_id = known.owners.get(row.owner_email.lower())
            if row.owner_id is None:
                errors.add(row.row, "owner_email", f"no staff user has the email {row.owner_email}")
        if row.email.lower() in known.emails:
            errors.add(row.row, "email", f"a partner with email {row.email} already exists in this program")
        if row.referral_code is not None and row.referral_code in known.codes:
            errors.add(row.row, "referral_code", f"referral code {row.referral_code} is taken")
