"""Writing programs: creation and settings (rates, holds, branding, the public application form)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError as PydanticError
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, check_currency
from partnerpay.programs.models import Program
from partnerpay.programs.schemas import ApplicationFormConfig
from partnerpay.programs.tracking_settings import tracking_checks, tracking_snapshot

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


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
        slug=_free_slug(session, name),
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


def slug_for(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-") or "program"


def _free_slug(session: Session, name: str) -> str:
    """The public page's address: the name, made unique with a short suffix when taken."""
    slug = slug_for(name)
    while session.scalar(select(Program.id).where(Program.slug == slug)) is not None:
        slug = f"{slug_for(name)[:40]}-{secrets.token_hex(2)}"
    return slug


def get_program_by_slug(session: Session, slug: str) -> Program:
    """The program behind a public page (/apply/{slug}); 404 for an unknown slug."""
    program = session.scalar(select(Program).where(Program.slug == slug.lower())) if SLUG.match(slug.lower()) else None
    if program is None:
        raise NotFound(f"there is no partner program at {slug!r}", field="slug")
    return program


def settings_snapshot(program: Program) -> dict[str, Any]:
    return {
        **program_snapshot(program),
        "slug": program.slug,
        "brand_color": program.brand_color,
        "logo_url": program.logo_url,
        "application_form": program.application_form,
        "auto_approve": program.auto_approve,
        "applications_open": program.applications_open,
        "default_owner_id": program.default_owner_id,
        "payout_change_hold_days": program.payout_change_hold_days,
        **tracking_snapshot(program),
    }


def form_config(program: Program) -> ApplicationFormConfig:
    """The program's application form; the default asks for every standard field, none required."""
    return ApplicationFormConfig.model_validate(program.application_form or {})


def check_slug(value: Any) -> str:
    slug = value.strip().lower() if isinstance(value, str) else ""
    if not SLUG.match(slug):
        raise ValidationError(
            f"slug must be 1 to 64 lower-case letters, digits and dashes, not starting or ending with a dash; "
            f"got {value!r}",
            field="slug",
        )
    return slug


def check_brand_color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR.match(value.strip()):
        raise ValidationError(
            f"brand_color must be a colour like #1f2a44 (#rrggbb), got {value!r}", field="brand_color"
        )
    return value.strip().lower()


def check_logo_url(value: Any) -> str | None:
    """An https address only: a logo over http would make the public form show mixed content."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text) if text else None
    if (
        parts is None
        or parts.scheme != "https"
        or not parts.hostname
        or "." not in parts.hostname
        or any(c.isspace() or c in "\"'<>" for c in text)
        or len(text) > 500
    ):
        raise ValidationError(f"logo_url must be an https:// address of an image, got {value!r}", field="logo_url")
    return text


def check_application_form(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, ApplicationFormConfig):
        value = value.model_dump()
    try:
        config = ApplicationFormConfig.model_validate(value)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("application_form", *first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(f"{where}: {message}", field=where) from None
    return config.model_dump()


Check = Callable[[Any], Any]


def _int(field: str, low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(f"{field} must be a whole number, got {value!r}", field=field)
        _check_range(field, value, low, high)
        return value

    return check


def _bool(field: str) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(f"{field} must be true or false, got {value!r}", field=field)
        return value

    return check


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200:
        raise ValidationError("name must have 1 to 200 characters", field="name")
    return value.strip()


def _rounding(value: Any) -> str:
    if value not in {r.value for r in Rounding}:
        raise ValidationError(f"rounding must be one of {[r.value for r in Rounding]}, got {value!r}", field="rounding")
    return str(value)


SETTINGS_CHECKS: dict[str, Check | None] = {
    "name": _name,
    "hold_days": _int("hold_days", 0, 3650),
    "cookie_days": _int("cookie_days", 0, 3650),
    "default_percent_bp": _int("default_percent_bp", 0, 10_000),
    "rounding": _rounding,
    "slug": check_slug,
    "brand_color": check_brand_color,
    "logo_url": check_logo_url,
    "application_form": check_application_form,
    "auto_approve": _bool("auto_approve"),
    "applications_open": _bool("applications_open"),
    "payout_change_hold_days": _int("payout_change_hold_days", 0, 365),
    "default_owner_id": None,  # checked against the staff table below
    **tracking_checks(_int, _bool),
}


def update_program_settings(
    session: Session, *, actor: Actor, program_id: str, changes: Mapping[str, Any], now: datetime
) -> Program:
    """Change some settings; every value is checked before any is written, and the audit row has both sides."""
    if not actor.can("admin" if actor.type is ActorType.STAFF else "write") or actor.partner_id is not None:
        raise Forbidden("changing program settings needs the owner role (or an API key with 'write')")
    program = get_program(session, actor, program_id)
    unknown = sorted(set(changes) - set(SETTINGS_CHECKS))
    if unknown:
        raise ValidationError(f"{unknown[0]} is not a program setting that can be changed", field=unknown[0])
    checked: dict[str, Any] = {}
    for field, value in changes.items():
        check = SETTINGS_CHECKS[field]
        checked[field] = check(value) if check is not None else _owner(session, value)
    slug = checked.get("slug")
    if slug is not None and session.scalar(select(Program.id).where(Program.slug == slug, Program.id != program.id)):
        raise Conflict(f"slug {slug!r} is taken by another program; choose another", field="slug")
    before = settings_snapshot(program)
    for field, value in checked.items():
        setattr(program, field, value)
    after = settings_snapshot(program)
    if after == before:
        return program
    session.flush()
    changed = sorted(k for k in after if after[k] != before[k])
    audit.record(
        session,
        actor=actor,
        action="program.settings",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        now=now,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    return program


def _owner(session: Session, value: Any) -> str | None:
    if value is None or value == "":
        return None
    user = session.get(StaffUser, value) if isinstance(value, str) else None
    if user is None or user.role == "viewer":
        raise ValidationError(
            f"default_owner_id must be a staff member who may manage partners (not a viewer), got {value!r}",
            field="default_owner_id",
        )
    return user.id
