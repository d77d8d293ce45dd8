"""Console Messages: every partner conversation (by partner, deal or dispute; unread filter), replies with files,
announcements to a program, group or pilot, the partner page's messages section, and the program's email
templates. Bodies are plain text and the templates escape them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import NotFound, PartnerpayError, ValidationError
from partnerpay.messaging import queries, templates
from partnerpay.messaging.announcements import announce
from partnerpay.messaging.attachments import describe_size
from partnerpay.messaging.threads import post_message
from partnerpay.partners.models import Partner, PartnerGroup
from partnerpay.programs.models import Program
from partnerpay.web.console.access import Staff
from partnerpay.web.message_files import read_uploads, save_uploads, store_of
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory
from partnerpay.web.thread_pages import ThreadPages

router = APIRouter(route_class=PageRoute)
BASE = "/messages"
TEMPLATES = "/messages/templates"
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Files = Annotated[list[UploadFile] | None, File()]


def _programs(session: Session, me: Actor) -> list[Program]:
    stmt = select(Program).order_by(Program.name)
    if me.program_id is not None:
        stmt = stmt.where(Program.id == me.program_id)
    return list(session.scalars(stmt))


def _groups(session: Session, program_ids: list[str]) -> list[PartnerGroup]:
    stmt = select(PartnerGroup).where(PartnerGroup.program_id.in_(program_ids)).order_by(PartnerGroup.name)
    return list(session.scalars(stmt))


def messages_page(
    request: Request,
    me: Actor,
    *,
    error: PartnerpayError | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    q = request.query_params
    filters = {"partner_id": q.get("partner_id", ""), "topic_type": q.get("topic_type", ""), "unread": q.get("unread")}
    with reading(request) as session:
        try:
            threads = queries.thread_rows(
                session, me, partner_id=filters["partner_id"] or None, topic_type=filters["topic_type"] or None,
                unread=filters["unread"] == "1",
            )  # fmt: skip
        except ValidationError as exc:
            threads, error = [], error or exc
        programs = _programs(session, me)
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "messages",
            "threads": threads,
            "filters": filters,
            "unread_total": queries.unread_threads(session, me),
            "programs": programs,
            "groups": _groups(session, [p.id for p in programs]),
            "announcements": queries.program_announcements(session, me),
            "error": error,
            "form": form,
            "values": values or {},
            "limit": describe_size(store_of(request).max_bytes),
        }
    return render(request, "console/messages.html", context, status_code=error.status if error else 200)


@router.get(BASE)
def inbox(request: Request, me: Actor = Staff) -> Response:
    return messages_page(request, me)


@router.get(TEMPLATES)
def show_templates(request: Request, me: Actor = Staff) -> Response:
    return templates_page(request, me)


def templates_page(
    request: Request,
    me: Actor,
    *,
    error: PartnerpayError | None = None,
    kind: str = "",
    values: dict[str, str] | None = None,
    program_id: str | None = None,
) -> Response:
    with reading(request) as session:
        programs = _programs(session, me)
        wanted = program_id or request.query_params.get("program_id") or (programs[0].id if programs else "")
        program = next((p for p in programs if p.id == wanted), None)
        if program is None and programs:
            raise NotFound(f"program {wanted} not found", field="program_id")
        rows = []
        for spec in (templates.KINDS[k] for k in templates.EDITABLE):
            subject, body, custom = (
                templates.wording(session, program.id, spec) if program else (spec.subject, spec.body, False)
            )
            if spec.name == kind and values:
                subject, body = values["subject"], values["body"]
            rows.append({"kind": spec, "subject": subject, "body": body, "custom": custom})
    context = {
        "area": "console",
        "me": me,
        "page": "messages",
        "programs": programs,
        "program": program,
        "rows": rows,
        "error": error,
        "error_kind": kind,
    }
    return render(request, "console/message_templates.html", context, status_code=error.status if error else 200)


@router.post(TEMPLATES + "/{kind}")
def save(
    request: Request,
    kind: str,
    me: Actor = Staff,
    program_id: Text = "",
    subject: Text = "",
    body: Text = "",
    action: Text = "save",
    csrf_token: Csrf = None,
) -> Response:
    """Save a program's wording for one kind (unknown placeholders are refused by name), or reset it."""
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            if action == "reset":
                templates.reset_template(session, actor=me, program_id=program_id, kind=kind, now=now(request))
            else:
                templates.save_template(session, actor=me, program_id=program_id, kind=kind, subject=subject,
                                        body=body, now=now(request))  # fmt: skip
    except PartnerpayError as exc:
        values = {"subject": subject, "body": body}
        return templates_page(request, me, error=exc, kind=kind, values=values, program_id=program_id)
    flash(request, f"Template for {kind} {'reset to the default' if action == 'reset' else 'saved'}.")
    return redirect(f"{TEMPLATES}?program_id={program_id}#tpl-{kind}")


