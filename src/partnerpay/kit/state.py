"""Compare-and-set state transitions: a row moves only from the state the caller saw."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from partnerpay.kit.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


class StateMachine:
    """Allowed transitions of one entity; `check` raises on anything else."""

    def __init__(self, name: str, transitions: Mapping[StrEnum, Iterable[StrEnum]]) -> None:
        self.name = name
        self.transitions = {src: frozenset(dsts) for src, dsts in transitions.items()}

    def allowed(self, src: StrEnum, dst: StrEnum) -> bool:
        return dst in self.transitions.get(src, frozenset())

    def check(self, src: StrEnum, dst: StrEnum, *, object_id: str = "") -> None:
        if not self.allowed(src, dst):
            raise InvalidTransition(
                f"{self.name} {object_id} is {src.value}; it cannot become {dst.value}".replace("  ", " "),
                field="status",
            )

    def transition(
        self,
        session: Session,
        model: Any,
        ids: list[str],
        *,
        src: StrEnum,
        dst: StrEnum,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """UPDATE … SET status=dst WHERE id IN ids AND status=src; raise unless every row moved.

        Loaded objects are brought up to date ("fetch"), so callers never act on a stale status.
        """
        self.check(src, dst)
        if not ids:
            return 0
        stmt = (
            update(model)
            .where(model.id.in_(ids), model.status == src.value)
            .values(status=dst.value, **(values or {}))
            .execution_options(synchronize_session="fetch")
        )
        moved = int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
        # "fetch" moves status, but other SET columns of objects loaded earlier can stay stale.
        changed = ["status", *(values or {})]
        for obj in list(session.identity_map.values()):
            if isinstance(obj, model) and obj.id in ids:
                session.expire(obj, changed)
        if moved != len(ids):
            raise InvalidTransition(
                f"{len(ids) - moved} {self.name}(s) changed state meanwhile; nothing was changed",
                field="status",
            )
        return moved
