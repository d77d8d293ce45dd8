"""Writing plans: create (draft v1), replace a draft's rules, publish, start a new version. Every write is audited.

A published version is never edited: its rules are frozen and later versions are new rows, so commission
lines that cite "plan P version n rule r" keep meaning what they meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.events.models import Event
from partnerpay.kit.clock import ensure_utc
from partnerpay.kit.errors import ConcurrentWrite, Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.state import StateMachine
from partnerpay.partners.models import PartnerGroup
from partnerpay.plans.models import Plan, PlanVersion, VersionStatus
from partnerpay.plans.overlap import refuse_overlaps
from partnerpay.plans.rules import Rule, parse_rules, rules_json
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

VERSIONS = StateMachine(
    "plan version",
    {
        VersionStatus.DRAFT: [VersionStatus.PUBLISHED],
        VersionStatus.PUBLISHED: [VersionStatus.ARCHIVED],
    },
)
NOTE_MAX = 2000


def need_plan_write(actor: Actor, what: str) -> None:
    if actor.partner_id is not None:
        raise NotFound("not found")
    if not actor.can("write"):
        raise Forbidden(f"{what} needs the 'write' scope (owner or manager)")


def get_plan(session: Session, actor: Actor, plan_id: str) -> Plan:
    """The plan, or 404 when it does not exist, is another program's, or the caller is a partner."""
    plan = session.get(Plan, plan_id)
    if plan is None or actor.partner_id is not None or not actor.sees_program(plan.program_id):
        raise NotFound(f"plan {plan_id} not found", field="plan_id")
    return plan


def versions_of(session: Session, plan_id: str) -> list[PlanVersion]:
    return list(
        session.scalars(select(PlanVersion).where(PlanVersion.plan_id == plan_id).order_by(PlanVersion.version))
    )


def version_snapshot(version: PlanVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status,
        "effective_from": version.effective_from.isoformat() if version.effective_from else None,
        "rules": version.rules,
        "note": version.note,
    }


def _check_name(session: Session, program_id: str, name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError("name must not be empty", field="name")
    if len(name) > 200:
        raise ValidationError("name has at most 200 characters", field="name")
    taken = session.scalar(select(Plan.id).where(Plan.program_id == program_id, func.lower(Plan.name) == name.lower()))
    if taken:
        raise Conflict(f"this program already has a plan named {name!r}", field="name")
    return name


def _flush_or_conflict(session: Session, message: str, field: str) -> None:
    """A unique key taken by a concurrent writer becomes a 409, not a 500; the whole transaction rolls back."""
    try:
        session.flush()
    except IntegrityError:
        raise ConcurrentWrite(message + "; nothing was saved, reload and retry", field=field) from None


def _check_note(note: str) -> str:
    if len(note) > NOTE_MAX:
        raise ValidationError(f"note has at most {NOTE_MAX} characters", field="note")
    return note.strip()


def check_rules(session: Session, program: Program, raw: Any) -> list[Rule]:
    """Validate a rule list against the program: its custom event types and its groups."""
    rules = parse_rules(raw, custom_types=program.custom_event_types or ())
    wanted = {g for r in rules for g in r.conditions.partner_group_ids}
    if wanted:
        known = set(
            session.scalars(
                select(PartnerGroup.id).where(PartnerGroup.program_id == program.id, PartnerGroup.id.in_(wanted))
            )
        )
        for i, rule in enumerate(rules):
            for group_id in rule.conditions.partner_group_ids:
                if group_id not in known:
                    raise ValidationError(
                        f"rule {i + 1}: group {group_id} is not a group of this program",
                        field=f"rules.{i}.conditions.partner_group_ids",
                    )
    return rules


def create_plan(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    name: str,
    rules: Any,
    now: datetime,
    note: str = "",
    effective_from: datetime | None = None,
) -> tuple[Plan, PlanVersion]:
    """A new plan with its rules as draft version 1 (nothing pays until it is published)."""
    need_plan_write(actor, "creating a plan")
    program = get_program(session, actor, program_id)
    name = _check_name(session, program.id, name)
    checked = check_rules(session, program, rules)
    plan = Plan(id=new_id("pln"), program_id=program.id, name=name, created_at=now)
    version = PlanVersion(
        id=new_id("plv"),
        plan_id=plan.id,
        version=1,
        status=VersionStatus.DRAFT.value,
        rules=rules_json(checked),
        note=_check_note(note),
        created_at=now,
        effective_from=ensure_utc(effective_from) if effective_from else None,
    )
    session.add(plan)
    _flush_or_conflict(session, f"another plan named {name!r} was just created", "name")
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.create",
        object_type="plan",
        object_id=plan.id,
        program_id=program.id,
        now=now,
        after={"name": name, **version_snapshot(version)},
    )
    return plan, version


def _draft(session: Session, plan: Plan) -> PlanVersion:
    versions = versions_of(session, plan.id)
    draft = next((v for v in versions if v.status == VersionStatus.DRAFT), None)
    if draft is None:
        newest = versions[-1]
        raise Conflict(
            f"plan {plan.name!r} has no draft: version {newest.version} is {newest.status} and never changes; "
            "start a new version (POST /plans/{id}/versions) to change the rules",
            field="version",
        )
    return draft


