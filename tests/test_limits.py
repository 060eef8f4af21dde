"""Resource limits on input (``paperscope.limits``), each refusal a clear message: sources over the size
limit (also once decompressed), URL fetches from a server that drips bytes or sends too many, request
bodies and uploads over the limit (declared or chunked), search queries over the length limit on the
CLI, the web page and the API; settings from the environment and the config file.

Real components throughout: files on disk, ``paperscope`` run as a process, local HTTP servers that
misbehave on purpose, and the web app under uvicorn.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from live_server import PASSWORD, LiveServer, sign_in

from paperscope import limits
from paperscope.catalog.store import Catalog
from paperscope.ingest.base import SourceError, read_source
from paperscope.ingest.fetch import fetch_url
from paperscope.model import PaperRecord
from paperscope.web.app import create_app

ONE_MB = 1024 * 1024


def paperscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The ``paperscope`` command, run as a process."""
    return subprocess.run([sys.executable, "-m", "paperscope", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def csv_of(size: int) -> bytes:
    row = b"A Study of Robust Things,Ada Lovelace;Alan Turing,We study robust things.,TestConf,2024\n"
    return b"title,authors,abstract,venue,year\n" + row * (size // len(row) + 1)


@pytest.fixture(autouse=True)
def no_config_file(monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_CONFIG", "/nonexistent/paperscope.toml")   # only what a test sets


# ------------------------------------------------------------------------------------------- settings
def test_defaults_then_the_config_file_then_the_environment(tmp_path, monkeypatch):
    assert limits.current().max_query_chars == 2000 and limits.current().fetch_total_s == 120
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_query_chars = 50\nmax_upload_mb = 2\nfetch_read_s = 0.5\n")
    monkeypatch.setenv("PAPERSCOPE_CONFIG", str(config))
    now = limits.current()
    assert (now.max_query_chars, now.max_upload_bytes, now.fetch_read_s) == (50, 2 * ONE_MB, 0.5)
    monkeypatch.setenv("PAPERSCOPE_MAX_QUERY_CHARS", "80")
    assert limits.current().max_query_chars == 80


def test_a_setting_that_cannot_be_read_stops_every_command_with_one_line(tmp_path):
    done = paperscope("formats", env={"PAPERSCOPE_MAX_UPLOAD_MB": "lots"})
    assert done.returncode == 1 and done.stderr.strip() == "error: PAPERSCOPE_MAX_UPLOAD_MB: 'lots' is not a number of at least 1"
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_query_char = 50\n")
    done = paperscope("formats", env={"PAPERSCOPE_CONFIG": str(config)})
    assert done.returncode == 1 and "unknown setting(s) in [limits]: max_query_char" in done.stderr
    assert str(config) in done.stderr and "Traceback" not in done.stderr


def test_the_limits_command_shows_what_is_in_force():
    done = paperscope("limits", "--json", env={"PAPERSCOPE_FETCH_TOTAL_S": "30"})
    rows = {row["limit"]: row for row in __import__("json").loads(done.stdout)}
    assert rows["fetch_total_s"]["value"] == 30 and rows["fetch_total_s"]["env"] == "PAPERSCOPE_FETCH_TOTAL_S"
    assert rows["max_source_bytes"]["shown"] == "512 MB"


# ------------------------------------------------------------------------------------------- sources
def test_a_file_over_the_source_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "accepted.csv"
    big.write_bytes(csv_of(2 * ONE_MB))
    small = tmp_path / "small.csv"
    small.write_bytes(csv_of(10_000))
    db = tmp_path / "catalogue.sqlite"
    done = paperscope("ingest", "--db", str(db), str(big), str(small), env={"PAPERSCOPE_MAX_SOURCE_MB": "1"})
    assert done.returncode == 0, done.stderr   # the small file landed
    assert f"{big}: the file is 2 MB; the limit is 1 MB (PAPERSCOPE_MAX_SOURCE_MB raises it)" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    done = paperscope("ingest", "--db", str(db), str(big), env={"PAPERSCOPE_MAX_SOURCE_MB": "1"})
    assert done.returncode == 1   # nothing could be read


def test_a_small_gzip_that_expands_past_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_MAX_SOURCE_MB", "1")
    bomb = tmp_path / "papers.csv.gz"
    bomb.write_bytes(gzip.compress(b"title,authors\n" + b" " * (50 * ONE_MB)))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SourceError, match=r"larger than the 1 MB limit once decompressed \(PAPERSCOPE_MAX_SOURCE_MB raises"):
        read_source(bomb)
    fine = tmp_path / "fine.csv.gz"
    fine.write_bytes(gzip.compress(csv_of(500_000)) + gzip.compress(b"Another Paper,Bo Li,Text.,TestConf,2024\n"))
    assert read_source(fine).data.endswith(b"Another Paper,Bo Li,Text.,TestConf,2024\n")   # every gzip member


def test_a_truncated_gzip_keeps_what_decompresses(tmp_path):
    rows = b"".join(f"Paper {i} on {i * 7919 % 10007},Author {i},Abstract {i * 104729},TestConf,2024\n".encode()
                    for i in range(5000))
    whole = gzip.compress(b"title,authors,abstract,venue,year\n" + rows)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    data = read_source(cut).data
    assert data.startswith(b"title,authors") and 1000 < len(data) < len(rows)


# ------------------------------------------------------------------------------------------- URL fetches
class MisbehavingServer:
    """A raw HTTP server on 127.0.0.1: each connection gets ``respond(conn)`` (a real socket)."""

    def __init__(self, respond):
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()

    def __enter__(self) -> "MisbehavingServer":
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.respond(conn, self.stop)
            except OSError:  # the client gave up: that is the point
                pass


def drip_body(conn, stop):
    """Headers at once, then one byte of body every 0.1 s, forever: no single wait is long."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 10000000\r\n\r\ntitle,authors\n")
    while not stop.wait(0.1):
        conn.sendall(b"x")


def drip_headers(conn, stop):
    """The status line and headers themselves, one byte every 0.1 s."""
    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"y" * 10_000:
        if stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def flood(conn, stop):
    """2 MB of CSV, chunked, with no length said in advance."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = csv_of(64 * 1024)
    for _ in range(32):
        conn.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
    conn.sendall(b"0\r\n\r\n")


@pytest.mark.parametrize("respond", [drip_body, drip_headers], ids=["slow body", "slow headers"])
def test_a_slow_drip_server_cannot_hold_a_fetch_past_its_total_time(respond, monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_FETCH_TOTAL_S", "1.5")   # the read timeout (20 s) never fires here
    with MisbehavingServer(respond) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"timed out after 1\.5 s \(the whole fetch; PAPERSCOPE_FETCH_TOTAL_S raises it\)"):
            fetch_url(f"{server.url}/program.csv")
        assert time.monotonic() - started < 10   # 1.5 s and some scheduling, not 20 s per byte


def test_fetch_size_limits_said_or_found(monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_FETCH_MAX_MB", "1")
    with MisbehavingServer(flood) as server:
        with pytest.raises(SourceError, match=r"larger than the 1 MB limit; PAPERSCOPE_FETCH_MAX_MB raises it"):
            fetch_url(f"{server.url}/big.csv")
    with MisbehavingServer(drip_body) as server:   # says 9.5 MB up front: refused before reading it
        with pytest.raises(SourceError, match=r"the response is 9.5 MB; the limit is 1 MB; PAPERSCOPE_FETCH_MAX_MB"):
            fetch_url(f"{server.url}/huge.csv")


def test_ingest_of_a_dripping_url_fails_with_one_line(tmp_path):
    with MisbehavingServer(drip_body) as server:
        url = f"{server.url}/program.csv"
        done = paperscope("ingest", "--db", str(tmp_path / "c.sqlite"), url,
                          env={"PAPERSCOPE_FETCH_TOTAL_S": "1"})
    assert done.returncode == 1
    assert f"{url}: timed out after 1 s (the whole fetch; PAPERSCOPE_FETCH_TOTAL_S raises it)" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------- the web app
@pytest.fixture
def catalogue(tmp_path) -> str:
    db = str(tmp_path / "catalogue.sqlite")
    catalog = Catalog.open(db)
    catalog.ingest("seed.csv", "tabular", "h-seed", [
        PaperRecord(title="Momentum Improves Generalization", authors=["Samy Jelassi"], abstract="Momentum helps.",
                    ids={}, year=2022)])
    catalog.close()
    return db


def chunks_of(data: bytes, size: int = 64 * 1024):
    """A request body with no Content-Length: httpx sends it chunked."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_request_bodies_over_the_limit_are_refused_with_413_said_or_found(catalogue, monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_MAX_BODY_KB", "16")
    body = b'{"paper_id": "' + b"x" * 40_000 + b'"}'
    with LiveServer(create_app(catalogue)) as server, httpx.Client(base_url=server.url) as client:
        said = client.post("/api/library", content=body, headers={"content-type": "application/json"})
        found = client.post("/api/library", content=chunks_of(body, 4096), headers={"content-type": "application/json"})
        small = client.post("/api/library", json={"paper_id": "nope"})
    expected = ("This server takes at most 16 KB in a request body; this one {} "
                "(PAPERSCOPE_MAX_BODY_KB raises the limit).")
    assert said.status_code == 413 and said.json() == {"error": expected.format("is 39 KB"), "status": 413}
    assert found.status_code == 413 and found.json()["error"] == expected.format("is larger than that")
    assert small.status_code == 404   # under the limit the request is read as always
    assert not server.logged


def test_an_upload_over_the_limit_is_refused_before_sign_in_reads_it(catalogue, monkeypatch, tmp_path):
    monkeypatch.setenv("PAPERSCOPE_MAX_UPLOAD_MB", "1")
    app = create_app(catalogue, accounts=True)
    app.state.accounts.create_user("alice", PASSWORD, "alice@example.org", is_admin=True)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as alice:
        alice.headers.update(sign_in(server.url, "alice"))
        files = {"upload": ("accepted.csv", csv_of(2 * ONE_MB), "text/csv")}
        page = alice.post("/admin/ingest", data={"venue": "TestConf"}, files=files, headers={"accept": "text/html"})
        fine = alice.post("/admin/ingest", data={"venue": "TestConf"},
                          files={"upload": ("accepted.csv", csv_of(20_000), "text/csv")}, headers={"accept": "text/html"})
    assert page.status_code == 413 and "text/html" in page.headers["content-type"]
    assert "This server takes at most 1 MB in an upload; this one is 2 MB (PAPERSCOPE_MAX_UPLOAD_MB raises the limit)." in page.text
    assert fine.status_code == 200 and "Ingested" in fine.text
    assert not server.logged


def test_a_query_over_the_length_limit_is_refused_on_the_page_the_api_and_the_cli(catalogue, monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_MAX_QUERY_CHARS", "100")
    long_query = "momentum " * 20
    with LiveServer(create_app(catalogue)) as server, httpx.Client(base_url=server.url) as client:
        page = client.get("/search", params={"q": long_query})
        twin = client.get("/search", params={"q": long_query, "format": "json"})
        api = client.get("/api/search", params={"q": long_query})
        filtered = client.get("/api/search", params={"q": "momentum", "venue": "v" * 101})
        fine = client.get("/api/search", params={"q": "momentum " * 11})
        schema = client.get("/openapi.json").json()
    message = "The query is 180 characters long; the limit is 100 (PAPERSCOPE_MAX_QUERY_CHARS)."
    assert page.status_code == 400 and message in page.text and "<form" in page.text   # with a search box to try again
    assert twin.status_code == 400 and twin.json()["error"].startswith(message)
    assert api.status_code == 400 and "q: String should have at most 100 characters" in api.json()["error"]
    assert filtered.status_code == 400 and "venue" in filtered.json()["error"]
    assert fine.status_code == 200 and fine.json()["total"] == 1
    q = next(p for p in schema["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "q")
    assert q["schema"]["maxLength"] == 100
    done = paperscope("search", "--db", catalogue, long_query, env={"PAPERSCOPE_MAX_QUERY_CHARS": "100"})
    assert done.returncode == 1 and " ".join(done.stderr.split()).startswith(f"error: {message}")


def test_405_names_every_method_of_the_path(catalogue):
    with LiveServer(create_app(catalogue)) as server, httpx.Client(base_url=server.url) as client:
        agenda = client.request("PUT", "/api/agenda")
        resolve = client.request("DELETE", "/api/agenda/resolve")
    assert agenda.status_code == 405 and agenda.headers["allow"] == "GET, POST"
    assert resolve.status_code == 405 and resolve.headers["allow"] == "POST"
