"""Links between pages. Every state a page has (query, filters, page, sort, zone) lives in its URL."""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote, urlencode

# Canonical order of search parameters, so equal states give equal (cacheable, comparable) URLs.
SEARCH_PARAMS = ("q", "mode", "venue", "year", "type", "award", "session", "topic", "sort", "page", "tz")
FILTER_NAMES = ("venue", "year", "type", "award", "session", "topic")
DEFAULTS = {"mode": "keyword", "sort": "relevance", "page": "1"}


def with_query(path: str, params: Mapping[str, Any], order: tuple[str, ...] = ()) -> str:
    """``path?k=v`` with empty values and defaults left out, keys in ``order`` first."""
    keys = [k for k in order if k in params] + [k for k in params if k not in order]
    pairs = []
    for key in keys:
        value = params[key]
        if value is None or value == "" or DEFAULTS.get(key) == str(value):
            continue
        pairs.append((key, str(value)))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def search_url(state: Mapping[str, Any], **changes: Any) -> str:
    """The search page with ``changes`` applied to ``state``; changing anything but the page resets it."""
    params = dict(state)
    if "page" not in changes:
        params.pop("page", None)
    params.update(changes)
    return with_query("/search", params, SEARCH_PARAMS)


def paper_url(paper_id: str) -> str:
    return f"/paper/{quote(paper_id, safe='')}"


def author_url(name: str) -> str:
    return f"/author/{quote(name, safe='')}"


def venue_url(venue: str, year: int | None = None) -> str:
    path = f"/venue/{quote(venue, safe='')}"
    return f"{path}/{year}" if year else path


def session_url(venue: str | None, year: int | None, name: str | None) -> str | None:
    if not name:
        return None
    return with_query("/session", {"venue": venue, "year": year, "name": name})
