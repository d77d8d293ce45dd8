"""Reading the console's and the portal's dispute forms: amounts typed in major units, dates, uploaded files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from partnerpay.deals.rules import minor_units
from partnerpay.kit.errors import ValidationError
from partnerpay.messaging.attachments import AttachmentStore, read_limited

MAX_FORM_FILES = 5


def signed_minor_units(text: str, currency: str, *, field: str = "amount") -> int | None:
    """'12.50' → 1250, '-3.00' → -300, blank → None; exact decimals only (never a float)."""
    cleaned = text.strip()
    negative = cleaned.startswith("-")
    value = minor_units(cleaned.lstrip("-"), currency, field=field) if cleaned else None
    return -value if value is not None and negative else value


def day(text: str, *, field: str = "event_date") -> datetime | None:
    """'2026-11-03' → midnight UTC of that day; blank → None."""
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        return datetime.combine(date.fromisoformat(cleaned), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise ValidationError(f"{field} must be a date such as 2026-11-03, got {text!r}", field=field) from None


def read_files(files: list[Any] | None, store: AttachmentStore) -> list[tuple[str, str, bytes]]:
    """(name, declared type, bytes) of each file chosen; 413 naming the limit as soon as one is too large."""
    chosen = [f for f in files or [] if getattr(f, "filename", "")]
    if len(chosen) > MAX_FORM_FILES:
        raise ValidationError(f"attach at most {MAX_FORM_FILES} files at once", field="file")
    return [(f.filename, f.content_type or "", read_limited(f.file, store)) for f in chosen]
