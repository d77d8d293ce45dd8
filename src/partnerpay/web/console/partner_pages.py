"""The partner page (status, owner, group, notes, timeline, masked payout and tax details, audit) and
its actions; the recruitment board of prospects. Form helpers shared with the partners list live here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import Money, format_money
from partnerpay.partners import admin, groups, prospects, recruiters
from partnerpay.partners import payout_verification as verification
from partnerpay.partners import queries as partner_queries
from partnerpay.partners.models import Partner
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program
from partnerpay.tracking.fraud_queries import flag_rows
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
ACTIONS: dict[str, Callable[..., Partner]] = {
    "suspend": admin.suspend,
    "reinstate": admin.reinstate,
    "terminate": admin.terminate,
}
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]


def whole_number(text: str, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError(f"{field} must be a whole number, got {text!r}", field=field)
    return int(text)


def day(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{field} must be a date such as 2026-03-01, got {text!r}", field=field) from exc


async def read_form(request: Request) -> dict[str, str]:
    """A form's fields as text (forms whose fields are many and mostly optional)."""
    data = await request.form()
    return {k: str(v) for k, v in data.items()}


def write(request: Request, work: Callable[[Session], str]) -> str | PartnerpayError:
    """Run one service call in a transaction: the flash message on success, else the error (nothing written)."""
    try:
        with unit_of_work(factory(request)) as session:
            return work(session)
    except PartnerpayError as exc:
        return exc


# --- the partner page ---------------------------------------------------------------------------


