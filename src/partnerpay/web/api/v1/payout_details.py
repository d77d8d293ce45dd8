"""Payout method and tax profile of a partner: set by staff or API keys (scope write), read back masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound
from partnerpay.partners import payout_details as details
from partnerpay.partners import payout_verification as verification
from partnerpay.partners.service import get_partner
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out
from partnerpay.web.api.v1.common import Caller, need, now, reader

router = APIRouter()


# The shapes below document the API; the checks themselves (and their field-level errors) are in
# partners/validation.py, so the portal's forms and the API refuse the same values the same way.
class BankAddressIn(In):
    """The account holder's address: optional, all or nothing; Wise needs it to pay dollars. The country
    defaults to the account's (the IBAN's, or US); the state is required in the US, Canada and Brazil."""

    address_line1: StrictStr | None = Field(default=None, max_length=100, examples=["1 Main Street"])
    address_city: StrictStr | None = Field(default=None, max_length=60, examples=["Springfield"])
    address_state: StrictStr | None = Field(default=None, max_length=100, examples=["IL"])
    address_postcode: StrictStr | None = Field(default=None, max_length=16, examples=["62704"])
    address_country: StrictStr | None = Field(default=None, max_length=2, examples=["US"])


class SepaIn(BankAddressIn):
    type: Literal["sepa"]
    iban: StrictStr = Field(max_length=64, examples=["DE89 3704 0044 0532 0130 00"])
    bic: StrictStr | None = Field(default=None, max_length=16, description="derived from the IBAN when known")
    account_holder: StrictStr = Field(max_length=200, examples=["Acme Media GmbH"])


class AchIn(BankAddressIn):
    type: Literal["ach"]
    routing_number: StrictStr = Field(examples=["111000025"], description="ABA routing number, checksum verified")
    account_number: StrictStr = Field(examples=["000123456789"], description="4 to 17 digits")
    account_type: Literal["checking", "savings"]
    account_holder: StrictStr = Field(max_length=200)


class PaypalIn(In):
    type: Literal["paypal"]
    email: StrictStr = Field(examples=["payouts@acme.example"])


class StripeConnectIn(In):
    type: Literal["stripe_connect"]
    account_id: StrictStr = Field(examples=["acct_1Nv0FGQ9RKHgCVdK"])


class W9In(In):
    form: Literal["w9"]
    tin: StrictStr = Field(description="SSN, ITIN or EIN", examples=["12-3456789"])
    legal_name: StrictStr = Field(max_length=200)
    address: StrictStr = Field(max_length=500)
    vat_id: StrictStr | None = Field(default=None, description="EU VAT id, format and checksum verified")


class W8benIn(In):
    form: Literal["w8ben"]
    country: StrictStr = Field(description="ISO 3166 alpha-2, not US", examples=["DE"])
    foreign_tin: StrictStr | None = None
    legal_name: StrictStr = Field(max_length=200)
    vat_id: StrictStr | None = Field(default=None, examples=["DE136695976"])


class PayoutMethodOut(Out):
    """Masked: IBAN as "DE89 •••• •••• •••• 3000", account numbers by their last four, email as "j•••@…"."""

    id: str
    partner_id: str
    type: str
    iban: str | None = None
    bic: str | None = None
    bank_name: str | None = None
    account_holder: str | None = None
    routing_number: str | None = None
    account_number: str | None = None
    account_type: str | None = None
    address: str | None = Field(default=None, description='the holder\'s city and country only: "Springfield, US"')
    email: str | None = None
    account_id: str | None = None
    verified: bool
    created_at: datetime
    payout_review_until: datetime | None = Field(description="the next payout waits for review until then")


class TaxProfileOut(Out):
    """Masked: the TIN by its last four; the address only as "on file"."""

    id: str
    partner_id: str
    form: str
    tin: str | None = None
    tin_type: str | None = None
    legal_name: str
    address: str | None = None
    country: str | None = None
    foreign_tin: str | None = None
    vat_id: str | None = None
    valid: bool
    created_at: datetime
    tax_state: Literal["ok", "missing"]


def _one_of(*models: type[In], key: str) -> dict[str, Any]:
    schemas = [m.model_json_schema() for m in models]
    body = {"oneOf": schemas, "discriminator": {"propertyName": key}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box  # type: ignore[no-any-return]


def _json(payload: dict[str, Any]) -> Any:
    return jsonable_encoder(payload)


@router.put(
    "/partners/{partner_id}/payout-method",
    responses={200: {"model": PayoutMethodOut}},
    openapi_extra=_one_of(SepaIn, AchIn, PaypalIn, StripeConnectIn, key="type"),
)
def put_payout_method(
    request: Request, partner_id: str, body: dict[str, Any] = Body(...), actor: Actor = Caller
) -> JSONResponse:
    """Replace the payout method; the old one is kept, the partner is emailed and the next payout is held."""
    need(actor, "write")
    box = _box(request)

    def work(session: Any) -> tuple[int, Any]:
        method = details.set_payout_method(
            session, actor=actor, box=box, partner_id=partner_id, data=body, now=now(request)
        )
        partner = get_partner(session, actor, partner_id)
        return 200, _json(details.masked_payout_method(method, partner))

    # Only a keyed fingerprint of the body is kept for Idempotency-Key, never the bank numbers.
    return idempotency.run(request, actor, {"fingerprint": box.fingerprint(body)}, work)


class VerifyMethodIn(In):
    method_id: StrictStr = Field(description="the method the verifier checked; 409 if it was replaced meanwhile")
    note: StrictStr = Field(max_length=500, examples=["bank letter on file, name matches"])


@router.post("/partners/{partner_id}/payout-method/verify", response_model=PayoutMethodOut)
def verify_payout_method(
    request: Request, partner_id: str, body: VerifyMethodIn, actor: Actor = Caller
) -> JSONResponse:
    """Finance confirms the account is the partner's (not by whoever entered it); runs may require it."""

    def work(session: Any) -> tuple[int, Any]:
        method = verification.verify_payout_method(
            session, actor=actor, partner_id=partner_id, method_id=body.method_id, note=body.note, now=now(request)
        )
        return 200, _json(details.masked_payout_method(method, get_partner(session, actor, partner_id)))

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/partners/{partner_id}/payout-method", response_model=PayoutMethodOut)
def get_payout_method(request: Request, partner_id: str, actor: Actor = Caller) -> JSONResponse:
    with reader(request, actor) as session:
        partner = get_partner(session, actor, partner_id)
        method = details.active_payout_method(session, partner.id)
        if method is None:
            raise NotFound(f"partner {partner.id} has no payout method yet", field="payout_method")
        return JSONResponse(_json(details.masked_payout_method(method, partner)))


