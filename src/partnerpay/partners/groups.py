"""Groups and pilots: create and edit them, move partners in and out (a pilot never grows past its cap)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.events.models import Customer, Event
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.activity import record_activity
from partnerpay.partners.admin import need_write, visible_partners
from partnerpay.partners.models import Partner, PartnerGroup
from partnerpay.programs.service import get_program

EDITABLE = ("name", "description", "percent_bp", "is_pilot", "size_cap", "starts_on", "ends_on")


def snapshot(group: PartnerGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "description": group.description,
        "percent_bp": group.percent_bp,
        "is_pilot": group.is_pilot,
        "size_cap": group.size_cap,
        "starts_on": group.starts_on.isoformat() if group.starts_on else None,
        "ends_on": group.ends_on.isoformat() if group.ends_on else None,
    }


def get_group(session: Session, actor: Actor, group_id: str) -> PartnerGroup:
    """The group, or 404 when it does not exist or belongs to a program the actor may not see."""
    group = session.get(PartnerGroup, group_id)
    if group is None or not actor.sees_program(group.program_id) or actor.partner_id is not None:
        raise NotFound(f"group {group_id} not found", field="group_id")
    return group


def group_size(session: Session, group_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(Partner).where(Partner.group_id == group_id)) or 0)


def _check(values: Mapping[str, Any], *, current_size: int) -> dict[str, Any]:
    """Validate a whole group's fields; returns them cleaned. Each error names its field."""
    name = str(values.get("name") or "").strip()
    if not name:
        raise ValidationError("name must not be empty", field="name")
    if len(name) > 200:
        raise ValidationError("name has at most 200 characters", field="name")
    description = str(values.get("description") or "").strip()
    percent_bp = values.get("percent_bp")
    if percent_bp is not None and (isinstance(percent_bp, bool) or not isinstance(percent_bp, int)):
        raise ValidationError(f"percent_bp must be whole basis points, got {percent_bp!r}", field="percent_bp")
    if percent_bp is not None and not 0 <= percent_bp <= 10_000:
        raise ValidationError(
            f"percent_bp must be between 0 and 10000 (0 % to 100 %), got {percent_bp}", field="percent_bp"
        )
    size_cap = values.get("size_cap")
    if size_cap is not None:
        if isinstance(size_cap, bool) or not isinstance(size_cap, int) or size_cap < 1:
            raise ValidationError(f"size_cap must be a whole number of at least 1, got {size_cap!r}", field="size_cap")
        if size_cap < current_size:
            raise ValidationError(
                f"size_cap {size_cap} is below the {current_size} partners already in the group; "
                "move some out first or raise the cap",
                field="size_cap",
            )
    starts_on, ends_on = values.get("starts_on"), values.get("ends_on")
    for key, value in (("starts_on", starts_on), ("ends_on", ends_on)):
        if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
            raise ValidationError(f"{key} must be a date such as 2026-03-01, got {value!r}", field=key)
    if starts_on is not None and ends_on is not None and ends_on <= starts_on:
        raise ValidationError(
            f"ends_on {ends_on.isoformat()} must be after starts_on {starts_on.isoformat()}", field="ends_on"
        )
    return {
        "name": name,
        "description": description,
        "percent_bp": percent_bp,
        "is_pilot": bool(values.get("is_pilot")),
        "size_cap": size_cap,
        "starts_on": starts_on,
        "ends_on": ends_on,
    }


def _check_name_free(session: Session, program_id: str, name: str, group_id: str | None = None) -> None:
    stmt = select(PartnerGroup.id).where(
        PartnerGroup.program_id == program_id, func.lower(PartnerGroup.name) == name.lower()
    )
    if group_id is not None:
        stmt = stmt.where(PartnerGroup.id != group_id)
    if session.scalar(stmt):
        raise Conflict(f"this program already has a group named {name!r}", field="name")


