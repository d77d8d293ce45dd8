"""uvicorn's httptools protocol, writing a response's status line and headers together with its body.

ASGI hands a response over in two messages (start, then body), and uvicorn writes each to the socket as
it comes: two send() calls, two TCP segments (the socket has TCP_NODELAY), and the client woken twice,
the first time for headers it cannot use yet. A small response is all of a webhook answer or a redirect,
where the second write cost a tenth of the server's time per request. Here a small write waits until the
next write or the end of the event loop's current round, whichever comes first, and goes out with it.

At most one small write waits, so memory and ordering stay what uvicorn's flow control expects: a large
write, a second write and close() all send what waits first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SMALL = 4096  # bytes: headers, or an answer of their size; anything larger goes out at once


class OneWriteTransport:
    """A transport that holds back one small write until the next write or the loop's next round."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held + bytes(data))
        elif len(data) <= SMALL and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, get_extra_info, pause_reading, set_protocol...) is the transport's own.
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `http` protocol class for `partnerpay serve`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped: Any = OneWriteTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)
