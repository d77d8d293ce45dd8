"""Disputes in the console: the queue (SLA age, owner, status filter), one dispute with the data side by side,
and the team's actions: take it, resolve it with an adjustment or a rejection, evidence, messages, the SLA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.engine import unit_of_work
from partnerpay.disputes import conversation, queries, service
from partnerpay.disputes.access import get_dispute
from partnerpay.disputes.case import build_case
from partnerpay.disputes.evidence import add_evidence
from partnerpay.disputes.export import export_disputes
from partnerpay.disputes.forms import day, read_files, signed_minor_units
from partnerpay.disputes.models import Dispute
from partnerpay.disputes.rules import NEXT_STEP, is_overdue, sla_text
from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.money import to_major_string
from partnerpay.partners import queries as partner_queries
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.web.console import queries as console_queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.disputes import evidence_file, line_of, store_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Files = Annotated[list[UploadFile] | None, File()]


def _helpers() -> dict[str, Any]:
    return {"next_steps": NEXT_STEP, "sla_text": sla_text, "is_overdue": is_overdue}


@router.get("/disputes")
def queue(
    request: Request, me: Actor = Staff, program_id: str = "", status: str = "", overdue: str = "", mine: str = ""
) -> Response:
    """Waiting disputes, most urgent first; `status` shows any status, `overdue=1` only late ones."""
    at = now(request)
    error = None
    with reading(request) as session:
        programs = [p for p in console_queries.programs(session) if me.sees_program(p.id)]
        try:
            rows = queries.queue(session, me, now=at, program_id=program_id or None, status=status or None,
                                 overdue=True if overdue == "1" else None, mine=mine == "1")  # fmt: skip
        except PartnerpayError as exc:
            error, status = exc.message, ""
            rows = queries.queue(session, me, now=at)
        context = {
            "area": "console", "me": me, "page": "disputes", "rows": rows, "programs": programs,
            "statuses": queries.STATUSES, "filters": {"program_id": program_id, "status": status, "overdue": overdue,
                                                      "mine": mine},
            "sla_days": {p.id: service.sla_days(session, p.id) for p in programs}, "error": error, **_helpers(),
        }  # fmt: skip
        context["export_query"] = urlencode({k: v for k, v in context["filters"].items() if v})
    return render(request, "console/disputes.html", context, status_code=422 if error else 200)


@router.get("/disputes.csv")
def export(
    request: Request, me: Actor = Staff, program_id: str = "", partner_id: str = "", status: str = "",
    overdue: str = "", mine: str = "",
) -> Response:  # fmt: skip
    """The queue's filters as CSV, every matching dispute (`status=any` for all), cells formula-escaped."""
    at = now(request)
    with reading(request) as session:
        content = export_disputes(session, me, now=at, program_id=program_id or None, partner_id=partner_id or None,
                                  status=status or None, overdue=True if overdue == "1" else None,
                                  mine=mine == "1")  # fmt: skip
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="disputes-{at:%Y%m%d}.csv"'},
    )


def _write(request: Request, back: str, work: Callable[[Session], str]) -> Response:
    try:
        with unit_of_work(factory(request)) as session:
            flash(request, work(session))
    except PartnerpayError as exc:
        flash(request, exc.message, "error")
    return redirect(back)


@router.post("/disputes/settings")
def settings(request: Request, me: Actor = Staff, program_id: Text = "", sla_days: Text = "",
             csrf_token: Csrf = None) -> Response:  # fmt: skip
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        days: object = int(sla_days) if sla_days.strip().isdigit() else sla_days
        done = service.set_sla_days(s, actor=me, program_id=program_id, days=days, now=now(request))
        return f"New disputes are due within {done.sla_days} days."

    return _write(request, "/disputes", work)


def _new_form(
    request: Request, me: Actor, values: dict[str, str], error: PartnerpayError | None, status: int
) -> Response:
    with reading(request) as session:
        partners = list(session.scalars(select(Partner).order_by(Partner.name)))
        partners = [p for p in partners if me.sees_program(p.program_id)]
        context = {"area": "console", "me": me, "page": "disputes", "partners": partners, "values": values,
                   "error": error, "limit": store_of(request).limit_text()}  # fmt: skip
    return render(request, "console/dispute_new.html", context, status_code=status)


@router.get("/disputes/new")
def new_dispute(request: Request, me: Actor = Staff, partner_id: str = "", line_id: str = "") -> Response:
    """Open a dispute on a partner's behalf (a phone call, an email)."""
    kind = "wrong_amount" if line_id else "missing_commission"
    return _new_form(request, me, {"partner_id": partner_id, "line_id": line_id, "kind": kind}, None, 200)