def update_draft(
    session: Session,
    *,
    actor: Actor,
    plan_id: str,
    rules: Any,
    now: datetime,
    note: str | None = None,
    effective_from: datetime | None = None,
) -> PlanVersion:
    """Replace the draft's rules (and note, wanted effective date); a published version answers 409."""
    need_plan_write(actor, "editing a plan")
    plan = get_plan(session, actor, plan_id)
    program = get_program(session, actor, plan.program_id)
    draft = _draft(session, plan)
    checked = check_rules(session, program, rules)
    before = version_snapshot(draft)
    draft.rules = rules_json(checked)
    if note is not None:
        draft.note = _check_note(note)
    if effective_from is not None:
        draft.effective_from = ensure_utc(effective_from)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.update_draft",
        object_type="plan",
        object_id=plan.id,
        program_id=plan.program_id,
        now=now,
        before=before,
        after=version_snapshot(draft),
    )
    return draft


def check_products(session: Session, program: Program, rules: Sequence[Rule]) -> None:
    """Refuse a product condition naming a product the program's events never carried (a typo pays nobody).

    There is no product catalogue: the products seen on events are the known ones. A program whose events
    carry no product at all has nothing to compare against, so its rules are taken as written.
    """
    wanted = {p for r in rules for p in r.conditions.products}
    if not wanted:
        return
    seen_any = session.scalar(
        select(Event.id).where(Event.program_id == program.id, Event.product.is_not(None)).limit(1)
    )
    if seen_any is None:
        return
    known = set()
    for product in wanted:
        hit = session.scalar(select(Event.id).where(Event.program_id == program.id, Event.product == product).limit(1))
        if hit is not None:
            known.add(product)
    for i, rule in enumerate(rules):
        for j, product in enumerate(rule.conditions.products):
            if product not in known:
                raise ValidationError(
                    f"rule {i + 1}: no event of this program has product {product!r}; check the spelling, or "
                    "publish with allow_new_products if it is a product that has not sold yet",
                    field=f"rules.{i}.conditions.products.{j}",
                )


def publish(
    session: Session,
    *,
    actor: Actor,
    plan_id: str,
    now: datetime,
    effective_from: datetime | None = None,
    allow_new_products: bool = False,
) -> PlanVersion:
    """The draft becomes the published version from effective_from (default: the draft's date, else now).

    Overlapping same-priority rules are refused naming both. The previously published version is archived;
    it still applies to times before the new version's effective_from.
    """
    need_plan_write(actor, "publishing a plan")
    plan = get_plan(session, actor, plan_id)
    program = get_program(session, actor, plan.program_id)
    draft = _draft(session, plan)
    rules = check_rules(session, program, draft.rules)
    if not rules:
        raise ValidationError("a plan needs at least one rule before it is published", field="rules")
    refuse_overlaps(rules)
    if not allow_new_products:
        check_products(session, program, rules)
    start = ensure_utc(effective_from or draft.effective_from or now)
    current = _published(session, plan.id)
    if current is not None and current.effective_from is not None and start < current.effective_from:
        raise ValidationError(
            f"effective_from {start.isoformat()} is before version {current.version}'s "
            f"{current.effective_from.isoformat()}; a new version starts on or after the one it replaces",
            field="effective_from",
        )
    if current is not None:
        VERSIONS.transition(
            session,
            PlanVersion,
            [current.id],
            src=VersionStatus.PUBLISHED,
            dst=VersionStatus.ARCHIVED,
            values={"archived_at": now},
        )
    VERSIONS.transition(
        session,
        PlanVersion,
        [draft.id],
        src=VersionStatus.DRAFT,
        dst=VersionStatus.PUBLISHED,
        values={"effective_from": start, "published_at": now, "published_by": actor.id},
    )
    session.refresh(draft)
    audit.record(
        session,
        actor=actor,
        action="plan.publish",
        object_type="plan",
        object_id=plan.id,
        program_id=plan.program_id,
        now=now,
        before={"version": current.version} if current else None,
        after=version_snapshot(draft),
    )
    return draft


def _published(session: Session, plan_id: str) -> PlanVersion | None:
    return session.scalar(
        select(PlanVersion).where(PlanVersion.plan_id == plan_id, PlanVersion.status == VersionStatus.PUBLISHED)
    )


def new_version(
    session: Session, *, actor: Actor, plan_id: str, now: datetime, rules: Sequence[Any] | None = None
) -> PlanVersion:
    """A new draft copied from the published version (or with the given rules); the old version is untouched."""
    need_plan_write(actor, "starting a new plan version")
    plan = get_plan(session, actor, plan_id)
    program = get_program(session, actor, plan.program_id)
    versions = versions_of(session, plan.id)
    if any(v.status == VersionStatus.DRAFT for v in versions):
        raise Conflict(f"plan {plan.name!r} already has a draft; edit it or publish it first", field="version")
    current = _published(session, plan.id)
    if current is None:
        raise Conflict(f"plan {plan.name!r} has no published version to start from", field="version")
    checked = check_rules(session, program, list(rules) if rules is not None else current.rules)
    draft = PlanVersion(
        id=new_id("plv"),
        plan_id=plan.id,
        version=versions[-1].version + 1,
        status=VersionStatus.DRAFT.value,
        rules=rules_json(checked),
        note="",
        created_at=now,
    )
    session.add(draft)
    _flush_or_conflict(session, f"a new version of plan {plan.name!r} was just started", "version")
    audit.record(
        session,
        actor=actor,
        action="plan.new_version",
        object_type="plan",
        object_id=plan.id,
        program_id=plan.program_id,
        now=now,
        before={"version": current.version},
        after=version_snapshot(draft),
    )
    return draft
