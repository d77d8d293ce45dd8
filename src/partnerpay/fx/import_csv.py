"""Rates from a CSV file (`partnerpay fx import FILE --program ID`): all or nothing, every bad row listed.

Columns: base, quote, rate, rate_date, source (source optional, "manual" when empty). Each row goes
through the same checks and the same add_rates as the API, so the CLI cannot record what the API refuses.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.fx.service import add_rates, program_for_rates, read_rate_row
from partnerpay.kit.csv_import import Errors, ImportRejected, RowError, check_size, read_rows
from partnerpay.kit.errors import Conflict, ValidationError

COLUMNS = ("base", "quote", "rate", "rate_date", "source")
REQUIRED = ("base", "quote", "rate", "rate_date")
_LEADING = re.compile(r"^rates\.\d+(?::\s*|\.(?=\w))")  # "rates.3: " or the "rates.3." of "rates.3.rate must…"
_INDEX = re.compile(r"rates\.(\d+)")


@dataclass
class RatesImportReport:
    filename: str
    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0


def import_rates(
    session: Session, *, actor: Actor, program_id: str, data: bytes, filename: str, now: datetime, replace: bool
) -> RatesImportReport:
    """Record every row of the file or none; a bad or conflicting row rejects the file naming its row."""
    program_for_rates(session, actor, program_id)
    check_size(data)
    errors = Errors()
    rows: list[dict[str, object]] = []
    lines: list[int] = []
    for line, cells in read_rows(data, errors, columns=COLUMNS, required=REQUIRED):
        if cells is None:
            continue
        row: dict[str, object] = {k: v for k, v in cells.items() if v != "" and k in COLUMNS}
        rows.append(row)
        lines.append(line)
        try:
            read_rate_row(len(rows) - 1, row)
        except ValidationError as exc:
            errors.add(line, _column(exc.field), _message(exc.message, lines))
    report = RatesImportReport(filename, rows=len(rows))
    if not errors.count and not rows:
        errors.add(1, None, "the file has no rates")
    if not errors.count:
        try:
            results = add_rates(session, actor, program_id, rows, now, replace=replace)
        except (ValidationError, Conflict) as exc:  # a repeated row, or a day already recorded differently
            index = int((exc.field or "rates.0").split(".")[1])
            errors.add(lines[index], _column(exc.field), _message(exc.message, lines))
        else:
            report.outcomes.update(r.outcome for r in results)
    if errors.count:
        report.errors, report.error_count = errors.in_file_order(COLUMNS), errors.count
        raise ImportRejected(report)
    return report


def _column(field_name: str | None) -> str | None:
    """rates.3.rate → rate; rates.3 → None (the whole row)."""
    parts = (field_name or "").split(".")
    return parts[2] if len(parts) > 2 else None


def _message(text: str, lines: list[int]) -> str:
    """The service's message in the file's terms: its own `rates.N` prefix dropped, other rows by file row."""
    text = _LEADING.sub("", text, count=1).replace("send replace: true", "run again with --replace")
    return _INDEX.sub(lambda m: f"row {lines[int(m[1])]}" if int(m[1]) < len(lines) else m[0], text)
