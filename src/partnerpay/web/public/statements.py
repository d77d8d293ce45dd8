"""The public statement check: upload a statement file, read "matches the ledger as of …" or what differs.

Nobody is logged in. The form carries a CSRF token, uploads are limited in size (413) and type (422), and
each address may check a few files a minute (429). A file that is neither an issued statement nor matches
the ledger is told so without details: a made-up file must not read anyone's ledger back.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.ratelimit import SlidingWindowLimiter
from partnerpay.statements.verify import Verification, verify_file
from partnerpay.web.api.v1.statements import check_upload_length, read_statement_upload
from partnerpay.web.pages import check_form_csrf, now, reading, render
from partnerpay.web.public.routes import client_ip

router = APIRouter()
PATH = "/statements/verify"
VERIFY_LIMIT, VERIFY_WINDOW = 10, timedelta(minutes=10)
_limiter_lock = threading.Lock()
UNDISCLOSED = (
    "The file does not match the ledger, and it is not a statement issued here, so the differences are not shown. "
    "Check it with the program team, or download the statement again from the partner portal."
)


def verify_limiter(request: Request) -> SlidingWindowLimiter:
    """One limiter per app, made on first use (10 checks per address per 10 minutes)."""
    state = request.app.state
    with _limiter_lock:
        if getattr(state, "statement_verify_limiter", None) is None:
            state.statement_verify_limiter = SlidingWindowLimiter(
                limit=VERIFY_LIMIT, window=VERIFY_WINDOW, clock=state.clock
            )
    return state.statement_verify_limiter  # type: ignore[no-any-return]


def _page(
    request: Request, *, result: Verification | None = None, error: str | None = None, status: int = 200
) -> Response:
    context = {"area": "public", "result": result, "error": error, "undisclosed": UNDISCLOSED, "action": PATH}
    return render(request, "public/statement_verify.html", context, status_code=status)


@router.get(PATH)
def verify_form(request: Request) -> Response:
    return _page(request)


@router.post(PATH)
async def verify_upload(request: Request) -> Response:
    try:
        check_upload_length(request)
        verify_limiter(request).hit(f"statement-verify:ip:{client_ip(request)}", what="statement checks")
        token = request.headers.get("x-csrf-token")
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=5)
            field = form.get("csrf_token")
            token = field if isinstance(field, str) else token
        check_form_csrf(request, token)
        data = await read_statement_upload(request)  # the parsed form is cached on the request
        result = await run_in_threadpool(_verify, request, data)
    except PartnerpayError as exc:
        response = _page(request, error=exc.message, status=exc.status)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response
    return _page(request, result=result, status=200)


def _verify(request: Request, data: bytes) -> Verification:
    with reading(request) as session:
        return verify_file(session, data, now=now(request))
