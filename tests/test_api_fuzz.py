"""API fuzzing: schemathesis against the running server's OpenAPI schema, every operation, with every
check (no 5xx, every status and body as documented, schema-valid requests accepted, invalid ones
refused, the Allow header on 405, ...).

The real web app runs under uvicorn on 127.0.0.1 over the bundled demo catalogue (the 687 ICLR 2020
papers and their sessions, in a fresh SQLite file), and ``st run`` fuzzes it from a separate
process: on the laptop (no accounts), on a server nobody is signed in to, and on a server signed in
as an administrator (a session cookie and its CSRF header, as a browser has them). Real paper ids,
authors, venues, sessions and schedule keys are mixed into the generated values, so that requests
reach the code behind the 404s.

CI runs ``PAPERSCOPE_FUZZ_EXAMPLES`` (default 5) examples per operation and phase; the full run:

    PAPERSCOPE_FUZZ_EXAMPLES=100 .venv/bin/python -m pytest -q -s tests/test_api_fuzz.py

Each run prints its figures (operations, test cases, failures) and keeps schemathesis' JSON report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")
pytest.importorskip("uvicorn")
pytest.importorskip("argon2")

import httpx  # noqa: E402
from live_server import PASSWORD, LiveServer, sign_in  # noqa: E402

from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.ingest.pipeline import ingest_targets  # noqa: E402
from paperscope.model import ImportOptions  # noqa: E402
from paperscope.web.app import create_app  # noqa: E402

DEMO_SITE = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
EXAMPLES = int(os.environ.get("PAPERSCOPE_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("PAPERSCOPE_FUZZ_SEED", "20261128"))
ST = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    """The demo catalogue, ingested once; each test fuzzes a copy of it."""
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    catalog = Catalog.open(str(db))
    run = ingest_targets(catalog, [str(DEMO_SITE)], ImportOptions(venue="ICLR", year=2020))
    assert run.anything_read, run.problem_lines()
    catalog.close()
    return db


@pytest.fixture
def demo_db(demo_template, tmp_path) -> Path:
    db = tmp_path / "demo.sqlite"
    shutil.copy(demo_template, db)
    return db


# ------------------------------------------------------------------------------------------- the run
def known_values(db: Path) -> dict[str, list]:
    """Real values of the demo catalogue, mixed into the generated parameters."""
    from paperscope.schedule import load_program

    catalog = Catalog.open(str(db))
    try:
        papers = list(catalog.iter_papers())
        program = load_program(catalog, "ICLR", 2020)
        keys = [s.key for s in program.sessions[:20]] + [e.key for s in program.sessions[:20] for e in s.entries[:3]]
        return {
            "papers": [p["id"] for p in papers[:200]],
            "authors": sorted({a for p in papers[:100] for a in p.get("authors") or []})[:200],
            "sessions": sorted({s["name"] for s in catalog.sessions()})[:100],
            "venues": ["ICLR"],
            "years": [2020],
            "keys": keys,
        }
    finally:
        catalog.close()


BINDINGS = {  # parameter -> (dictionary, how often a real value is used)
    "path.paper_id": ("papers", 0.6), "body.paper_id": ("papers", 0.6), "query.ids": ("papers", 0.3),
    "path.name": ("authors", 0.6), "query.name": ("sessions", 0.6),
    "path.venue": ("venues", 0.6), "query.venue": ("venues", 0.6), "body.venue": ("venues", 0.6),
    "body.year": ("years", 0.6), "body.key": ("keys", 0.6),
}


def write_config(path: Path, values: dict[str, list]) -> Path:
    lines = []
    for name, items in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(items, ensure_ascii=False)}", ""]
    lines.append("[parameters]")
    for key, (dictionary, probability) in BINDINGS.items():
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = {probability} }}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fuzz(server: LiveServer, work: Path, values: dict[str, list], headers: dict[str, str] | None = None,
         reader: dict[str, str] | None = None) -> dict:
    """``st run`` over every operation of the server's schema with every check; returns its JSON report.

    ``headers`` go with every request; ``reader`` are the headers that may read the schema (a private
    server shows it only to its users)."""
    if ST is None:
        pytest.skip("the schemathesis command (st) is not installed")
    config = write_config(work / "schemathesis.toml", values)
    schema = work / "openapi.json"
    schema.write_bytes(httpx.get(f"{server.url}/openapi.json", headers=reader or headers or {}, timeout=120)
                       .raise_for_status().content)
    report_dir = work / "schemathesis-report"
    command = [ST, "--config-file", str(config), "run", str(schema), "--url", server.url, "--checks", "all",
               "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1", "--request-timeout", "150",
               # a request that hangs fails; how fast the rest answer is for `paperscope bench web`, not a test
               "--max-response-time", "120",
               "--report", "json", "--report-dir", str(report_dir), "--no-color"]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=work)
    (work / "st-output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    reports = sorted(report_dir.glob("*.json"))
    assert reports, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(reports[-1].read_text())
    print(f"\nschemathesis: {figures(report)}")
    assert done.returncode == 0 and not report["failures"] and not report["errors"], failures_of(done.stdout)
    assert report["operations"]["tested"] == report["operations"]["total"]
    assert not server.logged, "\n".join(server.logged)
    return report


def failures_of(output: str, limit: int = 30_000) -> str:
    """The failures section of schemathesis' output (each with a curl command that reproduces it)."""
    start = output.find("FAILURES")
    return output[start if start >= 0 else 0:][:limit]


def figures(report: dict) -> str:
    cases = report["test_cases"]
    ops = report["operations"]
    return (f"{ops['tested']}/{ops['total']} operations, {cases['generated']} test cases, "
            f"{cases['with_failures']} with failures ({cases['unique_failures']} unique), {cases['errored']} errored, "
            f"{report['running_time']:.0f} s, {EXAMPLES} examples per operation, seed {report['seed']}")


# ------------------------------------------------------------------------------------------- tests
def test_the_laptop_api_survives_fuzzing(demo_db, tmp_path):
    values = known_values(demo_db)
    with LiveServer(create_app(str(demo_db), accounts=False)) as server:
        fuzz(server, tmp_path, values)


def test_a_server_refuses_every_operation_to_strangers_as_documented(demo_db, tmp_path):
    values = known_values(demo_db)
    app = create_app(str(demo_db), accounts=True)
    app.state.accounts.create_user("alice", PASSWORD, "alice@example.org", is_admin=True)
    with LiveServer(app) as server:
        report = fuzz(server, tmp_path, values, reader=sign_in(server.url, "alice"))
    assert report["test_cases"]["generated"] > 0


def test_a_signed_in_administrator_survives_fuzzing(demo_db, tmp_path):
    values = known_values(demo_db)
    app = create_app(str(demo_db), accounts=True)
    app.state.accounts.create_user("alice", PASSWORD, "alice@example.org", is_admin=True)
    with LiveServer(app) as server:
        headers = sign_in(server.url, "alice")
        fuzz(server, tmp_path, values, headers)
        with httpx.Client(base_url=server.url, headers=headers) as client:
            assert client.get("/api/account").json()["user"]["username"] == "alice"  # still signed in at the end
