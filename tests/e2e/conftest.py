"""Browser tests: the app under uvicorn on a free loopback port, driven by Debian's chromium through Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from partnerpay.web.one_write import OneWriteHttpToolsProtocol

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: FastAPI) -> Iterator[str]:
    """Run the app in a background thread until the generator is closed; yields its base URL."""
    port = free_port()
    # The protocol `partnerpay serve` runs, so every page and asset the browser loads goes through it.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=OneWriteHttpToolsProtocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Debian chromium (never a downloaded browser)."""
    from playwright import sync_api

    executable = shutil.which("chromium")
    if executable is None:
        # Failing, not skipping: a browser test that silently does not run proves nothing.
        pytest.fail("Debian chromium is not installed: `make browser` (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
