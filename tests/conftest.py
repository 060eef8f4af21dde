"""Shared fixtures.

backends.py: ``backend`` (sqlite, then postgresql), ``catalogues``, ``catalog_url`` and ``catalog``;
pg_fixture.py: ``pg_server`` and ``pg_url`` (PostgreSQL only); browser_fixture.py: ``browser`` (Chromium).
"""

import pytest
from backends import backend, catalog, catalog_url, catalogues  # noqa: F401
from browser_fixture import browser  # noqa: F401
from pg_fixture import pg_server, pg_url  # noqa: F401


@pytest.fixture(autouse=True, scope="session")
def test_settings():
    """Settings for the whole session (a test may change them with monkeypatch):

    - argon2id with one pass over 1 MiB: the same code path in a hundredth of the time (production
      keeps 3 passes over 64 MiB);
    - no background checks of the keyword index: each server-mode app would poll its catalogue every
      minute, long after its test, and its database, are gone.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAPERSCOPE_ARGON2", "1,1024,1")
        patch.setenv("PAPERSCOPE_INDEX_CHECK_S", "0")
        yield
