"""PayPal Payouts: OAuth2 client credentials, batch create, and item statuses by polling.

Wire format (PROVIDERS.md §5; developer.paypal.com/api/rest/authentication, /api/payments.payouts-batch/v1):
- token: `POST /v1/oauth2/token`, Basic `client_id:client_secret`, form `grant_type=client_credentials` →
  `access_token`, `expires_in` (seconds);
- create: `POST /v1/payments/payouts`, Bearer token, JSON `{sender_batch_header: {sender_batch_id,
  email_subject}, items: [{recipient_type, amount: {value: "9.87", currency}, receiver, sender_item_id}]}`,
  at most 15,000 items → `201 {batch_header: {payout_batch_id, batch_status}}`;
- status: `GET /v1/payments/payouts/{payout_batch_id}` → `batch_header.batch_status` and `items[]` with
  `transaction_status`, `payout_item_id`, `payout_item.sender_item_id`, `errors`.

`sender_batch_id` is the idempotency key: PayPal pays a given id once in 30 days. It is also sent as
`PayPal-Request-Id`, so a retry after a lost answer gets the original response; a retry that PayPal
refuses as a duplicate instead is resolved through the error's link to the original batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from partnerpay.kit.errors import PartnerpayError

DEFAULT_BASE_URL = "https://api-m.paypal.com"
MAX_ITEMS = 15_000
PAGE_SIZE = 1000
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Item statuses that end an item; the others (PENDING, UNCLAIMED, ONHOLD, NEW) are polled again.
PAID_STATUSES = frozenset({"SUCCESS"})
FAILED_STATUSES = frozenset({"FAILED", "BLOCKED", "DENIED", "CANCELED"})
RETURNED_STATUSES = frozenset({"RETURNED", "REFUNDED", "REVERSED"})


class PaypalError(PartnerpayError):
    """`retryable`: the outcome is unknown or PayPal is busy (ask again with the same sender_batch_id)."""

    code = "paypal_error"
    status = 502

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class PayoutItem:
    """One recipient of a PayPal payout: `sender_item_id` is our payout id, `value` a decimal string."""

    sender_item_id: str
    receiver: str
    value: str
    currency: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class ItemStatus:
    sender_item_id: str
    payout_item_id: str | None
    transaction_status: str
    reason: str | None


class PaypalPayoutsClient:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise PaypalError("the program's PayPal integration needs client_id and client_secret", retryable=False)
        self._auth = (client_id, client_secret)
        self._monotonic = monotonic
        self._token: tuple[str, float] | None = None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "partnerpay-payouts"},
        )

    def __enter__(self) -> PaypalPayoutsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise PaypalError(
                f"PayPal did not answer {method} {path} in time; asked again later with the same ids",
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            raise PaypalError(f"could not reach PayPal ({type(exc).__name__})", retryable=True) from None

    def token(self) -> str:
        """A bearer token, fetched once and reused until a minute before it expires."""
        if self._token is not None and self._monotonic() < self._token[1]:
            return self._token[0]
        response = self._send("POST", "/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=self._auth)
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            raise PaypalError(
                f"PayPal refused the client credentials: {body.get('error_description') or response.status_code}",
                retryable=response.status_code in RETRYABLE_STATUSES,
            )
        expires = float(body.get("expires_in", 0))
        self._token = (str(body["access_token"]), self._monotonic() + max(expires - 60, 0))
        return self._token[0]

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", **extra}

    def create_batch(self, *, sender_batch_id: str, items: Sequence[PayoutItem], email_subject: str) -> str:
        """Create the payout batch (or find the one this sender_batch_id already made); its payout_batch_id."""
        if not 1 <= len(items) <= MAX_ITEMS:
            raise ValueError(f"a PayPal payout takes 1 to {MAX_ITEMS} items, not {len(items)}")
        body = {
            "sender_batch_header": {"sender_batch_id": sender_batch_id, "email_subject": email_subject[:255]},
            "items": [
                {
                    "recipient_type": "EMAIL",
                    "amount": {"value": i.value, "currency": i.currency},
                    "receiver": i.receiver,
                    "sender_item_id": i.sender_item_id,
                    **({"note": i.note} if i.note else {}),
                }
                for i in items
            ],
        }
        headers = self._headers(**{"PayPal-Request-Id": sender_batch_id, "Content-Type": "application/json"})
        response = self._send("POST", "/v1/payments/payouts", json=body, headers=headers)
        answer = _json(response)
        if response.status_code in (200, 201):
            return str(answer["batch_header"]["payout_batch_id"])
        original = _original_batch(answer)
        if original is not None:
            return original  # a duplicate sender_batch_id: the batch exists, pay nothing again
        raise PaypalError(
            f"PayPal refused the payout batch: {answer.get('name') or response.status_code}: "
            f"{answer.get('message') or ''}".rstrip(": "),
            retryable=response.status_code in RETRYABLE_STATUSES,
        )

    def item_statuses(self, payout_batch_id: str) -> tuple[str, list[ItemStatus]]:
        """(batch_status, every item's status), page by page."""
        statuses: list[ItemStatus] = []
        batch_status = ""
        page = 1
        while True:
            response = self._send(
                "GET",
                f"/v1/payments/payouts/{payout_batch_id}",
                params={"page": page, "page_size": PAGE_SIZE},
                headers=self._headers(),
            )
            body = _json(response)
            if response.status_code != 200:
                raise PaypalError(
                    f"PayPal did not return payout batch {payout_batch_id}: {body.get('name') or response.status_code}",
                    retryable=response.status_code in RETRYABLE_STATUSES or response.status_code == 404,
                )
            batch_status = str(body.get("batch_header", {}).get("batch_status", ""))
            items = body.get("items") or []
            for item in items:
                errors = item.get("errors") or {}
                statuses.append(
                    ItemStatus(
                        sender_item_id=str((item.get("payout_item") or {}).get("sender_item_id", "")),
                        payout_item_id=item.get("payout_item_id"),
                        transaction_status=str(item.get("transaction_status", "")).upper(),
                        reason=(errors.get("message") or errors.get("name")) if isinstance(errors, dict) else None,
                    )
                )
            if len(items) < PAGE_SIZE:
                return batch_status, statuses
            page += 1


def _original_batch(answer: dict[str, Any]) -> str | None:
    """The payout_batch_id a duplicate-sender_batch_id error links to, if the error is that one."""
    text = f"{answer.get('name', '')} {answer.get('message', '')}".upper()
    if "DUPLICATE" not in text and "ALREADY" not in text:
        return None
    for link in answer.get("links") or []:
        href = str(link.get("href", "")) if isinstance(link, dict) else ""
        marker = "/v1/payments/payouts/"
        if marker in href:
            return href.split(marker, 1)[1].split("?", 1)[0].strip("/") or None
    return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
