"""Partners table: filters (status, group, owner or mine, country, tax state, payout method), search, sort,
bulk owner and group changes, the CSV download of exactly what the filter shows; groups and pilots."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners import admin, groups
from partnerpay.partners import queries as partner_queries
from partnerpay.partners.queries import SORTS, STATUSES, TAX_STATES, PartnerFilter
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.partner_pages import Csrf, day, read_form, whole_number, write
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render, safe_next
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
FILTER_KEYS = ("q", "status", "group_id", "owner", "country", "tax", "payout", "sort")
PAYOUT_CHOICES = {"": None, "yes": True, "no": False}


def filter_of(me: Actor, form: dict[str, str]) -> PartnerFilter:
    """The console's filter bar as a PartnerFilter; owner is a staff id, `mine` or `none`."""
    owner = form.get("owner", "")
    payout = form.get("payout", "")
    return PartnerFilter(
        status=form.get("status") or None,
        group_id=form.get("group_id") or None,
        owner_id=me.id if owner == "mine" else (owner or None),
        country=form.get("country") or None,
        tax=form.get("tax") or None,
        has_payout_method=PAYOUT_CHOICES.get(payout),
        q=form.get("q") or None,
        sort=form.get("sort") or None,
    )


def _query(form: dict[str, str], **extra: str) -> str:
    return urlencode({k: v for k, v in {**form, **extra}.items() if v})


def partners_page(
    request: Request, me: Actor, form: dict[str, str], *, error: str | None = None, status_code: int = 200
) -> Response:
    cursor = request.query_params.get("cursor")
    with reading(request) as session:
        page = partner_queries.list_partners(session, me, filter_of(me, form), cursor=cursor, limit=50)
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "partners",
            "partners": page.data,
            "facts": partner_queries.row_facts(session, page.data),
            "next_cursor": page.next_cursor,
            "statuses": STATUSES,
            "tax_states": TAX_STATES,
            "sorts": SORTS,
            "groups": groups.groups_with_sizes(session, me),
            "staff": partner_queries.staff_users(session),
            "program_names": queries.program_names(session),
            "form": form,
            "filtered": any(form.get(k) for k in FILTER_KEYS),
            "query": _query(form),
            "next_query": _query(form, cursor=page.next_cursor or ""),
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "error": error,
        }
    return render(request, "console/partners.html", context, status_code=status_code)


def query_form(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in FILTER_KEYS}


@router.get("/partners")
def partners(request: Request, me: Actor = Staff) -> Response:
    return partners_page(request, me, query_form(request))


@router.get("/partners.csv")
def export(request: Request, me: Actor = Staff) -> Response:
    """The filtered list as CSV, formula-escaped, every page of it."""
    with reading(request) as session:
        content = partner_queries.export_partners(session, me, filter_of(me, query_form(request)))
    stamp = now(request).strftime("%Y%m%d")
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="partners-{stamp}.csv"'},
    )


@router.post("/partners/bulk")
def bulk(
    request: Request,
    me: Actor = Staff,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[str] | None, Form()] = None,
    owner_id: Annotated[str, Form()] = "",
    group_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/partners",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Assign an owner to, or move into a group, the partners ticked in the table."""
    check_form_csrf(request, csrf_token)
    target = safe_next(next, "/partners")
    back = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items() if k in FILTER_KEYS}
    if not ids:
        return partners_page(
            request, me, back, error="Tick the partners to change in the first column.", status_code=422
        )
    try:
        with unit_of_work(factory(request)) as session:
            if action == "owner":
                done = admin.assign_owner(
                    session, actor=me, partner_ids=ids, owner_id=owner_id or None, now=now(request)
                )
                who = next_owner_label(session, owner_id)
                message = f"{len(done)} partner(s) now owned by {who}."
            elif action == "group":
                done = groups.move_partners(
                    session, actor=me, partner_ids=ids, group_id=group_id or None, now=now(request)
                )
                where = f"group {groups.get_group(session, me, group_id).name}" if group_id else "no group"
                message = f"{len(done)} partner(s) moved to {where}."
            else:
                return partners_page(request, me, back, error="Choose what to change: owner or group.", status_code=422)
    except PartnerpayError as exc:
        return partners_page(request, me, back, error=exc.message, status_code=exc.status)
    flash(request, message)
    return redirect(target)


def next_owner_label(session: Session, owner_id: str) -> str:
    if not owner_id:
        return "nobody"
    return partner_queries.staff_emails(session, [owner_id]).get(owner_id, owner_id)


