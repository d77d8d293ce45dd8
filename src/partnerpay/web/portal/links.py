"""The partner's links and coupons in the portal: copy the default link, add campaign links, see clicks.

The partner is always the logged-in user's; creating or deactivating goes through tracking.links,
which refuses another partner's link with a 404 like everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.tracking import links
from partnerpay.tracking.models import Coupon
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
LINKS = "/portal/links"
UTM_FIELDS = (
    ("utm_source", "UTM source", "where the visitor comes from, e.g. newsletter"),
    ("utm_medium", "UTM medium", "e.g. email, social, cpc"),
    ("utm_campaign", "UTM campaign", None),
    ("utm_content", "UTM content", None),
    ("utm_term", "UTM term", None),
    ("sub_id", "Sub-id", "your own tracking id, passed through unchanged"),
)


def _page(
    request: Request,
    me: Actor,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
) -> Response:
    assert me.partner_id is not None
    base_url = str(request.app.state.settings.base_url)
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        assert program is not None
        views = links.list_links(session, me, partner.id)
        coupons = list(session.scalars(select(Coupon).where(Coupon.partner_id == partner.id).order_by(Coupon.code)))
        context: dict[str, Any] = {
            "area": "portal",
            "page": "links",
            "me": me,
            "partner": partner,
            "program": program,
            "default": views[0],
            "default_url": links.link_url(base_url, views[0].code),
            "links": [(v, links.link_url(base_url, v.code)) for v in views[1:]],
            "coupons": coupons,
            "utm_fields": UTM_FIELDS,
            "form": form or {},
            "errors": errors or {},
            "alert": alert,
            "allowed_hosts": _allowed_hosts(program),
        }
    return render(request, "portal/links.html", context, status_code=status)


def _allowed_hosts(program: Program) -> list[str]:
    hosts = list(program.allowed_domains or [])
    if program.site_url:
        hosts.insert(0, urlsplit(program.site_url).hostname or program.site_url)
    return hosts


@router.get(LINKS)
def links_page(request: Request, me: Actor = PartnerUserActor) -> Response:
    return _page(request, me)


@router.post(LINKS)
def create_link(
    request: Request,
    me: Actor = PartnerUserActor,
    campaign: Annotated[str, Form()] = "",
    destination_url: Annotated[str, Form()] = "",
    utm_source: Annotated[str, Form()] = "",
    utm_medium: Annotated[str, Form()] = "",
    utm_campaign: Annotated[str, Form()] = "",
    utm_content: Annotated[str, Form()] = "",
    utm_term: Annotated[str, Form()] = "",
    sub_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    assert me.partner_id is not None
    params = {
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "utm_content": utm_content,
        "utm_term": utm_term,
        "sub_id": sub_id,
    }
    form = {"campaign": campaign, "destination_url": destination_url, **params}
    try:
        with unit_of_work(factory(request)) as session:
            link = links.create_link(
                session,
                actor=me,
                partner_id=me.partner_id,
                now=now(request),
                campaign=campaign,
                destination_url=destination_url,
                params=params,
            )
            code = link.code
    except PartnerpayError as exc:
        # A field error goes next to its field (params.utm_source → utm_source); anything else above the form.
        field = (exc.field or "").removeprefix("params.")
        if field in form:
            return _page(request, me, form=form, errors={field: exc.message}, status=exc.status)
        return _page(request, me, form=form, alert=exc.message, status=exc.status)
    flash(request, f"Link created: {links.link_url(str(request.app.state.settings.base_url), code)}")
    return redirect(LINKS)


@router.post(LINKS + "/{link_id}/deactivate")
def deactivate_link(
    request: Request, link_id: str, me: Actor = PartnerUserActor, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    with unit_of_work(factory(request)) as session:
        link = links.deactivate_link(session, actor=me, link_id=link_id, now=now(request))
        code = link.code
    flash(request, f"Link {code} deactivated: it still sends visitors on, but no longer credits you.")
    return redirect(LINKS)
