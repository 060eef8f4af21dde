"""The web app: HTML pages, each with a JSON twin (``?format=json``), and the typed REST API.

``create_app(db)`` opens the catalogue once and serves it. Pages are thin: a view function in
``views.py`` builds the page's typed object (``models.py``), which is rendered by a Jinja template
(autoescaped: nothing from a source or a user is ever HTML) or returned as JSON.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperscope import limits
from paperscope.catalog.store import Catalog
from paperscope.web import models as m
from paperscope.web import guards, search_view, urls, views
from paperscope.web.timefmt import COMMON_ZONES, ViewerZone, resolve_zone

log = logging.getLogger("paperscope.web")
HERE = Path(__file__).parent

# Only this site's own scripts and styles; no inline script, no framing, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# The interactive API docs load Swagger UI from its CDN: they alone get a wider policy.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; frame-ancestors 'none'")
DOCS_PATH = "/api/docs"


class SecurityHeaders:
    """Plain ASGI middleware (cheaper than BaseHTTPMiddleware) that adds security headers to every
    response, and the time the server spent on it (``Server-Timing``)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = (DOCS_CSP if scope["path"] == DOCS_PATH else CSP).encode()
        started = time.perf_counter()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                took_ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers += [
                    (b"server-timing", f"app;dur={took_ms:.2f}".encode()),  # read by `paperscope bench web`
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def json_response(page: BaseModel, status: int = 200) -> JSONResponse:
    """A page object as JSON. API routes return this rather than the model: FastAPI would validate the
    already-typed object a second time (their ``response_model`` still documents the schema)."""
    return JSONResponse(page.model_dump(mode="json"), status_code=status)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=True,          # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(urls=urls, common_zones=COMMON_ZONES)
    env.filters["basename"] = lambda locator: str(locator).rstrip("/").rsplit("/", 1)[-1] or str(locator)
    return env


def create_app(db: str, catalog: Catalog | None = None, accounts: bool | None = None,
               public: bool | None = None) -> FastAPI:
    """The paperscope web app over the catalogue at ``db`` (a path or a database URL).

    ``accounts``: server mode (sign-in, per-user data); by default on for PostgreSQL, off for a SQLite
    file (see ``web/auth.py``). ``public``: in server mode, let visitors read the catalogue unsigned.
    """
    catalog = catalog or Catalog.open(db)
    app = FastAPI(
        title="paperscope",
        summary="Search, explore and plan machine-learning conferences. Every HTML page has a JSON twin: add ?format=json.",
        version="0.1.0",
        docs_url=DOCS_PATH,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.catalog = catalog
    app.state.venues = views.VenueCache()
    app.state.searcher = search_view.Searcher(catalog)
    env = make_templates()
    app.state.templates = env
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def zone_of(request: Request, tz: str | None) -> ViewerZone:
        return resolve_zone(tz, request.cookies.get("tz"))

    def render(request: Request, template: str, page: BaseModel | None, zone: ViewerZone, status: int = 200,
               **extra: Any) -> Response:
        if request.query_params.get("format") == "json" and page is not None:
            return json_response(page, status)
        html = env.get_template(template).render(page=page, zone=zone, request=request, path=request.url.path,
                                                 query=request.url.query, **extra)
        response = HTMLResponse(html, status_code=status)
        if zone.source == "param" and request.cookies.get("tz") != zone.name:
            # a zone chosen in the page sticks for the pages this one links to
            response.set_cookie("tz", zone.name, max_age=365 * 24 * 3600, samesite="lax")
        return response

    def error_page(request: Request, status: int, message: str, query: str = "") -> Response:
        wants_json = request.url.path.startswith("/api/") or request.query_params.get("format") == "json"
        if wants_json:
            return JSONResponse(m.ErrorOut(error=message, status=status).model_dump(), status_code=status)
        zone = resolve_zone(None, request.cookies.get("tz"))
        html = env.get_template("error.html").render(
            page=None, zone=zone, request=request, path=request.url.path, query="", status=status, message=message,
            search_q=query)
        return HTMLResponse(html, status_code=status)

    # ------------------------------------------------------------------ errors: explained, never a stack trace
    @app.exception_handler(views.NotFound)
    async def not_found(request: Request, exc: views.NotFound):
        return error_page(request, 404, exc.what, exc.query)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        response = error_page(request, exc.status_code, message)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # HTTP requires Allow, listing every method of the path
            response.headers["allow"] = guards.allowed_methods(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in exc.errors())
        return error_page(request, 400, f"This address has a parameter the site cannot read ({problems}).")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("error serving %s", request.url)
        return error_page(request, 500, "Something went wrong on our side while building this page. "
                                        "It has been logged; try again, or search for something else.")

    # ------------------------------------------------------------------ HTML pages (+ ?format=json)
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def home(request: Request, q: str | None = None, tz: str | None = None):
        if q is not None:
            return search_html(request, q=q, tz=tz)
        zone = zone_of(request, tz)
        page = views.home_page(catalog, zone, app.state.venues, app.state.searcher.available)
        return render(request, "home.html", page, zone)

    @app.api_route("/search", methods=["GET", "HEAD"], include_in_schema=False)
    def search_html(request: Request, q: str = "", mode: str = "keyword", page: str = "1", sort: str = "relevance",
                    venue: str = "", year: str = "", type: str = "", award: str = "", session: str = "",
                    topic: str = "", tz: str | None = None):
        zone = zone_of(request, tz)
        result = app.state.searcher.page(q, mode=mode, page=page, sort=sort, zone=zone,
                                         filters={"venue": venue, "year": year, "type": type, "award": award, "session": session,
                                                  "topic": topic})
        return render(request, "search.html", result, zone)

    @app.api_route("/paper/{paper_id}", methods=["GET", "HEAD"], include_in_schema=False)
    def paper_html(request: Request, paper_id: str, similar: str | None = None, tz: str | None = None):
        zone = zone_of(request, tz)
        page = views.paper_page(catalog, paper_id, zone, similar_facet=similar or None)
        return render(request, "paper.html", page, zone)

    @app.api_route("/paper/{paper_id}/bibtex", methods=["GET", "HEAD"], include_in_schema=False)
    def paper_bibtex(paper_id: str):
        paper = catalog.paper(paper_id)
        if paper is None:
            raise views.NotFound(f"No paper with id “{paper_id}” in this catalogue.")
        from paperscope.export import to_bibtex

        return PlainTextResponse(to_bibtex(paper), media_type="application/x-bibtex; charset=utf-8")

    @app.api_route("/author/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def author_html(request: Request, name: str, tz: str | None = None):
        zone = zone_of(request, tz)
        return render(request, "author.html", views.author_page(catalog, name, zone), zone)

    @app.api_route("/venue/{venue}", methods=["GET", "HEAD"], include_in_schema=False)
    def venue_html(request: Request, venue: str, year: str | None = None, page: str = "1", tz: str | None = None):
        return venue_year_html(request, venue, year or "", page, tz)

    @app.api_route("/venue/{venue}/{year}", methods=["GET", "HEAD"], include_in_schema=False)
    def venue_year_html(request: Request, venue: str, year: str, page: str = "1", tz: str | None = None):
        zone = zone_of(request, tz)
        parsed = views.parse_year(year)
        if year and parsed is None:
            raise views.NotFound(f"“{year}” is not a year; try /venue/{venue}.", query=f'venue:"{venue}"')
        result = views.venue_page(catalog, venue, parsed, views.parse_page(page), zone, app.state.venues)
        return render(request, "venue.html", result, zone)

    @app.api_route("/session", methods=["GET", "HEAD"], include_in_schema=False)
    def session_html(request: Request, name: str = "", venue: str = "", year: str = "", tz: str | None = None):
        zone = zone_of(request, tz)
        result = views.session_page(catalog, venue, views.parse_year(year), name, zone)
        return render(request, "session.html", result, zone)

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    def healthz():
        return PlainTextResponse("ok")

    # ------------------------------------------------------------------ REST API
    query_chars = limits.current().max_query_chars  # each part of a search query, as the schema says

    @app.get("/api/search", response_model=m.SearchPage, tags=["search"])
    def api_search(
        request: Request,
        q: str = Query("", max_length=query_chars,
                       description='Query: words, "phrases", -exclusions, author:, venue:, year:, type:, award:, session:, topic:'),
        mode: str = Query("keyword", description="keyword (default), meaning or hybrid; without vectors search uses keywords and says so"),
        page: int = Query(1, ge=1, le=10_000),
        sort: str = Query("relevance", description="relevance or date"),
        venue: str = Query("", max_length=query_chars), year: str = Query("", max_length=query_chars),
        type: str = Query("", max_length=query_chars), award: str = Query("", max_length=query_chars),
        session: str = Query("", max_length=query_chars),
        topic: str = Query("", max_length=query_chars,
                           description="a topic id of the map of all papers (see /api/topics), or words of its label"),
        tz: str | None = Query(None, description="IANA time zone for slots, e.g. Europe/Paris"),
    ):
        """Ranked, faceted search (the JSON of `/search`)."""
        zone = zone_of(request, tz)
        return json_response(app.state.searcher.page(q, mode=mode, page=str(page), sort=sort, zone=zone,
                                                     filters={"venue": venue, "year": year, "type": type, "award": award, "session": session,
                                                  "topic": topic}))

    @app.get("/api/paper/{paper_id}", response_model=m.PaperPage, tags=["papers"],
             responses={404: {"model": m.ErrorOut}})
    def api_paper(request: Request, paper_id: str,
                  similar: str | None = Query(None, description="background, method or result: similar in that respect"),
                  tz: str | None = None):
        """A paper: abstract, every appearance, links, BibTeX and similar papers."""
        return json_response(views.paper_page(catalog, paper_id, zone_of(request, tz), similar_facet=similar))

    @app.get("/api/author/{name:path}", response_model=m.AuthorPage, tags=["papers"],
             responses={404: {"model": m.ErrorOut}})
    def api_author(request: Request, name: str, tz: str | None = None):
        """An author's papers in this catalogue and their co-authors with counts."""
        return json_response(views.author_page(catalog, name, zone_of(request, tz)))

    @app.get("/api/venue/{venue}", response_model=m.VenuePage, tags=["programs"],
             responses={404: {"model": m.ErrorOut}})
    def api_venue(request: Request, venue: str, year: int | None = None, page: int = Query(1, ge=1),
                  tz: str | None = None):
        """A venue's years, or with a year its sessions and papers in slot order (paged)."""
        return json_response(views.venue_page(catalog, venue, year, page, zone_of(request, tz), app.state.venues))

    @app.get("/api/session", response_model=m.SessionPage, tags=["programs"],
             responses={404: {"model": m.ErrorOut}})
    def api_session(request: Request, name: str, venue: str = "", year: int | None = None, tz: str | None = None):
        """The papers of one session in slot order."""
        return json_response(views.session_page(catalog, venue, year, name, zone_of(request, tz)))

    @app.get("/api/venues", response_model=m.HomePage, tags=["programs"])
    def api_venues(request: Request, tz: str | None = None):
        """Paper counts per venue and year."""
        return json_response(views.home_page(catalog, zone_of(request, tz), app.state.venues, app.state.searcher.available))

    from paperscope.web import schedule_routes

    app.include_router(schedule_routes.router)  # the planner's pages: /schedule, /agenda, /plan
    app.include_router(__import__("paperscope.web.library_routes", fromlist=["router"]).router)  # /library, /foryou, /feed/{token}.atom
    app.include_router(__import__("paperscope.web.map_routes", fromlist=["router"]).router)  # /map, /topics, /topic/{id}
    from paperscope.web import auth

    auth.install(app, catalog, accounts, public)  # server mode: accounts, sessions, CSRF; the laptop: nothing
    guards.install(app, error_page)  # body size limits, query length, the errors the API documents
    return app


def app_from_env() -> FastAPI:
    """The app over ``$PAPERSCOPE_DB`` (or the default catalogue): for ``uvicorn --factory`` and workers."""
    from paperscope.cli.app import resolve_db

    return create_app(resolve_db(None))
