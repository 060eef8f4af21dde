"""Fetching URLs: a real HTTP server on 127.0.0.1 serves a page, JSON, errors and slow answers."""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from paperscope.ingest.base import SourceError
from paperscope.ingest.fetch import fetch_url, html_to_text

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLE = SHARED / "samples" / "pages" / "icml2022-session-deep-learning-hall-f.txt"

FALLBACK_SAMPLE = """Deep Learning

Hall F

Moderator: Robin Walters

Thu 21 July 12:30 - 12:35 PDT

Convergence of Invariant Graph Networks

Chen Cai · Yusu Wang

Although theoretical properties such as expressive power of $k$-IGN \\citet{maron2018} are known.
"""

PAPERS_JSON = json.dumps([{"title": "A Paper", "author": "A B; C D", "status": "Poster", "track": "main"}],
                         indent=2).encode()


def sample_text() -> str:
    return SAMPLE.read_text(encoding="utf-8") if SAMPLE.is_file() else FALLBACK_SAMPLE


def page_html(text: str) -> bytes:
    """The sample page's text marked up the way a conference site might: blocks, inline tags, junk."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    body = []
    for i, block in enumerate(blocks):
        lines = [html.escape(line) for line in block.split("\n")]
        if i % 3 == 0:
            body.append(f"<div class='block'>\n      {'<br>'.join(lines)}\n    </div>")
        elif i % 3 == 1:
            body.append("<p>" + "<br/>\n".join(f"<span>{line}</span>" for line in lines) + "</p>")
        else:
            body.append("<section><h4>" + "</h4><h4>".join(lines) + "</h4></section>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ICML 2022 session</title>
<style>.block {{ color: red }}</style><script>var tracking = "do not show";</script></head>
<body>
  <nav><a href="/">Home</a> <a href="/schedule">Schedule</a></nav>
  <noscript>Enable JavaScript</noscript>
  <main>
    {''.join(body)}
  </main>
  <div hidden>hidden text</div>
  <script>console.log("nor this")</script>
</body></html>""".encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    page = b""

    def log_message(self, *args):  # keep test output quiet
        pass

    def send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/session.html":
            self.send(200, self.page, "text/html; charset=utf-8")
        elif self.path == "/old-session":
            self.send(302, b"", "text/plain", {"Location": "/session.html"})
        elif self.path == "/papers.json":
            self.send(200, PAPERS_JSON, "application/json")
        elif self.path == "/slow":
            time.sleep(2.0)
            self.send(200, b"late", "text/plain")
        elif self.path == "/big.csv":
            self.send(200, b"title,authors\n" + b"x,y\n" * 50_000, "text/csv")
        elif self.path == "/latin1.html":
            self.send(200, "<html><body><p>Caf\u00e9 Paper</p></body></html>".encode("latin-1"),
                      "text/html; charset=ISO-8859-1")
        elif self.path == "/image.png":
            self.send(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")
        elif self.path == "/error":
            self.send(500, b"boom", "text/plain")
        else:
            self.send(404, b"not here", "text/plain")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that gave up (timeout test) is expected
        pass


@pytest.fixture(scope="module")
def server():
    Handler.page = page_html(sample_text())
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def nonblank(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def test_html_page_becomes_its_text(server):
    url = f"{server}/session.html"
    source = fetch_url(url, timeout=5)
    assert source.locator == url and source.path is None and not source.is_dir
    text = source.text
    assert nonblank(text) == nonblank(sample_text())  # every line, in order, nothing added
    for junk in ("do not show", "nor this", "Home", "Enable JavaScript", "hidden text", "color: red"):
        assert junk not in text
    assert "\\citet{" in text or "\\citet{" not in sample_text()  # LaTeX survives as written


def test_redirect_is_followed_and_the_locator_stays_the_url_given(server):
    source = fetch_url(f"{server}/old-session", timeout=5)
    assert source.locator == f"{server}/old-session"
    assert nonblank(source.text) == nonblank(sample_text())


def test_json_passes_through_unchanged(server):
    source = fetch_url(f"{server}/papers.json", timeout=5)
    assert source.data == PAPERS_JSON
    from paperscope.ingest.paperlists import IMPORTER

    assert IMPORTER.sniff(source) >= 0.6


def test_declared_charset_is_used(server):
    assert fetch_url(f"{server}/latin1.html", timeout=5).text.strip() == "Caf\u00e9 Paper"


def test_http_errors_are_source_errors_with_the_status(server):
    with pytest.raises(SourceError, match=r"HTTP 404 Not Found from http://127\.0\.0\.1:\d+/missing"):
        fetch_url(f"{server}/missing", timeout=5)
    with pytest.raises(SourceError, match="HTTP 500"):
        fetch_url(f"{server}/error", timeout=5)


def test_timeout_is_a_source_error(server):
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"timed out after 0\.5 s"):
        fetch_url(f"{server}/slow", timeout=0.5)
    assert time.monotonic() - started < 1.8


def test_size_limit(server):
    with pytest.raises(SourceError, match="limit is 10 KB"):
        fetch_url(f"{server}/big.csv", timeout=5, max_bytes=10 * 1024)
    assert fetch_url(f"{server}/big.csv", timeout=5).data.startswith(b"title,authors\n")


def test_binary_responses_and_bad_urls_are_refused(server):
    with pytest.raises(SourceError, match="image/png"):
        fetch_url(f"{server}/image.png", timeout=5)
    with pytest.raises(SourceError, match="not an http"):
        fetch_url("ftp://example.org/x")


def test_connection_refused_is_a_source_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="could not connect to 127.0.0.1"):
        fetch_url(f"http://127.0.0.1:{port}/", timeout=2)


def test_html_to_text_blocks_cells_and_pre():
    text = html_to_text("<div>One</div><div>Two <b>bold</b>\n  words</div><p>Para</p>"
                        "<table><tr><td>a</td><td>b</td></tr></table><ul><li>x</li><li>y</li></ul>"
                        "<pre>keep\nlines</pre><p>A&amp;B&nbsp;C<br>D</p>")
    assert text == "One\nTwo bold words\n\nPara\n\na\tb\n\nx\ny\n\nkeep\nlines\n\nA&B C\nD\n"
