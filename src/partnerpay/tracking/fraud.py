"""Fraud signals: flags raised on events as they arrive and by a sweep over clicks, and staff decisions.

A paying event with an open flag of its partner earns nothing while the program holds flagged events
(programs.hold_flagged_events); releasing (or dismissing) the last open flag earns it then, exactly
once; confirming it means it never earns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions import service as commissions
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event, RefundAllocation
from partnerpay.events.schemas import PAYING
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.state import StateMachine
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.tracking import attribution
from partnerpay.tracking.attribution_models import Attribution, FlagKind, FlagStatus, FraudFlag
from partnerpay.tracking.models import Click

# A person reads a landing page and fills a form in more than this; a script does not.
FAST_CONVERSION_SECONDS = 10
# Clicks from one ip hash for one partner within an hour: more than a person sharing a link ever makes.
IP_BURST_CLICKS = 20
IP_BURST_WINDOW = timedelta(hours=1)
# Traffic that never turns into a signup or a sale: bought or bot clicks, or a broken integration.
IDLE_CLICKS = 200
IDLE_WINDOW = timedelta(days=30)

FLAGS = StateMachine(
    "fraud flag",
    {FlagStatus.OPEN: {FlagStatus.RELEASED, FlagStatus.DISMISSED, FlagStatus.CONFIRMED}},
)
PAYING_TYPES = tuple(t.value for t in PAYING)
ACTIONS = {
    FlagStatus.RELEASED: "fraud_flag.release",
    FlagStatus.DISMISSED: "fraud_flag.dismiss",
    FlagStatus.CONFIRMED: "fraud_flag.confirm",
}


@dataclass
class Resolution:
    flag: FraudFlag
    commissions: list[CommissionLine]


def snapshot(flag: FraudFlag) -> dict[str, object]:
    return {
        "kind": flag.kind,
        "partner_id": flag.partner_id,
        "event_id": flag.event_id,
        "click_id": flag.click_id,
        "status": flag.status,
        "reason": flag.reason,
    }


def _add_flags(session: Session, *, actor: Actor, flags: list[FraudFlag], now: datetime) -> list[FraudFlag]:
    if not flags:
        return flags
    session.add_all(flags)
    session.flush()
    for flag in flags:
        record_activity(
            session,
            partner_id=flag.partner_id,
            kind="fraud.flagged",
            text=f"Flagged ({flag.kind.replace('_', ' ')}): {flag.detail}",
            actor=actor,
            now=now,
            ref_type="fraud_flag",
            ref_id=flag.id,
        )
    audit.record_many(
        session,
        actor=actor,
        action="fraud_flag.create",
        now=now,
        items=[("fraud_flag", f.id, f.program_id, None, snapshot(f)) for f in flags],
    )
    return flags


def _flag(program_id: str, partner_id: str, kind: FlagKind, detail: str, now: datetime, **kw: str | None) -> FraudFlag:
    return FraudFlag(
        id=new_id("flg"),
        program_id=program_id,
        partner_id=partner_id,
        kind=kind.value,
        detail=detail,
        created_at=now,
        status=FlagStatus.OPEN.value,
        **kw,
    )


def flag_event(
    session: Session,
    *,
    actor: Actor,
    event: Event,
    current: Attribution | None,
    click: Click | None,
    now: datetime,
) -> list[FraudFlag]:
    """Signals one event carries: a conversion too soon after its click, a customer who is the partner."""
    flags: list[FraudFlag] = []
    if click is not None and click.partner_id is not None and click.at <= event.occurred_at:
        seconds = (event.occurred_at - click.at).total_seconds()
        if seconds < FAST_CONVERSION_SECONDS:
            flags.append(
                _flag(
                    event.program_id,
                    click.partner_id,
                    FlagKind.FAST_CONVERSION,
                    f"{event.type.replace('_', ' ')} {event.external_id} {int(seconds)} s after click {click.id} "
                    f"on link {click.code} (under {FAST_CONVERSION_SECONDS} s)",
                    now,
                    event_id=event.id,
                    click_id=click.id,
                )
            )
    if current is not None and current.self_referral and (current.event_id == event.id or event.type in PAYING_TYPES):
        # Once staff have said this customer is fine, its later payments are not flagged again.
        cleared = session.scalar(
            select(FraudFlag.id).where(
                FraudFlag.kind == FlagKind.SELF_REFERRAL.value,
                FraudFlag.dedupe_key == current.id,
                FraudFlag.status.in_((FlagStatus.RELEASED.value, FlagStatus.DISMISSED.value)),
            )
        )
        if cleared is None:
            flags.append(
                _flag(
                    event.program_id,
                    current.partner_id,
                    FlagKind.SELF_REFERRAL,
                    f"customer of {event.type.replace('_', ' ')} {event.external_id} looks like the partner "
                    f"itself (same email, email domain or website); attributed by {current.reason}",
                    now,
                    event_id=event.id,
                    dedupe_key=current.id,
                )
            )
    return _add_flags(session, actor=actor, flags=flags, now=now)


def holds(session: Session, program: Program, event: Event) -> bool:
    """Whether an open flag of the event's partner keeps a paying event from earning now."""
    if not program.hold_flagged_events or event.partner_id is None:
        return False
    return _open_or_confirmed(session, event, (FlagStatus.OPEN.value,))


