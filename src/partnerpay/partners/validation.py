"""Pure checks of payout methods and tax profiles, and the masks people see instead of the numbers.

Each check returns the clear details (to be encrypted) and their masked form, or raises a
ValidationError that names the field and shows the wrong value masked where it is sensitive:
"IBAN check digits do not match (DE89…3001)". No clear bank number or tax id ever goes into
a message. The rules come from maintained libraries: schwifty (IBAN, BIC), python-stdnum (ABA
routing numbers, US TINs, EU VAT ids) and pycountry (ISO 3166 countries).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pycountry
from schwifty import BIC, IBAN
from schwifty import exceptions as iban_errors
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.us import ein, itin, rtn, ssn

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.fields import read_text as _text
from partnerpay.partners.bank_address import check_bank_address, shown_address
from partnerpay.partners.service import check_email

DOT = "•"
_STRIPPED = re.compile(r"[\s\-./]")
_STRIPE_ACCOUNT = re.compile(r"^acct_[A-Za-z0-9]{1,250}$")
_FOREIGN_TIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./\-]{0,49}$")


class PayoutType(StrEnum):
    SEPA = "sepa"
    ACH = "ach"
    PAYPAL = "paypal"
    STRIPE_CONNECT = "stripe_connect"


class TaxForm(StrEnum):
    W9 = "w9"
    W8BEN = "w8ben"


PAYOUT_TYPE_LABELS = {
    PayoutType.SEPA: "SEPA bank account",
    PayoutType.ACH: "US bank account (ACH)",
    PayoutType.PAYPAL: "PayPal",
    PayoutType.STRIPE_CONNECT: "Stripe Connect",
}
TAX_FORM_LABELS = {TaxForm.W9: "W-9 (US person)", TaxForm.W8BEN: "W-8BEN (non-US person)"}
# Fields whose clear value must never be shown again, not even echoed into a form after an error.
SENSITIVE_FIELDS = frozenset(
    {"iban", "routing_number", "account_number", "email", "account_id", "tin", "foreign_tin", "vat_id", "password"}
)


@dataclass(frozen=True)
class Checked:
    """A valid payout method or tax profile: `details` get encrypted, `masked` is what people see."""

    kind: str
    details: dict[str, Any]
    masked: dict[str, Any]


# --- masks -------------------------------------------------------------------------------------


def _shown(value: str, keep: int) -> int:
    """How many trailing characters a mask may show: never more than half the value."""
    return min(keep, len(value) // 2)


def mask_tail(value: str, keep: int = 4) -> str:
    """ "••••6789": only the last digits, the way a bank statement shows an account."""
    n = _shown(value, keep)
    return DOT * 4 + (value[-n:] if n else "")


def mask_iban(iban: str) -> str:
    """ "DE89 •••• •••• •••• 3000": country, check digits and last four; the length is not shown."""
    return f"{iban[:4]} {DOT * 4} {DOT * 4} {DOT * 4} {iban[-4:]}" if len(iban) >= 12 else mask_tail(iban)


def iban_hint(iban: str) -> str:
    """The short form an error message shows: "DE89…3001"."""
    return f"{iban[:4]}…{iban[-4:]}" if len(iban) >= 12 else "…" + iban[-_shown(iban, 4) :]


def hint(value: str) -> str:
    n = _shown(value, 4)
    return "…" + value[-n:] if n else "…"


def mask_email(email: str) -> str:
    """ "j•••@example.com"."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{DOT * 3}@{domain}"


def mask_prefixed(value: str, prefix_length: int) -> str:
    """A country or type prefix stays readable: "DE•••••5976", "acct_••••9xYz"."""
    prefix, rest = value[:prefix_length], value[prefix_length:]
    n = _shown(rest, 4)
    return prefix + DOT * 5 + (rest[-n:] if n else "")


# --- small field readers -------------------------------------------------------------------------


def _compact(value: str) -> str:
    """People paste numbers with spaces, dashes and dots; the checks work on the bare characters."""
    return _STRIPPED.sub("", value).upper()


