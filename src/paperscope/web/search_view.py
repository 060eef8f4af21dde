"""The search page: the search service's result shaped for the page, with facet links that narrow it.

Facet and paging state is kept in the URL (``venue=``, ``year=``, ``type=``, ``award=``,
``session=``, ``topic=``, ``page=``, ``sort=``, ``mode=``): each is added to the query as a clause of the query
language (``venue:"ICLR 2023"``), so the web and the CLI search the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import threading
import time
from typing import Any

from paperscope import limits
from paperscope.catalog.store import Catalog
from paperscope.search import TOPIC_FACET_DEPTH
from paperscope.web import models as m
from paperscope.web import urls
from paperscope.web.timefmt import ViewerZone
from paperscope.web.views import brief_fields

log = logging.getLogger("paperscope.web")

PER_PAGE = 20
MAX_OFFSET = 10_000
# The select offers these; "meaning" is how the page names the service's "semantic" mode.
MODE_ALIASES = {"keyword": "keyword", "keywords": "keyword", "meaning": "semantic", "semantic": "semantic",
                "hybrid": "hybrid"}
MODE_LABELS = (("keyword", "Keywords"), ("semantic", "Meaning"), ("hybrid", "Hybrid"))
FACET_LABELS = {"venue": "Venue", "year": "Year", "type": "Type", "award": "Award", "session": "Session", "topic": "Topic"}


def _filter_labels(facets: list[m.Facet], filters: dict[str, str]) -> dict[str, str]:
    """Each filter as its facet names it: ``topic: t12`` reads ``topic: reinforcement learning · policy``."""
    labels = dict(filters)
    for facet in facets:
        chosen = next((v for v in facet.values if v.selected and v.label), None)
        if facet.name in filters and chosen is not None:
            labels[facet.name] = chosen.label
    return labels


def filter_clause(name: str, value: str) -> str:
    value = " ".join(value.replace('"', " ").split())
    if not value:
        return ""
    return f'{name}:"{value}"' if any(not ch.isalnum() for ch in value) else f"{name}:{value}"


class Searcher:
    """Holds the search service (and its open index) for the app; built on first use."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._service = None
        self._lock = threading.Lock()
        self._problem: str | None = None

    @property
    def available(self) -> bool:
        return importlib.util.find_spec("paperscope.search") is not None

    def service(self):
        if self._service is None:
            with self._lock:
                if self._service is None:
                    from paperscope.search import SearchService

                    self._service = SearchService(self.catalog)
        return self._service

    def warm_up(self) -> None:
        """Open (and if needed build) the keyword index now rather than on the first request."""
        self.service().search("warm up", limit=1)

    def page(self, q: str, *, mode: str, page: str, sort: str, zone: ViewerZone, filters: dict[str, str]) -> m.SearchPage:
        started = time.perf_counter()
        q = q or ""
        bounds = limits.current()
        for part in (q, *filters.values()):
            bounds.check_query(str(part or ""))  # LimitExceeded: the app answers 400 with its message
        filters = {k: " ".join(str(v).split()) for k, v in filters.items() if v and str(v).strip()}
        mode_asked = (mode or "keyword").strip().lower()
        service_mode = MODE_ALIASES.get(mode_asked, mode_asked)
        page_no = _page_number(page)
        state = {"q": q, "mode": service_mode, "sort": sort, "tz": zone.name if zone.source == "param" else None, **filters}
        result = m.SearchPage(q=q, mode=service_mode, sort=sort or "relevance", filters=filters, page=page_no,
                              per_page=PER_PAGE, tz=zone.name)
        result.remove_filter_urls = {name: urls.search_url(state, **{name: None}) for name in filters}
        result.sort_urls = {value: urls.search_url(state, sort=value) for value in ("relevance", "date")}
        notes = [zone.problem] if zone.problem else []
        if not q.strip() and not filters:
            result.message = " ".join(notes) or None
            return result
        query = " ".join([q] + [filter_clause(name, value) for name, value in filters.items()]).strip()
        try:
            found = self.service().search(query, mode=service_mode, limit=PER_PAGE,
                                          offset=min((page_no - 1) * PER_PAGE, MAX_OFFSET), sort=sort or "relevance")
        except Exception as exc:  # the page explains instead of failing
            log.exception("search failed for %r", query)
            result.error = f"The search could not run ({type(exc).__name__}: {exc}). Try a simpler query."
            return result
        if found.message:
            notes.append(found.message)
        result.message = " ".join(notes) or None
        result.mode_used = found.mode
        result.sort = found.sort
        result.total = found.total
        result.pages = max(1, math.ceil(min(found.total, MAX_OFFSET + PER_PAGE) / PER_PAGE)) if found.total else 0
        for hit in found.hits:
            if hit.paper is None:
                continue
            result.hits.append(m.SearchHit(
                **brief_fields(hit.paper, zone), score=round(hit.score, 4),
                snippet=[m.Fragment(text=t, match=bool(is_match)) for t, is_match in hit.snippet],
            ))
        result.facets = _facets(found.facets, filters, state)
        result.filter_labels = _filter_labels(result.facets, filters)
        if found.total > TOPIC_FACET_DEPTH:
            for facet in result.facets:
                if facet.name == "topic":
                    facet.note = f"of the best {TOPIC_FACET_DEPTH:,} results"
        if page_no > 1:
            result.prev_url = urls.search_url(state, page=page_no - 1)
        if result.pages and page_no < result.pages:
            result.next_url = urls.search_url(state, page=page_no + 1)
        result.took_ms = round((time.perf_counter() - started) * 1000, 2)
        return result


def _page_number(value: Any) -> int:
    try:
        return max(1, min(int(str(value).strip()), MAX_OFFSET // PER_PAGE + 1))
    except (TypeError, ValueError):
        return 1


def _facets(raw: dict[str, list[dict[str, Any]]], filters: dict[str, str], state: dict[str, Any]) -> list[m.Facet]:
    facets = []
    for name in FACET_LABELS:
        values = []
        chosen = filters.get(name, "")
        for bucket in raw.get(name) or []:
            value = str(bucket["value"])
            if not value:
                continue
            selected = value.lower() == chosen.lower()
            # a selected value links to the search without it; the others narrow the search
            url = urls.search_url(state, **{name: None if selected else value})
            values.append(m.FacetValue(value=value, label=bucket.get("label"), count=int(bucket["count"]),
                                       selected=selected, url=url))
        if chosen and not any(v.selected for v in values):
            values.insert(0, m.FacetValue(value=chosen, count=0, selected=True, url=urls.search_url(state, **{name: None})))
        if values:
            facets.append(m.Facet(name=name, values=values))
    return facets
