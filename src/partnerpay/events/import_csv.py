"""Reading and checking an events CSV, with no database: every problem named by row and column.

`parse` checks the file on its own against the program it goes into (its id, currency and custom event
types, handed in as `Target`); `check` checks the rows against what the database holds (`Known`). The
columns are those of POST /events; every cell is text, so amounts, times and metadata are parsed here
strictly (a float amount such as 12.50 is refused, not rounded).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pydantic

from partnerpay.events.schemas import NEEDS_AMOUNT, REVERSING, EventIn, EventType
from partnerpay.kit import csv_import
from partnerpay.kit.csv_import import MAX_BYTES, Progress, RowError, check_size
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import check_currency

COLUMNS = (
    "program_id", "type", "external_id", "occurred_at", "customer_external_id", "partner_id", "referral_code",
    "coupon", "amount", "currency", "product", "original_external_id", "metadata", "click_id", "customer_email",
    "customer_domain",
)  # fmt: skip
REQUIRED = ("type", "external_id", "occurred_at", "customer_external_id")
AMOUNT = re.compile(r"^[0-9]+$")
# RFC 3339: a date, a time to the second (fractions optional) and an offset; Z means UTC.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_METADATA = 10_000  # characters of JSON in one metadata cell


@dataclass(frozen=True)
class Target:
    """The program the file goes into: what each row is checked against."""

    program_id: str
    currency: str
    custom_types: frozenset[str] = frozenset()
    # Other currencies the program has rates for: a row in one is converted when recorded, with the rate of
    # its day (a row older than every rate of its currency is refused then, at its row and column).
    rated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EventRow:
    row: int
    event: EventIn


@dataclass
class Errors(csv_import.Errors):
    def in_file_order(self, columns: Any = COLUMNS) -> list[RowError]:
        return super().in_file_order(columns)


@dataclass(frozen=True, slots=True)
class Named:
    """The partner, referral code and coupon a row names, kept even when another of its cells is wrong:
    the database check then lists an unknown code on a row that also has a bad amount."""

    row: int
    partner_id: str | None
    referral_code: str | None
    coupon: str | None


@dataclass
class Parsed:
    rows: list[EventRow]  # valid rows, each external id once, in file order
    errors: Errors
    named: list[Named] = field(default_factory=list)  # rows naming a partner, referral code or coupon
    count: int = 0  # event rows in the file, good or bad
    repeated: int = 0  # rows repeating an earlier row exactly: recorded once


@dataclass
class ImportReport:
    program_id: str
    filename: str
    rows: int
    dry_run: bool
    created: int = 0  # events recorded by this import (or that a dry run would record)
    duplicates: int = 0  # rows already recorded before, or repeated in the file: nothing new
    by_type: dict[str, int] = field(default_factory=dict)  # new events by type
    amounts: dict[str, int] = field(default_factory=dict)  # currency → total minor units of the new events
    commissions: int = 0  # commission lines the new events created (earned or clawed back)
    import_id: str | None = None  # names the import's audit row (events.import)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImportRejected(csv_import.ImportRejected):
    """Any bad row rejects the whole file; the error carries every problem found (up to MAX_ERRORS)."""

    report: ImportReport

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report)


def _amount(text: str) -> int | str:
    """Minor units as a whole number, or the reason the cell is not one."""
    if AMOUNT.match(text):
        return int(text)
    if text.startswith("-") and AMOUNT.match(text[1:]):
        return f"{text} is negative; a refund or chargeback row gives the amount it takes back, positive"
    return (
        f"{text!r} is not a whole number of minor units: write 1250 for 12.50 "
        "(no decimals, exponents, signs or thousands separators)"
    )


def _occurred_at(text: str) -> datetime | str:
    if not RFC3339.match(text):
        return f"{text!r} is not an RFC 3339 time with an offset such as 2026-01-31T14:05:00Z or …+01:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        return f"{text!r} is not a real time ({exc})"


def _cells(cells: dict[str, str], target: Target) -> tuple[dict[str, Any], dict[str, str]]:
    """The row as POST /events input, and problems found in its cells (column → message)."""
    problems: dict[str, str] = {}
    payload: dict[str, Any] = {"program_id": target.program_id}
    for column, text in cells.items():
        if not text or column == "program_id":
            continue
        value: Any = text
        if column == "amount":
            value = _amount(text)
            if isinstance(value, str):
                problems[column] = value
        elif column == "occurred_at":
            value = _occurred_at(text)
            if isinstance(value, str):
                problems[column] = value
        elif column == "currency":
            value = text.upper()
            try:
                check_currency(value)
            except ValidationError as exc:
                problems[column] = exc.message
            else:
                if value != target.currency and value not in target.rated:
                    problems[column] = (
                        f"this program pays in {target.currency}; {value} is not accepted without a "
                        f"{value}→{target.currency} rate (POST /programs/{target.program_id}/fx-rates)"
                    )
        elif column == "metadata":
            value = _metadata(text)
            if isinstance(value, str):
                problems[column] = value
        elif column == "product" and CONTROL.search(text):
            problems[column] = "the product name has a control character (a line break or tab)"
        payload[column] = value
    given = cells.get("program_id")
    if given and given != target.program_id:
        problems["program_id"] = f"{given} is not the program being imported into ({target.program_id})"
    for column in REQUIRED:
        if not cells.get(column):
            problems[column] = f"{column} is required"
    return {k: v for k, v in payload.items() if k not in problems}, problems


def _metadata(text: str) -> dict[str, Any] | str:
    if len(text) > MAX_METADATA:
        return f"metadata has {len(text):,} characters; at most {MAX_METADATA:,}"
    try:
        value = json.loads(text)
    except ValueError:
        return 'metadata must be a JSON object such as {"plan": "pro"}'
    if not isinstance(value, dict):
        return f'metadata must be a JSON object such as {{"plan": "pro"}}, not {type(value).__name__}'
    return value


def _row(line: int, cells: dict[str, str], target: Target, errors: Errors) -> EventIn | None:
    """One row checked on its own; None (and errors added) when any cell is wrong."""
    payload, problems = _cells(cells, target)
    try:
        event = EventIn.model_validate(payload)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False):
            column = str(error["loc"][0]) if error["loc"] else None
            if column not in problems:
                problems[column or ""] = error["msg"]
        event = None
    if event is not None:
        problems = _meaning(event, target) | problems  # a cell's own problem wins: "amount is required" hides none
    for column, message in problems.items():
        errors.add(line, column or None, message)
    return None if problems else event


def _meaning(event: EventIn, target: Target) -> dict[str, str]:
    """What a valid shape can still get wrong: an unknown custom type, money missing where it is needed."""
    problems: dict[str, str] = {}
    kind = str(event.type)
    if not isinstance(event.type, EventType) and kind not in target.custom_types:
        own = ", ".join(sorted(target.custom_types)) or "none"
        problems["type"] = f"unknown event type {kind!r}: not a core type nor one of the program's custom types ({own})"
    if event.type in NEEDS_AMOUNT:
        if event.amount is None:
            problems["amount"] = f"amount is required for {kind} events"
        if event.currency is None:
            problems["currency"] = f"currency is required for {kind} events"
    if event.type in REVERSING and event.amount == 0:
        problems["amount"] = "a refund or chargeback must take back more than zero"
    return problems


def parse(data: bytes, *, target: Target, progress: Progress | None = None) -> Parsed:
    """Check the file on its own: size, encoding, header, every cell, and external ids within the file."""
    check_size(data, MAX_BYTES)
    errors = Errors()
    parsed = Parsed([], errors)
    seen: dict[str, EventRow] = {}
    for line, cells in csv_import.read_rows(data, errors, columns=COLUMNS, required=REQUIRED, progress=progress):
        parsed.count += 1
        if cells is None:
            continue
        event = _row(line, cells, target, errors)
        named = Named(
            line, cells.get("partner_id") or None, cells.get("referral_code") or None, cells.get("coupon") or None
        )
        if named.partner_id or named.referral_code or named.coupon:
            parsed.named.append(named)
        if event is None:
            continue
        first = seen.setdefault(event.external_id, EventRow(line, event))
        if first.row == line:
            parsed.rows.append(first)
        elif first.event == event:
            parsed.repeated += 1  # the same event twice (a file concatenated with itself): once is enough
        else:
            errors.add(
                line,
                "external_id",
                f"{event.external_id} is also on row {first.row} with different content; one external id is one event",
            )
    return parsed


@dataclass
class Known:
    """What the database holds that the rows name: partners, referral codes and coupons of the program."""

    partner_ids: set[str]
    referral_codes: set[str]
    coupon_keys: set[str]  # upper case, as coupons are compared


def check(parsed: Parsed, known: Known) -> None:
    """Rows against the database: every partner, referral code and coupon they name exists in the program.

    As when an event is recorded, a referral code counts only on a row without a partner_id.
    """
    add = parsed.errors.add
    for item in parsed.named:
        if item.partner_id is not None and item.partner_id not in known.partner_ids:
            add(item.row, "partner_id", f"unknown partner {item.partner_id!r} in this program")
        elif item.partner_id is None and item.referral_code and item.referral_code not in known.referral_codes:
            add(item.row, "referral_code", f"unknown referral code {item.referral_code!r} in this program")
        if item.coupon is not None and item.coupon.upper() not in known.coupon_keys:
            add(item.row, "coupon", f"unknown coupon {item.coupon!r} in this program")


def summary(rows: list[EventRow]) -> tuple[dict[str, int], dict[str, int]]:
    """New events by type, and their total amount per currency (minor units)."""
    by_type = Counter(str(r.event.type) for r in rows)
    amounts: defaultdict[str, int] = defaultdict(int)
    for r in rows:
        if r.event.amount is not None and r.event.currency is not None:
            amounts[r.event.currency] += r.event.amount
    return dict(sorted(by_type.items())), dict(sorted(amounts.items()))
