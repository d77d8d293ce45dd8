"""Onboarding: program settings and terms, application decisions, invitations.

Invitation tokens never appear in a response: the link goes to the partner by email only
(a stored idempotent response would otherwise keep it in the database in clear).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import paginate
from partnerpay.partners import applications, invitations, members
from partnerpay.partners.invitations import InvitationStatus, invitation_status
from partnerpay.partners.models import Invitation, Partner, PartnerUser
from partnerpay.programs import service as programs
from partnerpay.programs import terms
from partnerpay.programs.models import ProgramTerms
from partnerpay.programs.schemas import ProgramSettingsIn, ProgramSettingsOut, TermsIn, TermsOut
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DecideIn(_In):
    partner_ids: list[StrictStr] = Field(min_length=1, max_length=5000)


class DeclineIn(_In):
    reason: StrictStr = Field(min_length=1, max_length=2000, examples=["audience does not fit the product"])


class BulkDeclineIn(DecideIn, DeclineIn):
    pass


class InviteIn(_In):
    program_id: StrictStr
    name: StrictStr = Field(min_length=1, max_length=200)
    email: EmailStr


class MemberIn(_In):
    email: EmailStr


class ApplicantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    program_id: str
    name: str
    email: str
    referral_code: str
    status: str
    source: str
    company: str | None
    website: str | None
    country: str | None
    owner_id: str | None
    application: dict[str, Any] | None
    status_reason: str | None
    status_changed_at: datetime | None
    created_at: datetime


class InvitationOut(BaseModel):
    id: str
    program_id: str
    partner_id: str
    email: str
    kind: str
    status: InvitationStatus
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


def applicant(partner: Partner) -> dict[str, Any]:
    return ApplicantOut.model_validate(partner).model_dump(mode="json")


def invitation_out(invitation: Invitation, at: datetime) -> dict[str, Any]:
    fields = {name: getattr(invitation, name) for name in InvitationOut.model_fields if name != "status"}
    return InvitationOut(**fields, status=invitation_status(invitation, at)).model_dump(mode="json")


def _write(request: Request, actor: Actor, body: Any, work: Callable[[Session], tuple[int, Any]]) -> JSONResponse:
    need(actor, "write")
    return idempotency.run(request, actor, body, work)


# --- programs ----------------------------------------------------------------------------------


@router.patch("/programs/{program_id}", response_model=ProgramSettingsOut)
def update_program(request: Request, program_id: str, body: ProgramSettingsIn, actor: Actor = Caller) -> JSONResponse:
    """Change settings: only the fields sent change (null clears logo_url or default_owner_id). Audited."""
    changes = body.model_dump(exclude_unset=True, mode="json")

    def work(s: Session) -> tuple[int, Any]:
        program = programs.update_program_settings(
            s, actor=actor, program_id=program_id, changes=changes, now=now(request)
        )
        return 200, ProgramSettingsOut.model_validate(program).model_dump(mode="json")

    return idempotency.run(request, actor, changes, work)


@router.post("/programs/{program_id}/terms", status_code=201, response_model=TermsOut)
def publish_terms(request: Request, program_id: str, body: TermsIn, actor: Actor = Caller) -> JSONResponse:
    """A new terms version (the last + 1); every partner must accept it in the portal before earning again."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        published = terms.publish_terms(s, actor=actor, program_id=program_id, now=now(request), **data)
        return 201, TermsOut.model_validate(published).model_dump(mode="json")

    return idempotency.run(request, actor, data, work)


@router.get("/programs/{program_id}/terms")
def list_terms(
    request: Request, program_id: str, actor: Actor = Caller, cursor: str | None = CursorParam, limit: int = Limit
) -> dict[str, Any]:
    """Every published version, oldest first; the last one is current."""
    with reader(request, actor) as s:
        programs.get_program(s, actor, program_id)
        stmt = select(ProgramTerms).where(ProgramTerms.program_id == program_id)
        result = paginate(s, stmt, ProgramTerms.id, cursor=cursor, limit=limit)
        data = [TermsOut.model_validate(t).model_dump(mode="json") for t in result.data]
        return {"data": data, "next_cursor": result.next_cursor}


# --- applications ------------------------------------------------------------------------------


def _approved(done: list[tuple[Partner, Invitation, str]], at: datetime) -> list[dict[str, Any]]:
    return [{**applicant(p), "invitation": invitation_out(i, at)} for p, i, _token in done]


@router.post("/partners/{partner_id}/approve")
def approve(request: Request, partner_id: str, actor: Actor = Caller) -> JSONResponse:
    """applied → active; the partner gets a welcome email with a link to set a portal password."""

    def work(s: Session) -> tuple[int, Any]:
        pairs = applications.approve_applications(s, actor=actor, partner_ids=[partner_id], now=now(request))
        return 200, _approved(pairs, now(request))[0]

    return _write(request, actor, {}, work)


