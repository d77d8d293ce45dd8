"""A partner program: currency, hold days, default rate, cookie window, rounding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("hold_days >= 0", name="hold_days_non_negative"),
        CheckConstraint("default_percent_bp >= 0 AND default_percent_bp <= 10000", name="percent_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    hold_days: Mapped[int] = mapped_column(Integer)
    default_percent_bp: Mapped[int] = mapped_column(Integer, default=0)
    cookie_days: Mapped[int] = mapped_column(Integer, default=30)
    rounding: Mapped[str] = mapped_column(String(16), default="half_even")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Public face: /apply/{slug} shows the branded application form.
    slug: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    brand_color: Mapped[str] = mapped_column(String(7), default="#1f2a44")
    logo_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # Which optional fields the form shows and the custom questions it asks (see programs/schemas).
    application_form: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    applications_open: Mapped[bool] = mapped_column(Boolean, default=True)
    default_owner_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # Days a changed payout method holds the partner's next payout for review (fraud path).
    payout_change_hold_days: Mapped[int] = mapped_column(Integer, default=7)
    # Tracking: where links land by default, where unknown codes go, which hosts a link may point at.
    site_url: Mapped[str | None] = mapped_column(String(500), default=None)
    fallback_url: Mapped[str | None] = mapped_column(String(500), default=None)
    allowed_domains: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # Attribution rules: first_click | last_click within cookie_days; a coupon beats a link unless turned
    # off; a customer keeps its partner for attribution_months (None: for ever).
    attribution_model: Mapped[str] = mapped_column(String(16), default="last_click")
    coupon_overrides_link: Mapped[bool] = mapped_column(Boolean, default=True)
    attribution_months: Mapped[int | None] = mapped_column(Integer, default=None)
    # Leads and deals: how long an accepted lead's domain belongs to its partner, the pipeline's stages,
    # when an unanswered update request is reminded, and whether fraud-flagged events wait for review.
    lead_protection_days: Mapped[int] = mapped_column(Integer, default=90)
    deal_stages: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    update_reminder_days: Mapped[int] = mapped_column(Integer, default=3)
    hold_flagged_events: Mapped[bool] = mapped_column(Boolean, default=True)
    # Event types this program records besides the core ones (events.schemas.EventType), e.g. "trial_extended".
    custom_event_types: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class ProgramTerms(Base):
    """A version of the program agreement; a new version asks every partner to accept again."""

    __tablename__ = "program_terms"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body_markdown: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))


class TermsAcceptance(Base):
    __tablename__ = "terms_acceptances"
    __table_args__ = (UniqueConstraint("partner_id", "terms_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    terms_id: Mapped[str] = mapped_column(ForeignKey("program_terms.id"))
    version: Mapped[int] = mapped_column(Integer)
    partner_user_id: Mapped[str | None] = mapped_column(String(40), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