def partner_page(
    request: Request,
    me: Actor,
    partner_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with reading(request) as session:
        overview = partner_queries.partner_overview(session, me, partner_id, now(request))
        context = {
            "area": "console",
            "me": me,
            "page": "partners",
            "o": overview,
            "p": overview.partner,
            "staff": partner_queries.staff_users(session),
            "groups": groups.groups_with_sizes(session, me, program_id=overview.partner.program_id),
            "errors": errors or {},
            "values": values or {},
            "flags": flag_rows(session, me, status=None, partner_id=overview.partner.id, limit=20),
            "recruiter": session.get(Partner, overview.partner.recruited_by_id)
            if overview.partner.recruited_by_id
            else None,
            "recruits": recruiters.recruits_of(session, overview.partner.id, limit=50),
        }
    return render(request, "console/partner.html", context, status_code=status_code)


def _after(
    request: Request, me: Actor, partner_id: str, result: str | PartnerpayError, section: str, values: dict[str, str]
) -> Response:
    if isinstance(result, PartnerpayError):
        # The message goes to the section the form is in; "<section>.field" says which field it is about.
        errors = {section: result.message, f"{section}.field": result.field or ""}
        return partner_page(request, me, partner_id, errors=errors, values=values, status_code=result.status)
    flash(request, result)
    return redirect(f"/partners/{partner_id}#{section}")


@router.get("/partners/{partner_id}")
def show_partner(request: Request, partner_id: str, me: Actor = Staff) -> Response:
    return partner_page(request, me, partner_id)


@router.post("/partners/{partner_id}/status")
def change_status(
    request: Request, partner_id: str, me: Actor = Staff, action: Text = "", reason: Text = "", csrf_token: Csrf = None
) -> Response:
    """Suspend, reinstate or terminate, with the reason on the record."""
    check_form_csrf(request, csrf_token)
    act = ACTIONS.get(action)

    def work(s: Session) -> str:
        if act is None:
            raise ValidationError("choose suspend, reinstate or terminate", field="action")
        partner = act(s, actor=me, partner_id=partner_id, reason=reason, now=now(request))
        return f"{partner.name} is now {partner.status}."

    return _after(request, me, partner_id, write(request, work), "status", {"reason": reason})


@router.post("/partners/{partner_id}/notes")
def add_note(
    request: Request, partner_id: str, me: Actor = Staff, body: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        admin.add_note(s, actor=me, partner_id=partner_id, body=body, now=now(request))
        return "Note added. Only the team sees it."

    return _after(request, me, partner_id, write(request, work), "notes", {"body": body})


@router.post("/partners/{partner_id}/owner")
def set_owner(
    request: Request, partner_id: str, me: Actor = Staff, owner_id: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        admin.assign_owner(s, actor=me, partner_ids=[partner_id], owner_id=owner_id or None, now=now(request))
        who = partner_queries.staff_emails(s, [owner_id]).get(owner_id) if owner_id else None
        return f"Owner set to {who}." if who else "Owner removed."

    return _after(request, me, partner_id, write(request, work), "owner", {})


@router.post("/partners/{partner_id}/group")
def set_group(
    request: Request, partner_id: str, me: Actor = Staff, group_id: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        groups.move_partners(s, actor=me, partner_ids=[partner_id], group_id=group_id or None, now=now(request))
        return f"Moved to group {groups.get_group(s, me, group_id).name}." if group_id else "Removed from its group."

    return _after(request, me, partner_id, write(request, work), "owner", {})


@router.post("/partners/{partner_id}/recruiter")
def set_recruiter(
    request: Request, partner_id: str, me: Actor = Staff, recruited_by_id: Text = "", csrf_token: Csrf = None
) -> Response:
    """Name the partner who recruited this one (two-tier); empty removes it."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        wanted = recruited_by_id.strip() or None
        partner = recruiters.set_recruiter(s, actor=me, partner_id=partner_id, recruited_by_id=wanted, now=now(request))
        recruiter = s.get(Partner, partner.recruited_by_id) if partner.recruited_by_id else None
        return f"Recruiter set to {recruiter.name}." if recruiter else "Recruiter removed."

    return _after(request, me, partner_id, write(request, work), "owner", {"recruited_by_id": recruited_by_id})


@router.post("/partners/{partner_id}/payout-method/verify")
def verify_payout_method(
    request: Request, partner_id: str, me: Actor = Staff, method_id: Text = "", note: Text = "", csrf_token: Csrf = None
) -> Response:
    """Finance confirms the account is the partner's (partners/payout_verification.py: not whoever entered it)."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        verification.verify_payout_method(
            s, actor=me, partner_id=partner_id, method_id=method_id, note=note, now=now(request)
        )
        return "Payout method verified."

    return _after(request, me, partner_id, write(request, work), "details", {"note": note})


@router.post("/partners/{partner_id}/adjustments")
def adjust(
    request: Request,
    partner_id: str,
    me: Actor = Staff,
    amount: Text = "",
    adjust_reason: Text = "",  # not "reason": the status form on the same page has that field
    csrf_token: Csrf = None,
) -> Response:
    """A manual adjustment in the program's currency; the amount is a decimal string ("-25.00"), never a float."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        program = s.get(Program, get_partner(s, me, partner_id).program_id)
        assert program is not None
        value = Money.parse(amount, program.currency).amount
        line = add_adjustment(
            s,
            actor=me,
            partner_id=partner_id,
            amount=value,
            currency=program.currency,
            reason=adjust_reason,
            now=now(request),
        )
        return (
            f"Adjustment {line.id} of {format_money(line.amount, line.currency)} is waiting for approval;"
            " someone other than you must approve it."
        )

    return _after(
        request, me, partner_id, write(request, work), "adjust", {"amount": amount, "adjust_reason": adjust_reason}
    )


# --- recruitment: the prospect board ------------------------------------------------------------

PROSPECT_FIELDS = ("company", "contact_name", "email", "website", "source", "stage", "next_step", "due_on", "owner_id")


def prospect_fields(form: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: form.get(k, "") for k in PROSPECT_FIELDS if k in form}
    if "due_on" in values:
        values["due_on"] = day(values["due_on"], "due_on")
    for key in ("email", "website", "owner_id"):
        if key in values:
            values[key] = values[key].strip() or None
    return values


def board_page(
    request: Request, me: Actor, *, error: PartnerpayError | None = None, values: dict[str, str] | None = None
) -> Response:
    owner = request.query_params.get("owner", "")
    program_id = request.query_params.get("program_id", "")
    with reading(request) as session:
        columns = prospects.board(
            session, me, program_id=program_id or None, owner_id=me.id if owner == "mine" else (owner or None)
        )
        context = {
            "area": "console",
            "me": me,
            "page": "prospects",
            "columns": columns,
            "today": now(request).date(),
            "is_overdue": prospects.is_overdue,
            "stages": prospects.STAGES,
            "programs": queries.programs(session),
            "program_names": queries.program_names(session),
            "staff": partner_queries.staff_users(session),
            "owners": partner_queries.staff_emails(
                session, {p.owner_id for _, col in columns for p in col if p.owner_id}
            ),
            "owner": owner,
            "program_id": program_id,
            "error": error,
            "values": values or {},
        }
    return render(request, "console/prospects.html", context, status_code=error.status if error else 200)


@router.get("/prospects")
def prospect_board(request: Request, me: Actor = Staff) -> Response:
    return board_page(request, me)


@router.post("/prospects")
async def create_prospect(request: Request, me: Actor = Staff) -> Response:
    form = await read_form(request)
    check_form_csrf(request, form.get("csrf_token"))

    def work(s: Session) -> str:
        prospect = prospects.create_prospect(
            s, actor=me, program_id=form.get("program_id", ""), now=now(request), **prospect_fields(form)
        )
        return f"{prospect.company} added to the pipeline as {prospect.stage}."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return board_page(request, me, error=result, values=form)
    flash(request, result)
    return redirect("/prospects")


def prospect_page(
    request: Request,
    me: Actor,
    prospect_id: str,
    *,
    error: PartnerpayError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with reading(request) as session:
        prospect = prospects.get_prospect(session, me, prospect_id)
        context = {
            "area": "console",
            "me": me,
            "page": "prospects",
            "prospect": prospect,
            "overdue": prospects.is_overdue(prospect, now(request).date()),
            "stages": prospects.STAGES,
            "staff": partner_queries.staff_users(session),
            "program_names": queries.program_names(session),
            "error": error,
            "values": values,
        }
    return render(request, "console/prospect.html", context, status_code=error.status if error else 200)


@router.get("/prospects/{prospect_id}")
def show_prospect(request: Request, prospect_id: str, me: Actor = Staff) -> Response:
    return prospect_page(request, me, prospect_id)


@router.post("/prospects/{prospect_id}")
async def update_prospect(request: Request, prospect_id: str, me: Actor = Staff) -> Response:
    """The edit form, or the board's one-field stage move (only the fields sent change)."""
    form = await read_form(request)
    check_form_csrf(request, form.get("csrf_token"))
    back = "/prospects" if form.get("from") == "board" else f"/prospects/{prospect_id}"

    def work(s: Session) -> str:
        prospect = prospects.update_prospect(
            s, actor=me, prospect_id=prospect_id, changes=prospect_fields(form), now=now(request)
        )
        return f"{prospect.company} saved ({prospect.stage})."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        if back == "/prospects":
            return board_page(request, me, error=result)
        return prospect_page(request, me, prospect_id, error=result, values=form)
    flash(request, result)
    return redirect(back)


@router.post("/prospects/{prospect_id}/convert")
def convert_prospect(request: Request, prospect_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    """Send the invitation: the prospect becomes an invited partner."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        _prospect, partner, invitation, _token = prospects.convert_prospect(
            s, actor=me, prospect_id=prospect_id, now=now(request)
        )
        return f"Invitation sent to {invitation.email}; {partner.name} is now a partner awaiting their first login."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return prospect_page(request, me, prospect_id, error=result)
    flash(request, result)
    return redirect(f"/prospects/{prospect_id}")
