"""A program's approval policy: reading it (defaults when the program never set one), changing it, and the
role checks every approval goes through.

Defaults keep the behaviour partnerpay had before policies existed: owner and finance approve, nothing is
approved automatically, one approval is enough, no SLA.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.approvals.models import ApprovalPolicy
from partnerpay.audit import service as audit
from partnerpay.auth.actor import ROLE_SCOPES, Actor, ActorType
from partnerpay.auth.models import Role, StaffUser
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

DEFAULT_ROLES = (Role.FINANCE.value, Role.OWNER.value)
# A viewer has a read-only login: letting it decide on money would make the role meaningless.
APPROVING_ROLES = (Role.MANAGER.value, Role.FINANCE.value, Role.OWNER.value)
# The second approval is the finance check of maker-checker, whatever roles give the first one.
SECOND_APPROVER_ROLES = frozenset({Role.OWNER.value, Role.FINANCE.value})
MAX_AMOUNT = 10**15  # minor units: far above any real threshold, far below BigInteger's limit
MAX_SLA_DAYS = 365
FIELDS = ("approver_roles", "auto_approve_below", "second_approval_above", "batch_second_approval_above", "sla_days")


@dataclass(frozen=True)
class Policy:
    """The policy in force for one program (a stored row or the defaults)."""

    program_id: str
    currency: str
    approver_roles: tuple[str, ...] = DEFAULT_ROLES
    auto_approve_below: int | None = None
    second_approval_above: int | None = None
    batch_second_approval_above: int | None = None
    sla_days: int | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None

    def line_needs_two(self, amount: int, currency: str) -> bool:
        """Money out above the threshold needs two people; a line in another currency than the program's
        cannot be compared without a rate, so it is treated as above (the safe side)."""
        if self.second_approval_above is None or amount <= 0:
            return False
        return currency != self.currency or amount > self.second_approval_above

    def batch_needs_two(self, total: int, currency: str) -> bool:
        if self.batch_second_approval_above is None:
            return False
        return currency != self.currency or total > self.batch_second_approval_above

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["approver_roles"] = list(self.approver_roles)
        out["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        out["is_default"] = self.updated_at is None
        return out


def _from_row(program: Program, row: ApprovalPolicy | None) -> Policy:
    if row is None:
        return Policy(program.id, program.currency)
    return Policy(
        program.id,
        program.currency,
        approver_roles=tuple(row.approver_roles),
        auto_approve_below=row.auto_approve_below,
        second_approval_above=row.second_approval_above,
        batch_second_approval_above=row.batch_second_approval_above,
        sla_days=row.sla_days,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def policies_for(session: Session, program_ids: Iterable[str]) -> dict[str, Policy]:
    """The policy in force for each program named, in two reads."""
    wanted = sorted(set(program_ids))
    if not wanted:
        return {}
    programs = session.scalars(select(Program).where(Program.id.in_(wanted))).all()
    rows = {
        row.program_id: row
        for row in session.scalars(select(ApprovalPolicy).where(ApprovalPolicy.program_id.in_(wanted))).all()
    }
    return {p.id: _from_row(p, rows.get(p.id)) for p in programs}


def get_policy(session: Session, actor: Actor, program_id: str) -> Policy:
    program = get_program(session, actor, program_id)
    return _from_row(program, session.get(ApprovalPolicy, program.id))


def _amount(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    # bool is an int in Python and a float is never money: both are refused by name.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"{name} must be a whole number of minor units (or null for off), got {value!r}", field=name
        )
    if not 0 <= value <= MAX_AMOUNT:
        raise ValidationError(f"{name} must be between 0 and {MAX_AMOUNT} minor units, got {value}", field=name)
    return value


def check_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole policy (as JSON would carry it); every error names its field."""
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}; known: {', '.join(FIELDS)}", field=unknown[0])
    roles = raw.get("approver_roles", list(DEFAULT_ROLES))
    if not isinstance(roles, list | tuple) or not roles or not all(isinstance(r, str) for r in roles):
        raise ValidationError("approver_roles must be a non-empty list of role names", field="approver_roles")
    bad = [r for r in roles if r not in APPROVING_ROLES]
    if bad:
        raise ValidationError(
            f"approver_roles: {bad[0]!r} cannot approve; choose from {', '.join(APPROVING_ROLES)}",
            field="approver_roles",
        )
    values: dict[str, Any] = {"approver_roles": [r for r in APPROVING_ROLES if r in roles]}
    for name in ("auto_approve_below", "second_approval_above", "batch_second_approval_above"):
        values[name] = _amount(raw, name)
    sla = raw.get("sla_days")
    if sla is not None and (isinstance(sla, bool) or not isinstance(sla, int) or not 1 <= sla <= MAX_SLA_DAYS):
        raise ValidationError(
            f"sla_days must be a whole number of days from 1 to {MAX_SLA_DAYS}, or null", field="sla_days"
        )
    values["sla_days"] = sla
    auto, second = values["auto_approve_below"], values["second_approval_above"]
    if auto is not None and second is not None and auto > second + 1:
        # Auto-approval is one (system) approver: it may never cover a line that needs two people.
        raise ValidationError(
            f"auto_approve_below ({auto}) must not exceed second_approval_above + 1 ({second + 1}): a line that "
            "needs two approvers cannot be approved automatically",
            field="auto_approve_below",
        )
    return values


