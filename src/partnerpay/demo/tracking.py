"""The demo's tracking and deals side: site settings, campaign links, coupons, a month of clicks,
registered leads (one in conflict), deals along the pipeline, and update requests (one still open).

Each extra is a dated write through the services, like demo/onboarding; clicks are written the way the
redirect's buffer writes them, since the demo has no visitors.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.db.bulk import bulk_insert
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.service import deal_for_lead, move_deal
from partnerpay.deals.updates import answer_update_request, ask_for_update
from partnerpay.demo.data import PORTAL_PARTNER
from partnerpay.demo.onboarding import Cast, Extra, Write
from partnerpay.kit.ids import new_ids
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.programs.service import update_program_settings
from partnerpay.tracking.coupons import create_coupon
from partnerpay.tracking.links import create_link
from partnerpay.tracking.models import ReferralLink

DAY = timedelta(days=1)
SITE = "https://acme-analytics.example"
CLICK_DAYS = 30
CLICK_COLUMNS = ("id", "program_id", "partner_id", "link_id", "code", "at", "ip_hash", "ua_class", "referrer",
                 "country", "destination")  # fmt: skip
LINKED = (PORTAL_PARTNER, 1, 2, 3)  # partners with campaign links, coupons and clicks
COUNTRIES = ("DE", "FR", "NL", "GB", "US", "ES")


def extras(now: datetime, seed: int) -> list[Extra]:
    rng = random.Random(f"{seed}:tracking")

    def day(days_ago: int) -> datetime:
        start = (now - days_ago * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
        return start + timedelta(hours=rng.randint(9, 17), minutes=rng.randint(0, 59))

    return [
        Extra(day(CLICK_DAYS + 2), "tracking settings", _settings),
        Extra(day(CLICK_DAYS + 1), "campaign links and coupons", _links_and_coupons),
        Extra(now.replace(microsecond=0) - timedelta(minutes=5), "a month of clicks", _clicks(now, seed)),
        Extra(day(21), "lead Northwind", _lead(PORTAL_PARTNER, "Northwind Traders", "northwind.example", 2_400_000)),
        Extra(day(20), "lead Globex", _lead(1, "Globex Corporation", "globex.example", 900_000)),
        Extra(day(19), "leads accepted", _accept(["northwind.example", "globex.example"])),
        Extra(day(17), "conflicting lead", _lead(2, "Northwind Traders GmbH", "www.northwind.example", 1_500_000)),
        Extra(day(14), "Northwind demo", _stage("northwind.example", "demo")),
        Extra(day(12), "Northwind asked", _ask("northwind.example", "Is the demo with Northwind booked yet?")),
        Extra(day(11), "Northwind answered", _answer("northwind.example", "Yes: demo done, they want a proposal.")),
        Extra(day(6), "Globex won", _won("globex.example", 1_080_000)),
        Extra(day(3), "Northwind asked again", _ask("northwind.example", "Did Northwind get the proposal? Any date?")),
    ]


def _partner(session: Session, cast: Cast, index: int) -> Partner | None:
    partner_id = cast.partner_ids.get(index)
    return session.get(Partner, partner_id) if partner_id else None


def _settings(session: Session, cast: Cast, at: datetime) -> None:
    changes = {"site_url": SITE, "fallback_url": f"{SITE}/partners", "allowed_domains": ["docs.acme-analytics.example"]}
    update_program_settings(session, actor=cast.owner, program_id=cast.program_id, changes=changes, now=at)


def _links_and_coupons(session: Session, cast: Cast, at: datetime) -> None:
    campaigns = (
        ("spring-webinar", "/webinar"),
        ("pricing", "/pricing"),
        ("docs", "https://docs.acme-analytics.example"),
    )
    for n, index in enumerate(LINKED):
        partner = _partner(session, cast, index)
        if partner is None:
            continue
        campaign, path = campaigns[n % len(campaigns)]
        destination = path if path.startswith("https://") else SITE + path
        params = {"utm_source": "partner", "utm_medium": "referral", "utm_campaign": campaign}
        create_link(session, actor=cast.manager, partner_id=partner.id, now=at, campaign=campaign,
                    destination_url=destination, params=params)  # fmt: skip
        code = partner.referral_code.split("-")[0].upper()[:10] + "20"
        create_coupon(session, actor=cast.owner, program_id=cast.program_id, partner_id=partner.id, code=code, now=at)


def _clicks(now: datetime, seed: int) -> Write:
    """A month of clicks on the partners' default and campaign links, busier on weekdays."""

    def write(session: Session, cast: Cast, at: datetime) -> None:
        rng = random.Random(f"{seed}:clicks")
        rows: list[tuple[object, ...]] = []
        for index in LINKED:
            partner = _partner(session, cast, index)
            if partner is None:
                continue
            links = session.scalars(select(ReferralLink).where(ReferralLink.partner_id == partner.id)).all()
            targets = [(None, partner.referral_code, SITE)] + [(x.id, x.code, x.destination_url or SITE) for x in links]
            for days_ago in range(CLICK_DAYS, 0, -1):
                start = (now - days_ago * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
                busy = 1 if start.weekday() >= 5 else 3
                for _ in range(rng.randint(2, 8) * busy + (12 if index == PORTAL_PARTNER else 0)):
                    link_id, code, destination = rng.choice(targets)
                    ip = hashlib.sha256(f"demo-ip-{rng.randint(1, 400)}".encode()).hexdigest()
                    when = start + timedelta(seconds=rng.randint(0, 86_399))
                    rows.append((partner.program_id, partner.id, link_id, code, when, ip,
                                 rng.choice(("desktop", "desktop", "mobile")), "https://blog.example/",
                                 rng.choice(COUNTRIES), destination))  # fmt: skip
        rows.sort(key=lambda r: r[4])  # type: ignore[arg-type,return-value]
        ids = new_ids("clk", len(rows))
        bulk_insert(session, "clicks", CLICK_COLUMNS, [(i, *r) for i, r in zip(ids, rows, strict=True)])

    return write


def _portal_actor(session: Session, partner: Partner) -> Actor | None:
    user = session.scalar(select(PartnerUser).where(PartnerUser.partner_id == partner.id).order_by(PartnerUser.id))
    if user is None:
        return None
    return Actor(ActorType.PARTNER, user.id, frozenset({"read"}), partner.program_id, partner.id, user.email)


def _lead(index: int, company: str, domain: str, value: int) -> Write:
    """The portal partner registers its own leads in the portal; others' are entered by their manager."""

    def write(session: Session, cast: Cast, at: datetime) -> None:
        partner = _partner(session, cast, index)
        if partner is None:
            return
        actor = _portal_actor(session, partner) or cast.manager
        register_lead(session, actor=actor, program_id=cast.program_id, company=company,
                      partner_id=None if actor.partner_id else partner.id, domain=domain,
                      contact_name="Head of Operations", contact_email=f"ops@{domain}", expected_value=value,
                      notes="Met at a customer event; evaluating analytics tools this quarter.", now=at)  # fmt: skip

    return write


def _lead_ids(session: Session, cast: Cast, domains: list[str]) -> list[str]:
    from partnerpay.deals.models import Lead  # here: the demo's only direct read of leads

    found = session.scalars(
        select(Lead.id).where(Lead.program_id == cast.program_id, Lead.domain.in_(domains)).order_by(Lead.created_at)
    ).all()
    return list(found[: len(domains)])


def _deal_id(session: Session, cast: Cast, domain: str) -> str | None:
    ids = _lead_ids(session, cast, [domain])
    deal = deal_for_lead(session, ids[0]) if ids else None
    return deal.id if deal is not None else None


def _accept(domains: list[str]) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        ids = _lead_ids(session, cast, domains)
        if ids:
            accept_leads(session, actor=cast.manager, lead_ids=ids, now=at)

    return write


DealStep = Callable[[Session, Cast, str, datetime], object]


def _on_deal(domain: str, step: DealStep) -> Write:
    """A write on the deal that came from the lead for this domain (nothing when there is none)."""

    def write(session: Session, cast: Cast, at: datetime) -> None:
        deal_id = _deal_id(session, cast, domain)
        if deal_id:
            step(session, cast, deal_id, at)

    return write


def _stage(domain: str, stage: str) -> Write:
    return _on_deal(domain, lambda s, cast, deal_id, at: move_deal(
        s, actor=cast.manager, deal_id=deal_id, stage=stage, now=at))  # fmt: skip


def _won(domain: str, amount: int) -> Write:
    return _on_deal(domain, lambda s, cast, deal_id, at: move_deal(
        s, actor=cast.manager, deal_id=deal_id, status="won", amount=amount, now=at))  # fmt: skip


def _ask(domain: str, message: str) -> Write:
    return _on_deal(domain, lambda s, cast, deal_id, at: ask_for_update(
        s, actor=cast.manager, message=message, deal_id=deal_id, now=at))  # fmt: skip


def _answer(domain: str, answer: str) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        from partnerpay.deals.models import Deal, UpdateRequest

        deal_id = _deal_id(session, cast, domain)
        deal = session.get(Deal, deal_id) if deal_id else None
        partner = session.get(Partner, deal.partner_id) if deal else None
        actor = _portal_actor(session, partner) if partner else None
        request = session.scalar(
            select(UpdateRequest).where(UpdateRequest.deal_id == deal_id, UpdateRequest.answered_at.is_(None))
        )
        if actor is None or request is None:
            return
        answer_update_request(session, actor=actor, request_id=request.id, answer=answer, now=at)

    return write
