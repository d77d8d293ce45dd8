"""Console onboarding: the applications queue, invitations, and program settings with terms."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import Rounding
from partnerpay.partners import applications, invitations
from partnerpay.partners.invitations import InvitationStatus, invitation_status
from partnerpay.partners.queries import staff_emails, staff_users
from partnerpay.programs import service as programs
from partnerpay.programs import terms
from partnerpay.programs.models import Program
from partnerpay.programs.schemas import STANDARD_FIELDS
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
Csrf = Annotated[str | None, Form()]
Ids = Annotated[list[str] | None, Form()]
NO_SELECTION = ValidationError("Nothing was changed: tick the applications in the first column first.", field="ids")


def _write(request: Request, work: Callable[[Session], str]) -> str | PartnerpayError:
    """One service call in one transaction: the flash text, or the error (and nothing written)."""
    try:
        with unit_of_work(factory(request)) as session:
            return work(session)
    except PartnerpayError as exc:
        return exc


def _finish(
    request: Request, result: str | PartnerpayError, target: str, on_error: Callable[[PartnerpayError], Response]
) -> Response:
    """After a form POST: the page again with the error, or a redirect with the message."""
    if isinstance(result, PartnerpayError):
        return on_error(result)
    flash(request, result)
    return redirect(target)


def _base_url(request: Request) -> str:
    return str(request.app.state.settings.base_url).rstrip("/")


def _smtp(request: Request) -> bool:
    return bool(request.app.state.settings.smtp_host)


def _link_note(request: Request, email: str, token: str) -> str:
    """Without an SMTP server the email only reaches the log, so the person inviting gets the link."""
    if _smtp(request):
        return f"The email to {email} is on its way."
    return f"No SMTP server is set up, so pass this link on to {email} yourself: {_base_url(request)}/invite/{token}"


# --- applications ------------------------------------------------------------------------------


def _applications_page(
    request: Request,
    me: Actor,
    *,
    program_id: str = "",
    cursor: str | None = None,
    error: PartnerpayError | None = None,
) -> Response:
    with reading(request) as session:
        page = applications.application_queue(session, me, program_id=program_id or None, cursor=cursor)
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "applications",
            "applicants": page.data,
            "next_cursor": page.next_cursor,
            "programs": queries.programs(session),
            "program_names": queries.program_names(session),
            "owners": staff_emails(session, {p.owner_id for p in page.data if p.owner_id}),
            "program_id": program_id,
            "base_url": _base_url(request),
            "can_decide": me.can("write"),
            "error": error,
        }
    return render(request, "console/applications.html", context, status_code=error.status if error else 200)


@router.get("/applications")
def application_queue(request: Request, me: Actor = Staff, program_id: str = "", cursor: str | None = None) -> Response:
    return _applications_page(request, me, program_id=program_id, cursor=cursor)


@router.post("/applications/approve")
def approve(request: Request, me: Actor = Staff, ids: Ids = None, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)
    if not ids:
        return _applications_page(request, me, error=NO_SELECTION)
    chosen = ids

    def work(s: Session) -> str:
        done = applications.approve_applications(s, actor=me, partner_ids=chosen, now=now(request))
        names = ", ".join(p.name for p, _, _ in done)
        message = (
            f"Approved {len(done)}: {names}. Each gets a welcome email with a link to set a password (valid 7 days)."
        )
        if len(done) <= 5:
            message += "".join(f" {_link_note(request, p.email, token)}" for p, _, token in done if not _smtp(request))
        return message

    return _finish(request, _write(request, work), "/applications", lambda e: _applications_page(request, me, error=e))


@router.post("/applications/decline")
def decline(
    request: Request, me: Actor = Staff, ids: Ids = None, reason: Annotated[str, Form()] = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)
    if not ids:
        return _applications_page(request, me, error=NO_SELECTION)
    chosen = ids

    def work(s: Session) -> str:
        done = applications.decline_applications(s, actor=me, partner_ids=chosen, reason=reason, now=now(request))
        return f"Declined {len(done)}: {', '.join(p.name for p in done)}. The reason stays with the team."

    return _finish(request, _write(request, work), "/applications", lambda e: _applications_page(request, me, error=e))


# --- invitations -------------------------------------------------------------------------------


def _invitations_page(
    request: Request,
    me: Actor,
    *,
    status: str = "",
    cursor: str | None = None,
    form: dict[str, str] | None = None,
    error: PartnerpayError | None = None,
) -> Response:
    at = now(request)
    wanted = InvitationStatus(status) if status in {s.value for s in InvitationStatus} else None
    with reading(request) as session:
        page = invitations.list_invitations(session, me, now=at, status=wanted, cursor=cursor, newest_first=True)
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "applications",
            "rows": [(i, invitation_status(i, at).value) for i in page.data],
            "next_cursor": page.next_cursor,
            "partner_names": queries.partner_names(session, (i.partner_id for i in page.data)),
            "programs": queries.programs(session),
            "statuses": [s.value for s in InvitationStatus],
            "status": status,
            "form": form or {},
            "error": error,
            "can_invite": me.can("write"),
        }
    return render(request, "console/invitations.html", context, status_code=error.status if error else 200)


@router.get("/invitations")
def invitation_list(request: Request, me: Actor = Staff, status: str = "", cursor: str | None = None) -> Response:
    return _invitations_page(request, me, status=status, cursor=cursor)


@router.post("/invitations")
def invite(
    request: Request,
    me: Actor = Staff,
    program_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        partner, _inv, token = invitations.invite_partner(
            s, actor=me, program_id=program_id, name=name, email=email, now=now(request)
        )
        return f"Invited {partner.name}. {_link_note(request, partner.email, token)}"

    form = {"program_id": program_id, "name": name, "email": email}
    return _finish(
        request, _write(request, work), "/invitations", lambda e: _invitations_page(request, me, form=form, error=e)
    )


@router.post("/invitations/{invitation_id}/resend")
def resend(request: Request, invitation_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        invitation, token = invitations.resend_invitation(s, actor=me, invitation_id=invitation_id, now=now(request))
        return f"A new link was sent; the old one no longer works. {_link_note(request, invitation.email, token)}"

    return _finish(request, _write(request, work), "/invitations", lambda e: _invitations_page(request, me, error=e))


@router.post("/invitations/{invitation_id}/revoke")
def revoke(request: Request, invitation_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        invitation = invitations.revoke_invitation(s, actor=me, invitation_id=invitation_id, now=now(request))
        return f"The link for {invitation.email} no longer works."

    return _finish(request, _write(request, work), "/invitations", lambda e: _invitations_page(request, me, error=e))


# --- settings ----------------------------------------------------------------------------------


@router.get("/settings")
def settings_index(request: Request, me: Actor = Staff) -> Response:
    with reading(request) as session:
        context = {"area": "console", "me": me, "page": "settings", "programs": queries.programs(session)}
    return render(request, "console/settings.html", {**context, "base_url": _base_url(request)})


def percent_to_bp(text: str) -> int:
    """ "20" or "12.5" (percent) → basis points; exact, no float on the way."""
    try:
        value = Decimal(text.strip().replace(",", ".").rstrip("%").strip() or "0") * 100
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value():
        raise ValidationError(
            f"default rate must be a percentage such as 20 or 12.5, got {text!r}", field="default_percent"
        )
    return int(value)


def question_key(label: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
    return key if key[:1].isalpha() else f"q_{key}"[:40]


def settings_changes(form: FormData) -> dict[str, Any]:
    """The settings form as the service's `changes`; questions whose label is empty are dropped."""
    text = {k: str(v).strip() for k, v in form.items()}
    questions = []
    for i in range(int(text.get("question_rows", "0") or 0)):  # the template numbers the rows
        label = text.get(f"q_label_{i}", "")
        if label:
            key = text.get(f"q_key_{i}", "") or question_key(label)
            questions.append({"key": key, "label": label, "required": f"q_required_{i}" in text})
    whole = {"hold_days", "cookie_days", "payout_change_hold_days"}
    changes: dict[str, Any] = {}
    for name in ("name", "rounding", "slug", "brand_color", "logo_url", *whole):
        value = text.get(name, "")
        changes[name] = int(value) if name in whole and value.lstrip("-").isdigit() else value
    changes["logo_url"] = changes["logo_url"] or None
    changes["default_percent_bp"] = percent_to_bp(text.get("default_percent", ""))
    changes["default_owner_id"] = text.get("default_owner_id") or None
    changes["applications_open"] = "applications_open" in text
    changes["auto_approve"] = "auto_approve" in text
    fields = {name: text.get(f"field_{name}", "hidden") for name in STANDARD_FIELDS}
    changes["application_form"] = {"fields": fields, "questions": questions}
    return changes


