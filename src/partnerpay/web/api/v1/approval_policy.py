"""A program's approval policy: GET and PUT /programs/{id}/approval-policy (docs/api-approvals.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, StrictInt, StrictStr

from partnerpay.approvals import policy as policies
from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.web.api.schemas import In
from partnerpay.web.api.v1.common import Caller, now, reader
from partnerpay.web.security import factory

router = APIRouter()


class ApprovalPolicyIn(In):
    """The whole policy (a PUT): a field left out takes its default; null turns a rule off."""

    approver_roles: list[StrictStr] = Field(
        default=list(policies.DEFAULT_ROLES),
        min_length=1,
        description="staff roles whose users approve and reject lines: manager, finance, owner",
        examples=[["finance", "owner"]],
    )
    auto_approve_below: StrictInt | None = Field(
        default=None,
        ge=0,
        le=policies.MAX_AMOUNT,
        description="minor units of the program currency: the sweep approves pending lines with |amount| below "
        "this, past hold, of active partners without an open fraud flag; null: off",
        examples=[5_000],
    )
    second_approval_above: StrictInt | None = Field(
        default=None,
        ge=0,
        le=policies.MAX_AMOUNT,
        description="a line above this (program currency) needs a second approval by another finance user",
        examples=[100_000],
    )
    batch_second_approval_above: StrictInt | None = Field(
        default=None,
        ge=0,
        le=policies.MAX_AMOUNT,
        description="a payout batch whose total is above this needs a second approval by another finance user",
        examples=[1_000_000],
    )
    sla_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=policies.MAX_SLA_DAYS,
        description="a line pending longer than this many days is overdue (approvers are reminded daily)",
        examples=[5],
    )


@router.get("/programs/{program_id}/approval-policy")
def read_policy(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return policies.get_policy(s, actor, program_id).as_dict()


@router.put("/programs/{program_id}/approval-policy")
def put_policy(request: Request, program_id: str, body: ApprovalPolicyIn, actor: Actor = Caller) -> dict[str, Any]:
    """Replace the policy; the change is audited (before and after). Needs the owner role (scope 'admin')."""
    with unit_of_work(factory(request)) as s:
        return policies.put_policy(
            s, actor=actor, program_id=program_id, raw=body.model_dump(), now=now(request)
        ).as_dict()
