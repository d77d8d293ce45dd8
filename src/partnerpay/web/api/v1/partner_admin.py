"""Partner administration: the filtered list and its CSV, lifecycle, owners, notes, timeline, groups, prospects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import ValidationError
from partnerpay.partners import admin, groups, prospects, queries
from partnerpay.partners.models import Partner, PartnerGroup, Prospect
from partnerpay.partners.schemas import (
    ActivityOut,
    BulkOwnerIn,
    ConvertOut,
    GroupIn,
    GroupOut,
    GroupPatch,
    MembersIn,
    NoteIn,
    NoteOut,
    OwnerIn,
    PartnerAdminOut,
    ProspectIn,
    ProspectOut,
    ProspectPatch,
    ReasonIn,
)
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader
from partnerpay.web.security import factory

router = APIRouter()


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")


def page(model: type[BaseModel], rows: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"data": [dump(model, r) for r in rows], "next_cursor": next_cursor}


class Filters:
    """The partners list's query parameters, shared by the list and the CSV export."""

    def __init__(
        self,
        program_id: str | None = None,
        status: str | None = Query(None, description="applied, active, suspended, terminated, declined"),
        group_id: str | None = Query(None, description="a group id, or `none` for partners in no group"),
        owner_id: str | None = Query(None, description="a staff user id, or `none` for partners nobody owns"),
        mine: bool = Query(False, description="partners owned by the logged-in staff user"),
        country: str | None = Query(None, description="ISO 3166 alpha-2"),
        tax: str | None = Query(None, description="tax_ok (a valid tax form is on file) or tax_missing"),
        has_payout_method: bool | None = None,
        q: str | None = Query(None, description="part of the name, email or referral code (any case)"),
        sort: str | None = Query(None, description="name, created or status; prefix - for descending"),
    ) -> None:
        self.filter = queries.PartnerFilter(
            program_id, status, group_id, owner_id, country, tax, has_payout_method, q, sort
        )
        self.mine = mine

    def of(self, actor: Actor) -> queries.PartnerFilter:
        """The filter, with mine=true resolved to the logged-in staff user."""
        if not self.mine:
            return self.filter
        if actor.type is not ActorType.STAFF:
            raise ValidationError("mine=true needs a staff login; with an API key pass owner_id", field="mine")
        if self.filter.owner_id and self.filter.owner_id != actor.id:
            raise ValidationError("pass either mine=true or owner_id, not both", field="owner_id")
        return replace(self.filter, owner_id=actor.id)


