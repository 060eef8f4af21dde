"""The web app under a real uvicorn server in a thread, on a free port of 127.0.0.1, configured as
``paperscope serve`` configures it; it records the errors the app and uvicorn log."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import httpx
import uvicorn

from paperscope.limits import current

PASSWORD = "correct horse battery"


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                h11_max_incomplete_event_size=current().request_head_bytes)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.logged: list[str] = []
        self.recorder = ErrorRecorder(self.logged)

    def __enter__(self) -> "LiveServer":
        for name in ("paperscope", "uvicorn.error"):
            logging.getLogger(name).addHandler(self.recorder)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        for name in ("paperscope", "uvicorn.error"):
            logging.getLogger(name).removeHandler(self.recorder)
        self.sock.close()
        self.app.state.catalog.close()


class ErrorRecorder(logging.Handler):
    """Keeps every error logged while the server runs (a stack trace is a bug)."""

    def __init__(self, sink: list[str]):
        super().__init__(level=logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


def sign_in(base_url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers of a browser signed in through the real form: its cookies and the session's CSRF token."""
    with httpx.Client(base_url=base_url, timeout=120) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        done = client.post("/login", data={"username": username, "password": password, "csrf": token, "next": "/"})
        assert done.status_code in (200, 303), done.text[:300]
        client.get("/")  # the session's CSRF token comes back as the csrf cookie
        cookies = dict(client.cookies)
    assert "paperscope_session" in cookies
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "X-CSRF-Token": cookies["csrf"]}
