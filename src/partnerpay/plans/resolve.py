"""Which plan version applies to a partner at a time, and why: partner exception, then group, then program.

`load_book` reads a program's assignments and published versions once; `PlanBook.choose` is then a pure
function, so evaluating many events (live, recalculation or backtest) asks the database nothing more.
A partner's group is its current group (membership history is not kept).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.partners.models import Partner
from partnerpay.plans.models import AssignmentScope, Plan, PlanAssignment, PlanVersion, VersionStatus
from partnerpay.plans.rules import Rule, parse_rules

LEVELS = (AssignmentScope.PARTNER, AssignmentScope.GROUP, AssignmentScope.PROGRAM)


@dataclass(frozen=True)
class How:
    """Why a version applies: the level that matched and the assignment behind it."""

    level: str  # partner | group | program
    assignment_id: str
    plan_name: str
    version: int
    reason: str | None = None
    expires_at: datetime | None = None

    @property
    def text(self) -> str:
        plan = f"plan {self.plan_name} v{self.version}"
        if self.level == AssignmentScope.PARTNER:
            until = f", until {self.expires_at.date().isoformat()}" if self.expires_at else ""
            return f"{plan}, a partner exception ({self.reason}{until})"
        if self.level == AssignmentScope.GROUP:
            return f"{plan}, assigned to the partner's group"
        return f"{plan}, the program's plan"


class PlanChoice(NamedTuple):
    version: PlanVersion
    how: How


def active(a: PlanAssignment, at: datetime) -> bool:
    return (
        a.effective_from <= at
        and (a.ended_at is None or at < a.ended_at)
        and (a.expires_at is None or at < a.expires_at)
    )


@dataclass
class PlanBook:
    """A program's assignments and published (or archived) versions, read once."""

    plans: dict[str, Plan]
    assignments: list[PlanAssignment]
    versions: dict[str, list[PlanVersion]]  # plan id -> versions, newest effective_from first
    _rules: dict[str, list[Rule]] = field(default_factory=dict)

    def version_at(self, plan_id: str, at: datetime) -> PlanVersion | None:
        """The plan's version in effect at `at`: effective_from <= at, the newest such."""
        for version in self.versions.get(plan_id, ()):
            if version.effective_from is not None and version.effective_from <= at:
                return version
        return None

    def rules(self, version: PlanVersion) -> list[Rule]:
        """The version's rules as Rule objects, parsed once per book (a published version never changes)."""
        if version.id not in self._rules:
            self._rules[version.id] = rules_of(version)
        return self._rules[version.id]

    def choose(self, partner_id: str, group_id: str | None, at: datetime) -> PlanChoice | None:
        """Most specific first; an assignment whose plan has no version in effect yet falls through."""
        for level in LEVELS:
            candidates = [
                a
                for a in self.assignments
                if a.scope == level
                and active(a, at)
                and (level != AssignmentScope.PARTNER or a.partner_id == partner_id)
                and (level != AssignmentScope.GROUP or (group_id is not None and a.group_id == group_id))
            ]
            # At one level the newest assignment wins.
            candidates.sort(key=lambda a: (a.effective_from, a.created_at, a.id), reverse=True)
            for a in candidates:
                version = self.version_at(a.plan_id, at)
                if version is not None:
                    how = How(level, a.id, self.plans[a.plan_id].name, version.version, a.reason, a.expires_at)
                    return PlanChoice(version, how)
        return None


def rules_of(version: PlanVersion) -> list[Rule]:
    """A stored version's rules as Rule objects."""
    # They were validated against the program when saved; a custom type the program dropped later stays readable.
    triggers = [str(r.get("trigger")) for r in version.rules]
    return parse_rules(version.rules, custom_types=triggers)


def load_book(session: Session, program_id: str) -> PlanBook:
    plans = {p.id: p for p in session.scalars(select(Plan).where(Plan.program_id == program_id))}
    assignments = list(session.scalars(select(PlanAssignment).where(PlanAssignment.program_id == program_id)))
    versions: dict[str, list[PlanVersion]] = defaultdict(list)
    if plans:
        rows = session.scalars(
            select(PlanVersion).where(
                PlanVersion.plan_id.in_(list(plans)),
                PlanVersion.status.in_([VersionStatus.PUBLISHED.value, VersionStatus.ARCHIVED.value]),
            )
        )
        for version in rows:
            versions[version.plan_id].append(version)
    for plan_versions in versions.values():
        plan_versions.sort(key=lambda v: (v.effective_from, v.version), reverse=True)
    return PlanBook(plans, assignments, dict(versions))


def has_assignments(session: Session, program_id: str) -> bool:
    """Whether any partner of the program may be on a plan (else every line comes from the default rate)."""
    found = session.scalar(select(PlanAssignment.id).where(PlanAssignment.program_id == program_id).limit(1))
    return found is not None


def plan_for(session: Session, partner: Partner, at: datetime) -> PlanChoice | None:
    """The version that applies to the partner at `at` and why; None: the program's default_percent_bp applies."""
    return load_book(session, partner.program_id).choose(partner.id, partner.group_id, at)
