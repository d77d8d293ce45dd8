"""Stripe Connect transfers: one `POST /v1/transfers` per payout, with an `Idempotency-Key` header.

Wire format (PROVIDERS.md §2, docs.stripe.com/api/transfers/create, /api/idempotent_requests): form-encoded
`amount` (minor units), `currency` (lower case), `destination` (`acct_…`), `transfer_group`, `metadata[k]`;
`Authorization: Bearer sk_…`. Stripe saves the first answer for a key (success or failure) and replays it
with `Idempotent-Replayed: true`, so a send that lost its answer asks again with the same key and gets the
original transfer: the partner is paid once. 409 (a concurrent request with the key), 429 and 5xx, and a
timeout or a broken connection, leave the outcome unknown: `retryable`, and retried with the same key.
The API key is sent in a header and never logged or put in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from partnerpay.kit.errors import PartnerpayError

DEFAULT_BASE_URL = "https://api.stripe.com"
RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


class StripeTransferError(PartnerpayError):
    """Stripe refused the transfer (`retryable` False: the payout failed, `code` says why, e.g.
    balance_insufficient) or its outcome is unknown (`retryable` True: ask again with the same key)."""

    code = "stripe_transfer_error"
    status = 502

    def __init__(self, message: str, *, retryable: bool, stripe_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.stripe_code = stripe_code


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    amount: int
    currency: str
    destination: str
    replayed: bool


class StripeConnectClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise StripeTransferError("no Stripe api_key is set for the program", retryable=False)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "partnerpay-payouts"},
        )

    def __enter__(self) -> StripeConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create_transfer(
        self,
        *,
        amount: int,
        currency: str,
        destination: str,
        idempotency_key: str,
        transfer_group: str,
        metadata: dict[str, str],
    ) -> Transfer:
        """Move `amount` (minor units) to the connected account; the same key always means the same transfer."""
        form: dict[str, str] = {
            "amount": str(amount),
            "currency": currency.lower(),
            "destination": destination,
            "transfer_group": transfer_group,
            **{f"metadata[{k}]": v for k, v in metadata.items()},
        }
        try:
            response = self._http.post("/v1/transfers", data=form, headers={"Idempotency-Key": idempotency_key})
        except httpx.TimeoutException:
            raise StripeTransferError(
                "Stripe did not answer in time; the transfer may or may not exist, so it is asked again with the "
                "same Idempotency-Key",
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            raise StripeTransferError(f"could not reach Stripe ({type(exc).__name__})", retryable=True) from None
        body = _json(response)
        if response.status_code == 200:
            return Transfer(
                id=str(body["id"]),
                amount=int(body["amount"]),
                currency=str(body["currency"]).upper(),
                destination=str(body["destination"]),
                replayed=response.headers.get("Idempotent-Replayed") == "true",
            )
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        message = str(error.get("message") or f"HTTP {response.status_code}")
        code = error.get("code")
        retryable = response.status_code in RETRYABLE_STATUSES or response.headers.get("Stripe-Should-Retry") == "true"
        raise StripeTransferError(
            f"Stripe refused the transfer: {message}" + (f" ({code})" if code else ""),
            retryable=retryable,
            stripe_code=str(code) if code else None,
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
