"""The partner's profile in the portal: company data, payout method (masked) and tax form.

Changing the payout method or the tax form asks for the logged-in user's password again: a stolen
session alone must not be enough to redirect the money. Bank numbers and tax ids are never echoed
back into a form, not even after an error; the error shows them masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners import members
from partnerpay.partners import payout_details as details
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.partners.validation import (
    PAYOUT_TYPE_LABELS,
    SENSITIVE_FIELDS,
    TAX_FORM_LABELS,
    PayoutType,
    TaxForm,
    describe_masked,
)
from partnerpay.programs.models import Program
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, login_limiter, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
PROFILE = "/portal/profile"
PAYOUT_FORM = "/portal/profile/payout-method"
TAX_FORM = "/portal/profile/tax-form"
MEMBERS = "/portal/profile/members"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # text | email | select
    hint: str | None = None
    required: bool = True
    options: tuple[str, ...] = ()


HOLDER = FormField("account_holder", "Account holder", hint="the name the bank account is held in")
# The holder's address: optional, but some transfers (Wise in dollars, partners/bank_address.py) need it.
ADDRESS = [
    FormField("address_line1", "Street address (optional)", hint="needed for payments in US dollars", required=False),
    FormField("address_city", "City", required=False),
    FormField("address_state", "State", hint="two letters, e.g. IL; in the US, Canada and Brazil", required=False),
    FormField("address_postcode", "ZIP or postcode", required=False),
]
PAYOUT_FIELDS: dict[str, list[FormField]] = {
    PayoutType.SEPA: [
        FormField("iban", "IBAN", hint="as on your bank statement; spaces are fine"),
        FormField("bic", "BIC (optional)", hint="filled in from the IBAN when we know your bank", required=False),
        HOLDER,
        *ADDRESS,
        FormField("address_country", "Country", hint="two letters; the IBAN's country if left empty", required=False),
    ],
    PayoutType.ACH: [
        FormField("routing_number", "Routing number (ABA)", hint="9 digits, printed at the bottom left of a check"),
        FormField("account_number", "Account number", hint="4 to 17 digits"),
        FormField("account_type", "Account type", kind="select", options=("checking", "savings")),
        HOLDER,
        *ADDRESS,
    ],
    PayoutType.PAYPAL: [FormField("email", "PayPal email", kind="email")],
    PayoutType.STRIPE_CONNECT: [FormField("account_id", "Stripe account id", hint="starts with acct_")],
}
VAT = FormField("vat_id", "EU VAT id (optional)", hint="with its country code, e.g. FR40303265045", required=False)
TAX_FIELDS: dict[str, list[FormField]] = {
    TaxForm.W9: [
        FormField("tin", "Taxpayer identification number", hint="your SSN or ITIN, or your company's EIN"),
        FormField("legal_name", "Legal name", hint="as shown on your income tax return"),
        FormField("address", "Address", hint="street, city, state and ZIP code"),
        VAT,
    ],
    TaxForm.W8BEN: [
        FormField("country", "Country of residence", hint="two letters, e.g. DE for Germany"),
        FormField("legal_name", "Legal name", hint="of the person or company receiving the payments"),
        FormField("foreign_tin", "Tax id in your country (optional)", required=False),
        VAT,
    ],
}
ALL_FIELDS = sorted({f.name for fields in [*PAYOUT_FIELDS.values(), *TAX_FIELDS.values()] for f in fields})


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


def _partner(session: Any, me: Actor) -> tuple[Partner, Program]:
    assert me.partner_id is not None
    partner = session.get(Partner, me.partner_id)
    assert partner is not None
    program = session.get(Program, partner.program_id)
    assert program is not None
    return partner, program


@router.get(PROFILE)
def profile(request: Request, me: Actor = PartnerUserActor) -> Response:
    return _profile_page(request, me)


def _profile_page(
    request: Request,
    me: Actor,
    *,
    invite_email: str = "",
    invite_error: str | None = None,
    alert: str | None = None,
    status: int = 200,
) -> Response:
    at = now(request)
    with reading(request) as session:
        partner, program = _partner(session, me)
        method = details.active_payout_method(session, partner.id)
        tax = details.active_tax_profile(session, partner.id)
        history = [m for m in details.payout_method_history(session, partner.id) if not m.active]
        users = list(session.scalars(select(PartnerUser).where(PartnerUser.partner_id == partner.id)))
        context = {
            "area": "portal",
            "page": "profile",
            "me": me,
            "partner": partner,
            "program": program,
            "users": users,
            "can_manage": members.may_manage_members(session, me, partner.id),
            "owners": sum(1 for u in users if u.role == members.OWNER),
            "invite_email": invite_email,
            "invite_error": invite_error,
            "members_alert": alert,
            "method": details.masked_payout_method(method, partner) if method else None,
            "method_label": PAYOUT_TYPE_LABELS.get(PayoutType(method.type)) if method else None,
            "held": partner.payout_review_until is not None and partner.payout_review_until > at,
            "history": [(m, describe_masked(m.type, m.masked)) for m in history],
            "tax": details.masked_tax_profile(tax) if tax else None,
            "tax_label": TAX_FORM_LABELS.get(TaxForm(tax.form)) if tax else None,
            "tax_state": details.tax_state(session, partner.id),
            "payout_types": PAYOUT_TYPE_LABELS,
            "tax_forms": TAX_FORM_LABELS,
        }
    return render(request, "portal/profile.html", context, status_code=status)


def _form_page(
    request: Request,
    me: Actor,
    *,
    what: str,
    choice: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
) -> Response:
    payout = what == "payout"
    with reading(request) as session:
        partner, program = _partner(session, me)
    # Sensitive values are never sent back, even the ones the partner just typed.
    shown = {k: v for k, v in (values or {}).items() if k not in SENSITIVE_FIELDS}
    context = {
        "area": "portal",
        "page": "profile",
        "me": me,
        "partner": partner,
        "program": program,
        "payout": payout,
        "choice": choice,
        "choices": PAYOUT_TYPE_LABELS if payout else TAX_FORM_LABELS,
        "fields": (PAYOUT_FIELDS if payout else TAX_FIELDS)[choice],
        "action": PAYOUT_FORM if payout else TAX_FORM,
        "values": shown,
        "errors": errors or {},
        "alert": alert,
    }
    return render(request, "portal/profile_form.html", context, status_code=status)


@router.get(PAYOUT_FORM)
def payout_form(request: Request, me: Actor = PartnerUserActor, type: str = PayoutType.SEPA.value) -> Response:
    choice = type if type in PAYOUT_FIELDS else PayoutType.SEPA.value
    return _form_page(request, me, what="payout", choice=choice)


@router.get(TAX_FORM)
def tax_form(request: Request, me: Actor = PartnerUserActor, form: str = TaxForm.W9.value) -> Response:
    choice = form if form in TAX_FIELDS else TaxForm.W9.value
    return _form_page(request, me, what="tax", choice=choice)


async def _form_values(request: Request, names: list[str]) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name) or "") for name in names}


def _save(request: Request, me: Actor, *, what: str, choice: str, values: dict[str, str], password: str) -> Response:
    assert me.partner_id is not None
    # Counts every attempt and forgets them on success: guessing the password here is as slow as at login.
    limiter_key = f"portal-reauth:{me.id}"
    login_limiter(request).hit(limiter_key, what="password attempts")
    key = "type" if what == "payout" else "form"
    fields = (PAYOUT_FIELDS if what == "payout" else TAX_FIELDS)[choice]
    data = {key: choice, **{f.name: values.get(f.name, "") for f in fields}}
    service = details.set_payout_method if what == "payout" else details.set_tax_profile
    at = now(request)
    try:
        with unit_of_work(factory(request)) as session:
            saved = service(
                session, actor=me, box=_box(request), partner_id=me.partner_id, data=data, now=at, password=password
            )
            masked = dict(saved.masked)
            partner = session.get(Partner, me.partner_id)
            review_until = partner.payout_review_until if partner else None
    except ValidationError as exc:
        names = {f.name for f in fields} | {"password"}
        errors = {exc.field: exc.message} if exc.field is not None and exc.field in names else {}
        alert = None if errors else exc.message
        return _form_page(request, me, what=what, choice=choice, values=values, errors=errors, alert=alert, status=422)
    login_limiter(request).reset(limiter_key)
    if what == "payout":
        until = review_until.strftime("%d %b %Y") if review_until else "the review"
        flash(
            request,
            f"Payout method saved: {describe_masked(choice, masked)}. Your next payout is held for review until "
            f"{until}, and we emailed everyone on your account about the change.",
        )
    else:
        flash(request, f"Tax form {TAX_FORM_LABELS[TaxForm(choice)]} saved. Thank you.")
    return redirect(PROFILE)


@router.post(PAYOUT_FORM)
async def save_payout_method(
    request: Request,
    me: Actor = PartnerUserActor,
    type: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    choice = type if type in PAYOUT_FIELDS else PayoutType.SEPA.value
    values = await _form_values(request, ALL_FIELDS)
    # Hashing the password and writing are blocking work: off the event loop.
    return await run_in_threadpool(_save, request, me, what="payout", choice=choice, values=values, password=password)


@router.post(TAX_FORM)
async def save_tax_profile(
    request: Request,
    me: Actor = PartnerUserActor,
    form: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    choice = form if form in TAX_FIELDS else TaxForm.W9.value
    values = await _form_values(request, ALL_FIELDS)
    return await run_in_threadpool(_save, request, me, what="tax", choice=choice, values=values, password=password)


@router.post(MEMBERS)
def invite_member(
    request: Request,
    me: Actor = PartnerUserActor,
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """An owner invites a colleague: a member login and a link to set its password, sent by email."""
    check_form_csrf(request, csrf_token)
    assert me.partner_id is not None
    try:
        with unit_of_work(factory(request)) as session:
            user, _invitation, _token = members.invite_member(
                session, actor=me, partner_id=me.partner_id, email=email, now=now(request)
            )
            invited = user.email
    except PartnerpayError as exc:
        if exc.field == "email":
            return _profile_page(request, me, invite_email=email, invite_error=exc.message, status=exc.status)
        return _profile_page(request, me, invite_email=email, alert=exc.message, status=exc.status)
    flash(request, f"Invitation sent to {invited}: the link to set a password works for 7 days.")
    return redirect(f"{PROFILE}#team")


@router.post(MEMBERS + "/{user_id}/remove")
def remove_member(
    request: Request,
    user_id: str,
    me: Actor = PartnerUserActor,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """An owner removes a login of the same partner; it stops working at once."""
    check_form_csrf(request, csrf_token)
    assert me.partner_id is not None
    try:
        with unit_of_work(factory(request)) as session:
            members.remove_member(session, actor=me, partner_id=me.partner_id, user_id=user_id, now=now(request))
    except PartnerpayError as exc:
        return _profile_page(request, me, alert=exc.message, status=exc.status)
    flash(request, "The login was removed: it no longer works.")
    return redirect(f"{PROFILE}#team")
