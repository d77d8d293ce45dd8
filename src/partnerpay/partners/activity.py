"""The partner timeline: every service that touches a partner adds a line here, in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from partnerpay.auth.actor import Actor
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerActivity, PartnerImport


def record_activity(
    session: Session,
    *,
    partner_id: str,
    kind: str,
    text: str,
    actor: Actor,
    now: datetime,
    ref_type: str | None = None,
    ref_id: str | None = None,
) -> PartnerActivity:
    item = PartnerActivity(
        id=new_id("act"),
        partner_id=partner_id,
        at=now,
        kind=kind,
        text=text,
        actor_id=actor.id,
        ref_type=ref_type,
        ref_id=ref_id,
    )
    session.add(item)
    return item


def lines_of(partner_id: str) -> Any:
    """The partner's timeline lines as one entity: its activity rows, plus the import line of an imported partner.

    An import stores where each partner came from on the partner row (import_id, import_row) instead of a
    line per partner; the line is put together here, in the same query, so paging and order stay in SQL.
    """
    columns = [c.name for c in PartnerActivity.__table__.columns]
    stored = select(*(PartnerActivity.__table__.c[name] for name in columns)).where(
        PartnerActivity.partner_id == partner_id
    )
    text = (
        literal("Imported from ", String) + PartnerImport.filename + " by " + PartnerImport.created_by_label
        + " (row " + cast(Partner.import_row, String) + ")"
    )  # fmt: skip
    imported = (
        select(
            (literal("act_", String) + func.substr(Partner.id, 5, type_=String)).label("id"),
            Partner.id.label("partner_id"),
            Partner.created_at.label("at"),
            literal("partner.imported", String).label("kind"),
            text.label("text"),
            PartnerImport.created_by.label("actor_id"),
            literal("partner_import", String).label("ref_type"),
            PartnerImport.id.label("ref_id"),
        )
        .join(PartnerImport, PartnerImport.id == Partner.import_id)
        .where(Partner.id == partner_id)
    )
    return aliased(PartnerActivity, union_all(stored, imported).subquery("timeline"))


def timeline(session: Session, partner_id: str, *, limit: int = 200) -> list[PartnerActivity]:
    """Newest first."""
    line = lines_of(partner_id)
    return list(session.scalars(select(line).order_by(line.at.desc(), line.id.desc()).limit(limit)))
