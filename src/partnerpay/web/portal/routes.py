"""The partner portal: its own login, and one home page with balances, lines, payouts and notifications.

No portal URL carries a partner id: the partner is always the logged-in user's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.auth.service import authenticate_partner_user
from partnerpay.deals.queries import open_requests
from partnerpay.disputes.queries import for_line_ids as line_disputes
from partnerpay.messaging.queries import partner_unread
from partnerpay.partners.models import Partner
from partnerpay.payouts.settings import carried_over, describe_skip
from partnerpay.programs.models import Program
from partnerpay.programs.terms import needs_acceptance
from partnerpay.web.pages import (
    LoginRequired,
    PageRoute,
    check_form_csrf,
    end_session,
    login_keys,
    login_limiter,
    login_location,
    now,
    reading,
    redirect,
    render,
    safe_next,
    start_session,
)
from partnerpay.web.portal import queries
from partnerpay.web.security import partner_from_session

router = APIRouter(route_class=PageRoute)
LOGIN_PATH = "/portal/login"
HOME = "/portal"
BAD_LOGIN = "That email and password do not match a partner account. Check both and try again."


def require_partner(request: Request) -> Actor:
    with reading(request) as session:
        actor = partner_from_session(request, session)
    if actor is None or actor.partner_id is None:
        raise LoginRequired(login_location(request, LOGIN_PATH))
    return actor


PartnerUserActor = Depends(require_partner)


def _login_page(
    request: Request, *, next_path: str | None, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "login.html",
        {
            "area": "portal",
            "title": "Partner portal login",
            "action": LOGIN_PATH,
            "next": safe_next(next_path, HOME),
            "email": email,
            "error": error,
            "other": ("/login", "Staff? Log in to the console"),
        },
        status_code=status,
    )


@router.get(LOGIN_PATH)
def login_form(request: Request) -> Response:
    with reading(request) as session:
        if partner_from_session(request, session) is not None:
            return redirect(safe_next(request.query_params.get("next"), HOME))
    return _login_page(request, next_path=request.query_params.get("next"))


@router.post(LOGIN_PATH)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    login_limiter(request).hit(*login_keys(request, "portal", email), what="login attempts")
    with reading(request) as session:
        user = authenticate_partner_user(session, email, password) if email.strip() and password else None
    if user is None:
        return _login_page(request, next_path=next, email=email.strip(), error=BAD_LOGIN, status=401)
    start_session(request, "partner_user_id", user.id)
    # The portal only ever leads to portal pages.
    target = safe_next(next, HOME)
    return redirect(target if target == HOME or target.startswith((HOME + "?", HOME + "/")) else HOME)


@router.post("/portal/logout")
def logout(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form_csrf(request, csrf_token)
    end_session(request, "partner_user_id")
    return redirect(LOGIN_PATH)


@router.get(HOME)
def home(request: Request, me: Actor = PartnerUserActor, before: str | None = None) -> Response:
    from partnerpay.web.portal.payouts import payout_overview  # that module imports this one

    assert me.partner_id is not None
    at = now(request)
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        assert program is not None
        lines, older = queries.partner_lines(session, partner.id, at, before=before)
        context = {
            "area": "portal",
            "me": me,
            "partner": partner,
            "program": program,
            "balances": queries.balances(session, partner, program.currency, at),
            # Why the latest payout run left money unpaid (below the minimum, …), as sentences (issue 7 part 2).
            "carried_over": [describe_skip(k) for k in carried_over(session, partner.id, program.id)],
            "lines": lines,
            "older": older,
            "before": before,
            "payouts": queries.payouts(session, partner.id),
            **payout_overview(session, partner.id, program.id, at),  # next payout (issue 7 part 9)
            "notifications": queries.notifications(session, partner.id),
            "terms_due": needs_acceptance(session, partner.id),
            "update_requests": open_requests(session, partner.id),
            # The latest dispute of each line shown: its status replaces the Dispute link (issue 8 part 2).
            "line_disputes": line_disputes(session, partner.id, [v.line.id for v in lines]),
            "unread_messages": partner_unread(session, partner.id),  # messages and announcements (issue 8 part 3)
        }
    return render(request, "portal/home.html", context)