# --- bank accounts ---------------------------------------------------------------------------------


def _country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return f"{country.name} ({code})" if country else code


def check_iban(value: str, field: str = "iban") -> IBAN:
    compact = _compact(value)
    shown = iban_hint(compact)
    where = _country_name(compact[:2])
    try:
        # validate_bban: the national check digits too (Germany has none, France and Spain do).
        iban = IBAN(compact, validate_bban=True)
    except iban_errors.InvalidChecksumDigits:
        message = f"IBAN check digits do not match ({shown})"
    except iban_errors.InvalidCountryCode:
        message = f"IBAN must start with the code of a country that uses IBANs; {compact[:2]!r} is not one ({shown})"
    except iban_errors.InvalidLength:
        expected = _iban_length(compact)
        tail = f"; IBANs from {where} have {expected}" if expected else ""
        message = f"IBAN has {len(compact)} characters{tail} ({shown})"
    except iban_errors.InvalidStructure:
        message = f"IBAN does not have the layout of an IBAN from {where}: check for a mistyped character ({shown})"
    except iban_errors.InvalidBBANChecksum:
        message = f"IBAN national check digits do not match: check the account number ({shown})"
    except iban_errors.SchwiftyException:
        message = f"IBAN bank or account part is not valid for {where} ({shown})"
    else:
        if not iban.in_sepa_zone:
            raise ValidationError(
                f"IBAN is from {where}, outside the SEPA zone: choose another payout method ({shown})", field=field
            )
        return iban
    raise ValidationError(message, field=field)


def _iban_length(compact: str) -> int | None:
    try:
        return int(IBAN(compact, allow_invalid=True).spec.iban_length)
    except (iban_errors.SchwiftyException, KeyError, AttributeError):
        return None


def check_bic(value: str, field: str = "bic") -> BIC:
    compact = _compact(value)
    try:
        return BIC(compact, enforce_swift_compliance=True)
    except iban_errors.InvalidLength:
        message = f"BIC must have 8 or 11 characters, not {len(compact)} ({compact})"
    except iban_errors.InvalidCountryCode:
        message = f"BIC country code {compact[4:6]!r} is not a country ({compact})"
    except iban_errors.SchwiftyException:
        message = (
            "BIC must be 4 letters (bank), 2 letters (country), 2 letters or digits (location) "
            f"and optionally 3 more (branch) ({compact})"
        )
    raise ValidationError(message, field=field)


def check_routing_number(value: str, field: str = "routing_number") -> str:
    compact = _compact(value)
    try:
        return str(rtn.validate(compact))
    except stdnum_errors.InvalidLength:
        message = f"routing number must have 9 digits, not {len(compact)} ({compact})"
    except stdnum_errors.InvalidFormat:
        message = f"routing number may contain only digits ({compact})"
    except stdnum_errors.ValidationError:
        message = f"routing number check digit does not match ({compact})"
    raise ValidationError(message, field=field)


def check_account_number(value: str, field: str = "account_number") -> str:
    compact = _compact(value)
    if not compact.isdigit() or not 4 <= len(compact) <= 17:
        raise ValidationError(f"account number must be 4 to 17 digits ({hint(compact)})", field=field)
    return compact


def _sepa(data: Mapping[str, Any]) -> Checked:
    iban = check_iban(_text(data, "iban", "IBAN", max_length=64))
    bic_text = _text(data, "bic", "BIC", max_length=16, required=False)
    # Inside SEPA the BIC is optional; where schwifty knows the bank it derives it from the IBAN.
    bic = check_bic(bic_text) if bic_text else iban.bic
    holder = _text(data, "account_holder", "account holder")
    details = {"iban": str(iban.compact), "bic": str(bic) if bic else None, "account_holder": holder}
    masked = {"iban": mask_iban(str(iban.compact)), "bic": details["bic"], "account_holder": holder}
    if iban.bank_name:
        masked["bank_name"] = str(iban.bank_name)
    return _with_address(data, Checked(PayoutType.SEPA.value, details, masked), country=str(iban.country_code))


