"""The file of a multipart upload (field `file`), shared by every API endpoint that takes one.

A body declared larger than the limit is refused before any of it is read, and the file itself is read no
further than one byte past the limit (kit/uploads.read_at_most). Each endpoint keeps its own limit and
the words of its refusals (they are documented and tested), given as an `UploadRule`; every refusal names
the field `file`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.uploads import read_at_most

FIELD = "file"
FORM_SLACK = 64 * 1024  # multipart boundaries and headers around the file itself

# The 413 to raise: given the body length the client declared, or None when the file itself is over.
TooLarge = Callable[[int | None], PartnerpayError]


@dataclass(frozen=True, slots=True)
class UploadRule:
    """One endpoint's upload: its size limit, its 413, and what to tell a client that sent no file."""

    limit: int
    too_large: TooLarge
    what: str  # "the CSV": "send the CSV as multipart/form-data in a field named file"
    missing: str  # the whole message when the form has no file field
    max_fields: int = 5


@dataclass(frozen=True, slots=True)
class UploadedFile:
    data: bytes
    filename: str  # as the client sent it ("" when none): callers clean or default it
    content_type: str  # as declared ("" when none): never trusted for what the bytes are


def upload_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that takes one file in the multipart field `file`."""
    file = {"type": "string", "format": "binary", "description": description}
    schema = {"type": "object", "required": [FIELD], "properties": {FIELD: file}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def check_declared_length(request: Request, rule: UploadRule) -> None:
    """A body declared larger than the limit (plus the form around the file) is refused unread."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > rule.limit + FORM_SLACK:
        raise rule.too_large(int(length))


async def read_file(upload: UploadFile, limit: int, refuse: Callable[[], Exception]) -> bytes:
    """An uploaded file's bytes, refused past `limit`; off the event loop, as a large one is on disk."""
    return await run_in_threadpool(read_at_most, upload.file, limit, refuse)


async def read_form_file(request: Request, rule: UploadRule) -> UploadedFile:
    """The multipart field `file`: 413 past the limit, 422 (field `file`) when the body is not a form with it."""
    check_declared_length(request, rule)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationError(f"send {rule.what} as multipart/form-data in a field named file", field=FIELD)
    form = await request.form(max_files=1, max_fields=rule.max_fields)
    try:
        upload = form.get(FIELD)
        if not isinstance(upload, UploadFile):
            raise ValidationError(rule.missing, field=FIELD)
        data = await read_file(upload, rule.limit, lambda: rule.too_large(None))
        return UploadedFile(data, upload.filename or "", upload.content_type or "")
    finally:
        await form.close()
