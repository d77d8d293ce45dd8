"""Errors a user can act on: each has a stable code, an HTTP status and, where it applies, a field."""

from __future__ import annotations

from typing import Any


class PartnerpayError(Exception):
    """Base of every domain error; the API renders it as {"error": {code, message, field}}."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class ValidationError(PartnerpayError):
    code = "validation_error"
    status = 422


class NotFound(PartnerpayError):
    """Also used for objects of another program or partner: they do not exist for the caller."""

    code = "not_found"
    status = 404


class Conflict(PartnerpayError):
    code = "conflict"
    status = 409


class ConcurrentWrite(Conflict):
    """A unique key taken by another writer between our check and our commit: nothing was saved."""

    code = "concurrent_write"


class Forbidden(PartnerpayError):
    code = "forbidden"
    status = 403


class Unauthorized(PartnerpayError):
    code = "unauthorized"
    status = 401


class InvalidTransition(Conflict):
    code = "invalid_transition"


class UnbalancedEntry(PartnerpayError):
    """A ledger posting whose debits and credits differ: refused, never stored."""

    code = "unbalanced_entry"
    status = 422


class RateLimited(PartnerpayError):
    code = "rate_limited"
    status = 429
