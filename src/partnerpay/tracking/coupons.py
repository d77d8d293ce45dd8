"""Coupons: discount codes mapped to partners (typed in by staff, or mirrored from Shopify / Stripe)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.service import get_partner
from partnerpay.tracking.models import Coupon

# Letters, digits and the separators shops allow; no spaces, so a code reads back the way it was typed.
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,99}$")


class CouponSource(StrEnum):
    MANUAL = "manual"
    SHOPIFY = "shopify"  # provider_id: the Shopify discount (price rule) id
    STRIPE = "stripe"  # provider_id: the Stripe promotion code id (promo_…)


def code_key(code: str) -> str:
    """What lookups compare: codes are case-insensitive at checkout, so SPRING10 and spring10 are one."""
    return code.strip().upper()


def _snapshot(coupon: Coupon) -> dict[str, object]:
    return {
        "code": coupon.code,
        "partner_id": coupon.partner_id,
        "source": coupon.source,
        "provider_id": coupon.provider_id,
        "active": coupon.active,
    }


def _check_input(code: str, source: str, provider_id: str | None) -> CouponSource:
    if not CODE.match(code.strip()):
        raise ValidationError(
            f"code {code!r} must be 1 to 100 letters, digits, '-', '_' or '.', starting with a letter or digit",
            field="code",
        )
    try:
        kind = CouponSource(source)
    except ValueError:
        raise ValidationError(
            f"source must be one of {[s.value for s in CouponSource]}, got {source!r}", field="source"
        ) from None
    if kind is CouponSource.MANUAL and provider_id:
        raise ValidationError(
            "a manual coupon has no provider_id; set source to shopify or stripe", field="provider_id"
        )
    if kind is not CouponSource.MANUAL and not (provider_id or "").strip():
        raise ValidationError(f"a {kind.value} coupon needs the {kind.value} id as provider_id", field="provider_id")
    return kind


def create_coupon(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    partner_id: str,
    code: str,
    now: datetime,
    source: str = CouponSource.MANUAL.value,
    provider_id: str | None = None,
) -> Coupon:
    """Map a code to a partner; a code already used in the program (any case) is a 409."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("creating coupons needs the 'write' scope of a staff user or API key")
    partner = get_partner(session, actor, partner_id)
    if partner.program_id != program_id:
        raise NotFound(f"partner {partner_id} not found in program {program_id}", field="partner_id")
    kind = _check_input(code, source, provider_id)
    key = code_key(code)
    taken = session.scalar(select(Coupon).where(Coupon.program_id == program_id, Coupon.code_key == key))
    if taken is not None:
        raise Conflict(f"coupon code {code.strip()!r} is already used in this program ({taken.id})", field="code")
    provider = provider_id.strip() if provider_id else None
    if provider is not None:
        clash = session.scalar(
            select(Coupon.id).where(
                Coupon.program_id == program_id, Coupon.source == kind.value, Coupon.provider_id == provider
            )
        )
        if clash is not None:
            raise Conflict(f"{kind.value} id {provider!r} is already mapped to coupon {clash}", field="provider_id")
    coupon = Coupon(
        id=new_id("cpn"),
        program_id=program_id,
        partner_id=partner.id,
        code=code.strip(),
        code_key=key,
        source=kind.value,
        provider_id=provider,
        active=True,
        created_at=now,
        created_by=actor.id,
    )
    session.add(coupon)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="coupon.create",
        object_type="coupon",
        object_id=coupon.id,
        program_id=program_id,
        after=_snapshot(coupon),
        now=now,
    )
    return coupon


def get_coupon(session: Session, actor: Actor, coupon_id: str) -> Coupon:
    """The coupon, or 404 when it belongs to a program or partner the actor may not see."""
    coupon = session.get(Coupon, coupon_id)
    if coupon is None or not actor.sees(coupon.program_id, coupon.partner_id):
        raise NotFound(f"coupon {coupon_id} not found", field="coupon_id")
    return coupon


def deactivate_coupon(session: Session, *, actor: Actor, coupon_id: str, now: datetime) -> Coupon:
    """The code no longer attributes new customers; customers it already brought stay attributed."""
    coupon = get_coupon(session, actor, coupon_id)
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("deactivating coupons needs the 'write' scope of a staff user or API key")
    if not coupon.active:
        return coupon
    before = _snapshot(coupon)
    coupon.active = False
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="coupon.deactivate",
        object_type="coupon",
        object_id=coupon.id,
        program_id=coupon.program_id,
        before=before,
        after=_snapshot(coupon),
        now=now,
    )
    return coupon


def list_coupons(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Coupon]:
    stmt = select(Coupon)
    if actor.program_id is not None:
        stmt = stmt.where(Coupon.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(Coupon.partner_id == actor.partner_id)
    if program_id:
        stmt = stmt.where(Coupon.program_id == program_id)
    if partner_id:
        stmt = stmt.where(Coupon.partner_id == partner_id)
    return paginate(session, stmt, Coupon.id, cursor=cursor, limit=limit)


def coupon_for(
    session: Session,
    program_id: str,
    *,
    code: str | None = None,
    source: str | None = None,
    provider_id: str | None = None,
) -> Coupon | None:
    """The coupon a checkout used: by provider id (Shopify discount / Stripe promotion code) when given,
    else by code, case-insensitively. Inactive coupons are returned too: the caller decides (attribution
    ignores them)."""
    if source is not None and provider_id is not None:
        found = session.scalar(
            select(Coupon).where(
                Coupon.program_id == program_id, Coupon.source == source, Coupon.provider_id == provider_id
            )
        )
        if found is not None or code is None:
            return found
    if code is None or not code.strip():
        return None
    return session.scalar(select(Coupon).where(Coupon.program_id == program_id, Coupon.code_key == code_key(code)))
