"""Disputes in the portal: dispute a line from Earnings, claim a missing commission, attach evidence, follow the
status and due date, talk with the team, withdraw. Only the logged-in partner's disputes exist here (404 else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.engine import unit_of_work
from partnerpay.disputes import conversation, queries, service
from partnerpay.disputes.access import get_dispute
from partnerpay.disputes.evidence import add_evidence
from partnerpay.disputes.forms import day, read_files, signed_minor_units
from partnerpay.disputes.rules import NEXT_STEP, is_overdue, sla_text
from partnerpay.kit.errors import NotFound, PartnerpayError
from partnerpay.messaging.attachments import AttachmentStore, read_verified
from partnerpay.messaging.models import Attachment
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
BASE = "/portal/disputes"
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Files = Annotated[list[UploadFile] | None, File()]
FIELDS = ("kind", "line_id", "amount", "customer_ref", "event_date", "description")


def store_of(request: Request) -> AttachmentStore:
    return AttachmentStore.from_settings(request.app.state.settings)


def _context(session: Session, me: Actor) -> dict[str, Any]:
    assert me.partner_id is not None
    partner = session.get(Partner, me.partner_id)
    assert partner is not None
    program = session.get(Program, partner.program_id)
    return {"area": "portal", "me": me, "page": "disputes", "partner": partner, "program": program,
            "next_steps": NEXT_STEP, "sla_text": sla_text, "is_overdue": is_overdue}  # fmt: skip


@router.get(BASE)
def dispute_list(request: Request, me: Actor = PartnerUserActor) -> Response:
    with reading(request) as session:
        page = queries.list_disputes(session, me, now=now(request), limit=500)
        context = {**_context(session, me), "disputes": list(reversed(page.data))}
    return render(request, "portal/disputes.html", context)


def line_of(session: Session, line_id: str | None) -> CommissionLine | None:
    return session.get(CommissionLine, line_id) if line_id else None


def _line(session: Session, me: Actor, line_id: str) -> CommissionLine | None:
    if not line_id:
        return None
    line = session.get(CommissionLine, line_id)
    if line is None or line.partner_id != me.partner_id:
        raise NotFound(f"commission line {line_id} not found", field="line_id")
    return line


def _form(
    request: Request, me: Actor, values: dict[str, str], *, error: PartnerpayError | None = None, status: int = 200
) -> Response:
    with reading(request) as session:
        context = {**_context(session, me), "line": _line(session, me, values.get("line_id", "")), "values": values,
                   "error": error, "limit": store_of(request).limit_text()}  # fmt: skip
    return render(request, "portal/dispute_new.html", context, status_code=status)


@router.get(f"{BASE}/new")
def new_dispute(request: Request, me: Actor = PartnerUserActor, line_id: str = "") -> Response:
    """With ?line_id: "this line's amount is wrong"; without: "claim a missing commission"."""
    kind = "wrong_amount" if line_id else "missing_commission"
    return _form(request, me, {"kind": kind, "line_id": line_id})


@router.post(BASE)
def create(
    request: Request, me: Actor = PartnerUserActor, kind: Text = "", line_id: Text = "", amount: Text = "",
    customer_ref: Text = "", event_date: Text = "", description: Text = "", file: Files = None,
    csrf_token: Csrf = None,
) -> Response:  # fmt: skip
    check_form_csrf(request, csrf_token)
    values = {"kind": kind, "line_id": line_id, "amount": amount, "customer_ref": customer_ref,
              "event_date": event_date, "description": description}  # fmt: skip
    store = store_of(request)
    at = now(request)
    try:
        uploads = read_files(file, store)
        with unit_of_work(factory(request)) as session:
            program = session.get(Program, me.program_id or "")
            currency = program.currency if program else "EUR"
            dispute = service.open_dispute(
                session, actor=me, kind=kind, line_id=line_id or None, description=description, now=at,
                amount=signed_minor_units(amount, currency), customer_ref=customer_ref or None,
                event_date=day(event_date),
            )  # fmt: skip
            for name, declared, data in uploads:
                add_evidence(session, store, actor=me, dispute_id=dispute.id, filename=name, declared_type=declared,
                             data=data, now=at)  # fmt: skip
            dispute_id = dispute.id
    except PartnerpayError as exc:
        return _form(request, me, values, error=exc, status=exc.status)
    flash(request, f"Dispute {dispute_id} sent. The team answers by the due date shown below.")
    return redirect(f"{BASE}/{dispute_id}")


@router.get(BASE + "/{dispute_id}")
def show(request: Request, dispute_id: str, me: Actor = PartnerUserActor) -> Response:
    with reading(request) as session:
        dispute = get_dispute(session, me, dispute_id)
        context = {
            **_context(session, me), "dispute": dispute,
            "line": line_of(session, dispute.line_id), "adjustment": line_of(session, dispute.adjustment_line_id),
            "evidence": queries.evidence(session, dispute.id), "messages": conversation.messages(session, dispute),
            "limit": store_of(request).limit_text(),
        }  # fmt: skip
    return render(request, "portal/dispute.html", context)


def _act(request: Request, back: str, work: Callable[[Session], str]) -> Response:
    try:
        with unit_of_work(factory(request)) as session:
            flash(request, work(session))
    except PartnerpayError as exc:
        flash(request, exc.message, "error")
    return redirect(back)


@router.post(BASE + "/{dispute_id}/evidence")
def evidence(
    request: Request, dispute_id: str, me: Actor = PartnerUserActor, file: Files = None, csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)
    store = store_of(request)
    try:
        uploads = read_files(file, store)
    except PartnerpayError as exc:
        flash(request, exc.message, "error")
        return redirect(f"{BASE}/{dispute_id}")

    def work(s: Session) -> str:
        for name, declared, data in uploads:
            add_evidence(s, store, actor=me, dispute_id=dispute_id, filename=name, declared_type=declared, data=data,
                         now=now(request))  # fmt: skip
        return f"{len(uploads)} file{'s' if len(uploads) != 1 else ''} added." if uploads else "Choose a file first."

    return _act(request, f"{BASE}/{dispute_id}", work)


@router.post(BASE + "/{dispute_id}/messages")
def message(
    request: Request, dispute_id: str, me: Actor = PartnerUserActor, body: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        conversation.reply(s, actor=me, dispute=get_dispute(s, me, dispute_id), body=body, now=now(request))
        return "Message sent to the program team."

    return _act(request, f"{BASE}/{dispute_id}#conversation", work)


@router.post(BASE + "/{dispute_id}/withdraw")
def withdraw(request: Request, dispute_id: str, me: Actor = PartnerUserActor, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        service.withdraw(s, actor=me, dispute_id=dispute_id, now=now(request))
        return f"Dispute {dispute_id} withdrawn."

    return _act(request, f"{BASE}/{dispute_id}", work)


@router.get(BASE + "/{dispute_id}/evidence/{attachment_id}")
def download(request: Request, dispute_id: str, attachment_id: str, me: Actor = PartnerUserActor) -> Response:
    with reading(request) as session:
        return evidence_file(session, store_of(request), me, dispute_id, attachment_id)


def evidence_file(session: Session, store: AttachmentStore, me: Actor, dispute_id: str, attachment_id: str) -> Response:
    """The file as stored (its hash checked), offered as a download: never rendered inline by the browser."""
    dispute = get_dispute(session, me, dispute_id)
    if attachment_id not in {e.attachment_id for e in queries.evidence(session, dispute.id)}:
        raise NotFound(f"evidence {attachment_id} not found", field="attachment_id")
    attachment = session.get(Attachment, attachment_id)
    assert attachment is not None
    data = read_verified(store, attachment)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in attachment.filename)
    return Response(data, media_type=attachment.content_type, headers={
        "Content-Disposition": f'attachment; filename="{safe}"', "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'", "X-Evidence-SHA256": attachment.sha256,
    })  # fmt: skip
