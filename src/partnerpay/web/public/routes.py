"""Public pages: the branded application form per program, and the invitation link that sets a password.

Nobody is logged in here. The form is protected by CSRF, a per-address rate limit and a honeypot
field; a link that cannot be used (expired, used, revoked) gets a page that says why and what to do.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Annotated, Any

import pycountry
from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, RateLimited
from partnerpay.kit.ratelimit import SlidingWindowLimiter
from partnerpay.partners.applications import submit_application
from partnerpay.partners.invitations import accept_invitation, check_invitation
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from partnerpay.programs.schemas import ALWAYS_ASKED, STANDARD_FIELDS
from partnerpay.programs.service import form_config, get_program_by_slug
from partnerpay.programs.terms import needs_acceptance
from partnerpay.web.pages import check_form_csrf, flash, now, reading, redirect, render, start_session
from partnerpay.web.security import factory

router = APIRouter()
HONEYPOT = "homepage"  # a field people never see; bots fill in every field they find
APPLY_LIMIT, APPLY_WINDOW = 5, timedelta(minutes=10)
_limiter_lock = threading.Lock()
COUNTRIES = sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])


def apply_limiter(request: Request) -> SlidingWindowLimiter:
    """One limiter per app, made on first use (5 applications per address per 10 minutes)."""
    state = request.app.state
    with _limiter_lock:
        if getattr(state, "apply_limiter", None) is None:
            state.apply_limiter = SlidingWindowLimiter(limit=APPLY_LIMIT, window=APPLY_WINDOW, clock=state.clock)
    return state.apply_limiter  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def text_color(brand_color: str) -> str:
    """Black or white, whichever reads better on the brand colour (WCAG relative luminance)."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(brand_color[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#111111" if luminance > 0.179 else "#ffffff"  # where both contrasts are equal


def _brand(program: Program) -> dict[str, Any]:
    return {"area": "public", "program": program, "brand_text": text_color(program.brand_color)}


def _no_store(response: Response) -> Response:
    # The invitation token is in the URL: no caching and no Referer to other sites.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- the application form ----------------------------------------------------------------------


def _form_page(
    request: Request,
    program: Program,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        **_brand(program),
        "config": form_config(program),
        "countries": COUNTRIES,
        "values": values or {},
        "errors": errors or {},
        "alert": alert,
        "honeypot": HONEYPOT,
    }
    return render(request, "public/apply.html", context, status_code=status)


@router.get("/apply/{slug}")
def application_form(request: Request, slug: str) -> Response:
    with reading(request) as session:
        program = get_program_by_slug(session, slug)
    if not program.applications_open:
        return render(request, "public/closed.html", _brand(program))
    return _form_page(request, program)


def _values(form: FormData) -> dict[str, str]:
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k not in ("csrf_token", HONEYPOT)}


@router.post("/apply/{slug}")
async def apply(request: Request, slug: str) -> Response:
    # The form's fields depend on the program, so it is read here; the work runs off the event loop.
    form = await request.form()
    return await run_in_threadpool(_apply, request, slug, form)


def _apply(request: Request, slug: str, form: FormData) -> Response:
    values = _values(form)
    with reading(request) as session:
        program = get_program_by_slug(session, slug)
    try:
        apply_limiter(request).hit(f"apply:ip:{client_ip(request)}", what="applications from your address")
    except RateLimited as exc:
        response = _form_page(request, program, values=values, alert=exc.message, status=429)
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response
    token = form.get("csrf_token")
    check_form_csrf(request, token if isinstance(token, str) else None)
    if form.get(HONEYPOT):
        # Looks like success to the bot; nothing is written.
        return redirect(f"/apply/{program.slug}/thanks")
    try:
        with unit_of_work(factory(request)) as session:
            partner = submit_application(
                session, program_id=program.id, data=values, now=now(request), ip=client_ip(request)
            )
            outcome = {"email": partner.email, "status": partner.status, "slug": program.slug}
    except PartnerpayError as exc:
        config = form_config(program)
        fields = {*ALWAYS_ASKED, *STANDARD_FIELDS, *(q.key for q in config.questions)}
        if exc.field in fields:
            return _form_page(request, program, values=values, errors={str(exc.field): exc.message}, status=exc.status)
        return _form_page(request, program, values=values, alert=exc.message, status=exc.status)
    request.session["applied"] = outcome
    # A fresh CSRF token: replaying the same form post is refused instead of applying twice.
    request.session.pop("csrf", None)
    return redirect(f"/apply/{program.slug}/thanks")


@router.get("/apply/{slug}/thanks")
def thanks(request: Request, slug: str) -> Response:
    with reading(request) as session:
        program = get_program_by_slug(session, slug)
    outcome = request.session.pop("applied", None)
    if not isinstance(outcome, dict) or outcome.get("slug") != program.slug:
        outcome = None
    approved = bool(outcome and outcome.get("status") == PartnerStatus.ACTIVE.value)
    return render(request, "public/applied.html", {**_brand(program), "outcome": outcome, "approved": approved})


# --- the invitation link -----------------------------------------------------------------------


def _problem(request: Request, exc: PartnerpayError) -> Response:
    context = {"area": "public", "message": exc.message, "code": exc.code}
    return _no_store(render(request, "public/invite_problem.html", context, status_code=exc.status))


def _password_page(
    request: Request, token: str, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    with reading(request) as session:
        try:
            invitation = check_invitation(session, token=token, now=now(request))
        except PartnerpayError as exc:
            return _problem(request, exc)
        program = session.get(Program, invitation.program_id)
        partner = session.get(Partner, invitation.partner_id)
        assert program is not None and partner is not None
    context = {**_brand(program), "invitation": invitation, "partner": partner, "errors": errors or {}}
    return _no_store(render(request, "public/invite.html", context, status_code=status))


@router.get("/invite/{token}")
def invitation_page(request: Request, token: str) -> Response:
    return _password_page(request, token)


@router.post("/invite/{token}")
def set_password(
    request: Request,
    token: str,
    password: Annotated[str, Form()] = "",
    password_confirm: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    if password != password_confirm:
        return _password_page(request, token, errors={"password_confirm": "The two passwords differ."}, status=422)
    try:
        with unit_of_work(factory(request)) as session:
            user = accept_invitation(session, token=token, password=password, now=now(request))
            user_id, partner_id = user.id, user.partner_id
    except PartnerpayError as exc:
        if exc.field == "password":
            return _password_page(request, token, errors={"password": exc.message}, status=exc.status)
        return _problem(request, exc)
    start_session(request, "partner_user_id", user_id)
    with reading(request) as session:
        terms_due = needs_acceptance(session, partner_id)
    if terms_due is not None:
        flash(request, f"Your password is set. One last step: accept the program terms (version {terms_due.version}).")
        return redirect("/portal/terms")
    flash(request, "Your password is set. Welcome to the partner portal.")
    return redirect("/portal")