@router.post("/partners/{partner_id}/decline")
def decline(request: Request, partner_id: str, body: DeclineIn, actor: Actor = Caller) -> JSONResponse:
    """applied → declined with a reason (kept by the team; the applicant gets a short, kind email)."""

    def work(s: Session) -> tuple[int, Any]:
        done = applications.decline_applications(
            s, actor=actor, partner_ids=[partner_id], reason=body.reason, now=now(request)
        )
        return 200, applicant(done[0])

    return _write(request, actor, body.model_dump(), work)


@router.post("/applications/approve")
def approve_many(request: Request, body: DecideIn, actor: Actor = Caller) -> JSONResponse:
    """Approve every listed applicant or none (the error names the first one that is not applied)."""

    def work(s: Session) -> tuple[int, Any]:
        pairs = applications.approve_applications(s, actor=actor, partner_ids=body.partner_ids, now=now(request))
        return 200, {"data": _approved(pairs, now(request))}

    return _write(request, actor, body.model_dump(), work)


@router.post("/applications/decline")
def decline_many(request: Request, body: BulkDeclineIn, actor: Actor = Caller) -> JSONResponse:
    """Decline every listed applicant or none, with one reason."""

    def work(s: Session) -> tuple[int, Any]:
        done = applications.decline_applications(
            s, actor=actor, partner_ids=body.partner_ids, reason=body.reason, now=now(request)
        )
        return 200, {"data": [applicant(p) for p in done]}

    return _write(request, actor, body.model_dump(), work)


@router.get("/applications")
def list_applications(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """Applications waiting for a decision, oldest first, with their answers."""
    with reader(request, actor) as s:
        result = applications.application_queue(s, actor, program_id=program_id, cursor=cursor, limit=limit)
        return {"data": [applicant(p) for p in result.data], "next_cursor": result.next_cursor}


# --- invitations -------------------------------------------------------------------------------


@router.post("/partners/invite", status_code=201)
def invite(request: Request, body: InviteIn, actor: Actor = Caller) -> JSONResponse:
    """An active partner without an application; the link to set a password is emailed, never returned."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        partner, invitation, _token = invitations.invite_partner(s, actor=actor, now=now(request), **data)
        return 201, {**applicant(partner), "invitation": invitation_out(invitation, now(request))}

    return _write(request, actor, data, work)


@router.get("/invitations")
def list_invitations(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    status: str | None = Query(None, description="valid, expired, used or revoked"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    wanted = None
    if status:
        try:
            wanted = InvitationStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in InvitationStatus)
            raise ValidationError(f"status must be one of {choices}, got {status!r}", field="status") from None
    at = now(request)
    with reader(request, actor) as s:
        result = invitations.list_invitations(
            s, actor, now=at, program_id=program_id, status=wanted, cursor=cursor, limit=limit
        )
        return {"data": [invitation_out(i, at) for i in result.data], "next_cursor": result.next_cursor}


@router.post("/invitations/{invitation_id}/resend", status_code=201)
def resend(request: Request, invitation_id: str, actor: Actor = Caller) -> JSONResponse:
    """A new link by email; the old one (and any other open link of the partner) stops working."""

    def work(s: Session) -> tuple[int, Any]:
        invitation, _token = invitations.resend_invitation(
            s, actor=actor, invitation_id=invitation_id, now=now(request)
        )
        return 201, invitation_out(invitation, now(request))

    return _write(request, actor, {}, work)


@router.post("/invitations/{invitation_id}/revoke")
def revoke(request: Request, invitation_id: str, actor: Actor = Caller) -> JSONResponse:
    """The link stops working at once."""

    def work(s: Session) -> tuple[int, Any]:
        invitation = invitations.revoke_invitation(s, actor=actor, invitation_id=invitation_id, now=now(request))
        return 200, invitation_out(invitation, now(request))

    return _write(request, actor, {}, work)


# --- team members (several logins per partner) ---------------------------------------------------


def member_out(user: PartnerUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "partner_id": user.partner_id,
        "email": user.email,
        "role": user.role,
        "has_password": user.password_hash is not None,
        "created_at": user.created_at.isoformat(),
    }


@router.post("/partners/{partner_id}/members", status_code=201)
def invite_member(request: Request, partner_id: str, body: MemberIn, actor: Actor = Caller) -> JSONResponse:
    """Another login (role member) for the partner; the link to set its password is emailed, never returned."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        user, invitation, _token = members.invite_member(
            s, actor=actor, partner_id=partner_id, email=body.email, now=now(request)
        )
        return 201, {**member_out(user), "invitation": invitation_out(invitation, now(request))}

    return _write(request, actor, data, work)


@router.delete("/partners/{partner_id}/members/{user_id}")
def remove_member(request: Request, partner_id: str, user_id: str, actor: Actor = Caller) -> JSONResponse:
    """The login stops working at once and its open links are revoked; the last owner cannot be removed."""

    def work(s: Session) -> tuple[int, Any]:
        members.remove_member(s, actor=actor, partner_id=partner_id, user_id=user_id, now=now(request))
        return 200, {"id": user_id, "partner_id": partner_id, "removed": True}

    return _write(request, actor, {}, work)
