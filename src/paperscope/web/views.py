"""What each page shows, as the typed objects of ``models.py``; templates only lay them out.

These functions read the catalogue (and the search and similar-papers services) and never render
HTML: the HTML page, its ``?format=json`` twin and the ``/api`` route all come from the same call.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections import Counter
from typing import Any

from paperscope.catalog.store import Catalog
from paperscope.export import paper_links, to_bibtex
from paperscope.text import clean_markup, name_key
from paperscope.web import models as m
from paperscope.web import urls
from paperscope.web.timefmt import ViewerZone, format_slot

log = logging.getLogger("paperscope.web")

PROGRAM_PAGE_SIZE = 200
SIMILAR_FACETS = ("background", "method", "result")


class NotFound(Exception):
    """A page asked for something the catalogue does not have (rendered as a 404 with a search box)."""

    def __init__(self, what: str, query: str = ""):
        super().__init__(what)
        self.what = what
        self.query = query


# ------------------------------------------------------------------------------------------ pieces
def appearance_out(a: dict[str, Any], zone: ViewerZone) -> m.AppearanceOut:
    return m.AppearanceOut(
        venue=a.get("venue"), year=a.get("year"), track=a.get("track"), session=a.get("session"),
        room=a.get("room"), moderator=a.get("moderator"), presentation=a.get("presentation"),
        decision=a.get("decision"), mode=a.get("mode"), award=a.get("award"),
        starts_at=a.get("starts_at"), ends_at=a.get("ends_at"), source_tz=a.get("source_tz"),
        slot_text=a.get("slot_text"), slot_local=format_slot(a.get("starts_at"), a.get("ends_at"), zone),
        url=a.get("url"), source=a.get("source"), source_format=a.get("source_format"), line=a.get("line"),
        session_url=urls.session_url(a.get("venue"), a.get("year"), a.get("session")),
    )


def badges(appearances: list[dict[str, Any]]) -> list[m.Badge]:
    """Award first, then how it was presented, then the decision when it says more than the type."""
    out: list[m.Badge] = []
    seen: set[str] = set()

    def add(kind: str, text: str | None) -> None:
        if text and text.strip().lower() not in seen:
            seen.add(text.strip().lower())
            out.append(m.Badge(kind=kind, text=text.strip()))

    for a in appearances:
        add("award", a.get("award"))
    for a in appearances:
        add("type", a.get("presentation") if a.get("presentation") != "paper" else None)
    for a in appearances:
        decision = a.get("decision")
        if decision and not any(word in decision.lower() for word in seen):
            add("decision", decision)
    return out


def primary_appearance(appearances: list[dict[str, Any]]) -> int | None:
    """The appearance a list shows: a timed conference slot over a session over a dated venue over a feed entry."""
    if not appearances:
        return None
    def weight(i: int) -> tuple:
        a = appearances[i]
        return (bool(a.get("starts_at")), bool(a.get("session")), bool(a.get("year")), bool(a.get("venue")), -i)
    return max(range(len(appearances)), key=weight)


def venue_label(paper: dict[str, Any], primary: int | None = None) -> str | None:
    apps = paper.get("appearances") or []
    primary = primary_appearance(apps) if primary is None else primary
    if primary is not None and apps[primary].get("venue"):
        a = apps[primary]
        return " ".join(str(x) for x in (a["venue"], a.get("year")) if x)
    return str(paper["year"]) if paper.get("year") else None


def brief_fields(paper: dict[str, Any], zone: ViewerZone) -> dict[str, Any]:
    apps = paper.get("appearances") or []
    primary = primary_appearance(apps)
    return {
        "id": paper["id"],
        "title": clean_markup(paper.get("title") or "") or "(untitled)",
        "authors": list(paper.get("authors") or []),
        "year": paper.get("year") or next((a.get("year") for a in apps if a.get("year")), None),
        "venue": venue_label(paper, primary),
        "primary": primary,
        "badges": badges(apps),
        "appearances": [appearance_out(a, zone) for a in apps],
        "url": urls.paper_url(paper["id"]),
    }


def paper_brief(paper: dict[str, Any], zone: ViewerZone) -> m.PaperBrief:
    return m.PaperBrief(**brief_fields(paper, zone))


def program_item(row: dict[str, Any], zone: ViewerZone) -> m.ProgramItem:
    return m.ProgramItem(
        paper_id=row["paper_id"], title=clean_markup(row.get("title") or "") or "(untitled)",
        authors=list(row.get("authors") or []), venue=row.get("venue"), year=row.get("year"),
        session=row.get("session"), room=row.get("room"), presentation=row.get("presentation"),
        award=row.get("award"), decision=row.get("decision"), starts_at=row.get("starts_at"),
        slot_local=format_slot(row.get("starts_at"), row.get("ends_at"), zone),
        url=urls.paper_url(row["paper_id"]),
        session_url=urls.session_url(row.get("venue"), row.get("year"), row.get("session")),
    )


def parse_year(value: str | int | None) -> int | None:
    """A year from user input, or None when it is not one (pages explain rather than fail)."""
    if value is None or value == "":
        return None
    try:
        year = int(str(value).strip())
    except ValueError:
        return None
    return year if 1000 <= year <= 9999 else None


def parse_page(value: str | int | None) -> int:
    try:
        return max(1, min(int(str(value)), 10_000))
    except (TypeError, ValueError):
        return 1


# ------------------------------------------------------------------------------------------ home
class VenueCache:
    """Venue/year paper counts (home page, venue pages), served from memory and refreshed in the
    background when older than ``ttl_s``: counting every appearance of a large catalogue takes
    seconds, which no page should wait for."""

    def __init__(self, ttl_s: float = 300.0):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self._at = 0.0
        self._value: tuple[int, list[dict]] | None = None
        self._refreshing = False

    def get(self, catalog: Catalog) -> tuple[int, list[dict]]:
        with self._lock:
            value = self._value
            stale = value is None or time.monotonic() - self._at > self.ttl_s
            if value is not None and stale and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self.refresh, args=(catalog,), daemon=True).start()
        if value is None:
            return self.refresh(catalog)
        return value

    def refresh(self, catalog: Catalog, min_age_s: float = 0.0) -> tuple[int, list[dict]]:
        """Recount now (unless the counts are younger than ``min_age_s``)."""
        with self._compute:
            if self._value is not None and time.monotonic() - self._at < min_age_s:
                return self._value
            try:
                value = (catalog.paper_count(), _venue_counts(catalog))
                with self._lock:
                    self._value, self._at = value, time.monotonic()
                return value
            finally:
                self._refreshing = False


def _venue_counts(catalog: Catalog) -> list[dict]:
    if hasattr(catalog, "venue_counts"):  # the cheap query, where the catalogue offers it
        return catalog.venue_counts()
    return catalog.stats()["by_venue"]


def home_page(catalog: Catalog, zone: ViewerZone, venues: VenueCache, search_available: bool) -> m.HomePage:
    count, rows = venues.get(catalog)
    return m.HomePage(
        papers=count, search_available=search_available, tz=zone.name,
        venues=[m.VenueCount(venue=r["venue"], year=r["year"], papers=r["papers"],
                             url=urls.venue_url(r["venue"], r["year"]) if r["venue"] else urls.search_url({}))
                for r in rows],
    )


# ------------------------------------------------------------------------------------------ paper
def similar_service():
    """``paperscope.similar`` when this installation has it, else None."""
    try:
        return importlib.import_module("paperscope.similar")
    except ImportError:
        return None


def paper_page(catalog: Catalog, paper_id: str, zone: ViewerZone, similar_facet: str | None = None,
               similar_limit: int = 10) -> m.PaperPage:
    paper = catalog.paper(paper_id)
    if paper is None:
        raise NotFound(f"No paper with id “{paper_id}” in this catalogue.")
    detail = m.PaperDetail(
        **brief_fields(paper, zone),
        abstract=paper.get("abstract") or "",
        tldr=clean_markup(paper.get("tldr") or ""),
        keywords=list(paper.get("keywords") or []),
        ids=dict(paper.get("ids") or {}),
        links=[m.Link(label=label, url=url) for label, url in paper_links(paper)],
        flags=list(paper.get("flags") or []),
    )
    facet = similar_facet if similar_facet in SIMILAR_FACETS else None
    page = m.PaperPage(paper=detail, bibtex=to_bibtex(paper), similar_available=False, similar_facet=facet, tz=zone.name)
    if similar_facet and facet is None:
        page.similar_message = f"Unknown facet {similar_facet!r}; showing papers similar overall."
    service = similar_service()
    if service is None:
        return page
    page.similar_available = True
    try:
        ranked = service.similar_papers(catalog, paper_id, facet=facet, limit=similar_limit)
    except ImportError as exc:  # the similar-papers service needs a part this installation lacks
        log.warning("similar papers unavailable: %s", exc)
        page.similar_available = False
        return page
    except Exception as exc:  # a failing ranker must not take the paper page down with it
        log.exception("similar papers failed for %s", paper_id)
        page.similar_message = f"Similar papers are unavailable right now ({type(exc).__name__})."
        return page
    # similar_papers returns a SimilarResult (papers, mode, message); a plain list is accepted too
    items = getattr(ranked, "papers", ranked) or []
    page.similar_mode = getattr(ranked, "mode", None)
    page.similar_message = page.similar_message or getattr(ranked, "message", None)
    for item in items:
        if item.get("id") == paper_id:
            continue
        score = item.get("score")
        page.similar.append(m.SimilarPaper(**brief_fields(item, zone),
                                           score=float(score) if score is not None and math.isfinite(score) else 0.0))
    if not page.similar and not page.similar_message:
        page.similar_message = "No similar papers found."
    return page


# ------------------------------------------------------------------------------------------ author
def author_page(catalog: Catalog, name: str, zone: ViewerZone) -> m.AuthorPage:
    ids = catalog.author_papers(name) if name_key(name) else []
    if not ids:
        raise NotFound(f"No author named “{name}” in this catalogue.", query=f'author:"{name}"')
    papers = catalog.papers(ids)
    key = name_key(name)
    display = name
    coauthors: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for paper in papers:
        for author in paper.get("authors") or []:
            k = name_key(author)
            if k == key:
                display = author
                continue
            if k:
                coauthors[k] += 1
                spelled.setdefault(k, author)
    papers.sort(key=lambda p: (-(p.get("year") or 0), clean_markup(p.get("title") or "").lower()))
    return m.AuthorPage(
        name=display, tz=zone.name,
        papers=[paper_brief(p, zone) for p in papers],
        coauthors=[m.CoAuthor(name=spelled[k], count=n, url=urls.author_url(spelled[k]))
                   for k, n in sorted(coauthors.items(), key=lambda kv: (-kv[1], spelled[kv[0]].lower()))],
    )


# ------------------------------------------------------------------------------------------ programs
def _session_summaries(catalog: Catalog, venue: str, year: int | None, rows: list[dict], zone: ViewerZone) -> list[m.SessionSummary]:
    counts: Counter[str] = Counter(r["session"] for r in rows if r.get("session"))
    summaries: dict[str, m.SessionSummary] = {}
    for s in catalog.sessions(venue, year):
        if s["name"] in summaries:
            continue
        summaries[s["name"]] = m.SessionSummary(
            name=s["name"], venue=s.get("venue"), year=s.get("year"), kind=s.get("kind"), room=s.get("room"),
            starts_at=s.get("starts_at"), slot_local=format_slot(s.get("starts_at"), s.get("ends_at"), zone),
            papers=counts.get(s["name"], 0), url=urls.session_url(s.get("venue") or venue, s.get("year") or year, s["name"]) or "",
        )
    for r in rows:  # sessions known only from their papers
        name = r.get("session")
        if name and name not in summaries:
            summaries[name] = m.SessionSummary(
                name=name, venue=r.get("venue"), year=r.get("year"), room=r.get("room"), starts_at=r.get("starts_at"),
                slot_local=format_slot(r.get("starts_at"), r.get("ends_at"), zone), papers=counts[name],
                url=urls.session_url(r.get("venue"), r.get("year"), name) or "",
            )
    return sorted(summaries.values(), key=lambda s: (s.starts_at or "~", s.name))


def venue_page(catalog: Catalog, venue: str, year: int | None, page: int, zone: ViewerZone,
               venues: VenueCache) -> m.VenuePage:
    _, counts = venues.get(catalog)
    known = [r for r in counts if (r["venue"] or "").lower() == venue.lower()]
    if not known:  # perhaps ingested since the last count: recount (at most every 10 s) before saying no
        _, counts = venues.refresh(catalog, min_age_s=10.0)
        known = [r for r in counts if (r["venue"] or "").lower() == venue.lower()]
    if not known:
        raise NotFound(f"No venue named “{venue}” in this catalogue.", query=f'venue:"{venue}"')
    display = known[0]["venue"]
    years = [m.VenueYear(year=r["year"], papers=r["papers"], url=urls.venue_url(display, r["year"])) for r in known]
    if year is None and len(known) == 1:
        year = known[0]["year"]
    result = m.VenuePage(venue=display, year=year, years=years, tz=zone.name,
                         search_url=urls.search_url({"venue": display, "year": year}))
    if year is None:
        return result  # several years: the page lists them
    if not any(r["year"] == year for r in known):
        raise NotFound(f"{display} has no papers from {year} in this catalogue.", query=f'venue:"{display}"')
    rows = _slot_order(catalog.appearances_where(venue=display, year=year))
    result.sessions = _session_summaries(catalog, display, year, rows, zone)
    result.total = len(rows)
    result.pages = max(1, math.ceil(len(rows) / PROGRAM_PAGE_SIZE))
    result.page = min(page, result.pages)
    start = (result.page - 1) * PROGRAM_PAGE_SIZE
    result.items = [program_item(r, zone) for r in rows[start:start + PROGRAM_PAGE_SIZE]]
    base = urls.venue_url(display, year)
    if result.page > 1:
        result.prev_url = urls.with_query(base, {"page": result.page - 1, "tz": _tz_param(zone)})
    if result.page < result.pages:
        result.next_url = urls.with_query(base, {"page": result.page + 1, "tz": _tz_param(zone)})
    return result


def session_page(catalog: Catalog, venue: str | None, year: int | None, name: str, zone: ViewerZone) -> m.SessionPage:
    if not name:
        raise NotFound("Which session? Give its name: /session?venue=ICML&year=2022&name=…")
    rows = _slot_order(catalog.appearances_where(venue=venue or None, year=year, session=name))
    known = [s for s in catalog.sessions(venue or None, year) if s["name"] == name]
    if not rows and not known:
        raise NotFound(f"No session named “{name}”" + (f" at {venue}" if venue else "") + (f" {year}" if year else "") + ".",
                       query=f'session:"{name}"')
    first = known[0] if known else rows[0]
    return m.SessionPage(
        venue=first.get("venue") or venue, year=first.get("year") or year, name=name, room=first.get("room"),
        moderator=next((r["moderator"] for r in rows if r.get("moderator")), None),
        slot_local=format_slot(first.get("starts_at"), first.get("ends_at"), zone),
        items=[program_item(r, zone) for r in rows], tz=zone.name,
    )


def _slot_order(rows: list[dict]) -> list[dict]:
    """Timed appearances in slot order first, then those the program gives no time (SQL sorts NULL first)."""
    return [r for r in rows if r.get("starts_at")] + [r for r in rows if not r.get("starts_at")]


def _tz_param(zone: ViewerZone) -> str | None:
    return zone.name if zone.source == "param" else None
