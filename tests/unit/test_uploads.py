"""The one upload path (kit/uploads.read_at_most, web/uploads.read_form_file) every file endpoint goes through."""

from __future__ import annotations

import io

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.uploads import read_at_most
from partnerpay.web.uploads import FORM_SLACK, UploadRule, read_form_file, upload_body

LIMIT = 10


class TooLarge(PartnerpayError):
    code = "payload_too_large"
    status = 413


class CountingStream(io.BytesIO):
    """Remembers how many bytes were asked of it, to show a large file is not read whole."""

    asked = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.asked += size if size is not None and size >= 0 else len(self.getvalue())
        return super().read(size)


class TestReadAtMost:
    def test_a_file_of_exactly_the_limit_is_read_whole(self) -> None:
        assert read_at_most(io.BytesIO(b"x" * LIMIT), LIMIT, lambda: TooLarge("over")) == b"x" * LIMIT

    def test_one_byte_over_the_limit_is_refused_with_the_callers_error(self) -> None:
        with pytest.raises(TooLarge, match="over 10"):
            read_at_most(io.BytesIO(b"x" * (LIMIT + 1)), LIMIT, lambda: TooLarge(f"over {LIMIT}"))

    def test_a_huge_file_is_read_no_further_than_one_byte_past_the_limit(self) -> None:
        stream = CountingStream(b"x" * 1_000_000)
        with pytest.raises(TooLarge):
            read_at_most(stream, LIMIT, lambda: TooLarge("over"))
        assert stream.asked == LIMIT + 1


def _too_large(declared: int | None) -> TooLarge:
    return TooLarge(f"declared {declared}" if declared is not None else "the file is over", field="file")


RULE = UploadRule(limit=LIMIT, too_large=_too_large, what="the CSV", missing="no file here")


async def _endpoint(request: Request) -> JSONResponse:
    try:
        upload = await read_form_file(request, RULE)
    except PartnerpayError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message, "field": exc.field}, status_code=exc.status)
    return JSONResponse({"data": upload.data.decode(), "filename": upload.filename, "type": upload.content_type})


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=[Route("/upload", _endpoint, methods=["POST"])]))


class TestReadFormFile:
    def test_the_file_its_name_and_declared_type_are_returned(self, client: TestClient) -> None:
        answer = client.post("/upload", files={"file": ("a.csv", b"x" * LIMIT, "text/csv")})
        assert answer.status_code == 200
        assert answer.json() == {"data": "x" * LIMIT, "filename": "a.csv", "type": "text/csv"}

    def test_a_file_over_the_limit_is_the_rules_413_naming_the_field(self, client: TestClient) -> None:
        answer = client.post("/upload", files={"file": ("a.csv", b"x" * (LIMIT + 1), "text/csv")})
        assert answer.status_code == 413
        assert answer.json() == {"code": "payload_too_large", "message": "the file is over", "field": "file"}

    def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(self, client: TestClient) -> None:
        declared = LIMIT + FORM_SLACK + 1
        headers = {"Content-Length": str(declared), "Content-Type": "multipart/form-data; boundary=x"}
        answer = client.post("/upload", content=b"", headers=headers)
        assert answer.status_code == 413 and answer.json()["message"] == f"declared {declared}"

    def test_a_body_that_is_not_a_form_is_422_naming_the_field_and_what_to_send(self, client: TestClient) -> None:
        answer = client.post("/upload", content=b"a,b\n", headers={"Content-Type": "text/csv"})
        assert answer.status_code == 422
        assert answer.json() == {
            "code": "validation_error",
            "message": "send the CSV as multipart/form-data in a field named file",
            "field": "file",
        }

    def test_a_form_without_the_file_is_422_with_the_rules_words(self, client: TestClient) -> None:
        answer = client.post("/upload", files={"other": ("a.csv", b"x", "text/csv")})
        assert answer.status_code == 422
        assert answer.json() == {"code": "validation_error", "message": "no file here", "field": "file"}


class TestUploadBody:
    def test_the_openapi_body_is_a_required_form_whose_file_field_is_required_binary(self) -> None:
        body = upload_body("UTF-8 CSV")["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        assert body["required"] is True and schema["required"] == ["file"]
        assert schema["properties"] == {"file": {"type": "string", "format": "binary", "description": "UTF-8 CSV"}}