def create_group(session: Session, *, actor: Actor, program_id: str, now: datetime, **fields: Any) -> PartnerGroup:
    """A new group (a pilot when is_pilot, usually with a size_cap and dates) in one program."""
    need_write(actor, "creating a group")
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"unknown group field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    program = get_program(session, actor, program_id)
    values = _check(fields, current_size=0)
    _check_name_free(session, program.id, values["name"])
    group = PartnerGroup(id=new_id("grp"), program_id=program.id, created_at=now, **values)
    session.add(group)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="group.create",
        object_type="group",
        object_id=group.id,
        program_id=program.id,
        now=now,
        after=snapshot(group),
    )
    return group


def update_group(
    session: Session, *, actor: Actor, group_id: str, changes: Mapping[str, Any], now: datetime
) -> PartnerGroup:
    """Change some of a group's fields; the whole result is validated (cap ≥ current size, dates in order)."""
    need_write(actor, "editing a group")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"unknown group field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    group = _locked(session, actor, group_id)
    before = snapshot(group)
    merged = {key: getattr(group, key) for key in EDITABLE} | dict(changes)
    values = _check(merged, current_size=group_size(session, group.id))
    if values["name"] != group.name:
        _check_name_free(session, group.program_id, values["name"], group.id)
    for key, value in values.items():
        setattr(group, key, value)
    session.flush()
    after = snapshot(group)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="group.update",
            object_type="group",
            object_id=group.id,
            program_id=group.program_id,
            now=now,
            before=before,
            after=after,
        )
    return group


def _locked(session: Session, actor: Actor, group_id: str) -> PartnerGroup:
    """The group, its row locked until commit on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises)."""
    group = get_group(session, actor, group_id)
    session.execute(select(PartnerGroup.id).where(PartnerGroup.id == group.id).with_for_update())
    return group


def move_partners(
    session: Session, *, actor: Actor, partner_ids: Sequence[str], group_id: str | None, now: datetime
) -> list[Partner]:
    """Put partners into a group (None: no group); a pilot that would pass its size cap refuses the whole move."""
    need_write(actor, "moving partners between groups")
    group = _locked(session, actor, group_id) if group_id else None
    partners = visible_partners(session, actor, partner_ids)
    if group is not None:
        for partner in partners:
            if partner.program_id != group.program_id:
                raise ValidationError(
                    f"partner {partner.name} ({partner.id}) is in another program than group {group.name}",
                    field="partner_ids",
                )
        incoming = [p for p in partners if p.group_id != group.id]
        size = group_size(session, group.id)
        if group.size_cap is not None and size + len(incoming) > group.size_cap:
            kind = "pilot" if group.is_pilot else "group"
            raise Conflict(
                f"{kind} {group.name} is capped at {group.size_cap} partners and has {size}; "
                f"adding {len(incoming)} would make {size + len(incoming)}. Nothing was moved",
                field="group_id",
            )
    moving = [p for p in partners if p.group_id != group_id]
    names = dict(
        session.execute(
            select(PartnerGroup.id, PartnerGroup.name).where(
                PartnerGroup.id.in_({p.group_id for p in moving if p.group_id})
            )
        ).all()
    )
    items: list[tuple[str, str, str | None, Any, Any]] = []
    for partner in moving:
        before = partner.group_id
        partner.group_id = group_id
        items.append(("partner", partner.id, partner.program_id, {"group_id": before}, {"group_id": group_id}))
        old = names.get(before, before) if before else None
        if group is not None:
            text = f"Moved to group {group.name}" + (f" (was {old})" if old else "")
        else:
            text = f"Removed from group {old}"
        record_activity(
            session,
            partner_id=partner.id,
            kind="group.moved",
            actor=actor,
            now=now,
            text=f"{text} by {actor.label or actor.id}",
            ref_type="group" if group else None,
            ref_id=group_id,
        )
    if items:
        audit.record_many(session, actor=actor, action="partner.move_group", now=now, items=items)
    session.flush()
    return partners


# Read side: group lists and the pilot comparison (kept beside the groups they read, queries.py is full).


