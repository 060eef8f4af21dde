"""PostgreSQL as a real server mode: one schema with SQLite through migrations, vectors in pgvector
behind HNSW, the keyword index kept per catalogue with one writer, several uvicorn workers serving
while an ingest runs, and `paperscope dev-postgres` itself.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from paperscope.catalog import schema as s
from paperscope.catalog.migrations import HEAD, alembic_config, current_revision, run_migrations
from paperscope.catalog.store import Catalog, database_url
from paperscope.cli.bench_web_cmd import stop_server
from paperscope.model import Appearance, PaperRecord

pytest.importorskip("psycopg")


# ------------------------------------------------------------------------------------------- schema
@pytest.fixture
def empty_url(catalogues, tmp_path):
    """An empty database: a new SQLite file, or a PostgreSQL database with nothing in it."""
    url = catalogues.new_url("empty", folder=tmp_path, migrated=False)
    yield url
    catalogues.remove(url)


def _declared_tables() -> set[str]:
    """Every table a module of ``paperscope.catalog`` declares on the shared metadata."""
    import importlib
    import pkgutil

    import paperscope.catalog as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "migrations":
            importlib.import_module(f"paperscope.catalog.{module.name}")
    return set(s.metadata.tables)


def _migrated_tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version", "paper_vectors"}


def _schema_differences(engine, tables: set[str]) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def only(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return (table is None or table.name in tables) and name != "alembic_version"

    with engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SQLAlchemy does not know pgvector's type; paper_vectors is checked apart
        context = MigrationContext.configure(conn, opts={"include_object": only, "compare_type": True})
        return compare_metadata(context, s.metadata)


def test_the_migration_scripts_end_at_head():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_every_migration_gives_the_schema_the_code_declares(empty_url):
    pytest.importorskip("alembic")
    engine = create_engine(database_url(empty_url))
    run_migrations(engine)
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD
    migrated = _migrated_tables(engine)
    declared = _declared_tables()
    assert {"papers", "embeddings", "agenda_items", "users", "login_sessions", "api_tokens"} <= migrated
    assert _schema_differences(engine, migrated) == []
    waiting = sorted(declared - migrated)
    if waiting:  # declared by a module, created by create_all until a migration is written for them
        warnings.warn(f"tables without a migration yet: {', '.join(waiting)} "
                      "(add one in src/paperscope/catalog/migrations/versions/)")
    engine.dispose()


def test_a_new_catalogue_is_made_at_head_and_matches_the_migrations(empty_url):
    catalog = Catalog.open(empty_url)
    with catalog.engine.connect() as conn:
        assert current_revision(conn) == HEAD
    tables = _migrated_tables(catalog.engine)
    assert _schema_differences(catalog.engine, tables) == []
    if not catalog.is_sqlite:
        with catalog.engine.connect() as conn:
            index = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'paper_vectors' "
                                      "AND indexdef LIKE '%hnsw%'")).scalar()
            column = conn.execute(text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                       "WHERE attrelid = 'paper_vectors'::regclass AND attname = 'embedding'")).scalar()
        assert "vector_cosine_ops" in index and column == "vector(384)"
    catalog.close()


def test_a_catalogue_made_before_migrations_is_upgraded_in_place(empty_url):
    pytest.importorskip("alembic")
    engine = create_engine(database_url(empty_url))
    core = [s.papers, s.authors, s.paper_authors, s.sources, s.appearances, s.sessions, s.quarantine,
            s.embeddings, s.meta]
    for table in core:
        table.create(engine)
    with engine.begin() as conn:
        conn.execute(s.meta.insert().values(key="schema_version", value="1"))
    engine.dispose()
    catalog = Catalog.open(empty_url)
    catalog.ingest("old.txt", "x", "h", [PaperRecord(title="Kept Across The Upgrade", appearance=Appearance(venue="V"))])
    with catalog.engine.connect() as conn:
        assert current_revision(conn) == HEAD
    assert {"users", "agenda_items", "login_sessions"} <= set(inspect(catalog.engine).get_table_names())
    assert catalog.get_meta("schema_version") == "1" and catalog.paper_count() == 1
    catalog.close()


def _open_and_count(url: str, queue) -> None:
    try:
        catalog = Catalog.open(url)
        with catalog.engine.connect() as conn:
            queue.put(current_revision(conn))
        catalog.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        queue.put(f"error: {exc}")


def test_workers_opening_a_new_postgresql_catalogue_at_once_migrate_it_once(pg_server):
    url = pg_server.new_database(migrated=False)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_open_and_count, args=(url, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    results = [queue.get(timeout=5) for _ in workers]
    assert results == [HEAD] * 4
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


# ------------------------------------------------------------------------------------------- pgvector
def _vector_catalogue(url: str, n: int, seed: int = 0) -> tuple[Catalog, list[str], np.ndarray]:
    """n papers with clustered unit vectors (like real embeddings: topics, not noise)."""
    catalog = Catalog.open(url)
    records = [PaperRecord(title=f"Paper {i} on topic {i % 40}", authors=[f"Author {i}"], abstract=f"Abstract {i}.",
                           appearance=Appearance(venue="VecConf", year=2024)) for i in range(n)]
    catalog.ingest("vectors.csv", "tabular", f"h{n}", records)
    ids, hashes = zip(*catalog.content_hashes())
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(2, n // 50), 384)).astype(np.float32)
    matrix = centres[rng.integers(0, len(centres), n)] + 0.08 * rng.standard_normal((n, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    catalog.store_vectors("m", {h: v.tobytes() for h, v in zip(hashes, matrix)})
    catalog.set_meta("vectors:m:generation", "1")
    return catalog, list(ids), matrix


def test_pgvector_search_matches_exact_search(pg_url):
    from paperscope.index.pgvector import load_pg_vector_index

    catalog, ids, matrix = _vector_catalogue(pg_url, 3000)
    index = load_pg_vector_index(catalog, "m", wait=True)
    assert len(index) == 3000
    with catalog.engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT paper_id FROM paper_vectors WHERE model = 'm' "
            "ORDER BY embedding <=> (SELECT embedding FROM paper_vectors LIMIT 1) LIMIT 10")))
    assert "ix_paper_vectors_hnsw" in plan     # the HNSW index serves the search
    rng = np.random.default_rng(5)
    recalls = []
    for q in rng.choice(len(ids), 50, replace=False):
        query = matrix[q] + 0.02 * rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        exact = {ids[i] for i in np.argsort(-(matrix @ query))[:10]}
        found = index.search(query, 10)
        recalls.append(len(exact & {pid for pid, _ in found}) / 10)
        assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert np.mean(recalls) >= 0.95
    top = index.search(matrix[0], 5, exclude=[ids[0]])
    assert ids[0] not in [pid for pid, _ in top] and len(top) == 5
    assert np.allclose(index.vector(ids[7]), matrix[7])
    catalog.close()


def test_pgvector_follows_new_changed_and_removed_papers(pg_url):
    from paperscope.catalog.pgvectors import count_vectors
    from paperscope.index.pgvector import load_pg_vector_index, sync_paper_vectors

    catalog, ids, matrix = _vector_catalogue(pg_url, 200)
    assert load_pg_vector_index(catalog, "m", wait=True) is not None and count_vectors(catalog.engine, "m") == 200
    # a source now lists one paper less, and another paper's abstract changed and got a new vector
    records = [PaperRecord(title=f"Paper {i} on topic {i % 40}", authors=[f"Author {i}"],
                           abstract="A rewritten abstract." if i == 1 else f"Abstract {i}.",
                           appearance=Appearance(venue="VecConf", year=2024)) for i in range(199)]
    catalog.ingest("vectors.csv", "tabular", "h-v2", records)
    changed = next(pid for pid, h in catalog.content_hashes() if catalog.papers([pid])[0]["abstract"] == "A rewritten abstract.")
    new_vector = -matrix[1]
    catalog.store_vectors("m", {dict(catalog.content_hashes())[changed]: new_vector.astype(np.float32).tobytes()})
    catalog.set_meta("vectors:m:generation", "2")
    assert count_vectors(catalog.engine, "m") == 199          # the removed paper's row went with it
    done = sync_paper_vectors(catalog, "m")
    assert done == {"removed": 1, "added": 1, "rebuilt": 0}
    index = load_pg_vector_index(catalog, "m")
    assert index.search(new_vector, 1)[0][0] == changed
    assert sync_paper_vectors(catalog, "m") is None            # in step: nothing to do
    catalog.close()


def test_the_first_search_does_not_wait_for_pgvector_to_fill(pg_url):
    from paperscope.index.pgvector import load_pg_vector_index

    catalog, ids, matrix = _vector_catalogue(pg_url, 300)
    first = load_pg_vector_index(catalog, "m")                 # fills in the background meanwhile
    deadline = time.monotonic() + 60
    index = first
    while index is None and time.monotonic() < deadline:
        time.sleep(0.2)
        index = load_pg_vector_index(catalog, "m")
    assert first is None and index is not None and len(index) == 300
    catalog.close()


# ------------------------------------------------------------------------------------------- keyword index
def _build_search(url: str, queue) -> None:
    try:
        from paperscope.search import SearchService

        catalog = Catalog.open(url)
        result = SearchService(catalog).search("transformers")
        queue.put(result.total)
        catalog.close()
    except Exception as exc:  # noqa: BLE001
        queue.put(f"error: {type(exc).__name__}: {exc}")


def test_the_keyword_index_is_per_catalogue_and_built_by_one_process_at_a_time(pg_server):
    from paperscope.index.lexical import LexicalIndex

    urls = [pg_server.new_database(), pg_server.new_database()]
    for n, url in enumerate(urls):
        catalog = Catalog.open(url)
        catalog.ingest("c.csv", "tabular", "h", [
            PaperRecord(title=f"Efficient Transformers number {i}", appearance=Appearance(venue=f"Conf{n}"))
            for i in range(40 + n)])
        catalog.close()
    paths = {str(LexicalIndex.for_catalog(Catalog.open(u)).path) for u in urls}
    assert len(paths) == 2
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    procs = [context.Process(target=_build_search, args=(urls[0], queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert sorted(queue.get(timeout=5) for _ in procs) == [40, 40, 40]
    catalog = Catalog.open(urls[0])
    assert LexicalIndex.for_catalog(catalog).state(catalog).fresh
    catalog.close()


def test_a_server_notices_an_ingest_made_elsewhere(pg_url, monkeypatch):
    """An ingest on another machine updates its own copy of the keyword index: the server's workers
    check theirs against the catalogue and rebuild it."""
    from fastapi.testclient import TestClient

    from paperscope.web.app import create_app

    monkeypatch.setenv("PAPERSCOPE_INDEX_CHECK_S", "0.5")
    app = create_app(pg_url, accounts=True, public=True)
    client = TestClient(app)
    assert client.get("/api/search", params={"q": "zebrafish"}).json()["total"] == 0
    elsewhere = Catalog.open(pg_url)   # no index update: as if run on another machine
    elsewhere.ingest("remote.csv", "tabular", "r1", [PaperRecord(title="Zebrafish Locomotion Models",
                                                                 appearance=Appearance(venue="BioConf", year=2025))])
    elsewhere.close()
    deadline = time.monotonic() + 60
    while client.get("/api/search", params={"q": "zebrafish"}).json()["total"] != 1:
        assert time.monotonic() < deadline, "the server never saw the new paper"
        time.sleep(0.3)
    app.state.catalog.close()
    del client, app   # the index watch ends with the app
    import gc

    gc.collect()
    time.sleep(1)


# ------------------------------------------------------------------------------------------- serving
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SESSION = {"name": "Session 3", "venue": "BigConf", "year": 2025}


def _big_source(path: Path, n: int) -> None:
    lines = ["title,authors,abstract,venue,year,session"]
    for i in range(n):
        lines.append(f"Scalable Widget Learning {i},Ada Lovelace;Grace Hopper {i},Widgets at scale number {i}.,"
                     f"BigConf,2025,Session {i % 10}")
    path.write_text("\n".join(lines) + "\n")


def test_two_workers_serve_while_an_ingest_runs(pg_server, tmp_path):
    import httpx

    from paperscope.accounts import Accounts
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    url = pg_server.new_database()
    env = dict(os.environ, PAPERSCOPE_DB=url, PAPERSCOPE_ACCOUNTS="1", PAPERSCOPE_INDEX_CHECK_S="60")   # as deployed
    catalog = Catalog.open(url)
    demo = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
    assert ingest_targets(catalog, [str(demo)], ImportOptions(venue="ICLR", year=2020)).anything_read
    accounts = Accounts(catalog)
    tokens = [accounts.create_token(accounts.create_user(f"user{i}", "a long password"), "t")[1] for i in range(4)]
    catalog.close()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "paperscope.web.app:app_from_env",
                               "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    source = tmp_path / "bigconf.csv"
    n = 1500
    _big_source(source, n)
    try:
        with httpx.Client(timeout=60) as probe:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if probe.get(base + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            # a session made through one worker is known to the other
            assert probe.get(base + "/api/account", headers={"authorization": f"Bearer {tokens[0]}"}).status_code == 200
        program = httpx.get(base + "/api/schedule", params={"venue": "ICLR", "year": 2020, "day": "all"},
                            headers={"authorization": f"Bearer {tokens[0]}"}, timeout=60).json()
        keys = [k for k in re.findall(r'"key": ?"([^"]+)"', json.dumps(program))][:20]
        errors: list[str] = []
        counts: list[int] = []
        stop = threading.Event()

        def reader(token: str, i: int) -> None:
            headers = {"authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                j = 0
                while not stop.is_set():
                    j += 1
                    # read straight from the database: a session of the source being ingested
                    session = client.get("/api/session", params=SESSION)
                    if session.status_code == 404:
                        counts.append(0)
                    elif session.status_code == 200:
                        counts.append(len(session.json()["items"]))
                    else:
                        errors.append(f"session: {session.status_code} {session.text[:200]}")
                    for path, params in (("/api/venues", None), ("/api/search", {"q": "learning"}), ("/api/agenda", None)):
                        r = client.get(path, params=params)
                        if r.status_code != 200:
                            errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                    star = client.post("/api/agenda", json={"key": keys[(i * 5 + j) % len(keys)], "venue": "ICLR", "year": 2020})
                    if star.status_code != 200:
                        errors.append(f"star: {star.status_code} {star.text[:200]}")

        threads = [threading.Thread(target=reader, args=(t, i)) for i, t in enumerate(tokens)]
        for t in threads:
            t.start()
        ingest = subprocess.run([sys.executable, "-m", "paperscope", "ingest", str(source), "--db", url, "--json"],
                                env=env, capture_output=True, text=True, timeout=600)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(120)
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        assert not errors, errors[:10]
        assert counts and set(counts) <= {0, n // 10}, sorted(set(counts))   # never a half-ingested source
        assert counts[-1] == n // 10
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {tokens[1]}"}, timeout=60) as client:
            deadline = time.monotonic() + 60
            while client.get("/api/search", params={"q": '"Scalable Widget Learning 1234"'}).json()["total"] != 1:
                assert time.monotonic() < deadline, "the workers never saw the ingested papers"
                time.sleep(0.5)
            mine = client.get("/api/agenda").json()["items"]
            assert mine and all(item["user_id"] == client.get("/api/account").json()["user"]["id"] for item in mine)
    finally:
        stop_server(server)


# ------------------------------------------------------------------------------------------- dev-postgres
def test_dev_postgres_starts_reports_and_stops():
    from typer.testing import CliRunner

    from paperscope.cli import app

    folder = Path(tempfile.mkdtemp(prefix="paperscope-devpg-test-"))
    runner = CliRunner()
    try:
        started = runner.invoke(app, ["dev-postgres", "start", "--dir", str(folder)])
        if started.exit_code != 0 and "no PostgreSQL with pgvector" in started.output:
            pytest.skip(started.output)
        assert started.exit_code == 0, started.output
        url = started.stdout.strip().splitlines()[-1]
        assert url.startswith("postgresql://paperscope:") and "@127.0.0.1:" in url
        catalog = Catalog.open(url)
        assert catalog.paper_count() == 0
        catalog.close()
        status = json.loads(runner.invoke(app, ["dev-postgres", "status", "--dir", str(folder), "--json"]).stdout)
        assert status["running"] and status["url"] == url
        assert runner.invoke(app, ["dev-postgres", "stop", "--dir", str(folder)]).exit_code == 0
        assert runner.invoke(app, ["dev-postgres", "status", "--dir", str(folder)]).exit_code == 3
        if os.geteuid() == 0:   # the server ran as the unprivileged system user, never as root
            import pwd

            assert pwd.getpwuid((folder / "pgdata").stat().st_uid).pw_name != "root"
    finally:
        runner.invoke(app, ["dev-postgres", "stop", "--dir", str(folder)])
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
