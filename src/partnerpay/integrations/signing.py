"""What every provider's signature check raises when a delivery is not provably from the provider."""

from __future__ import annotations

from partnerpay.kit.errors import PartnerpayError


class SignatureRefused(PartnerpayError):
    """The delivery is not provably from the provider: 400, nothing stored, counted on the integration."""

    code = "bad_signature"
    status = 400
