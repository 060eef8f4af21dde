"""Every test that touches a catalogue runs on both backends: a SQLite file, then PostgreSQL.

``backend`` is one session-wide parameter, so pytest runs all the SQLite cases first and starts
PostgreSQL (``pg_server``) only for the second half; without a server those cases skip, saying why.

``catalogues`` makes new catalogues on the backend under test. ``catalog_url`` and ``catalog`` are a
fresh, empty one per test (a PostgreSQL database is copied from a migrated template in ~0.1 s and
dropped after the test). A module fixture building a larger catalogue uses ``catalogues.new()``; one
that many tests need fresh, such as the 687 ICLR 2020 papers, uses ``catalogues.copy_of()``, which
builds it once per session and hands out copies (a SQLite backup, a PostgreSQL ``CREATE DATABASE ...
TEMPLATE``), each as new to the product as one just built.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from paperscope.catalog.store import Catalog

BACKENDS = ["sqlite", "postgresql"]


class Catalogues:
    """New catalogues on one backend."""

    def __init__(self, backend: str, folders: pytest.TempPathFactory, server=None):
        self.backend = backend
        self.folders = folders
        self.server = server                   # a pg_fixture.PgServer on PostgreSQL
        self._snapshots: dict[str, str] = {}   # name -> the catalogue copies are made from

    def new_url(self, name: str = "catalogue", folder: Path | None = None, migrated: bool = True) -> str:
        """Where a new catalogue lives; a PostgreSQL database at the schema's head unless ``migrated`` is False."""
        if self.server is None:
            return str((folder or self.folders.mktemp(name)) / f"{name}.sqlite")
        return self.server.new_database(migrated=migrated)

    def remove(self, url: str) -> None:
        """Drop a PostgreSQL catalogue and its index folder (a SQLite file goes with pytest's temporary folders)."""
        if self.server is not None:
            self.server.remove(url)

    @contextmanager
    def new(self, name: str = "catalogue") -> Iterator[str]:
        """A new catalogue's URL for the length of a ``with`` block (a module fixture's life)."""
        url = self.new_url(name)
        try:
            yield url
        finally:
            self.remove(url)

    def copy_of(self, name: str, build: Callable[[str], Catalog]) -> str:
        """A new catalogue holding what ``build(url)`` puts into an empty one; built once per session."""
        if name not in self._snapshots:
            url = self.new_url(f"{name}-snapshot")
            build(url).close()   # no connection may stay open on a PostgreSQL template
            self._snapshots[name] = url
        snapshot = self._snapshots[name]
        if self.server is None:
            target = self.new_url(name)
            with closing(sqlite3.connect(snapshot)) as source, closing(sqlite3.connect(target)) as copy:
                source.backup(copy)
            return target
        return self.server.copy_database(snapshot)

    @contextmanager
    def copy(self, name: str, build: Callable[[str], Catalog]) -> Iterator[str]:
        """``copy_of`` for the length of a ``with`` block."""
        url = self.copy_of(name, build)
        try:
            yield url
        finally:
            self.remove(url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    """The catalogue backend of this half of the session."""
    return request.param


@pytest.fixture(scope="session")
def catalogues(backend, request, tmp_path_factory) -> Catalogues:
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    return Catalogues(backend, tmp_path_factory, server)


@pytest.fixture
def catalog_url(catalogues, tmp_path) -> Iterator[str]:
    """Where a test's own, empty catalogue lives: a SQLite file, then a new PostgreSQL database."""
    url = catalogues.new_url(folder=tmp_path)
    yield url
    catalogues.remove(url)


@pytest.fixture
def catalog(catalog_url) -> Iterator[Catalog]:
    """A test's own, empty catalogue, open."""
    opened = Catalog.open(catalog_url)
    yield opened
    opened.close()


def single_user_app(catalog: Catalog):
    """The web app as on a laptop (one user, no sign-in) over either backend; PostgreSQL's default is server mode."""
    from paperscope.web.app import create_app

    return create_app(catalog.location, catalog=catalog, accounts=False)