@router.post("/disputes/new")
def create(
    request: Request, me: Actor = Staff, partner_id: Text = "", kind: Text = "", line_id: Text = "", amount: Text = "",
    customer_ref: Text = "", event_date: Text = "", description: Text = "", file: Files = None,
    csrf_token: Csrf = None,
) -> Response:  # fmt: skip
    check_form_csrf(request, csrf_token)
    values = {"partner_id": partner_id, "kind": kind, "line_id": line_id, "amount": amount,
              "customer_ref": customer_ref, "event_date": event_date, "description": description}  # fmt: skip
    store, at = store_of(request), now(request)
    try:
        uploads = read_files(file, store)
        with unit_of_work(factory(request)) as s:
            partner = s.get(Partner, partner_id) if partner_id else None
            program = s.get(Program, partner.program_id) if partner else None
            dispute = service.open_dispute(
                s, actor=me, kind=kind, partner_id=partner_id or None, line_id=line_id.strip() or None,
                description=description, amount=signed_minor_units(amount, program.currency if program else "EUR"),
                customer_ref=customer_ref or None, event_date=day(event_date), now=at,
            )  # fmt: skip
            for name, declared, data in uploads:
                add_evidence(s, store, actor=me, dispute_id=dispute.id, filename=name, declared_type=declared,
                             data=data, now=at)  # fmt: skip
            dispute_id = dispute.id
    except PartnerpayError as exc:
        return _new_form(request, me, values, exc, exc.status)
    flash(request, f"Dispute {dispute_id} opened for the partner.")
    return redirect(f"/disputes/{dispute_id}")


@router.get("/disputes/{dispute_id}")
def show(request: Request, dispute_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        dispute = get_dispute(session, me, dispute_id)
        owners = {u.id: u.email for u in partner_queries.staff_users(session)}
        context = {
            "area": "console", "me": me, "page": "disputes", "dispute": dispute,
            "partner": session.get(Partner, dispute.partner_id), "program": session.get(Program, dispute.program_id),
            "case": build_case(session, me, dispute), "evidence": queries.evidence(session, dispute.id),
            "messages": conversation.messages(session, dispute), "history": queries.history(session, dispute.id),
            "adjustment": line_of(session, dispute.adjustment_line_id), "owners": owners,
            "actors": partner_queries.actor_labels(session, [e.actor_id for e in queries.history(session, dispute.id)]),
            "limit": store_of(request).limit_text(), "suggested": suggested(session, dispute), **_helpers(),
        }  # fmt: skip
    return render(request, "console/dispute.html", context)


def suggested(session: Session, dispute: Dispute) -> str:
    """The adjustment the claim implies, in major units for the form: expected minus paid, or the amount claimed."""
    line = line_of(session, dispute.line_id)
    if dispute.amount is None:
        return ""
    value = dispute.amount - line.amount if line is not None else dispute.amount
    return to_major_string(value, dispute.currency) if value else ""


@router.post("/disputes/{dispute_id}/review")
def review(request: Request, dispute_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        service.start_review(s, actor=me, dispute_id=dispute_id, now=now(request))
        return "The dispute is in review, and yours."

    return _write(request, f"/disputes/{dispute_id}", work)


@router.post("/disputes/{dispute_id}/resolve")
def resolve(request: Request, dispute_id: str, me: Actor = Staff, action: Text = "", amount: Text = "",
            reason: Text = "", csrf_token: Csrf = None) -> Response:  # fmt: skip
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        dispute = get_dispute(s, me, dispute_id)
        value = signed_minor_units(amount, dispute.currency) if action == "adjust" else None
        done = service.resolve(s, actor=me, dispute_id=dispute_id, action=action, amount=value, reason=reason,
                               now=now(request))  # fmt: skip
        if done.adjustment_line_id:
            line = s.get(CommissionLine, done.adjustment_line_id)
            assert line is not None
            return (f"Resolved: adjustment line {line.id} is pending; another approver approves it "
                    "(Commissions), then it is paid in the next run. The partner was told.")  # fmt: skip
        return "Rejected; the partner was told the reason."

    return _write(request, f"/disputes/{dispute_id}", work)


@router.post("/disputes/{dispute_id}/withdraw")
def withdraw(request: Request, dispute_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        service.withdraw(s, actor=me, dispute_id=dispute_id, now=now(request))
        return "Withdrawn on the partner's behalf."

    return _write(request, f"/disputes/{dispute_id}", work)


@router.post("/disputes/{dispute_id}/evidence")
def evidence(request: Request, dispute_id: str, me: Actor = Staff, file: Files = None,
             csrf_token: Csrf = None) -> Response:  # fmt: skip
    check_form_csrf(request, csrf_token)
    store = store_of(request)

    def work(s: Session) -> str:
        uploads = read_files(file, store)
        for name, declared, data in uploads:
            add_evidence(s, store, actor=me, dispute_id=dispute_id, filename=name, declared_type=declared, data=data,
                         now=now(request))  # fmt: skip
        return f"{len(uploads)} file{'s' if len(uploads) != 1 else ''} added." if uploads else "Choose a file first."

    return _write(request, f"/disputes/{dispute_id}", work)


@router.post("/disputes/{dispute_id}/messages")
def message(request: Request, dispute_id: str, me: Actor = Staff, body: Text = "", csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        conversation.reply(s, actor=me, dispute=get_dispute(s, me, dispute_id), body=body, now=now(request))
        return "Message sent to the partner."

    return _write(request, f"/disputes/{dispute_id}#conversation", work)


@router.get("/disputes/{dispute_id}/evidence/{attachment_id}")
def download(request: Request, dispute_id: str, attachment_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        return evidence_file(session, store_of(request), me, dispute_id, attachment_id)