SIMPLE_SETTINGS = ("name", "hold_days", "cookie_days", "rounding", "slug", "brand_color", "logo_url")
MORE_SETTINGS = ("default_owner_id", "payout_change_hold_days")


def as_form(program: Program) -> dict[str, str]:
    """The program's settings as the settings form posts them (so a failed save shows what was typed)."""
    values = {
        n: "" if getattr(program, n) is None else str(getattr(program, n)) for n in SIMPLE_SETTINGS + MORE_SETTINGS
    }
    values["default_percent"] = f"{Decimal(program.default_percent_bp) / 100:f}"
    values |= {flag: "on" for flag in ("applications_open", "auto_approve") if getattr(program, flag)}
    config = programs.form_config(program)
    values |= {f"field_{name}": config.mode(name) for name in STANDARD_FIELDS}
    for i, q in enumerate(config.questions):
        values |= {f"q_key_{i}": q.key, f"q_label_{i}": q.label} | ({f"q_required_{i}": "on"} if q.required else {})
    values["question_rows"] = str(len(config.questions))
    return values


def _settings_page(
    request: Request,
    me: Actor,
    program_id: str,
    *,
    values: dict[str, str] | None = None,
    error: PartnerpayError | None = None,
) -> Response:
    with reading(request) as session:
        program = programs.get_program(session, me, program_id)
        shown = values if values is not None else as_form(program)
        rows = int(shown.get("question_rows", "0") or 0) + (2 if values is None else 0)
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "settings",
            "program": program,
            "v": shown,
            "question_rows": rows,
            "staff": [u for u in staff_users(session) if u.role != "viewer"],
            "roundings": [r.value for r in Rounding],
            "fields": STANDARD_FIELDS,
            "error": error,
            "can_edit": me.can("admin"),
            "base_url": _base_url(request),
        }
    return render(request, "console/settings_program.html", context, status_code=error.status if error else 200)


