"""The account holder's postal address on a bank payout method: optional, all or nothing, checked.

Payouts by bank file do not need it, but Wise does for some transfers: "recipient address data is required
only if target currency is USD, PHP, THB or TRY, or if the source currency is USD or AUD"
(docs.wise.com, create a recipient account), with the state for the US, Canada and Brazil. A Wise batch
file without it is rejected at upload with "Missing recipient address", so partnerpay asks for it on the
payout method and refuses the file before finance uploads it (payouts/exporters/batch_files.wise_file).

The address is personal data: it is encrypted with the bank details, and people see only the city and
country ("Springfield, US").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pycountry

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.fields import read_text

# Each field's label and longest text; street, city and postcode are required once any line is given.
LABELS = {
    "address_line1": ("street address", 100),
    "address_city": ("city", 60),
    "address_state": ("state", 100),
    "address_postcode": ("postcode", 16),
    "address_country": ("country", 100),
}
_REQUIRED = ("address_line1", "address_city", "address_postcode")
FIELDS = tuple(LABELS)
# Wise asks for a state (a subdivision code) in these countries only.
STATE_COUNTRIES = frozenset({"US", "CA", "BR"})
_US_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_POSTCODE = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{1,14}[A-Z0-9]$")


def check_bank_address(data: Mapping[str, Any], *, default_country: str) -> dict[str, str] | None:
    """The address fields of a payout method, or None when none is given. Once any line of it is given,
    street, city and postcode are required (and the state where Wise needs one): half an address is
    refused here rather than by Wise at upload."""
    given = {
        name: read_text(data, name, label, max_length=most, required=False) for name, (label, most) in LABELS.items()
    }
    if not any(value for name, value in given.items() if name != "address_country"):
        return None
    for name in _REQUIRED:
        if not given[name]:
            raise ValidationError(f"{LABELS[name][0]} is required", field=name)
    country = _country(given["address_country"] or default_country)
    return {
        "address_line1": given["address_line1"],
        "address_city": given["address_city"],
        "address_state": _state(given["address_state"], country),
        "address_postcode": _postcode(given["address_postcode"], country),
        "address_country": country,
    }


def shown_address(address: Mapping[str, Any] | None) -> str | None:
    """What people see of it: "Springfield, US" (the street and postcode stay encrypted)."""
    if not address:
        return None
    return f"{address['address_city']}, {address['address_country']}"


def address_of(details: Mapping[str, Any]) -> dict[str, str] | None:
    """The address stored in a payout method's clear details, if it has one."""
    if not details.get("address_line1"):
        return None
    return {name: str(details.get(name) or "") for name in FIELDS}


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError(
            f"country must be an ISO 3166 two-letter code such as US, not {value!r}", field="address_country"
        )
    return code


def _postcode(value: str, country: str) -> str:
    code = value.upper()
    if country == "US" and not _US_ZIP.match(code):
        raise ValidationError(
            f"ZIP code must be 5 digits or ZIP+4 (12345-6789), not {value!r}", field="address_postcode"
        )
    if not _POSTCODE.match(code):
        raise ValidationError(f"postcode must be 3 to 16 letters and digits, not {value!r}", field="address_postcode")
    return code


def _state(value: str, country: str) -> str:
    if country not in STATE_COUNTRIES:
        return value
    code = value.strip().upper().removeprefix(f"{country}-")
    if not code:
        raise ValidationError(f"state is required for an address in {country}", field="address_state")
    if pycountry.subdivisions.get(code=f"{country}-{code}") is None:  # type: ignore[no-untyped-call]
        raise ValidationError(
            f"state must be the two-letter code of a state of {country} (such as IL), not {value!r}",
            field="address_state",
        )
    return code