@router.put(
    "/partners/{partner_id}/tax-profile",
    responses={200: {"model": TaxProfileOut}},
    openapi_extra=_one_of(W9In, W8benIn, key="form"),
)
def put_tax_profile(
    request: Request, partner_id: str, body: dict[str, Any] = Body(...), actor: Actor = Caller
) -> JSONResponse:
    """Replace the tax profile (W-9 or W-8BEN, optional EU VAT id); stored encrypted."""
    need(actor, "write")
    box = _box(request)

    def work(session: Any) -> tuple[int, Any]:
        profile = details.set_tax_profile(
            session, actor=actor, box=box, partner_id=partner_id, data=body, now=now(request)
        )
        return 200, _json({**details.masked_tax_profile(profile), "tax_state": "ok"})

    return idempotency.run(request, actor, {"fingerprint": box.fingerprint(body)}, work)


@router.get("/partners/{partner_id}/tax-profile", response_model=TaxProfileOut)
def get_tax_profile(request: Request, partner_id: str, actor: Actor = Caller) -> JSONResponse:
    with reader(request, actor) as session:
        partner = get_partner(session, actor, partner_id)
        profile = details.active_tax_profile(session, partner.id)
        if profile is None:
            raise NotFound(f"partner {partner.id} has no tax profile: tax form missing", field="tax_profile")
        state = details.tax_state(session, partner.id)
        return JSONResponse(_json({**details.masked_tax_profile(profile), "tax_state": state}))
