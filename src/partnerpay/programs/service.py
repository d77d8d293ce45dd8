"""Writing programs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, check_currency
from partnerpay.programs.models import Program


def program_snapshot(program: Program) -> dict[str, object]:
    return {
        "name": program.name,
        "currency": program.currency,
        "hold_days": program.hold_days,
        "default_percent_bp": program.default_percent_bp,
        "cookie_days": program.cookie_days,
        "rounding": program.rounding,
    }


def create_program(
    session: Session,
    *,
    actor: Actor,
    name: str,
    currency: str,
    hold_days: int,
    now: datetime,
    default_percent_bp: int = 0,
    cookie_days: int = 30,
    rounding: str = Rounding.HALF_EVEN.value,
) -> Program:
    """A new program; only actors not bound to one program may create programs."""
    if actor.program_id is not None:
        raise Forbidden("this API key belongs to one program and cannot create programs")
    if not name.strip():
        raise ValidationError("name must not be empty", field="name")
    check_currency(currency)
    _check_range("hold_days", hold_days, 0, 3650)
    _check_range("default_percent_bp", default_percent_bp, 0, 10_000)
    _check_range("cookie_days", cookie_days, 0, 3650)
    if rounding not in {r.value for r in Rounding}:
        raise ValidationError(f"rounding must be one of {[r.value for r in Rounding]}", field="rounding")
    program = Program(
        id=new_id("prg"),
        name=name.strip(),
        currency=currency,
        hold_days=hold_days,
        default_percent_bp=default_percent_bp,
        cookie_days=cookie_days,
        rounding=rounding,
        created_at=now,
    )
    session.add(program)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="program.create",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        after=program_snapshot(program),
        now=now,
    )
    return program


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValidationError(f"{field} must be between {low} and {high}, got {value}", field=field)


def get_program(session: Session, actor: Actor, program_id: str) -> Program:
    """The program, or 404 when it does not exist or the actor may not see it."""
    program = session.get(Program, program_id)
    if program is None or not actor.sees_program(program.id):
        raise NotFound(f"program {program_id} not found", field="program_id")
    return program