def groups_with_sizes(
    session: Session, actor: Actor, *, program_id: str | None = None
) -> list[tuple[PartnerGroup, int]]:
    """Groups the actor may see with their member counts, by program then name."""
    sizes = (
        select(Partner.group_id, func.count().label("n"))
        .where(Partner.group_id.is_not(None))
        .group_by(Partner.group_id)
        .subquery()
    )
    stmt = select(PartnerGroup, func.coalesce(sizes.c.n, 0)).outerjoin(sizes, sizes.c.group_id == PartnerGroup.id)
    if actor.program_id is not None:
        stmt = stmt.where(PartnerGroup.program_id == actor.program_id)
    if program_id:
        stmt = stmt.where(PartnerGroup.program_id == program_id)
    rows = session.execute(stmt.order_by(PartnerGroup.program_id, func.lower(PartnerGroup.name), PartnerGroup.id))
    return [(group, int(n)) for group, n in rows]


def members(session: Session, group_id: str, *, limit: int = 500) -> list[Partner]:
    return list(
        session.scalars(
            select(Partner)
            .where(Partner.group_id == group_id)
            .order_by(func.lower(Partner.name), Partner.id)
            .limit(limit)
        )
    )


@dataclass
class Cohort:
    """One side of the comparison: a pilot, or everyone in the program not in a pilot."""

    label: str
    group: PartnerGroup | None
    partners: int = 0
    active: int = 0
    customers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # invoice_paid amounts, per currency
    commissions: dict[str, int] = field(default_factory=dict)  # lines not rejected, per currency

    def per_partner(self, total: int) -> int:
        """Integer average in minor units, rounded half-even (no float anywhere)."""
        if not self.partners:
            return 0
        return int((Decimal(total) / self.partners).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def pilot_comparison(session: Session, actor: Actor, program_id: str) -> list[Cohort]:
    """Each pilot of the program side by side with the rest: partners, customers, revenue, commissions."""
    program = get_program(session, actor, program_id)
    pilots = [g for g, _ in groups_with_sizes(session, actor, program_id=program.id) if g.is_pilot]
    cohorts = {g.id: Cohort(g.name, g) for g in pilots}
    rest = Cohort("Everyone else" if pilots else "All partners", None)

    def cohort(group_id: str | None) -> Cohort:
        return cohorts.get(group_id or "", rest)

    for group_id, count, active in session.execute(
        select(Partner.group_id, func.count(), func.sum(case((Partner.status == "active", 1), else_=0)))
        .where(Partner.program_id == program.id)
        .group_by(Partner.group_id)
    ):
        cohort(group_id).partners += int(count)
        cohort(group_id).active += int(active or 0)
    for group_id, count in session.execute(
        select(Partner.group_id, func.count(Customer.id))
        .join(Customer, Customer.partner_id == Partner.id)
        .where(Partner.program_id == program.id)
        .group_by(Partner.group_id)
    ):
        cohort(group_id).customers += int(count)
    revenue = (
        select(Partner.group_id, Event.currency, func.sum(Event.amount))
        .join(Event, Event.partner_id == Partner.id)
        .where(Partner.program_id == program.id, Event.type == "invoice_paid", Event.amount.is_not(None))
        .group_by(Partner.group_id, Event.currency)
    )
    for group_id, currency, total in session.execute(revenue):
        sums = cohort(group_id).revenue
        sums[str(currency)] = sums.get(str(currency), 0) + int(total or 0)
    lines = (
        select(Partner.group_id, CommissionLine.currency, func.sum(CommissionLine.amount))
        .join(CommissionLine, CommissionLine.partner_id == Partner.id)
        .where(Partner.program_id == program.id, CommissionLine.status != LineStatus.REJECTED.value)
        .group_by(Partner.group_id, CommissionLine.currency)
    )
    for group_id, currency, total in session.execute(lines):
        sums = cohort(group_id).commissions
        sums[currency] = sums.get(currency, 0) + int(total)
    return [*cohorts.values(), rest]
