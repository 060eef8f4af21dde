"""Shared fixtures: ``catalog_url`` (both backends), ``pg_server`` and ``pg_url`` (see pg_fixture.py)."""

from pg_fixture import catalog_url, pg_server, pg_url  # noqa: F401
