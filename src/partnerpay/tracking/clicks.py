"""What a click records about its visitor, and reading clicks back.

The visitor's address is never stored: only a keyed hash (HMAC-SHA256 with a key derived from the
secret key), enough to count repeat clicks from one address and no way back to the address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.service import get_partner
from partnerpay.tracking.models import Click

REFERRER_MAX = 500
_IP_KEY_INFO = b"partnerpay/clicks/ip-hash/v1"
_BOT = re.compile(
    r"bot|crawl|spider|slurp|preview|fetch|monitor|curl|wget|python-|httpclient|java/|go-http|okhttp|headless"
    r"|facebookexternalhit|whatsapp|lighthouse|pingdom|scrapy|axios|node-fetch|libwww",
    re.IGNORECASE,
)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ipod|windows phone|blackberry|opera mini|silk/", re.IGNORECASE)
_DESKTOP = re.compile(r"windows nt|macintosh|x11|linux x86_64|cros", re.IGNORECASE)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
UA_CLASSES = ("bot", "mobile", "desktop", "other")


class IpHasher:
    """HMAC-SHA256 of the client address under a key derived from the secret key (never the key itself)."""

    def __init__(self, secret_key: str) -> None:
        key = hmac.new(secret_key.encode(), _IP_KEY_INFO, hashlib.sha256).digest()
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        # A visitor clicks more than once and proxies concentrate addresses: hash each address once.
        self._hash = lru_cache(maxsize=65_536)(self._compute)

    def _compute(self, address: str) -> str:
        mac = self._keyed.copy()  # the keyed state is ready; copying skips re-deriving the pads
        mac.update(address.encode())
        return mac.hexdigest()

    def __call__(self, address: str | None) -> str | None:
        return self._hash(address) if address else None


@lru_cache(maxsize=4096)  # the same few hundred browsers make most clicks; classify each string once
def ua_class(user_agent: str | None) -> str:
    """bot, mobile, desktop or other, from the User-Agent header."""
    if not user_agent:
        return "other"
    if _BOT.search(user_agent):
        return "bot"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "other"


def country(value: str | None) -> str | None:
    """Two upper-case letters from CF-IPCountry / X-Country-Code; XX (unknown) and anything else: None."""
    if not value:
        return None
    code = value.strip().upper()
    return code if _COUNTRY.match(code) and code != "XX" else None


def referrer(value: str | None) -> str | None:
    return value[:REFERRER_MAX] if value else None


@dataclass(frozen=True)
class ClickView:
    """A click as the API shows it: the address hash shortened to a visitor key, never in full."""

    id: str
    program_id: str | None
    partner_id: str | None
    link_id: str | None
    code: str
    at: datetime
    visitor: str | None
    ua_class: str
    referrer: str | None
    country: str | None
    destination: str


def click_view(click: Click) -> ClickView:
    return ClickView(
        id=click.id,
        program_id=click.program_id,
        partner_id=click.partner_id,
        link_id=click.link_id,
        code=click.code,
        at=click.at,
        visitor=click.ip_hash[:12] if click.ip_hash else None,
        ua_class=click.ua_class,
        referrer=click.referrer,
        country=click.country,
        destination=click.destination,
    )


def list_clicks(
    session: Session, actor: Actor, partner_id: str, *, cursor: str | None, limit: int, link_id: str | None = None
) -> Page[Click]:
    """The clicks credited to a partner, oldest first, by cursor (click ids sort by time)."""
    partner = get_partner(session, actor, partner_id)
    stmt = select(Click).where(Click.partner_id == partner.id)
    if link_id is not None:
        stmt = stmt.where(Click.link_id == link_id)
    return paginate(session, stmt, Click.id, cursor=cursor, limit=limit)


def find_click(session: Session, click_id: str) -> Click | None:
    """The stored click behind a `ref` / `pp_ref` value (attribution uses this); None when unknown.

    A click is written within the flush interval (200 ms by default) of its redirect; a click still
    in this process's buffer can be read with ClickWriter.pending(click_id).
    """
    if not click_id.startswith("clk_") or len(click_id) > 40:
        return None
    return session.get(Click, click_id)
