"""Reading and checking a partner CSV, with no database: every problem named by row and column.

`parse` checks the file on its own (size, encoding, header, each cell, duplicates within the file);
`check` checks its rows against what the database already holds, handed in as `Known`. Rows are
numbered as in a spreadsheet: the header is row 1, the first partner row 2.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pycountry

from partnerpay.kit import csv_import
from partnerpay.kit.csv_import import MAX_BYTES, MAX_ERRORS, PayloadTooLarge, RowError, check_size
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.models import PartnerGroup
from partnerpay.partners.service import check_email

COLUMNS = ("name", "email", "group", "country", "company", "website", "payout_email", "referral_code", "owner_email")
REQUIRED = ("name", "email")
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

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# Shared with the event import (kit/csv_import), and named here for the callers of this module.
__all__ = ["COLUMNS", "MAX_BYTES", "MAX_ERRORS", "Errors", "ImportRejected", "ImportReport", "ImportRow", "Known"]
__all__ += ["Parsed", "PayloadTooLarge", "RowError", "check", "parse"]


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
class Errors(csv_import.Errors):
    def in_file_order(self, columns: Sequence[str] = COLUMNS) -> list[RowError]:
        return super().in_file_order(columns)


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


class ImportRejected(csv_import.ImportRejected):
    """Any bad row rejects the whole file; the error carries every problem found (up to MAX_ERRORS)."""

    report: ImportReport

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report)


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
    check_size(data, MAX_BYTES)
    errors = Errors()
    rows: list[ImportRow] = []
    emails: dict[str, int] = {}
    codes: dict[str, int] = {}
    count = 0
    for line, cells in csv_import.read_rows(data, errors, columns=COLUMNS, required=REQUIRED, progress=progress):
        count += 1
        row = _row(line, cells, errors) if cells is not None else None
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
