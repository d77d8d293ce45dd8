"""Reading an uploaded CSV for an all-or-nothing import, shared by the partner and the event imports.

Rows are numbered as in a spreadsheet: the header is row 1, the first data row 2. Every problem is
collected as a `RowError` (row and column) so that one run lists all of them, not only the first.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from partnerpay.kit.errors import PartnerpayError, ValidationError

MAX_BYTES = 50 * 1024 * 1024
MAX_ERRORS = 1000
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


@dataclass
class Errors:
    """Every error is counted; the first MAX_ERRORS are kept to show."""

    items: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, row: int, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(row, column, message))

    def in_file_order(self, columns: Sequence[str] = ()) -> list[RowError]:
        """By row, then by column as the import lists them; a problem of the whole row before its cells'."""
        rank = {c: i for i, c in enumerate(columns)}
        return sorted(self.items, key=lambda e: (e.row, rank.get(e.column, -1) if e.column else -1))


class Rejected(Protocol):
    """What an import's report says about a refused file."""

    filename: str
    rows: int
    errors: list[RowError]
    error_count: int


class ImportRejected(ValidationError):
    """Any bad row rejects the whole file; the error carries every problem found (up to MAX_ERRORS)."""

    def __init__(self, report: Rejected) -> None:
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


def cells(columns: list[str], values: list[str]) -> dict[str, str]:
    """Column → trimmed text ("" when empty), without the quote our exports put before formula-like text."""
    found = dict(zip(columns, map(str.strip, values), strict=True))
    if "'" in "".join(values):  # one C-level scan; most rows have no quote at all
        for column in [c for c, v in found.items() if v.startswith(_ESCAPED)]:
            found[column] = found[column][1:]
    return found


def header(values: list[str], errors: Errors, *, columns: Sequence[str], required: Sequence[str]) -> list[str]:
    """The header's column names (lower case, spaces and dashes as _); unknown, repeated or missing ones are errors."""
    names = [v.strip().lower().replace(" ", "_").replace("-", "_") for v in values]
    unknown = [c or "(empty)" for c in names if c not in columns]
    if unknown:
        errors.add(1, None, f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(columns)}")
    for name, times in Counter(names).items():
        if times > 1 and name:
            errors.add(1, name, f"column {name} appears {times} times")
    missing = [c for c in required if c not in names]
    if missing:
        errors.add(1, None, f"required column(s) missing: {', '.join(missing)}")
    return names


def check_size(data: bytes, limit: int = MAX_BYTES) -> None:
    if len(data) > limit:
        raise PayloadTooLarge(f"the file has {len(data):,} bytes; at most {limit:,} per import", field="file")


def read_rows(
    data: bytes,
    errors: Errors,
    *,
    columns: Sequence[str],
    required: Sequence[str],
    progress: Progress | None = None,
) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(row number, cells) for each non-blank data row; cells is None for a row of the wrong width.

    Problems of the file itself (encoding, header, broken quotes) are added to `errors`, and no row
    is read after them. The caller checks the size first (`check_size`): it decides which limit applies.
    """
    try:
        text = data.decode("utf-8-sig")  # a BOM, as Excel writes, is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        errors.add(line, None, f"byte 0x{data[exc.start]:02X} is not UTF-8; save the file as “CSV UTF-8”")
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = next(reader, None)
    if first is None:
        errors.add(1, None, f"the file is empty; the first row must name the columns ({', '.join(columns)})")
        return
    names = header(first, errors, columns=columns, required=required)
    if errors.count:
        return
    width, total, last, count = len(names), text.count("\n"), reader.line_num, 0
    try:
        for values in reader:
            line, last = last + 1, reader.line_num  # a quoted cell may span lines: name where the row starts
            if not any(values):
                continue
            count += 1
            if len(values) != width:
                errors.add(line, None, f"has {len(values)} values; the header has {width} columns")
                yield line, None
            else:
                yield line, cells(names, values)
            if progress is not None and count % 5000 == 0:
                progress("checking rows", last, total)
    except csv.Error as exc:  # nothing after a broken quote can be read reliably: stop at its row
        errors.add(last + 1, None, f"is not valid CSV ({exc}); check the quotes in this row")
