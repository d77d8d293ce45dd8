"""Leads & deals in the portal: register a lead (with the duplicate warning), follow each one, answer update requests.

What a lead conflicts with is shown to the partner only in general words: another partner's leads and
customers are not the partner's business, the program team sees the details.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.deals import leads, queries, updates
from partnerpay.deals.access import get_lead
from partnerpay.deals.rules import minor_units
from partnerpay.deals.service import deal_for_lead
from partnerpay.deals.timeline import lines_for
from partnerpay.kit.errors import PartnerpayError
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
LEADS = "/portal/leads"
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
FIELDS = ("company", "domain", "contact_name", "contact_email", "expected_value", "notes")
WARNINGS = {
    "own_duplicate": "You registered this company already.",
    "other_partner_lead": "Another partner registered this company first or it is protected for them.",
    "other_partner_deal": "The program team already has a deal open with this company.",
    "crm_deal": "The program team already has a deal open with this company.",
    "existing_customer": "This company is already a customer.",
}


def warnings_of(conflicts: list[dict[str, str]] | None) -> list[str]:
    """What the partner may know about a conflict: its kind in plain words, never whose lead it is."""
    return list(dict.fromkeys(WARNINGS.get(c.get("kind", ""), "Possible duplicate.") for c in conflicts or []))


def _page(
    request: Request,
    me: Actor,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    assert me.partner_id is not None
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        new_id = request.query_params.get("new")
        new_lead = next((lead for lead, _ in queries.partner_leads(session, partner.id) if lead.id == new_id), None)
        context = {
            "area": "portal", "me": me, "page": "leads", "partner": partner, "program": program,
            "rows": queries.partner_leads(session, partner.id), "requests": queries.open_requests(session, partner.id),
            "errors": errors or {}, "values": values or {}, "new_lead": new_lead,
            "new_warnings": warnings_of(new_lead.conflicts) if new_lead else [],
        }  # fmt: skip
    return render(request, "portal/leads.html", context, status_code=status_code)


@router.get(LEADS)
def list_leads(request: Request, me: Actor = PartnerUserActor) -> Response:
    return _page(request, me)


@router.post(LEADS)
async def register(request: Request, me: Actor = PartnerUserActor) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_form_csrf(request, form.get("csrf_token"))
    values = {k: form.get(k, "") for k in FIELDS}
    assert me.partner_id is not None
    try:
        with unit_of_work(factory(request)) as session:
            partner = session.get(Partner, me.partner_id)
            program = session.get(Program, partner.program_id) if partner else None
            assert partner is not None and program is not None
            lead = leads.register_lead(
                session, actor=me, program_id=program.id, company=values["company"], domain=values["domain"],
                contact_name=values["contact_name"], contact_email=values["contact_email"],
                expected_value=minor_units(values["expected_value"], program.currency, field="expected_value"),
                notes=values["notes"], now=now(request),
            )  # fmt: skip
            lead_id, flagged = lead.id, bool(lead.conflicts)
    except PartnerpayError as exc:
        return _page(request, me, errors={exc.field or "form": exc.message}, values=values, status_code=exc.status)
    if flagged:
        flash(request, "Lead registered, with a warning: see below. The program team reviews it.", "error")
    else:
        flash(request, "Lead registered. The program team reviews it and you see the decision here.")
    return redirect(f"{LEADS}?new={lead_id}#lead-{lead_id}")


@router.get(LEADS + "/{lead_id}")
def show(request: Request, lead_id: str, me: Actor = PartnerUserActor) -> Response:
    with reading(request) as session:
        lead = get_lead(session, me, lead_id)  # another partner's lead: 404
        deal = deal_for_lead(session, lead.id)
        context = {
            "area": "portal", "me": me, "page": "leads", "lead": lead, "deal": deal,
            "warnings": warnings_of(lead.conflicts),
            "timeline": lines_for(session, lead_id=lead.id, deal_id=deal.id if deal else None),
            "requests": [r for r, _ in queries.open_requests(session, lead.partner_id) if r.lead_id == lead.id],
        }  # fmt: skip
    return render(request, "portal/leads_detail.html", context)


@router.post(LEADS + "/requests/{request_id}/answer")
def answer(
    request: Request, request_id: str, me: Actor = PartnerUserActor, answer: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            updates.answer_update_request(session, actor=me, request_id=request_id, answer=answer, now=now(request))
    except PartnerpayError as exc:
        if exc.status == 404:
            raise
        flash(request, exc.message, "error")
        return redirect(f"{LEADS}#upd-{request_id}")
    flash(request, "Thank you: your update is with the program team.")
    return redirect(LEADS)