@router.post(BASE + "/announcements")
def send_announcement(
    request: Request,
    me: Actor = Staff,
    program_id: Text = "",
    group_id: Text = "",
    subject: Text = "",
    body: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    values = {"program_id": program_id, "group_id": group_id, "subject": subject, "body": body}
    try:
        with unit_of_work(factory(request)) as session:
            done = announce(session, actor=me, program_id=program_id, group_id=group_id or None, subject=subject,
                            body=body, now=now(request))  # fmt: skip
    except PartnerpayError as exc:
        return messages_page(request, me, error=exc, form="announce", values=values)
    flash(request, f"Announcement sent to {done.recipients} partner(s); {done.emailed} by email too.")
    return redirect(BASE + "#announcements")


@router.post(BASE)
def start_thread(
    request: Request,
    me: Actor = Staff,
    partner_id: Text = "",
    subject: Text = "",
    body: Text = "",
    file: Files = None,
    back: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    """Write to a partner in a new conversation (from the Messages page or the partner page)."""
    check_form_csrf(request, csrf_token)
    store = store_of(request)
    try:
        uploads = read_uploads(file, store)
        with unit_of_work(factory(request)) as session:
            partner = session.get(Partner, partner_id)
            if partner is None or not me.sees(partner.program_id, partner.id):
                raise ValidationError(f"choose a partner (no partner {partner_id!r})", field="partner_id")
            ids = save_uploads(session, store, uploads, actor=me, program_id=partner.program_id,
                               partner_id=partner.id, now=now(request))  # fmt: skip
            message = post_message(session, author=me, partner_id=partner.id, topic_type="general", topic_id=None,
                                   subject=subject, body=body, attachment_ids=ids, now=now(request))  # fmt: skip
    except PartnerpayError as exc:
        values = {"partner_id": partner_id, "subject": subject, "body": body}
        return messages_page(request, me, error=exc, form="new", values=values)
    flash(request, "Message sent.")
    return redirect(f"{BASE}/{message.thread_id}")


THREADS = ThreadPages(area="console", base=BASE, template="console/thread.html", unread="staff_unread")


@router.get(BASE + "/{thread_id}")
def show_thread(request: Request, thread_id: str, me: Actor = Staff) -> Response:
    return THREADS.page(request, me, thread_id)


@router.post(BASE + "/{thread_id}")
def reply(
    request: Request,
    thread_id: str,
    me: Actor = Staff,
    body: Text = "",
    file: Files = None,
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    return THREADS.reply(request, me, thread_id, body, file)


@router.get(BASE + "/{thread_id}/files/{attachment_id}")
def download(request: Request, thread_id: str, attachment_id: str, me: Actor = Staff) -> Response:
    return THREADS.download(request, me, thread_id, attachment_id)


@router.get("/partners/{partner_id}/messages")
def partner_section(request: Request, partner_id: str, me: Actor = Staff) -> Response:
    """The partner page's Messages section (loaded into the page; also a page of its own without JavaScript)."""
    with reading(request) as session:
        partner = session.get(Partner, partner_id)
        if partner is None or not me.sees(partner.program_id, partner.id):
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
        threads = queries.thread_rows(session, me, partner_id=partner.id)
    context = {
        "area": "console",
        "me": me,
        "page": "partners",
        "partner": partner,
        "threads": threads,
        "fragment": request.headers.get("hx-request") == "true",
        "limit": describe_size(store_of(request).max_bytes),
    }
    template = "console/_partner_messages.html" if context["fragment"] else "console/partner_messages.html"
    return render(request, template, context)
