"""Who is acting: every write service receives one and the audit row names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ActorType(StrEnum):
    STAFF = "staff"
    API_KEY = "api_key"
    PARTNER = "partner"
    SYSTEM = "system"


# What each staff role may do; API keys carry the same scope names.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "write", "approve", "payouts", "admin"}),
    "manager": frozenset({"read", "write"}),
    "finance": frozenset({"read", "write", "approve", "payouts"}),
    "viewer": frozenset({"read"}),
}
ALL_SCOPES = ROLE_SCOPES["owner"]


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    # None: every program (staff and unscoped keys); else the one program this actor may touch.
    program_id: str | None = None
    partner_id: str | None = None
    label: str = ""

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_program(self, program_id: str) -> bool:
        return self.program_id is None or self.program_id == program_id

    def sees(self, program_id: str, partner_id: str) -> bool:
        """Whether an object of this program and partner is visible: a partner user sees only its own."""
        return self.sees_program(program_id) and (self.partner_id is None or self.partner_id == partner_id)


SYSTEM = Actor(ActorType.SYSTEM, "system", ALL_SCOPES, label="partnerpay")