def _ach(data: Mapping[str, Any]) -> Checked:
    routing = check_routing_number(_text(data, "routing_number", "routing number", max_length=32))
    account = check_account_number(_text(data, "account_number", "account number", max_length=40))
    account_type = _text(data, "account_type", "account type", max_length=16).lower()
    if account_type not in {"checking", "savings"}:
        raise ValidationError(f"account type must be checking or savings, not {account_type!r}", field="account_type")
    holder = _text(data, "account_holder", "account holder")
    details = {"routing_number": routing, "account_number": account, "account_type": account_type}
    details["account_holder"] = holder
    # A routing number names a bank, not an account: it stays readable for the people paying.
    masked = {"routing_number": routing, "account_number": mask_tail(account), "account_type": account_type}
    masked["account_holder"] = holder
    return _with_address(data, Checked(PayoutType.ACH.value, details, masked), country="US")


def _with_address(data: Mapping[str, Any], checked: Checked, *, country: str) -> Checked:
    """A bank account's optional holder address (bank_address.py), by default in the account's country."""
    address = check_bank_address(data, default_country=country)
    if address is not None:
        checked.details.update(address)
        checked.masked["address"] = shown_address(address)
    return checked


def _paypal(data: Mapping[str, Any]) -> Checked:
    raw = _text(data, "email", "PayPal email", max_length=320)
    try:
        email = check_email(raw, field="email")
    except ValidationError:
        raise ValidationError(f"PayPal email is not a valid email address ({mask_email(raw)})", field="email") from None
    return Checked(PayoutType.PAYPAL.value, {"email": email}, {"email": mask_email(email)})


def _stripe_connect(data: Mapping[str, Any]) -> Checked:
    account_id = _text(data, "account_id", "Stripe account id", max_length=255)
    if not _STRIPE_ACCOUNT.match(account_id):
        raise ValidationError(
            f"Stripe account id must be acct_ followed by letters and digits ({mask_prefixed(account_id, 5)})",
            field="account_id",
        )
    return Checked(
        PayoutType.STRIPE_CONNECT.value, {"account_id": account_id}, {"account_id": mask_prefixed(account_id, 5)}
    )


_PAYOUT_CHECKS: dict[str, Callable[[Mapping[str, Any]], Checked]] = {
    PayoutType.SEPA.value: _sepa,
    PayoutType.ACH.value: _ach,
    PayoutType.PAYPAL.value: _paypal,
    PayoutType.STRIPE_CONNECT.value: _stripe_connect,
}


def check_payout_method(data: Mapping[str, Any]) -> Checked:
    """`{type, ...}` as in the API: sepa {iban, bic?, account_holder}, ach {routing_number, account_number,
    account_type, account_holder}, either with the holder's address_* fields (optional, all or nothing),
    paypal {email}, stripe_connect {account_id}."""
    kind = data.get("type")
    check = _PAYOUT_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise ValidationError(f"type must be one of {', '.join(_PAYOUT_CHECKS)}, not {kind!r}", field="type")
    return check(data)


# --- tax profiles ----------------------------------------------------------------------------------


def check_country(value: str, field: str = "country") -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError(f"country must be an ISO 3166 two-letter code such as DE, not {value!r}", field=field)
    return code


def check_us_tin(value: str, field: str = "tin") -> tuple[str, str]:
    """A W-9 TIN is an SSN, an ITIN or an EIN; returns (digits, which one)."""
    compact = _compact(value)
    if not compact.isdigit() or len(compact) != 9:
        raise ValidationError(
            f"TIN must have 9 digits: an SSN or ITIN (123-45-6789) or an EIN (12-3456789) ({hint(compact)})",
            field=field,
        )
    # "12-3456789" is written as an EIN; plain digits are whichever scheme accepts them first.
    order = [ein, ssn, itin] if re.match(r"^\s*\d{2}-\d{7}\s*$", value) else [ssn, itin, ein]
    for scheme in order:
        try:
            scheme.validate(compact)
        except stdnum_errors.ValidationError:
            continue
        return compact, scheme.__name__.rsplit(".", 1)[-1]
    raise ValidationError(f"TIN is not a valid US SSN, ITIN or EIN ({hint(compact)})", field=field)


