"""Referral links and clicks: create and list a partner's links, deactivate one, page through clicks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.tracking import clicks, links
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter(tags=["links"])


class LinkIn(In):
    campaign: StrictStr | None = Field(default=None, max_length=200, examples=["Black Friday 2026"])
    destination_url: StrictStr | None = Field(
        default=None,
        max_length=4000,
        description="http(s) on the program's site_url host or allowed_domains (subdomains too); "
        "null: the program's site_url",
        examples=["https://shop.example.com/pricing"],
    )
    # Checked by the service (which names the bad key), so any object is accepted here.
    params: dict[str, Any] | None = Field(
        default=None,
        description="utm_source, utm_medium, utm_campaign, utm_content, utm_term, sub_id: strings up to 100 chars",
        examples=[{"utm_source": "newsletter", "utm_medium": "email"}],
    )


class LinkOut(Out):
    id: str | None = Field(description="null for the default link, which is the partner's referral code")
    partner_id: str
    program_id: str
    code: str
    url: str = Field(description="{base_url}/r/{code}: what the partner shares")
    campaign: str | None
    destination_url: str | None
    params: dict[str, str]
    active: bool
    is_default: bool
    clicks: int = Field(description="clicks credited to the partner through this link")
    created_at: datetime | None


class ClickOut(Out):
    id: str = Field(description="the value of ref= and of the pp_ref cookie")
    program_id: str | None
    partner_id: str | None
    link_id: str | None
    code: str
    at: datetime
    visitor: str | None = Field(description="first 12 characters of the keyed hash of the address: repeat visits")
    ua_class: str = Field(description="desktop, mobile, bot or other")
    referrer: str | None
    country: str | None
    destination: str


def _base_url(request: Request) -> str:
    return str(request.app.state.settings.base_url)


def _out(request: Request, item: links.LinkView) -> dict[str, Any]:
    data = {**item.__dict__, "url": links.link_url(_base_url(request), item.code)}
    return LinkOut.model_validate(data).model_dump(mode="json")


@router.post("/partners/{partner_id}/links", status_code=201, response_model=LinkOut)
def create_link(request: Request, partner_id: str, body: LinkIn, actor: Actor = Caller) -> JSONResponse:
    """A new link `{referral_code}.{campaign slug}`; a destination outside the program's domains is a 422."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        link = links.create_link(
            session,
            actor=actor,
            partner_id=partner_id,
            now=now(request),
            campaign=body.campaign,
            destination_url=body.destination_url,
            params=body.params,
        )
        return 201, _out(request, links.view(link))

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/partners/{partner_id}/links")
def list_links(request: Request, partner_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The default link first, then the partner's links newest first, each with its click count (not paged)."""
    with reader(request, actor) as session:
        views = links.list_links(session, actor, partner_id)
        return {"data": [_out(request, v) for v in views], "next_cursor": None}


@router.post("/links/{link_id}/deactivate", response_model=LinkOut)
def deactivate_link(request: Request, link_id: str, actor: Actor = Caller) -> JSONResponse:
    """The link stops crediting clicks at once; visitors are still sent to its destination."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        link = links.deactivate_link(session, actor=actor, link_id=link_id, now=now(request))
        partner_clicks = links.click_counts_for_link(session, link)
        return 200, _out(request, links.view(link, partner_clicks))

    return idempotency.run(request, actor, {"link_id": link_id}, work)


@router.get("/partners/{partner_id}/clicks")
def list_clicks(
    request: Request,
    partner_id: str,
    actor: Actor = Caller,
    link_id: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """Clicks credited to the partner, oldest first; the visitor's address is never shown, only a short hash."""
    with reader(request, actor) as session:
        page = clicks.list_clicks(session, actor, partner_id, cursor=cursor, limit=limit, link_id=link_id)
        data = [ClickOut.model_validate(clicks.click_view(c).__dict__).model_dump(mode="json") for c in page.data]
        return {"data": data, "next_cursor": page.next_cursor}
