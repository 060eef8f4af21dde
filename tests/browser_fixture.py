"""Real browsers against real servers: a uvicorn server in a thread, and Debian's Chromium driven by Playwright.

A browser test module calls ``require_browser()`` at import, so that without Playwright, uvicorn or
Chromium the module skips, saying what to install, before it builds anything. Screenshots go to
``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("PAPERSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def require_browser(allow_module_level: bool = True):
    """Playwright's sync API, or a skip that says what is missing."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is not installed (pip install playwright)")
    pytest.importorskip("uvicorn")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PAPERSCOPE_CHROMIUM)",
                    allow_module_level=allow_module_level)
    return sync_api


@contextmanager
def served(app, start_timeout_s: float = 30) -> Iterator[str]:
    """The ASGI app served by uvicorn on 127.0.0.1 on a free port, for the length of a ``with`` block; its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium, or a skip that says why it cannot be launched."""
    sync_api = require_browser(allow_module_level=False)
    with sync_api.sync_playwright() as pw:
        try:
            launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a Chromium Playwright cannot drive: say why rather than fail obscurely
            pytest.skip(f"cannot launch {CHROMIUM}: {str(exc).splitlines()[0]}")
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for a test module."""
    with chromium() as launched:
        yield launched


class Watched:
    """A page whose dialogs (alert), console errors (CSP violations, script errors) and failed requests are recorded."""

    def __init__(self, context, timeout_ms: float | None = None):
        self.page = context.new_page()
        if timeout_ms:
            self.page.set_default_timeout(timeout_ms)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)


def shot(page, name: str, full_page: bool = True) -> None:
    """A screenshot in test-artifacts/ for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