def check_vat_id(value: str, field: str = "vat_id") -> str:
    compact = _compact(value)
    shown = f"{compact[:2]}…{compact[-_shown(compact[2:], 4) :]}" if len(compact) > 4 else hint(compact)
    try:
        return str(vat.validate(compact))
    except stdnum_errors.InvalidComponent:
        message = f"VAT id must start with the code of an EU country, such as DE or FR ({shown})"
    except stdnum_errors.InvalidChecksum:
        message = f"VAT id check digits do not match ({shown})"
    except stdnum_errors.ValidationError:
        message = f"VAT id does not have the format of a {_country_name(compact[:2])} VAT id ({shown})"
    raise ValidationError(message, field=field)


def _w9(data: Mapping[str, Any]) -> Checked:
    tin, tin_type = check_us_tin(_text(data, "tin", "TIN", max_length=20))
    legal_name = _text(data, "legal_name", "legal name")
    address = _text(data, "address", "address", max_length=500)
    details = {"tin": tin, "tin_type": tin_type, "legal_name": legal_name, "address": address}
    masked = {"tin": mask_tail(tin), "tin_type": tin_type, "legal_name": legal_name, "address": "on file"}
    return Checked(TaxForm.W9.value, details, masked)


def _w8ben(data: Mapping[str, Any]) -> Checked:
    country = check_country(_text(data, "country", "country", max_length=8))
    if country == "US":
        raise ValidationError("a W-8BEN is for non-US persons; US persons file a W-9 (country US)", field="country")
    legal_name = _text(data, "legal_name", "legal name")
    foreign_tin = _text(data, "foreign_tin", "foreign TIN", max_length=50, required=False)
    if foreign_tin and not _FOREIGN_TIN.match(foreign_tin):
        raise ValidationError(
            f"foreign TIN may contain letters, digits, spaces, dots, dashes and slashes ({hint(foreign_tin)})",
            field="foreign_tin",
        )
    details = {"country": country, "legal_name": legal_name, "foreign_tin": foreign_tin or None}
    masked = {
        "country": country,
        "legal_name": legal_name,
        "foreign_tin": mask_tail(foreign_tin) if foreign_tin else None,
    }
    return Checked(TaxForm.W8BEN.value, details, masked)


def check_tax_profile(data: Mapping[str, Any]) -> Checked:
    """`{form:"w9", tin, legal_name, address}` or `{form:"w8ben", country, foreign_tin?, legal_name}`,
    either with an optional EU `vat_id`."""
    form = data.get("form")
    if form == TaxForm.W9.value:
        checked = _w9(data)
    elif form == TaxForm.W8BEN.value:
        checked = _w8ben(data)
    else:
        raise ValidationError(f"form must be w9 or w8ben, not {form!r}", field="form")
    vat_text = _text(data, "vat_id", "VAT id", max_length=32, required=False)
    vat_id = check_vat_id(vat_text) if vat_text else None
    checked.details["vat_id"] = vat_id
    checked.masked["vat_id"] = mask_prefixed(vat_id, 2) if vat_id else None
    return checked


def describe_masked(kind: str, masked: Mapping[str, Any]) -> str:
    """One line for timelines and emails: "SEPA bank account DE89 •••• •••• •••• 3000"."""
    label = PAYOUT_TYPE_LABELS.get(PayoutType(kind), kind) if kind in _PAYOUT_CHECKS else kind
    shown = masked.get("iban") or masked.get("account_number") or masked.get("email") or masked.get("account_id")
    return f"{label} {shown}" if shown else label
