"""One error shape for the API, readable pages for people."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partnerpay.kit.errors import PartnerpayError

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return {"error": body}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _render(request: Request, status: int, body: dict[str, Any]) -> Response:
    if _wants_json(request):
        return JSONResponse(body, status_code=status)
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "error.html", {"status": status, "error": body["error"]}, status_code=status
    )


def validation_message(err: dict[str, Any]) -> tuple[str | None, str]:
    """The field path and a sentence a person can act on, from one pydantic error."""
    loc = [str(p) for p in err.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where it came from, not part of the field's name (a field may itself be "body")
    field = ".".join(loc) or None
    kind = err.get("type", "")
    value = err.get("input")
    if kind == "int_type" and isinstance(value, float):
        return field, f"{field} must be an integer number of minor units, not {value!r} (floats are refused)"
    if kind == "missing":
        return field, f"{field} is required"
    if kind == "extra_forbidden":
        return field, f"{field} is not a known field"
    return field, f"{field}: {err.get('msg', 'invalid value')}" if field else str(err.get("msg", "invalid request"))


def install(app: FastAPI) -> None:
    @app.exception_handler(PartnerpayError)
    async def _domain(request: Request, exc: PartnerpayError) -> Response:
        response = _render(request, exc.status, {"error": exc.to_dict()})
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        field, message = validation_message(errors[0]) if errors else (None, "invalid request")
        details = [dict(zip(("field", "message"), validation_message(e), strict=True)) for e in errors[1:10]]
        extra = {"details": details} if details else {}
        return _render(request, 422, error_body("validation_error", message, field, **extra))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = _render(request, exc.status_code, error_body(code, message))
        if exc.headers:
            response.headers.update(exc.headers)
        return response
