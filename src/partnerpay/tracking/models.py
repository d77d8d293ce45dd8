"""Referral links, the clicks on them, and coupons mapped to partners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class ReferralLink(Base):
    """A partner's link beyond the default one (their referral code): a campaign, a destination, UTM/sub-id.

    Link codes contain a dot (`{referral_code}.{slug}`) and referral codes never do, so /r/{code} can
    resolve either without the two ever clashing.
    """

    __tablename__ = "referral_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    campaign: Mapped[str | None] = mapped_column(String(100), default=None)
    destination_url: Mapped[str | None] = mapped_column(String(2000), default=None)  # None: the program's site
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # utm_* and sub_id
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))


class Click(Base):
    """One redirect served by /r/{code}; written in buffered batches off the request path.

    An unknown code is still a click (link and partner None) so that traffic is never lost.
    """

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_partner_at", "partner_id", "at"),
        Index("ix_clicks_program_at", "program_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str | None] = mapped_column(ForeignKey("programs.id"), default=None)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), default=None)
    link_id: Mapped[str | None] = mapped_column(ForeignKey("referral_links.id"), default=None)
    code: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip_hash: Mapped[str | None] = mapped_column(String(64), default=None)  # keyed hash, never the address
    ua_class: Mapped[str] = mapped_column(String(16), default="other")  # desktop | mobile | bot | other
    referrer: Mapped[str | None] = mapped_column(String(500), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    destination: Mapped[str] = mapped_column(String(2000))


class Coupon(Base):
    """A discount code that attributes to a partner; unique per program (compared case-insensitively)."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("program_id", "code_key"),
        UniqueConstraint("program_id", "source", "provider_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))  # as the partner shares it
    code_key: Mapped[str] = mapped_column(String(100))  # upper case, trimmed: what lookups compare
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | shopify | stripe
    provider_id: Mapped[str | None] = mapped_column(String(200), default=None)  # promotion code / discount id
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))
