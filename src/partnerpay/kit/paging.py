"""Cursor pagination by id: ids are time-sortable, so "after this id" is a stable cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from partnerpay.kit.errors import ValidationError

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
    return limit


def paginate(session: Session, stmt: Select[Any], id_column: Any, *, cursor: str | None, limit: int) -> Page[Any]:
    check_limit(limit)
    if cursor:
        stmt = stmt.where(id_column > cursor)
    rows = list(session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)
