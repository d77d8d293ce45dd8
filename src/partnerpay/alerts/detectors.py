"""What each rule kind finds: one set-based query per rule (never one per partner), turned into findings.

A finding names its subject and its period; the period is what makes "the same alert" (alerts.raising
dedupes on rule, subject and period): a day for conditions that remind daily (overdue approvals, spikes),
and the start of the episode for states that last (a deal's last update, a partner's last activity), so a
stale deal is raised once until it is updated and goes stale again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from partnerpay.alerts.models import AlertRule, RuleKind
from partnerpay.alerts.spikes import TRAILING_DAYS, average_text, is_spike
from partnerpay.approvals.policy import policies_for
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Event
from partnerpay.inbox.models import InboxItem, ProgramIntegration
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.tracking.attribution_models import FlagStatus, FraudFlag
from partnerpay.tracking.models import Click

WEBHOOK_PROVIDERS = ("stripe", "shopify", "hubspot")
REFUND_TYPES = ("refund", "chargeback")


@dataclass(frozen=True)
class Finding:
    subject_type: str
    subject_id: str
    period: str
    title: str
    detail: str
    partner_id: str | None = None
    owner_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _stamp(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


def approvals_overdue(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    days = rule.params.get("days") or policies_for(session, [rule.program_id])[rule.program_id].sla_days
    if days is None:
        return []  # no SLA and no days on the rule: nothing is overdue
    line = CommissionLine
    rows = session.execute(
        select(line.partner_id, Partner.name, Partner.owner_id, line.currency, func.count(), func.sum(line.amount),
               func.min(line.created_at))
        .join(Partner, Partner.id == line.partner_id)
        .where(line.program_id == rule.program_id, line.status == LineStatus.PENDING.value,
               line.created_at < now - timedelta(days=days))
        .group_by(line.partner_id, Partner.name, Partner.owner_id, line.currency)
    ).all()  # fmt: skip
    per_partner: dict[str, list[Any]] = {}
    for row in rows:
        per_partner.setdefault(row[0], []).append(row)
    out = []
    for partner_id, group in sorted(per_partner.items()):
        count = sum(r[4] for r in group)
        totals = ", ".join(format_money(int(r[5]), r[3]) for r in sorted(group, key=lambda r: r[3]))
        oldest = min(r[6] for r in group)
        out.append(Finding(
            "partner", partner_id, now.date().isoformat(),
            f"{count} commission line(s) of {group[0][1]} overdue for approval",
            f"{count} line(s) ({totals}) pending longer than {days} day(s), the oldest since {oldest:%Y-%m-%d}.",
            partner_id, group[0][2], {"lines": count, "days": days, "oldest": oldest.isoformat()},
        ))  # fmt: skip
    return out


def deal_stale(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    days = rule.params["days"]
    cutoff = now - timedelta(days=days)
    rows = session.execute(
        select(Deal.id, Deal.company, Deal.stage, Deal.partner_id, Partner.name, Partner.owner_id, Deal.updated_at,
               Deal.last_update_at)
        .join(Partner, Partner.id == Deal.partner_id)
        .where(Deal.program_id == rule.program_id, Deal.status == "open", Deal.updated_at < cutoff,
               Deal.last_update_at < cutoff)
        .order_by(Deal.id)
    ).all()  # fmt: skip
    out = []
    for deal_id, company, stage, partner_id, partner, owner, updated, answered in rows:
        last = max(updated, answered)
        out.append(Finding(
            "deal", deal_id, _stamp(last), f"Deal {company} ({partner}) without an update for {(now - last).days} days",
            f"Open at stage {stage}; last change {last:%Y-%m-%d}. Ask the partner for an update or close it.",
            partner_id, owner, {"deal_id": deal_id, "stage": stage, "last_update_at": last.isoformat()},
        ))  # fmt: skip
    return out


def partner_inactive(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    days = rule.params["days"]
    cutoff = now - timedelta(days=days)
    last_click = select(func.max(Click.at)).where(Click.partner_id == Partner.id).scalar_subquery()
    last_event = select(func.max(Event.occurred_at)).where(Event.partner_id == Partner.id).scalar_subquery()
    last_lead = select(func.max(Lead.created_at)).where(Lead.partner_id == Partner.id).scalar_subquery()
    rows = session.execute(
        select(Partner.id, Partner.name, Partner.owner_id, last_click, last_event, last_lead)
        .where(Partner.program_id == rule.program_id, Partner.status == PartnerStatus.ACTIVE.value,
               Partner.created_at < cutoff)
        .order_by(Partner.id)
    ).all()  # fmt: skip
    out = []
    for partner_id, name, owner, *times in rows:
        seen = [t for t in times if t is not None]
        # SQLite hands max() back as text; the ORM's type only applies to plain columns.
        parsed = [datetime.fromisoformat(t) if isinstance(t, str) else t for t in seen]
        last = max((p if p.tzinfo else p.replace(tzinfo=now.tzinfo) for p in parsed), default=None)
        if last is not None and last >= cutoff:
            continue
        since = f"since {last:%Y-%m-%d}" if last else "ever"
        out.append(Finding(
            "partner", partner_id, _stamp(last), f"{name} inactive for {days}+ days",
            f"No click, lead or event {since}. A check-in or new material may help.",
            partner_id, owner, {"last_activity_at": last.isoformat() if last else None, "days": days},
        ))  # fmt: skip
    return out


def payout_failed(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    since = now - timedelta(days=rule.params["days"])
    at = func.coalesce(Payout.returned_at, Payout.failed_at)
    rows = session.execute(
        select(Payout.id, Payout.status, Payout.amount, Payout.currency, Payout.failure_reason, Payout.partner_id,
               Partner.name, Partner.owner_id)
        .join(Partner, Partner.id == Payout.partner_id)
        .where(Payout.program_id == rule.program_id,
               Payout.status.in_([PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value]), at >= since)
        .order_by(Payout.id)
    ).all()  # fmt: skip
    return [
        Finding(
            "payout", pid, status, f"Payout of {format_money(amount, currency)} to {name} {status}",
            f"{reason or 'No reason given.'} The amount is back in the partner's balance; check the payout method.",
            partner_id, owner, {"payout_id": pid, "status": status, "amount": amount, "currency": currency},
        )
        for pid, status, amount, currency, reason, partner_id, name, owner in rows
    ]  # fmt: skip


def spike(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    metric, factor, minimum = rule.params["metric"], rule.params["factor_pct"], rule.params["min_count"]
    day_start = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    start = day_start - timedelta(days=TRAILING_DAYS)
    if metric == "clicks":
        at, partner_col = Click.at, Click.partner_id
        where = [Click.program_id == rule.program_id, Click.at >= start, Click.at < now, Click.partner_id.is_not(None)]
    else:
        at, partner_col = Event.occurred_at, Event.partner_id
        where = [Event.program_id == rule.program_id, Event.type.in_(REFUND_TYPES), Event.occurred_at >= start,
                 Event.occurred_at < now, Event.partner_id.is_not(None)]  # fmt: skip
    today = func.sum(case((at >= day_start, 1), else_=0))
    trailing = func.sum(case((at < day_start, 1), else_=0))
    counts = (
        select(partner_col.label("partner_id"), today.label("today"), trailing.label("trailing"))
        .where(*where)
        .group_by(partner_col)
        .subquery()
    )
    rows = session.execute(
        select(counts.c.partner_id, counts.c.today, counts.c.trailing, Partner.name, Partner.owner_id)
        .join(Partner, Partner.id == counts.c.partner_id)
        .where(and_(counts.c.today >= minimum))
        .order_by(counts.c.partner_id)
    ).all()
    out = []
    for partner_id, n_today, n_trailing, name, owner in rows:
        n_today, n_trailing = int(n_today), int(n_trailing)
        if not is_spike(n_today, n_trailing, factor_pct=factor, min_count=minimum):
            continue
        avg = average_text(n_trailing)
        out.append(Finding(
            "partner", partner_id, f"{now.date().isoformat()}:{metric}",
            f"Unusual {metric} for {name}: {n_today} today",
            f"{n_today} {metric} today against a {TRAILING_DAYS}-day average of {avg} a day "
            f"(alert above {factor}%).", partner_id, owner,
            {"metric": metric, "today": n_today, "trailing_total": n_trailing, "trailing_days": TRAILING_DAYS},
        ))  # fmt: skip
    return out


def fraud_flag(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    since = now - timedelta(days=rule.params["days"])
    rows = session.execute(
        select(FraudFlag.id, FraudFlag.kind, FraudFlag.detail, FraudFlag.partner_id, Partner.name, Partner.owner_id)
        .join(Partner, Partner.id == FraudFlag.partner_id)
        .where(FraudFlag.program_id == rule.program_id, FraudFlag.status == FlagStatus.OPEN.value,
               FraudFlag.created_at >= since)
        .order_by(FraudFlag.id)
    ).all()  # fmt: skip
    return [
        Finding("fraud_flag", flag_id, "open", f"Fraud flag on {name}: {kind.replace('_', ' ')}",
                f"{detail} Release, dismiss or confirm it on the Fraud page.", partner_id, owner,
                {"flag_id": flag_id, "kind": kind})
        for flag_id, kind, detail, partner_id, name, owner in rows
    ]  # fmt: skip


def integration_silent(session: Session, rule: AlertRule, now: datetime) -> list[Finding]:
    hours = rule.params["hours"]
    cutoff = now - timedelta(hours=hours)
    last = (
        select(InboxItem.provider, func.max(InboxItem.received_at).label("last"))
        .where(InboxItem.program_id == rule.program_id)
        .group_by(InboxItem.provider)
        .subquery()
    )
    rows = session.execute(
        select(ProgramIntegration.id, ProgramIntegration.provider, ProgramIntegration.created_at, last.c.last)
        .outerjoin(last, last.c.provider == ProgramIntegration.provider)
        .where(ProgramIntegration.program_id == rule.program_id,
               ProgramIntegration.provider.in_(WEBHOOK_PROVIDERS))
        .order_by(ProgramIntegration.provider)
    ).all()  # fmt: skip
    out = []
    for integration_id, provider, created, received in rows:
        if isinstance(received, str):
            received = datetime.fromisoformat(received)
        if received is not None and received.tzinfo is None:
            received = received.replace(tzinfo=now.tzinfo)
        if (received or created) >= cutoff:
            continue
        since = f"since {received:%Y-%m-%d %H:%M} UTC" if received else "since it was connected"
        out.append(Finding(
            "integration", integration_id, _stamp(received),
            f"{provider.capitalize()} has been silent for {hours}+ hours",
            f"No webhook delivery from {provider} {since}. Check the webhook endpoint and its secret at the provider.",
            None, None, {"provider": provider, "last_delivery_at": received.isoformat() if received else None},
        ))  # fmt: skip
    return out


DETECTORS: dict[RuleKind, Callable[[Session, AlertRule, datetime], list[Finding]]] = {
    RuleKind.APPROVALS_OVERDUE: approvals_overdue,
    RuleKind.DEAL_STALE: deal_stale,
    RuleKind.PARTNER_INACTIVE: partner_inactive,
    RuleKind.PAYOUT_FAILED: payout_failed,
    RuleKind.SPIKE: spike,
    RuleKind.FRAUD_FLAG: fraud_flag,
    RuleKind.INTEGRATION_SILENT: integration_silent,
}