def _open_or_confirmed(session: Session, event: Event, statuses: tuple[str, ...]) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    FraudFlag.event_id == event.id,
                    FraudFlag.partner_id == event.partner_id,
                    FraudFlag.status.in_(statuses),
                )
            )
        )
    )


def scan_clicks(session: Session, *, actor: Actor, program_id: str, now: datetime) -> list[FraudFlag]:
    """The sweep: ip bursts in the last hour and busy partners without conversions in the last 30 days.

    Meant to run at least hourly (`partnerpay fraud scan`); a finding already flagged within its window
    is not flagged again.
    """
    since = now - IP_BURST_WINDOW
    bursts = session.execute(
        select(Click.partner_id, Click.ip_hash, func.count(), func.max(Click.id))
        .where(
            Click.program_id == program_id,
            Click.partner_id.is_not(None),
            Click.ip_hash.is_not(None),
            Click.at > since,
            Click.at <= now,
        )
        .group_by(Click.partner_id, Click.ip_hash)
        .having(func.count() >= IP_BURST_CLICKS)
    ).all()
    recent = set(
        session.scalars(
            select(FraudFlag.dedupe_key).where(
                FraudFlag.program_id == program_id,
                FraudFlag.kind == FlagKind.IP_BURST.value,
                FraudFlag.created_at > since,
            )
        )
    )
    flags: list[FraudFlag] = []
    for partner_id, ip_hash, count, last_click in bursts:
        assert partner_id is not None and ip_hash is not None  # filtered in SQL
        key = f"{partner_id}:{ip_hash}"
        if key not in recent:
            flags.append(
                _flag(
                    program_id,
                    partner_id,
                    FlagKind.IP_BURST,
                    f"{count} clicks from one address (hash {ip_hash[:12]}…) within an hour "
                    f"(threshold {IP_BURST_CLICKS})",
                    now,
                    click_id=last_click,
                    dedupe_key=key,
                )
            )
    idle_since = now - IDLE_WINDOW
    converted = exists().where(
        Event.program_id == program_id, Event.partner_id == Click.partner_id, Event.occurred_at > idle_since
    )
    flagged = exists().where(
        FraudFlag.program_id == program_id,
        FraudFlag.kind == FlagKind.CLICKS_WITHOUT_CONVERSIONS.value,
        FraudFlag.partner_id == Click.partner_id,
        FraudFlag.created_at > idle_since,
    )
    idle = session.execute(
        select(Click.partner_id, func.count())
        .where(
            Click.program_id == program_id,
            Click.partner_id.is_not(None),
            Click.at > idle_since,
            Click.at <= now,
            ~converted,
            ~flagged,
        )
        .group_by(Click.partner_id)
        .having(func.count() >= IDLE_CLICKS)
    ).all()
    for partner_id, count in idle:
        assert partner_id is not None
        flags.append(
            _flag(
                program_id,
                partner_id,
                FlagKind.CLICKS_WITHOUT_CONVERSIONS,
                f"{count} clicks in the last {IDLE_WINDOW.days} days and no signup or sale (threshold {IDLE_CLICKS})",
                now,
                dedupe_key=partner_id,
            )
        )
    return _add_flags(session, actor=actor, flags=flags, now=now)


