"""Referral links: each partner's default link (their referral code) and the campaign links they add.

A link's code is `{referral_code}.{slug of the campaign}`; referral codes never contain a dot, so
/r/{code} tells the two apart. Only http(s) destinations on the program's site or allowed domains are
accepted, which is what makes the redirect unable to send anyone elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program
from partnerpay.programs.tracking_settings import destination_allowed
from partnerpay.tracking.link_cache import note_changed
from partnerpay.tracking.models import Click, ReferralLink

PARAM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "sub_id")
PARAM_MAX = 100
CAMPAIGN_MAX = 100
DESTINATION_MAX = 1500  # leaves room for the params and ref= within the clicks.destination column
SLUG_MAX = 30
MAX_LINKS_PER_PARTNER = 500  # a partner with more is a script, not a person; staff can still deactivate
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PARAM_VALUE = re.compile(r"^[\x20-\x7e\u00a0-\uffff]+$")  # printable: no control characters
# Characters left as they are when a destination is made header-safe: everything printable in ASCII.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


@dataclass(frozen=True)
class LinkView:
    """A link as lists show it; the default link has no id (it is the partner's referral code)."""

    id: str | None
    partner_id: str
    program_id: str
    code: str
    campaign: str | None
    destination_url: str | None
    params: dict[str, str]
    active: bool
    is_default: bool
    clicks: int
    created_at: datetime | None


def slug(text: str | None) -> str:
    """'Black Friday 2026!' → 'black-friday-2026'; no campaign → 'link'."""
    value = _NOT_SLUG.sub("-", (text or "").lower()).strip("-")[:SLUG_MAX].strip("-")
    return value or "link"


def link_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/r/{code}"


def check_campaign(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > CAMPAIGN_MAX or not _PARAM_VALUE.match(text):
        raise ValidationError(f"campaign must be at most {CAMPAIGN_MAX} printable characters", field="campaign")
    return text


def check_params(value: Any) -> dict[str, str]:
    """Only the UTM fields and sub_id, each a short printable string; empty ones are dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"params must be an object with keys among {', '.join(PARAM_KEYS)}", field="params")
    params: dict[str, str] = {}
    for key, raw in value.items():
        if key not in PARAM_KEYS:
            raise ValidationError(f"params: {key!r} is not allowed; use {', '.join(PARAM_KEYS)}", field=f"params.{key}")
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise ValidationError(f"params.{key} must be a string", field=f"params.{key}")
        text = raw.strip()
        if not text:
            continue
        if len(text) > PARAM_MAX or not _PARAM_VALUE.match(text):
            raise ValidationError(
                f"params.{key} must be at most {PARAM_MAX} printable characters", field=f"params.{key}"
            )
        params[key] = text
    return params


def check_destination(program: Program, value: str | None) -> str | None:
    """An http(s) address on the program's site or allowed domains (subdomains included), or None for the site."""
    text = (value or "").strip()
    if not text:
        if not program.site_url:
            raise ValidationError(
                "destination_url is required: the program has no site_url to send links to", field="destination_url"
            )
        return None
    parts = urlsplit(text)
    if (
        len(text) > DESTINATION_MAX
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or any(c.isspace() or ord(c) < 32 or c in "\"'<>\\`" for c in text)
    ):
        raise ValidationError(
            "destination_url must be an http(s):// address such as https://example.com/pricing",
            field="destination_url",
        )
    if not destination_allowed(program, text):
        hosts = [*(program.allowed_domains or [])]
        if program.site_url:
            hosts.insert(0, urlsplit(program.site_url).hostname or program.site_url)
        allowed = ", ".join(hosts) or "none yet (set the program's site_url or allowed_domains)"
        raise ValidationError(
            f"destination_url must be on the program's site or an allowed domain ({allowed}); got {parts.hostname}",
            field="destination_url",
        )
    # Non-ASCII characters are percent-encoded once here, so the Location header is always plain ASCII.
    return quote(text, safe=_URL_SAFE)


def _free_code(session: Session, base: str) -> str:
    """`base`, or base-2, base-3 … when taken (by this partner's other links with the same campaign)."""
    taken = set(
        session.scalars(
            select(ReferralLink.code).where((ReferralLink.code == base) | ReferralLink.code.like(f"{base}-%"))
        )
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create_link(
    session: Session,
    *,
    actor: Actor,
    partner_id: str,
    now: datetime,
    campaign: str | None = None,
    destination_url: str | None = None,
    params: Any = None,
) -> ReferralLink:
    """A new link for a partner: the partner themselves (portal) or staff and API keys with 'write'."""
    partner = get_partner(session, actor, partner_id)  # 404 for another program's or another partner's
    if actor.partner_id is None and not actor.can("write"):
        raise Forbidden("creating links needs the 'write' scope")
    if partner.status != PartnerStatus.ACTIVE:
        raise Conflict(f"partner {partner.id} is {partner.status}: only active partners get new links")
    program = session.get(Program, partner.program_id)
    assert program is not None
    campaign = check_campaign(campaign)
    clean_params = check_params(params)
    destination = check_destination(program, destination_url)
    count = session.scalar(select(func.count()).select_from(ReferralLink).where(ReferralLink.partner_id == partner.id))
    if (count or 0) >= MAX_LINKS_PER_PARTNER:
        raise Conflict(f"partner {partner.id} already has {MAX_LINKS_PER_PARTNER} links; deactivate old ones first")
    link = ReferralLink(
        id=new_id("lnk"),
        program_id=program.id,
        partner_id=partner.id,
        code=_free_code(session, f"{partner.referral_code}.{slug(campaign)}"),
        campaign=campaign,
        destination_url=destination,
        params=clean_params or None,
        active=True,
        created_at=now,
        created_by=actor.id,
    )
    session.add(link)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="link.create",
        object_type="referral_link",
        object_id=link.id,
        program_id=program.id,
        now=now,
        after=_snapshot(link),
    )
    # A code that was clicked before it existed is cached as unknown: forget that.
    note_changed(session, link.code)
    return link


def get_link(session: Session, actor: Actor, link_id: str) -> ReferralLink:
    """The link, or 404 when it belongs to another program or (for a partner user) another partner."""
    link = session.get(ReferralLink, link_id)
    if link is None or not actor.sees(link.program_id, link.partner_id):
        raise NotFound(f"link {link_id} not found", field="link_id")
    return link


def deactivate_link(session: Session, *, actor: Actor, link_id: str, now: datetime) -> ReferralLink:
    """Stop a link crediting clicks; it still redirects (never an error page), unattributed. Repeating is a no-op."""
    link = get_link(session, actor, link_id)
    if actor.partner_id is None and not actor.can("write"):
        raise Forbidden("deactivating links needs the 'write' scope")
    if not link.active:
        return link
    link.active = False
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="link.deactivate",
        object_type="referral_link",
        object_id=link.id,
        program_id=link.program_id,
        now=now,
        before={"active": True},
        after={"active": False},
    )
    note_changed(session, link.code)
    return link


def list_links(session: Session, actor: Actor, partner_id: str) -> list[LinkView]:
    """The partner's default link first, then their links newest first, each with its click count."""
    partner = get_partner(session, actor, partner_id)
    links = list(
        session.scalars(
            select(ReferralLink).where(ReferralLink.partner_id == partner.id).order_by(ReferralLink.id.desc())
        )
    )
    counts = click_counts(session, partner)
    default = LinkView(
        id=None,
        partner_id=partner.id,
        program_id=partner.program_id,
        code=partner.referral_code,
        campaign=None,
        destination_url=None,
        params={},
        active=True,
        is_default=True,
        clicks=counts.get(None, 0),
        created_at=partner.created_at,
    )
    return [default] + [view(link, counts.get(link.id, 0)) for link in links]


def click_counts(session: Session, partner: Partner) -> dict[str | None, int]:
    """Credited clicks per link id (None: the default link); uses the (partner_id, at) index."""
    rows = session.execute(
        select(Click.link_id, func.count()).where(Click.partner_id == partner.id).group_by(Click.link_id)
    )
    return {link_id: int(n) for link_id, n in rows}


def click_counts_for_link(session: Session, link: ReferralLink) -> int:
    """Clicks this link credited to its partner."""
    stmt = select(func.count()).where(Click.partner_id == link.partner_id, Click.link_id == link.id)
    return int(session.scalar(stmt) or 0)


def view(link: ReferralLink, clicks: int = 0) -> LinkView:
    return LinkView(
        id=link.id,
        partner_id=link.partner_id,
        program_id=link.program_id,
        code=link.code,
        campaign=link.campaign,
        destination_url=link.destination_url,
        params=dict(link.params or {}),
        active=link.active,
        is_default=False,
        clicks=clicks,
        created_at=link.created_at,
    )


def _snapshot(link: ReferralLink) -> dict[str, Any]:
    return {
        "partner_id": link.partner_id,
        "code": link.code,
        "campaign": link.campaign,
        "destination_url": link.destination_url,
        "params": link.params,
        "active": link.active,
    }
