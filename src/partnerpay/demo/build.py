"""Writing the demo story through the services, one transaction per step; a second run changes nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.alerts.demo import extras as alert_extras
from partnerpay.approvals.policy import put_policy
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import ApiKey
from partnerpay.auth.passwords import MIN_LENGTH
from partnerpay.auth.service import authenticate_staff, create_api_key, create_staff_user, staff_actor
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.engine import unit_of_work
from partnerpay.demo.data import (
    API_KEY_NAME,
    CURRENCY,
    DEFAULT_PERCENT_BP,
    FINANCE_EMAIL,
    HOLD_DAYS,
    MANAGER_EMAIL,
    OWNER_EMAIL,
    PARTNER_EMAIL,
    PORTAL_PARTNER,
    PROGRAM_NAME,
    QUESTION_KEY,
    QUESTION_LABEL,
    TERMS_BODY,
    TERMS_TITLE,
)
from partnerpay.demo.integrations import extras as integration_extras
from partnerpay.demo.onboarding import Cast, Extra, accept_in_portal, extras, welcome
from partnerpay.demo.story import Action, Kind, Story, tell
from partnerpay.demo.tracking import extras as tracking_extras
from partnerpay.disputes.demo import extras as dispute_extras
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.kit.clock import Clock
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.money import format_money
from partnerpay.messaging.demo import extras as messaging_extras
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.partners.service import add_partner_user, create_partner
from partnerpay.payouts.models import BatchStatus, PayoutBatch
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.programs.models import Program
from partnerpay.programs.service import create_program, update_program_settings
from partnerpay.programs.terms import publish_terms


@dataclass(frozen=True)
class DemoResult:
    created: bool
    program_id: str
    partner_name: str
    password_matches: bool
    summary: str
    api_key: str | None  # only when the demo was created just now: the key cannot be shown again
    program_name: str = PROGRAM_NAME
    owner_email: str = OWNER_EMAIL
    finance_email: str = FINANCE_EMAIL
    manager_email: str = MANAGER_EMAIL
    partner_email: str = PARTNER_EMAIL


def check_demo_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"the demo password must have at least {MIN_LENGTH} characters", field="password")


def build_demo(factory: sessionmaker[Session], *, clock: Clock, password: str, seed: int = 2026) -> DemoResult:
    """Create the demo program with six months of history ending at `clock.now()`, unless it exists."""
    check_demo_password(password)
    with unit_of_work(factory) as session:
        existing = _existing(session, password)
    if existing is not None:
        return existing
    story = tell(clock.now(), seed)
    cast = _setup(factory, story, password)
    later = tracking_extras(story.now, seed) + integration_extras(story.now) + dispute_extras(story.now)
    later += messaging_extras(story.now)  # conversations and an announcement (issue 8 part 3)
    later += alert_extras(story.now)  # alert rules and their first check (issue 8 part 4)
    pending = sorted(extras(story.now, seed) + later, key=lambda e: e.at)
    for step in story.steps:
        while pending and pending[0].at <= step.actions[0].at:
            _extra(factory, cast, pending.pop(0))
        with unit_of_work(factory) as session:
            for action in step.actions:
                _apply(session, story, cast, action, password)
    for extra in pending:
        _extra(factory, cast, extra)
    with unit_of_work(factory) as session:
        # Last, so that a demo that stopped half-way is recognisable: it has no demo key.
        _, secret = create_api_key(
            session, actor=cast.owner, now=story.now, program_id=cast.program_id, name=API_KEY_NAME
        )
    with unit_of_work(factory) as session:
        summary = _summary(session, cast.program_id)
    portal = story.partners[PORTAL_PARTNER]
    return DemoResult(True, cast.program_id, portal.name, True, summary, secret)


def _existing(session: Session, password: str) -> DemoResult | None:
    program = session.scalars(select(Program).where(Program.name == PROGRAM_NAME).order_by(Program.created_at)).first()
    if program is None:
        return None
    key = session.scalar(select(ApiKey.id).where(ApiKey.program_id == program.id, ApiKey.name == API_KEY_NAME))
    if key is None:
        raise Conflict(
            f"a program named {PROGRAM_NAME!r} ({program.id}) exists but is not a finished demo; "
            "run `partnerpay demo` on an empty database",
            field="program",
        )
    partner_name = session.scalar(
        select(Partner.name)
        .join(PartnerUser, PartnerUser.partner_id == Partner.id)
        .where(PartnerUser.email == PARTNER_EMAIL)
    )
    matches = authenticate_staff(session, OWNER_EMAIL, password) is not None
    return DemoResult(False, program.id, partner_name or "", matches, _summary(session, program.id), None)


def _extra(factory: sessionmaker[Session], cast: Cast, extra: Extra) -> None:
    with unit_of_work(factory) as session:
        extra.write(session, cast, extra.at)


def _setup(factory: sessionmaker[Session], story: Story, password: str) -> Cast:
    with unit_of_work(factory) as session:
        at = story.setup_at
        owner = create_staff_user(session, actor=SYSTEM, email=OWNER_EMAIL, role="owner", password=password, now=at)
        finance = create_staff_user(
            session, actor=staff_actor(owner), email=FINANCE_EMAIL, role="finance", password=password, now=at
        )
        manager = create_staff_user(
            session, actor=staff_actor(owner), email=MANAGER_EMAIL, role="manager", password=password, now=at
        )
        program = create_program(
            session,
            actor=staff_actor(owner),
            name=PROGRAM_NAME,
            currency=CURRENCY,
            hold_days=HOLD_DAYS,
            default_percent_bp=DEFAULT_PERCENT_BP,
            cookie_days=60,
            now=at,
        )
        # Applications go to the manager; the form asks one question of its own.
        form = {"questions": [{"key": QUESTION_KEY, "label": QUESTION_LABEL, "required": False}]}
        update_program_settings(
            session,
            actor=staff_actor(owner),
            program_id=program.id,
            changes={"application_form": form, "default_owner_id": manager.id},
            now=at,
        )
        # Finance and the owner approve; a line above 1,000.00 needs a second approver (maker-checker) and a
        # line waiting more than five days shows as overdue, so the approval pages have something to show.
        put_policy(
            session,
            actor=staff_actor(owner),
            program_id=program.id,
            raw={"sla_days": 5, "second_approval_above": 100_000},
            now=at,
        )
        # Before anyone joins: every partner accepts version 1 on joining, so the whole history earns.
        publish_terms(
            session,
            actor=staff_actor(owner),
            program_id=program.id,
            title=TERMS_TITLE,
            body_markdown=TERMS_BODY,
            now=at + timedelta(hours=1),
        )
        return Cast(program.id, staff_actor(owner), staff_actor(manager), staff_actor(finance))


def _apply(session: Session, story: Story, cast: Cast, action: Action, password: str) -> None:
    at = action.at
    if action.kind == Kind.ONBOARD:
        assert action.partner is not None
        spec = story.partners[action.partner]
        partner = create_partner(
            session,
            actor=cast.owner,
            program_id=cast.program_id,
            name=spec.name,
            email=spec.email,
            country=spec.country,
            referral_code=spec.referral_code,
            now=at,
        )
        cast.partner_ids[spec.index] = partner.id
        # The demo partner accepts the terms in the portal the next day (PORTAL_USER), before any customer.
        welcome(session, cast, spec.index, at, accept=spec.index != PORTAL_PARTNER)
    elif action.kind == Kind.PORTAL_USER:
        assert action.partner is not None
        user = add_partner_user(
            session,
            actor=cast.owner,
            partner_id=cast.partner_ids[action.partner],
            email=PARTNER_EMAIL,
            password=password,
            now=at,
        )
        accept_in_portal(session, cast, user, at + timedelta(minutes=12), ip="203.0.113.80")
    elif action.kind == Kind.EVENT:
        assert action.event is not None
        e = action.event
        data = EventIn(
            program_id=cast.program_id,
            type=e.type,
            external_id=e.external_id,
            occurred_at=e.occurred_at,
            customer_external_id=e.customer_external_id,
            referral_code=e.referral_code,
            amount=e.amount,
            currency=CURRENCY if e.amount is not None else None,
            product=e.product,
            original_external_id=e.original_external_id,
            metadata=e.metadata or None,
        )
        # Billing reports these, so the system records them (as the Stripe integration will).
        record_event(session, actor=SYSTEM, data=data, now=at)
    elif action.kind == Kind.APPROVE:
        assert action.cutoff is not None
        ids = list(
            session.scalars(
                select(CommissionLine.id)
                .join(Event, Event.id == CommissionLine.event_id)
                .where(
                    CommissionLine.program_id == cast.program_id,
                    CommissionLine.status == LineStatus.PENDING.value,
                    CommissionLine.kind == "commission",
                    Event.occurred_at <= action.cutoff,
                )
                .order_by(CommissionLine.id)
            )
        )
        if ids:
            approve_lines(session, actor=cast.finance, ids=ids, now=at)
    elif action.kind == Kind.PAYOUT_RUN:
        result = create_payout_run(session, actor=cast.finance, program_id=cast.program_id, now=at)
        cast.batch_id = result.batch.id if result.batch else None
    elif action.kind == Kind.APPROVE_BATCH and cast.batch_id:
        approve_batch(session, actor=cast.owner, batch_id=cast.batch_id, now=at)
    elif action.kind == Kind.MARK_PAID and cast.batch_id:
        mark_batch_paid(session, actor=cast.finance, batch_id=cast.batch_id, now=at)


def _count(session: Session, model: type[Partner] | type[Customer] | type[Event], program_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(model.program_id == program_id)) or 0)


def _summary(session: Session, program_id: str) -> str:
    statuses: Counter[str] = Counter(
        dict(
            session.execute(
                select(CommissionLine.status, func.count())
                .where(CommissionLine.program_id == program_id)
                .group_by(CommissionLine.status)
            ).all()
        )
    )
    paid = session.execute(
        select(func.count(), func.coalesce(func.sum(PayoutBatch.total), 0)).where(
            PayoutBatch.program_id == program_id, PayoutBatch.status == BatchStatus.PAID.value
        )
    ).one()
    lines = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    return (
        f"{_count(session, Partner, program_id)} partners, {_count(session, Customer, program_id)} customers, "
        f"{_count(session, Event, program_id)} events, {sum(statuses.values())} commission lines ({lines}), "
        f"{paid[0]} paid batch(es) totalling {format_money(int(paid[1]), CURRENCY)}"
    )
