"""Customers in the console: the list (status, partner, search) and one customer's page with its timeline,
attribution decisions, and the audited "Attribute to partner" form when it has no partner."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.events import customers as queries
from partnerpay.events.manual_attribution import attribute_customer
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.tracking.attribution import current_partner_id
from partnerpay.web.console.access import Staff
from partnerpay.web.console.queries import programs
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
PAGE_SIZE = 100
Field = Annotated[str | None, Form()]


@router.get("/customers")
def customer_list(
    request: Request,
    me: Actor = Staff,
    program: str = "",
    status: str = "",
    partner: str = "",
    q: str = "",
    cursor: str = "",
) -> Response:
    error = None
    with reading(request) as session:
        choices = [p for p in programs(session) if me.sees_program(p.id)]
        filters: dict[str, Any] = {"program_id": program or None, "partner_id": partner or None, "q": q or None}
        try:
            page = queries.list_customers(
                session, me, status=status or None, cursor=cursor or None, limit=PAGE_SIZE, newest_first=True, **filters
            )
            counts = queries.count_customers(session, me, **filters)
        except PartnerpayError as exc:
            error, status = exc.message, ""
            page = queries.list_customers(session, me, limit=PAGE_SIZE, newest_first=True)
            counts = queries.count_customers(session, me)
        stmt = select(Partner.id, Partner.name).where(Partner.program_id.in_([p.id for p in choices]))
        if program:
            stmt = stmt.where(Partner.program_id == program)
        partners = session.execute(stmt.order_by(Partner.name)).all()
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "customers",
        "rows": page.data,
        "next_cursor": page.next_cursor,
        "counts": counts,
        "statuses": queries.STATUSES,
        "programs": [(p.id, p.name) for p in choices],
        "partners": list(partners),
        "no_partner": queries.NO_PARTNER,
        "filters": {"program": program, "status": status, "partner": partner, "q": q},
        "error": error,
    }
    return render(request, "console/customers.html", context, status_code=422 if error else 200)


def _detail(
    request: Request,
    me: Actor,
    customer_id: str,
    *,
    error: PartnerpayError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with reading(request) as session:
        view = queries.customer_view(session, me, customer_id)
        unattributed = current_partner_id(view.customer, now(request)) is None
        candidates = (
            session.execute(
                select(Partner.id, Partner.name)
                .where(Partner.program_id == view.customer.program_id, Partner.status == PartnerStatus.ACTIVE.value)
                .order_by(Partner.name)
            ).all()
            if unattributed
            else []
        )
    field_errors = {error.field: error.message} if error is not None and error.field in ("partner_id", "reason") else {}
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "customers",
        "view": view,
        "c": view.customer,
        "currency": view.program.currency,
        "unattributed": unattributed,
        "candidates": list(candidates),
        "can_attribute": me.can("write"),
        "error": error.message if error is not None and not field_errors else None,
        "field_errors": field_errors,
        "values": values or {},
    }
    return render(request, "console/customer.html", context, status_code=error.status if error else 200)


@router.get("/customers/{customer_id}")
def customer_page(request: Request, customer_id: str, me: Actor = Staff) -> Response:
    return _detail(request, me, customer_id)


@router.post("/customers/{customer_id}/attribute")
def attribute(
    request: Request,
    customer_id: str,
    me: Actor = Staff,
    csrf_token: Field = None,
    partner_id: Field = None,
    reason: Field = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    values = {"partner_id": partner_id or "", "reason": reason or ""}
    try:
        if not partner_id:
            raise ValidationError("choose the partner this customer belongs to", field="partner_id")
        with unit_of_work(factory(request)) as session:
            done = attribute_customer(
                session, actor=me, customer_id=customer_id, partner_id=partner_id, reason=reason or "", now=now(request)
            )
            earned = sum(line.amount for line in done.commissions)
            currency = done.commissions[0].currency if done.commissions else ""
            partner = session.get(Partner, done.decision.partner_id)
            text = (
                f"{done.customer.external_id} is now attributed to {partner.name if partner else partner_id}; "
                f"{len(done.events)} payment(s) attributed"
                + (f", {format_money(earned, currency)} commission created." if done.commissions else ".")
            )
    except PartnerpayError as exc:
        return _detail(request, me, customer_id, error=exc, values=values)
    flash(request, text)
    return redirect(f"/customers/{customer_id}")