@router.get("/settings/program/{program_id}")
def program_settings(request: Request, program_id: str, me: Actor = Staff) -> Response:
    return _settings_page(request, me, program_id)


@router.post("/settings/program/{program_id}")
async def save_program_settings(request: Request, program_id: str, me: Actor = Staff) -> Response:
    form = await request.form()  # custom questions make the field list dynamic
    return await run_in_threadpool(_save_settings, request, program_id, me, form)


def _save_settings(request: Request, program_id: str, me: Actor, form: FormData) -> Response:
    token = form.get("csrf_token")
    check_form_csrf(request, token if isinstance(token, str) else None)
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        changes = settings_changes(form)
    except ValidationError as exc:
        return _settings_page(request, me, program_id, values=values, error=exc)

    def work(s: Session) -> str:
        program = programs.update_program_settings(
            s, actor=me, program_id=program_id, changes=changes, now=now(request)
        )
        return f"Saved the settings of {program.name}."

    target = f"/settings/program/{program_id}"
    return _finish(
        request,
        _write(request, work),
        target,
        lambda e: _settings_page(request, me, program_id, values=values, error=e),
    )


def _terms_page(
    request: Request,
    me: Actor,
    program_id: str,
    *,
    form: dict[str, str] | None = None,
    error: PartnerpayError | None = None,
) -> Response:
    with reading(request) as session:
        program = programs.get_program(session, me, program_id)
        versions = terms.terms_versions(session, program.id)
        counts, asked = terms.acceptance_counts(session, program.id)
        current = versions[0] if versions else None
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "settings",
            "program": program,
            "versions": versions,
            "counts": counts,
            "asked": asked,
            # programs.terms.to_html lets no raw HTML through, so the preview is safe to mark.
            "current_html": Markup(terms.to_html(current.body_markdown)) if current else None,  # noqa: S704
            "form": form or {"title": current.title if current else "Partner agreement", "body_markdown": ""},
            "error": error,
            "can_edit": me.can("admin"),
        }
    return render(request, "console/settings_terms.html", context, status_code=error.status if error else 200)


@router.get("/settings/program/{program_id}/terms")
def terms_page(request: Request, program_id: str, me: Actor = Staff) -> Response:
    return _terms_page(request, me, program_id)


@router.post("/settings/program/{program_id}/terms")
def publish_terms(
    request: Request,
    program_id: str,
    me: Actor = Staff,
    title: Annotated[str, Form()] = "",
    body_markdown: Annotated[str, Form()] = "",
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        published = terms.publish_terms(
            s, actor=me, program_id=program_id, title=title, body_markdown=body_markdown, now=now(request)
        )
        return f"Published version {published.version}. Every partner is asked to accept it in the portal."

    form = {"title": title, "body_markdown": body_markdown}
    target = f"/settings/program/{program_id}/terms"
    return _finish(
        request, _write(request, work), target, lambda e: _terms_page(request, me, program_id, form=form, error=e)
    )
