"""A small Stripe REST client for reading lists (the backfill): cursor pagination and polite retries.

Wire format (PROVIDERS.md §1, docs.stripe.com/api/pagination, /error-low-level, /rate-limits): `GET` with
form-encoded query parameters and `Authorization: Bearer sk_…`; a list answers
`{"object": "list", "data": [...], "has_more": bool, "url": ...}` newest first, and the next page is asked
for with `starting_after=<id of the last object>`. Errors answer `{"error": {"type", "message", "code",
"param"}}`. 429 (rate limit), 409 (lock timeout) and 5xx are worth another try after a pause; Stripe may say
so explicitly with `Stripe-Should-Retry: true|false`, and may send `Retry-After` (seconds).

The API key is sent in a header and never logged or put in an error message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import structlog

from partnerpay.kit.errors import PartnerpayError

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.stripe.com"
PAGE_SIZE = 100  # Stripe's largest page: fewest requests against the rate limit
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited for in a command someone is watching
RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504})

Params = Mapping[str, str | int | Sequence[str]]


class StripeApiError(PartnerpayError):
    """Stripe refused or failed a request; the message says what to change (or to try again later)."""

    code = "stripe_api_error"
    status = 502


class StripeClient:
    """Reads Stripe lists page by page. `sleep` and `jitter` are injectable so tests never wait."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise StripeApiError("no Stripe api_key is set", field="api_key")
        self.max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "partnerpay-backfill"},
        )

    def __enter__(self) -> StripeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def pages(self, path: str, params: Params) -> Iterator[list[dict[str, Any]]]:
        """Every page of the list at `path` (e.g. /v1/invoices), `limit=100`, until Stripe says no more."""
        after: str | None = None
        while True:
            query = _query(params, limit=PAGE_SIZE, starting_after=after)
            body = self.get(path, query)
            data = body.get("data")
            if body.get("object") != "list" or not isinstance(data, list) or not isinstance(body.get("has_more"), bool):
                raise StripeApiError(f"Stripe's answer to GET {path} is not a list object", field="base_url")
            objects = [o for o in data if isinstance(o, dict)]
            yield objects
            last = objects[-1].get("id") if objects else None
            # An empty page claiming more would ask for the same page for ever: stop instead.
            if not body["has_more"] or not isinstance(last, str):
                return
            after = last

    def list_all(self, path: str, params: Params) -> Iterator[dict[str, Any]]:
        """Every object of the list at `path`, across pages."""
        for page in self.pages(path, params):
            yield from page

    def get(self, path: str, query: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """One GET, retried with exponential backoff and jitter on rate limits, server errors and timeouts."""
        attempt = 0
        while True:
            try:
                response = self._http.get(path, params=list(query))
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                if attempt >= self.max_retries:
                    raise StripeApiError(
                        f"Stripe could not be reached for GET {path} after {attempt + 1} tries "
                        f"({type(exc).__name__}); run the backfill again later, it resumes where it stopped",
                        field="base_url",
                    ) from None
                self._pause(path, attempt, None, type(exc).__name__)
                attempt += 1
                continue
            if response.status_code == 200:
                return _json(response, path)
            if not _should_retry(response) or attempt >= self.max_retries:
                raise _refusal(response, path, attempt + 1)
            self._pause(path, attempt, response.headers.get("Retry-After"), str(response.status_code))
            attempt += 1

    def _pause(self, path: str, attempt: int, retry_after: str | None, why: str) -> None:
        wait = backoff(attempt, retry_after, self._jitter())
        log.info("stripe.retry", path=path, reason=why, attempt=attempt + 1, wait_seconds=round(wait, 2))
        self._sleep(wait)


def backoff(attempt: int, retry_after: str | None, jitter: float) -> float:
    """Seconds to wait before try `attempt + 2`: exponential with jitter (half to all of the step, so
    clients rate-limited together spread out), and never less than a sensible Retry-After."""
    step = min(MAX_DELAY, INITIAL_DELAY * 2.0**attempt)
    wait = step * (0.5 + max(0.0, min(jitter, 1.0)) / 2)
    try:
        asked = float(retry_after) if retry_after is not None else None
    except ValueError:
        asked = None  # an HTTP date: the exponential step stands
    if asked is not None and 0 <= asked <= MAX_RETRY_AFTER:
        wait = max(wait, asked)
    return wait


def _query(params: Params, **extra: str | int | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in {**params, **extra}.items():
        if value is None:
            continue
        if isinstance(value, str | int):
            pairs.append((name, str(value)))
        else:
            pairs.extend((name, str(v)) for v in value)  # expand[]=a&expand[]=b
    return pairs


def _should_retry(response: httpx.Response) -> bool:
    # Stripe's own verdict wins over the status code (stripe-python does the same).
    verdict = response.headers.get("Stripe-Should-Retry")
    if verdict == "false":
        return False
    return verdict == "true" or response.status_code in RETRYABLE_STATUSES


def _json(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StripeApiError(f"Stripe's answer to GET {path} is not a JSON object", field="base_url")
    return body


def _refusal(response: httpx.Response, path: str, tries: int) -> StripeApiError:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    error = error if isinstance(error, dict) else {}
    detail = f"{error.get('type') or 'error'}: {error.get('message') or response.reason_phrase}"
    if status == 401:
        # Stripe's message quotes part of the key; ours never does.
        return StripeApiError(
            "Stripe refused the program's Stripe api_key (401 authentication error); set a valid secret key "
            "(sk_live_… or a restricted rk_… key that may read invoices and refunds)",
            field="api_key",
        )
    if status == 403:
        return StripeApiError(f"the Stripe api_key may not read {path} (403 {detail})", field="api_key")
    if status in RETRYABLE_STATUSES or status >= 500:
        return StripeApiError(
            f"Stripe answered {status} to GET {path} {tries} time(s) ({detail}); "
            "run the backfill again later, it resumes where it stopped",
            field="base_url",
        )
    param = error.get("param")
    return StripeApiError(
        f"Stripe refused GET {path} ({status} {detail})",
        field=str(param) if isinstance(param, str) and param else None,
    )