def put_policy(session: Session, *, actor: Actor, program_id: str, raw: Mapping[str, Any], now: datetime) -> Policy:
    """Replace the program's policy (a PUT: fields left out take their defaults), audited with before/after."""
    if not actor.can("admin") or actor.partner_id is not None:
        raise Forbidden("changing a program's approval policy needs the owner role (scope 'admin')")
    program = get_program(session, actor, program_id)
    values = check_values(raw)
    row = session.get(ApprovalPolicy, program.id)
    before = _from_row(program, row).as_dict()
    if row is None:
        row = ApprovalPolicy(program_id=program.id, updated_by=actor.id, updated_at=now, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by, row.updated_at = actor.id, now
    session.flush()
    after = _from_row(program, row)
    audit.record(
        session,
        actor=actor,
        action="approval_policy.update",
        object_type="approval_policy",
        object_id=program.id,
        program_id=program.id,
        now=now,
        before={k: before[k] for k in FIELDS},
        after={k: after.as_dict()[k] for k in FIELDS},
    )
    return after


def staff_role(session: Session, actor: Actor) -> str | None:
    """The staff role of a person acting; None for API keys, partners and the system."""
    if actor.type is not ActorType.STAFF:
        return None
    user = session.get(StaffUser, actor.id)
    if user is not None:
        return user.role
    return next((role for role, scopes in ROLE_SCOPES.items() if scopes == actor.scopes), None)


def roles_phrase(roles: Iterable[str]) -> str:
    """("finance", "owner") → "finance or owner" (as the console's other role messages say it)."""
    names = [r for r in APPROVING_ROLES if r in set(roles)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_may_decide(session: Session, actor: Actor, policies: Iterable[Policy], verb: str) -> None:
    """Raise Forbidden, with the reason, unless the actor may approve or reject lines of every program given.

    verb: "approve" or "reject". Staff go by the policy's roles, API keys by their 'approve' scope.
    """
    doing = "approving" if verb == "approve" else "rejecting"
    if actor.partner_id is not None:
        raise Forbidden(f"partners cannot {verb} commission lines")
    if actor.type is ActorType.SYSTEM:
        return
    if actor.type is not ActorType.STAFF:
        if not actor.can("approve"):
            raise Forbidden(f"{doing} commissions needs the 'approve' scope, which API key {actor.id} lacks")
        return
    role = staff_role(session, actor)
    for policy in policies:
        if role not in policy.approver_roles:
            raise Forbidden(
                f"{doing} commissions needs the {roles_phrase(policy.approver_roles)} role (approval policy of "
                f"program {policy.program_id}); you are logged in as {role or 'a user without a role'}",
                field="role",
            )


def is_second_approver(session: Session, actor: Actor) -> bool:
    return actor.type is ActorType.STAFF and staff_role(session, actor) in SECOND_APPROVER_ROLES
