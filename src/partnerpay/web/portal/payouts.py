"""The partner's payouts in the portal: every payout with its status timeline, and one payout with its lines.

The partner is always the logged-in user's; another partner's payout is a 404, like everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.kit.errors import NotFound
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutLineRelease, PayoutSettings, PayoutStatus
from partnerpay.payouts.timeline import headline, timeline
from partnerpay.programs.models import Program
from partnerpay.tax.credit_notes import credit_note_applies
from partnerpay.tax.invoices import invoice_applies
from partnerpay.web.api.v1.tax import credit_note_response, invoice_response
from partnerpay.web.pages import PageRoute, now, reading, render
from partnerpay.web.portal.routes import PartnerUserActor

router = APIRouter(route_class=PageRoute)
OPEN = (PayoutStatus.DRAFT.value, PayoutStatus.APPROVED.value, PayoutStatus.SENDING.value, PayoutStatus.SENT.value)


def _mine(session: Session, me: Actor, payout_id: str) -> tuple[Payout, PayoutBatch]:
    payout = session.get(Payout, payout_id)
    if payout is None or me.partner_id is None or payout.partner_id != me.partner_id:
        raise NotFound(f"payout {payout_id} not found", field="payout_id")
    batch = session.get(PayoutBatch, payout.batch_id)
    assert batch is not None
    return payout, batch


def payout_overview(session: Session, partner_id: str, program_id: str, at: datetime) -> dict[str, Any]:
    """For the portal home: the payouts under way, the latest one that came back, and the next scheduled run."""
    open_payouts = list(
        session.scalars(
            select(Payout).where(Payout.partner_id == partner_id, Payout.status.in_(OPEN)).order_by(Payout.id)
        )
    )
    settings = session.get(PayoutSettings, program_id)
    next_run = settings.next_run_at if settings is not None and settings.schedule != "manual" else None
    back = session.scalar(
        select(Payout)
        .where(
            Payout.partner_id == partner_id,
            Payout.status.in_([PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value]),
        )
        .order_by(Payout.id.desc())
        .limit(1)
    )
    return {
        "open_payouts": [(p, headline(p)) for p in open_payouts],
        "next_run_at": next_run if next_run is None or next_run >= at else None,
        "last_returned": (back, headline(back)) if back is not None else None,
    }


@router.get("/portal/payouts")
def payouts_page(request: Request, me: Actor = PartnerUserActor) -> Response:
    assert me.partner_id is not None
    at = now(request)
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        assert program is not None
        rows = session.execute(
            select(Payout, PayoutBatch)
            .join(PayoutBatch, PayoutBatch.id == Payout.batch_id)
            .where(Payout.partner_id == partner.id)
            .order_by(Payout.id.desc())
            .limit(100)
        ).all()
        context = {
            "area": "portal",
            "page": "payouts",
            "me": me,
            "partner": partner,
            "program": program,
            "payouts": [(p, b, headline(p), timeline(p, b)) for p, b in rows],
            **payout_overview(session, partner.id, program.id, at),
        }
    return render(request, "portal/payouts.html", context)


@router.get("/portal/payouts/{payout_id}")
def payout_page(request: Request, payout_id: str, me: Actor = PartnerUserActor) -> Response:
    with reading(request) as session:
        payout, batch = _mine(session, me, payout_id)
        partner = session.get(Partner, payout.partner_id)
        program = session.get(Program, payout.program_id)
        if payout.status in (PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value):
            # Its lines went back to the balance; the release rows say which they were.
            lines = list(
                session.scalars(
                    select(CommissionLine)
                    .join(PayoutLineRelease, PayoutLineRelease.line_id == CommissionLine.id)
                    .where(PayoutLineRelease.payout_id == payout.id)
                    .order_by(CommissionLine.id)
                )
            )
        else:
            lines = list(
                session.scalars(
                    select(CommissionLine).where(CommissionLine.payout_id == payout.id).order_by(CommissionLine.id)
                )
            )
        context = {
            "area": "portal",
            "page": "payouts",
            "me": me,
            "partner": partner,
            "program": program,
            "payout": payout,
            "batch": batch,
            "headline": headline(payout),
            "steps": timeline(payout, batch),
            "lines": lines,
            "invoice_available": invoice_applies(session, payout),
            "credit_note_available": credit_note_applies(session, payout),
        }
    return render(request, "portal/payout.html", context)


@router.get("/portal/payouts/{payout_id}/invoice.pdf")
def payout_invoice(request: Request, payout_id: str, me: Actor = PartnerUserActor) -> Response:
    """The self-billing invoice of one of the partner's own payouts (404 for anyone else's)."""
    return invoice_response(request, me, payout_id)


@router.get("/portal/payouts/{payout_id}/credit-note.pdf")
def payout_credit_note(request: Request, payout_id: str, me: Actor = PartnerUserActor) -> Response:
    """The credit note cancelling the invoice of one of the partner's own returned payouts (404 otherwise)."""
    return credit_note_response(request, me, payout_id)
