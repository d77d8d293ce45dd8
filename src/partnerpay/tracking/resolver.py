"""What a code resolves to, from the database: the link (or the partner's default code), its partner's
status and its program's site, turned into a ready-made Location (prefix + click id + suffix).

Called from worker threads only, never on the event loop: one query for one code, one query per
batch of codes for background refreshes, and one pass at startup to fill the cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from partnerpay.tracking.link_cache import Target
from partnerpay.tracking.models import ReferralLink

DESTINATION_MAX = 2000
_SAFE_LOCATION = re.compile(r"^(https?://[\x21-\x7e]+|/)$")
_HEADER_SAFE = "!#$%&'()*+,-./:;=?@[]_~"

_LINK_COLUMNS = (
    ReferralLink.code,
    ReferralLink.id,
    ReferralLink.program_id,
    ReferralLink.partner_id,
    ReferralLink.destination_url,
    ReferralLink.params,
    ReferralLink.active,
    Partner.status,
    Program.site_url,
    Program.fallback_url,
    Program.cookie_days,
)
_PARTNER_COLUMNS = (
    Partner.referral_code,
    Partner.id,
    Partner.program_id,
    Partner.status,
    Program.site_url,
    Program.fallback_url,
    Program.cookie_days,
)


def with_params(url: str, params: dict[str, str]) -> tuple[str, str]:
    """(prefix, suffix) such that prefix + click_id + suffix is `url` with `params` and ref=<click id> in
    its query. The destination's own query is kept as it was written, minus keys the link sets itself."""
    parts = urlsplit(url)
    override = {*params, "ref"}
    kept = [p for p in parts.query.split("&") if p and unquote(p.split("=", 1)[0]) not in override]
    added = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items()]
    head = url.split("#", 1)[0].split("?", 1)[0]
    if not parts.path:
        head += "/"  # https://example.com?ref=… is legal, but https://example.com/?ref=… is what everyone expects
    query = "&".join([*kept, *added, "ref="])
    suffix = f"#{parts.fragment}" if parts.fragment else ""
    return f"{head}?{query}", suffix


def safe_location(url: str | None) -> str | None:
    """The URL if it can go into a Location header as it is (absolute http(s), printable ASCII), else None."""
    if not url:
        return None
    text = quote(url.strip(), safe=_HEADER_SAFE)
    return text if _SAFE_LOCATION.match(text) else None


def _fingerprint(row: Any) -> int:
    """A hash of the row (params as sorted pairs): small to keep beside each of many cached targets."""
    return hash(tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in row))


def _links() -> Select[Any]:
    return (
        select(*_LINK_COLUMNS)
        .join(Partner, Partner.id == ReferralLink.partner_id)
        .join(Program, Program.id == ReferralLink.program_id)
    )


def _partners() -> Select[Any]:
    return cast("Select[Any]", select(*_PARTNER_COLUMNS).join(Program, Program.id == Partner.program_id))


class Resolver:
    """Looks codes up in the database and builds their targets."""

    def __init__(self, sessions: sessionmaker[Session], *, fallback_url: str) -> None:
        self.sessions = sessions
        self.fallback_url = safe_location(fallback_url) or "/"

    def code(self, code: str) -> Target | None:
        """One code, one query: a dotted code is a link, any other a partner's referral code."""
        with self.sessions() as session:
            if "." in code:
                row = session.execute(_links().where(ReferralLink.code == code)).first()
                return self._link_target(row) if row is not None else None
            row = session.execute(_partners().where(Partner.referral_code == code)).first()
            return self._partner_target(row) if row is not None else None

    def codes(self, known: dict[str, Target]) -> dict[str, Target | None]:
        """The current targets of many cached codes in two queries (links, then referral codes): the background
        refresh of stale entries. A code whose row did not change keeps its target object as it was."""
        found: dict[str, Target | None] = dict.fromkeys(known)
        dotted = [c for c in known if "." in c]
        plain = [c for c in known if "." not in c]
        with self.sessions() as session:
            if dotted:
                for row in session.execute(_links().where(ReferralLink.code.in_(dotted))):
                    old = known[row.code]
                    found[row.code] = old if old.source == _fingerprint(row) else self._link_target(row)
            if plain:
                for row in session.execute(_partners().where(Partner.referral_code.in_(plain))):
                    old = known[row.referral_code]
                    found[row.referral_code] = old if old.source == _fingerprint(row) else self._partner_target(row)
        return found

    def newest(self, limit: int) -> Iterable[tuple[str, Target]]:
        """The partners' codes and the newest active links, up to `limit` in all: what fills the cache at startup."""
        with self.sessions() as session:
            partners = session.execute(_partners().order_by(Partner.id.desc()).limit(limit)).all()
            left = max(0, limit - len(partners))
            links = session.execute(
                _links().where(ReferralLink.active.is_(True)).order_by(ReferralLink.id.desc()).limit(left)
            ).all()
        for row in partners:
            yield row.referral_code, self._partner_target(row)
        for row in links:
            yield row.code, self._link_target(row)

    def _link_target(self, row: Any) -> Target:
        credited = bool(row.active) and row.status == PartnerStatus.ACTIVE
        destination = safe_location(row.destination_url or row.site_url or row.fallback_url)
        target = self._target(
            row.program_id, row.partner_id, row.id, destination, dict(row.params or {}), credited, row.cookie_days
        )
        return replace(target, source=_fingerprint(row))

    def _partner_target(self, row: Any) -> Target:
        destination = safe_location(row.site_url or row.fallback_url)
        credited = row.status == PartnerStatus.ACTIVE
        target = self._target(row.program_id, row.id, None, destination, {}, credited, row.cookie_days)
        return replace(target, source=_fingerprint(row))

    def _target(
        self,
        program_id: str,
        partner_id: str,
        link_id: str | None,
        destination: str | None,
        params: dict[str, str],
        credited: bool,
        cookie_days: int,
    ) -> Target:
        if destination is None:
            # A program without a site: the visitor still lands somewhere, and nobody is credited for it.
            return Target(program_id, None, link_id, self.fallback_url, False, self.fallback_url)
        prefix, suffix = with_params(destination, params)
        stored = prefix[: -len("?ref=")] + suffix  # "&ref=" and "?ref=" are the same length
        if not credited:
            # Still where the link pointed (with its params), but no ref, no cookie, no partner.
            return Target(program_id, None, link_id, stored[:DESTINATION_MAX], False, stored)
        return Target(program_id, partner_id, link_id, stored[:DESTINATION_MAX], True, prefix, suffix, cookie_days)

    def fallback(self) -> Target:
        """Where unknown codes go: the only program's fallback or site, else the settings fallback, else /."""
        with self.sessions() as session:
            programs = session.execute(select(Program.id, Program.fallback_url, Program.site_url).limit(2)).all()
        if len(programs) == 1:
            only = programs[0]
            url = safe_location(only.fallback_url) or safe_location(only.site_url) or self.fallback_url
            return Target(only.id, None, None, url, False, url)
        return Target(None, None, None, self.fallback_url, False, self.fallback_url)
