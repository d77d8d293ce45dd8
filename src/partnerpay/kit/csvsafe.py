"""CSV cells that a spreadsheet will not execute (formula injection, OWASP)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def escape_cell(value: object) -> str:
    """Prefix text that starts like a formula with a quote; plain numbers stay numbers."""
    text = "" if value is None else str(value)
    if text.startswith(_TRIGGERS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and body.replace(".", "", 1).isdigit()


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([escape_cell(v) for v in row])
    return buffer.getvalue()