def get_flag(session: Session, actor: Actor, flag_id: str) -> FraudFlag:
    flag = session.get(FraudFlag, flag_id)
    if flag is None or not actor.sees_program(flag.program_id) or actor.partner_id is not None:
        raise NotFound(f"fraud flag {flag_id} not found", field="flag_id")
    return flag


def resolve_flag(
    session: Session, *, actor: Actor, flag_id: str, to: FlagStatus, reason: str, now: datetime
) -> Resolution:
    """Release, dismiss or confirm an open flag; a released event earns now if nothing else holds it."""
    flag = get_flag(session, actor, flag_id)
    if not actor.can("write"):
        raise Forbidden("deciding on fraud flags needs the 'write' scope")
    if not reason.strip():
        raise ValidationError("say why: a reason is required to decide on a flag", field="reason")
    FLAGS.check(FlagStatus(flag.status), to, object_id=flag.id)
    FLAGS.transition(
        session,
        FraudFlag,
        [flag.id],
        src=FlagStatus.OPEN,
        dst=to,
        values={"resolved_by": actor.id, "resolved_at": now, "reason": reason.strip()[:2000]},
    )
    session.refresh(flag)
    audit.record(
        session,
        actor=actor,
        action=ACTIONS[to],
        object_type="fraud_flag",
        object_id=flag.id,
        program_id=flag.program_id,
        before={"status": FlagStatus.OPEN.value},
        after=snapshot(flag),
        now=now,
    )
    record_activity(
        session,
        partner_id=flag.partner_id,
        kind=f"fraud.{to.value}",
        text=f"Flag {flag.kind.replace('_', ' ')} {to.value}: {reason.strip()[:300]}",
        actor=actor,
        now=now,
        ref_type="fraud_flag",
        ref_id=flag.id,
    )
    lines: list[CommissionLine] = []
    if to is not FlagStatus.CONFIRMED and flag.event_id is not None:
        lines = _earn_if_clear(session, actor=actor, event_id=flag.event_id, now=now)
    return Resolution(flag, lines)


def _earn_if_clear(session: Session, *, actor: Actor, event_id: str, now: datetime) -> list[CommissionLine]:
    """Earn a held paying event once its partner has no open or confirmed flag on it and no line yet."""
    event = session.get(Event, event_id)
    if event is None or event.type not in PAYING_TYPES or event.partner_id is None:
        return []
    if _open_or_confirmed(session, event, (FlagStatus.OPEN.value, FlagStatus.CONFIRMED.value)):
        return []
    earned = session.scalar(
        select(exists().where(CommissionLine.event_id == event.id, CommissionLine.kind == "commission"))
    )
    if earned:
        return []
    program = session.get(Program, event.program_id)
    partner = session.get(Partner, event.partner_id)
    customer = session.get(Customer, event.customer_id)
    assert program is not None and partner is not None and customer is not None
    lines = attribution.earn(
        session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now
    )
    # Refunds that arrived while the event was held found no line to claw back: take them back now.
    before = 0
    for refund, taken in session.execute(
        select(Event, RefundAllocation.amount)
        .join(RefundAllocation, RefundAllocation.refund_event_id == Event.id)
        .where(RefundAllocation.original_event_id == event.id)
        .order_by(RefundAllocation.id)
    ).all():
        lines += commissions.claw_back(
            session,
            actor=actor,
            refund=refund,
            original=event,
            refunded=taken,
            refunded_before=before,
            chosen_newest_first=False,
            now=now,
        )
        before += taken
    return lines