# --- groups and pilots --------------------------------------------------------------------------

GROUP_FIELDS = ("program_id", "name", "description", "percent_bp", "is_pilot", "size_cap", "starts_on", "ends_on")


def group_fields(form: dict[str, str]) -> dict[str, Any]:
    """The group form's text fields as the service's values; a bad number or date names its field."""
    return {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "percent_bp": whole_number(form.get("percent_bp", ""), "percent_bp"),
        "is_pilot": bool(form.get("is_pilot")),
        "size_cap": whole_number(form.get("size_cap", ""), "size_cap"),
        "starts_on": day(form.get("starts_on", ""), "starts_on"),
        "ends_on": day(form.get("ends_on", ""), "ends_on"),
    }


def groups_page(
    request: Request, me: Actor, *, error: PartnerpayError | None = None, values: dict[str, str] | None = None
) -> Response:
    with reading(request) as session:
        context = {
            "area": "console",
            "me": me,
            "page": "groups",
            "groups": groups.groups_with_sizes(session, me),
            "programs": queries.programs(session),
            "program_names": queries.program_names(session),
            "error": error,
            "values": values or {},
        }
    return render(request, "console/groups.html", context, status_code=error.status if error else 200)


@router.get("/groups")
def list_groups(request: Request, me: Actor = Staff) -> Response:
    return groups_page(request, me)


@router.post("/groups")
async def create_group(request: Request, me: Actor = Staff) -> Response:
    form = await read_form(request)
    check_form_csrf(request, form.get("csrf_token"))

    def work(s: Session) -> str:
        group = groups.create_group(
            s, actor=me, program_id=form.get("program_id", ""), now=now(request), **group_fields(form)
        )
        return f"Group {group.name} created. Tick partners on the Partners page and move them in."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return groups_page(request, me, error=result, values=form)
    flash(request, result)
    return redirect("/groups")


@router.get("/groups/compare")
def compare(request: Request, me: Actor = Staff, program_id: str = "") -> Response:
    """Pilot vs the rest of one program."""
    with reading(request) as session:
        programs = queries.programs(session)
        chosen = program_id or (programs[0].id if programs else "")
        cohorts = groups.pilot_comparison(session, me, chosen) if chosen else []
        context = {
            "area": "console",
            "me": me,
            "page": "groups",
            "programs": programs,
            "program_id": chosen,
            "cohorts": cohorts,
        }
    return render(request, "console/groups_compare.html", context)


def group_page(
    request: Request,
    me: Actor,
    group_id: str,
    *,
    error: PartnerpayError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with reading(request) as session:
        group = groups.get_group(session, me, group_id)
        members = groups.members(session, group.id)
        context = {
            "area": "console",
            "me": me,
            "page": "groups",
            "group": group,
            "members": members,
            "facts": partner_queries.row_facts(session, members),
            "size": groups.group_size(session, group.id),
            "program_names": queries.program_names(session),
            "error": error,
            "values": values,
        }
    return render(request, "console/group.html", context, status_code=error.status if error else 200)


@router.get("/groups/{group_id}")
def show_group(request: Request, group_id: str, me: Actor = Staff) -> Response:
    return group_page(request, me, group_id)


@router.post("/groups/{group_id}")
async def update_group(request: Request, group_id: str, me: Actor = Staff) -> Response:
    form = await read_form(request)
    check_form_csrf(request, form.get("csrf_token"))

    def work(s: Session) -> str:
        group = groups.update_group(s, actor=me, group_id=group_id, changes=group_fields(form), now=now(request))
        return f"Group {group.name} saved."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return group_page(request, me, group_id, error=result, values=form)
    flash(request, result)
    return redirect(f"/groups/{group_id}")


@router.post("/groups/{group_id}/remove")
def remove_members(
    request: Request,
    group_id: str,
    me: Actor = Staff,
    ids: Annotated[list[str] | None, Form()] = None,
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        group = groups.get_group(s, me, group_id)
        inside = {p.id for p in groups.members(s, group.id, limit=admin.MAX_BULK)}
        stray = [i for i in ids or [] if i not in inside]
        if stray:
            raise ValidationError(f"partner {stray[0]} is not in group {group.name}", field="ids")
        done = groups.move_partners(s, actor=me, partner_ids=ids or [], group_id=None, now=now(request))
        return f"{len(done)} partner(s) taken out of {group.name}."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return group_page(request, me, group_id, error=result)
    flash(request, result)
    return redirect(f"/groups/{group_id}")
