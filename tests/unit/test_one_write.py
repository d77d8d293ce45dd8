"""web/one_write.py: a small response leaves uvicorn in one write (status line, headers and body together),
a large one is never held back, and nothing is reordered, lost or written after close."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from partnerpay.web.one_write import SMALL, OneWriteHttpToolsProtocol, OneWriteTransport


class Recording:
    """The transport methods uvicorn's protocol calls, recording every write as it happens."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class TestOneWriteTransport:
    def test_a_small_write_waits_for_the_next_one_and_both_go_out_together(self) -> None:
        async def scenario() -> list[bytes]:
            inner = Recording()
            transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
            transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
            assert inner.writes == [] and transport.get_write_buffer_size() == 19
            transport.write(b"body")
            return inner.writes

        assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody"]

    def test_a_lone_small_write_goes_out_in_the_loops_next_round(self) -> None:
        async def scenario() -> tuple[list[bytes], list[bytes]]:
            inner = Recording()
            transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            before = list(inner.writes)
            await asyncio.sleep(0)
            return before, inner.writes

        before, after = asyncio.run(scenario())
        assert before == [] and after == [b"HTTP/1.1 100 Continue\r\n\r\n"]

    def test_a_large_write_is_never_held_and_keeps_its_place_after_a_held_one(self) -> None:
        large = b"x" * (SMALL + 1)

        async def scenario() -> list[bytes]:
            inner = Recording()
            transport = OneWriteTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
            transport.write(large)
            assert inner.writes == [large]
            transport.write(b"head")
            transport.write(large)
            transport.write(b"tail")
            await asyncio.sleep(0)
            return inner.writes

        assert asyncio.run(scenario()) == [large, b"head" + large, b"tail"]

    def test_close_sends_what_waits_first_and_abort_drops_it(self) -> None:
        async def scenario() -> tuple[Recording, Recording]:
            loop = asyncio.get_running_loop()
            closed, aborted = Recording(), Recording()
            one = OneWriteTransport(closed, loop)  # type: ignore[arg-type]
            one.write(b"last words")
            one.close()
            other = OneWriteTransport(aborted, loop)  # type: ignore[arg-type]
            other.write(b"never sent")
            other.abort()
            await asyncio.sleep(0)  # the scheduled flushes find nothing left to send
            return closed, aborted

        closed, aborted = asyncio.run(scenario())
        assert closed.writes == [b"last words"] and closed.closed
        assert aborted.writes == [] and aborted.aborted


async def _hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def _large(request: Request) -> Response:
    return PlainTextResponse("y" * 20_000)


async def _stream(request: Request) -> Response:
    async def chunks() -> Any:
        for n in range(3):
            yield f"chunk{n};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


APP = Starlette(routes=[Route("/", _hello), Route("/large", _large), Route("/stream", _stream)])


def _serve(*requests: bytes) -> list[bytes]:
    """Feed raw requests to the protocol over a recording transport, as uvicorn's event loop would."""

    async def scenario() -> list[bytes]:
        config = uvicorn.Config(APP, http=OneWriteHttpToolsProtocol, lifespan="off", log_level="warning")
        config.load()
        protocol = OneWriteHttpToolsProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        transport = Recording()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for request in requests:
            protocol.data_received(request)
            for _ in range(50):  # the app runs as a task: give it the loop until the answer is out
                await asyncio.sleep(0)
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(scenario())


GET = b"GET %s HTTP/1.1\r\nHost: testserver\r\n\r\n"


def test_a_small_response_is_one_write_and_keep_alive_still_works() -> None:
    writes = _serve(GET % b"/", GET % b"/")
    assert len(writes) == 2  # one per response, not two
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b"\r\n\r\nhello")
        assert b"content-length: 5\r\n" in write


def test_a_large_response_goes_out_whole_and_in_order() -> None:
    (headers_and_body,) = _serve(GET % b"/large")
    head, _, body = headers_and_body.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"y" * 20_000


def test_a_streamed_response_keeps_every_chunk_in_order() -> None:
    sent = b"".join(_serve(GET % b"/stream"))
    head, _, chunked = sent.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    pieces = [piece for piece in chunked.split(b"\r\n") if piece.startswith(b"chunk")]
    assert pieces == [b"chunk0;", b"chunk1;", b"chunk2;"] and chunked.endswith(b"0\r\n\r\n")