@router.get("/partners")
def list_partners(
    request: Request,
    actor: Actor = Caller,
    filters: Filters = Depends(),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """Partners matching every filter given; cursor paging (with `sort`, the cursor is opaque)."""
    with reader(request, actor) as s:
        result = queries.list_partners(s, actor, filters.of(actor), cursor=cursor, limit=limit)
        return page(PartnerAdminOut, result.data, result.next_cursor)


@router.get("/partners/export", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_partners(request: Request, actor: Actor = Caller, filters: Filters = Depends()) -> Response:
    """The same filters as the list, as CSV (cells that a spreadsheet would run as formulas are escaped)."""
    with reader(request, actor) as s:
        content = queries.export_partners(s, actor, filters.of(actor))
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="partners.csv"'},
    )


def _write(request: Request, actor: Actor, body: Any, work: Callable[[Session], tuple[int, Any]]) -> JSONResponse:
    need(actor, "write")
    return idempotency.run(request, actor, body, work)


@router.post("/partners/assign-owner")
def assign_owner_bulk(request: Request, body: BulkOwnerIn, actor: Actor = Caller) -> JSONResponse:
    """Make one staff user (or nobody, with null) the owner of many partners; all or nothing."""

    def work(s: Session) -> tuple[int, Any]:
        done = admin.assign_owner(
            s, actor=actor, partner_ids=body.partner_ids, owner_id=body.owner_id, now=now(request)
        )
        return 200, {"data": [dump(PartnerAdminOut, p) for p in done]}

    return _write(request, actor, body.model_dump(), work)


def _lifecycle(request: Request, actor: Actor, partner_id: str, body: ReasonIn, action: Callable[..., Partner]) -> Any:
    def work(s: Session) -> tuple[int, Any]:
        partner = action(s, actor=actor, partner_id=partner_id, reason=body.reason, now=now(request))
        return 200, dump(PartnerAdminOut, partner)

    return _write(request, actor, body.model_dump(), work)


@router.post("/partners/{partner_id}/suspend", response_model=PartnerAdminOut)
def suspend(request: Request, partner_id: str, body: ReasonIn, actor: Actor = Caller) -> Any:
    """Suspend an active partner (reason required): no new earnings, not paid; payable stays visible."""
    return _lifecycle(request, actor, partner_id, body, admin.suspend)


@router.post("/partners/{partner_id}/reinstate", response_model=PartnerAdminOut)
def reinstate(request: Request, partner_id: str, body: ReasonIn, actor: Actor = Caller) -> Any:
    """A suspended partner becomes active again and is paid in the next run."""
    return _lifecycle(request, actor, partner_id, body, admin.reinstate)


@router.post("/partners/{partner_id}/terminate", response_model=PartnerAdminOut)
def terminate(request: Request, partner_id: str, body: ReasonIn, actor: Actor = Caller) -> Any:
    """End the relationship (reason required); cannot be undone."""
    return _lifecycle(request, actor, partner_id, body, admin.terminate)


@router.post("/partners/{partner_id}/owner", response_model=PartnerAdminOut)
def assign_owner(request: Request, partner_id: str, body: OwnerIn, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        done = admin.assign_owner(s, actor=actor, partner_ids=[partner_id], owner_id=body.owner_id, now=now(request))
        return 200, dump(PartnerAdminOut, done[0])

    return _write(request, actor, body.model_dump(), work)


@router.post("/partners/{partner_id}/notes", status_code=201, response_model=NoteOut)
def add_note(request: Request, partner_id: str, body: NoteIn, actor: Actor = Caller) -> JSONResponse:
    """A staff-only note: never shown to the partner."""

    def work(s: Session) -> tuple[int, Any]:
        return 201, dump(
            NoteOut, admin.add_note(s, actor=actor, partner_id=partner_id, body=body.body, now=now(request))
        )

    return _write(request, actor, body.model_dump(), work)


@router.get("/partners/{partner_id}/notes")
def list_notes(
    request: Request, partner_id: str, actor: Actor = Caller, cursor: str | None = CursorParam, limit: int = Limit
) -> dict[str, Any]:
    """Newest first."""
    with reader(request, actor) as s:
        result = queries.notes_page(s, actor, partner_id, cursor=cursor, limit=limit)
        return page(NoteOut, result.data, result.next_cursor)


@router.get("/partners/{partner_id}/timeline")
def timeline(
    request: Request, partner_id: str, actor: Actor = Caller, cursor: str | None = CursorParam, limit: int = Limit
) -> dict[str, Any]:
    """Applications, status changes, owner and group moves, notes, payout-detail changes…, newest first."""
    with reader(request, actor) as s:
        result = queries.timeline_page(s, actor, partner_id, cursor=cursor, limit=limit)
        return page(ActivityOut, result.data, result.next_cursor)


def group_out(s: Session, group: PartnerGroup, size: int | None = None) -> dict[str, Any]:
    fields = {name: getattr(group, name) for name in GroupOut.model_fields if name != "size"}
    return dump(GroupOut, {**fields, "size": groups.group_size(s, group.id) if size is None else size})


@router.post("/groups", status_code=201, response_model=GroupOut)
def create_group(request: Request, body: GroupIn, actor: Actor = Caller) -> JSONResponse:
    """A group with its own commission override; a pilot adds a size cap and dates."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        return 201, group_out(s, groups.create_group(s, actor=actor, now=now(request), **data), 0)

    return _write(request, actor, body.model_dump(mode="json"), work)


@router.get("/groups")
def list_groups(request: Request, actor: Actor = Caller, program_id: str | None = None) -> dict[str, Any]:
    with reader(request, actor) as s:
        rows = groups.groups_with_sizes(s, actor, program_id=program_id)
        return {"data": [group_out(s, g, n) for g, n in rows], "next_cursor": None}


@router.get("/groups/comparison")
def pilot_comparison(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Each pilot against everyone else in the program; money per currency, per-partner averages half-even."""
    with reader(request, actor) as s:
        cohorts = groups.pilot_comparison(s, actor, program_id)

        def money(sums: dict[str, int], c: groups.Cohort) -> list[dict[str, Any]]:
            return [{"currency": k, "amount": v, "per_partner": c.per_partner(v)} for k, v in sorted(sums.items())]

        data = [
            {
                "label": c.label,
                "group_id": c.group.id if c.group else None,
                "partners": c.partners,
                "active": c.active,
                "customers": c.customers,
                "revenue": money(c.revenue, c),
                "commissions": money(c.commissions, c),
            }
            for c in cohorts
        ]
        return {"program_id": program_id, "data": data}


@router.get("/groups/{group_id}", response_model=GroupOut)
def read_group(request: Request, group_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return group_out(s, groups.get_group(s, actor, group_id))


@router.patch("/groups/{group_id}", response_model=GroupOut)
def update_group(request: Request, group_id: str, body: GroupPatch, actor: Actor = Caller) -> dict[str, Any]:
    """Only the fields sent change; the cap may not go below the group's current size."""
    need(actor, "write")
    with unit_of_work(factory(request)) as s:
        group = groups.update_group(
            s, actor=actor, group_id=group_id, changes=body.model_dump(exclude_unset=True), now=now(request)
        )
        return group_out(s, group)


@router.post("/groups/{group_id}/members", response_model=GroupOut)
def add_members(request: Request, group_id: str, body: MembersIn, actor: Actor = Caller) -> JSONResponse:
    """Move partners into the group (out of any other); a pilot over its cap refuses the whole move."""

    def work(s: Session) -> tuple[int, Any]:
        groups.move_partners(s, actor=actor, partner_ids=body.partner_ids, group_id=group_id, now=now(request))
        return 200, group_out(s, groups.get_group(s, actor, group_id))

    return _write(request, actor, body.model_dump(), work)


@router.post("/prospects", status_code=201, response_model=ProspectOut)
def create_prospect(request: Request, body: ProspectIn, actor: Actor = Caller) -> JSONResponse:
    """A partner the team is recruiting: stage, next step, due date and owner."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        return 201, dump(ProspectOut, prospects.create_prospect(s, actor=actor, now=now(request), **data))

    return _write(request, actor, body.model_dump(mode="json"), work)


@router.get("/prospects")
def list_prospects(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    stage: str | None = None,
    owner_id: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        result = prospects.list_prospects(
            s, actor, program_id=program_id, stage=stage, owner_id=owner_id, cursor=cursor, limit=limit
        )
        return page(ProspectOut, result.data, result.next_cursor)


@router.get("/prospects/{prospect_id}", response_model=ProspectOut)
def read_prospect(request: Request, prospect_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(ProspectOut, prospects.get_prospect(s, actor, prospect_id))


@router.patch("/prospects/{prospect_id}", response_model=ProspectOut)
def update_prospect(request: Request, prospect_id: str, body: ProspectPatch, actor: Actor = Caller) -> dict[str, Any]:
    need(actor, "write")
    with unit_of_work(factory(request)) as s:
        prospect: Prospect = prospects.update_prospect(
            s, actor=actor, prospect_id=prospect_id, changes=body.model_dump(exclude_unset=True), now=now(request)
        )
        return dump(ProspectOut, prospect)


@router.post("/prospects/{prospect_id}/convert", status_code=201, response_model=ConvertOut)
def convert_prospect(request: Request, prospect_id: str, actor: Actor = Caller) -> JSONResponse:
    """Invite the prospect as a partner: the invitation email goes out and the stage becomes `invited`."""

    def work(s: Session) -> tuple[int, Any]:
        prospect, partner, invitation, _token = prospects.convert_prospect(
            s, actor=actor, prospect_id=prospect_id, now=now(request)
        )
        return 201, {
            "prospect": dump(ProspectOut, prospect),
            "partner_id": partner.id,
            "invitation_id": invitation.id,
            "expires_at": invitation.expires_at.isoformat(),
        }

    return _write(request, actor, {}, work)
