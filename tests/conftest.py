"""Shared fixtures.

backends.py: ``backend`` (sqlite, then postgresql), ``catalogues``, ``catalog_url`` and ``catalog``;
pg_fixture.py: ``pg_server`` and ``pg_url`` (PostgreSQL only); browser_fixture.py: ``browser`` (Chromium).
"""

from backends import backend, catalog, catalog_url, catalogues  # noqa: F401
from browser_fixture import browser  # noqa: F401
from pg_fixture import pg_server, pg_url  # noqa: F401
