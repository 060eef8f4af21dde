"""The topic map and topic pages on the web, each with a JSON twin.

Pages: ``/map`` (every paper of a scope as a point, coloured by topic), ``/topics`` (the topic
tree of a scope), ``/topic/{id}`` (the papers of one topic). JSON: ``/api/map``, ``/api/topics``,
``/api/topic/{id}``, ``/api/map/match`` (which points a search matches) and ``POST
/api/map/selection`` (the papers and key phrases of points picked with the lasso or box).

Scope parameters, the same everywhere: ``venue``, ``year`` and ``within`` (a search query whose
results are the scope; ``/topics`` and ``/api/topics`` also take it as ``q``, like ``paperscope topics
--query``). On ``/map``, ``q`` is what the search box highlights, not the scope.

A map is never computed inside a request: when the scope's map is not cached, it is computed in a
background thread (``paperscope.topics.start_topic_map``); the JSON says ``"status": "computing"``
with the progress (HTTP 202), or ``"stale"`` with the scope's previous map while a new one is made,
and the page polls until it is ``"ready"``.

Mounted by the web app with ``app.include_router(map_routes.router)``; it reads ``app.state.catalog``
and ``app.state.templates`` and keeps its caches in module globals (per process).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from paperscope import topics as t
from paperscope.web.guards import YearOrEmpty, errors

log = logging.getLogger("paperscope.web")
router = APIRouter()

MAX_SELECTION_LIST = 200
BUSY = "other topic maps are being computed; ask again after Retry-After seconds"
RETRY_LATER = {"Retry-After": "30"}
_PAYLOADS: "OrderedDict[str, bytes]" = OrderedDict()   # map key -> its JSON
_PAYLOADS_LOCK = threading.Lock()
_PAYLOADS_MAX = 4


# =============================================================================================
# Plumbing
# =============================================================================================


def _catalog(request: Request):
    return request.app.state.catalog


def _env(request: Request):
    env = getattr(request.app.state, "templates", None)
    if env is None:
        from paperscope.web.app import make_templates

        env = request.app.state.templates = make_templates()
    return env


def _zone(request: Request, tz: str | None):
    from paperscope.web.timefmt import resolve_zone

    return resolve_zone(tz, request.cookies.get("tz"))


def _scope(venue: str, year: str, within: str) -> t.Scope:
    try:
        return t.Scope.of(venue, year, within)
    except t.TopicsError as exc:
        raise HTTPException(400, str(exc)) from None


def _not_found(message: str) -> Exception:
    from paperscope.web.views import NotFound

    return NotFound(message)


def _render(request: Request, template: str, tz: str | None, data: dict[str, Any], json_data: Any = None,
            status: int = 200) -> Response:
    if request.query_params.get("format") == "json":
        return JSONResponse(json_data if json_data is not None else data, status_code=status)
    html = _env(request).get_template(template).render(
        page=None, zone=_zone(request, tz), request=request, path=request.url.path, query=request.url.query, **data)
    return HTMLResponse(html, status_code=status)


def _user(request: Request) -> str | None:
    """Whose library the layers show: the app's library/agenda user, ``"local"`` on the laptop, or
    None when nobody is signed in on a server (the map is public; the layers are not)."""
    for name in ("library_user", "agenda_user"):
        who = getattr(request.app.state, name, None)
        if callable(who):
            try:
                return who(request)
            except Exception:
                return None
    return "local"


def map_url(scope: t.Scope, **extra: str) -> str:
    params = scope.params() | {k: v for k, v in extra.items() if v}
    return "/map" + ("?" + urlencode(params) if params else "")


def topics_url(scope: t.Scope) -> str:
    params = scope.params()
    return "/topics" + ("?" + urlencode(params) if params else "")


def topic_url(topic_id: str) -> str:
    return f"/topic/{topic_id}"


def _library_layers(request: Request, tmap: t.TopicMap, recommended: bool = False) -> dict[str, list[int] | None]:
    """The user's library (and, when asked, recommendations) as point indices; None where the
    feature is absent, nobody is signed in, or the library is empty (the page then hides the layer)."""
    layers: dict[str, list[int] | None] = {"library": None, "recommended": None}
    catalog, user = _catalog(request), _user(request)
    if user is None:
        return layers
    try:
        from paperscope.library import library_paper_ids
    except ImportError:
        return layers
    try:
        saved = library_paper_ids(catalog, user)
    except Exception:  # a library that cannot be read hides the layer; the map still works
        log.exception("reading the library for the map")
        return layers
    layers["library"] = sorted(i for i in (tmap.position(p) for p in saved) if i is not None) or None
    if recommended and saved:
        try:
            from paperscope.recommend import recommend

            result = recommend(catalog, user, limit=50, candidate_ids=tmap.ids)
            picks = (tmap.position(r.paper["id"]) for r in result.items)
            layers["recommended"] = sorted(i for i in picks if i is not None) or None
        except Exception:
            log.exception("recommendations for the map")
    return layers


# =============================================================================================
# JSON shapes
# =============================================================================================


def topic_json(topic: t.Topic) -> dict[str, Any]:
    return {"id": topic.id, "level": topic.level, "label": topic.label, "terms": topic.terms, "size": topic.size,
            "central": topic.central, "parent": topic.parent, "children": topic.children, "x": topic.x, "y": topic.y,
            "url": topic_url(topic.id)}


def map_payload(tmap: t.TopicMap) -> dict[str, Any]:
    """The map as the page draws it: points as parallel arrays (compact for 100k papers)."""
    broad_index = {b.id: b.index for b in tmap.broad}
    return {
        "map": tmap.summary(),
        "points": {
            "ids": tmap.ids,
            "x": [round(float(v), 1) for v in tmap.xy[:, 0]],
            "y": [round(float(v), 1) for v in tmap.xy[:, 1]],
            "topic": tmap.fine.tolist(),
            "titles": tmap.titles or [""] * len(tmap.ids),
        },
        "broad": [topic_json(b) | {"index": b.index} for b in tmap.broad],
        "fine": [topic_json(f) | {"index": f.index, "broad": broad_index.get(f.parent or "", 0)} for f in tmap.fine_topics],
    }


def _payload_bytes(tmap: t.TopicMap) -> bytes:
    with _PAYLOADS_LOCK:
        hit = _PAYLOADS.get(tmap.key)
        if hit is not None:
            _PAYLOADS.move_to_end(tmap.key)
            return hit
    packed = json.dumps(map_payload(tmap), ensure_ascii=False, separators=(",", ":")).encode()
    with _PAYLOADS_LOCK:
        _PAYLOADS[tmap.key] = packed
        while len(_PAYLOADS) > _PAYLOADS_MAX:
            _PAYLOADS.popitem(last=False)
    return packed


def _splice(body: bytes, extra: dict[str, Any]) -> bytes:
    """The cached map JSON with per-request fields added (status, progress, layers)."""
    head = json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode()
    return head[:-1] + b"," + body[1:]


# =============================================================================================
# The map
# =============================================================================================


class MapStatus(BaseModel):
    status: str = Field(description="ready, stale (an older map, shown while the new one is computed), computing or failed")
    progress: dict[str, Any] | None = None
    scope: dict[str, Any]
    message: str = ""


@router.api_route("/map", methods=["GET", "HEAD"], include_in_schema=False)
def map_page(request: Request, venue: str = "", year: str = "", within: str = "", q: str = "", topic: str = "",
             tz: str | None = None):
    scope = _scope(venue, year, within)
    if request.query_params.get("format") == "json":
        return api_map(request, venue, year, within, q)
    api = "/api/map?" + urlencode(scope.params()) if scope.params() else "/api/map"
    data = {"scope": scope, "scope_text": scope.describe(), "api": api, "q": q, "topic": topic,
            "topics_link": topics_url(scope), "venue": venue, "year": year, "within": within}
    return _render(request, "map.html", tz, data)


@router.get("/api/map", tags=["topics"], response_model=MapStatus, status_code=200,
            responses={202: {"model": MapStatus, "description": "the map is being computed; poll again"},
                       404: {"model": MapStatus, "description": "no papers in this scope (status failed)"},
                       429: {"model": MapStatus, "description": BUSY}})
def api_map(request: Request, venue: str = "", year: YearOrEmpty = "",
            within: str = Query("", description="a search query whose results are the scope"),
            q: str = Query("", description="a search to highlight: its matches come as `highlight` point indices")):
    """Every paper of a scope as a point (x, y, fine topic, title), the topics (broad and fine, with
    labels and label positions), and the user's library/recommendation layers where available."""
    scope = _scope(venue, year, within)
    catalog = _catalog(request)
    try:
        tmap, job, fresh = t.map_status(catalog, scope)
    except t.TopicsBusy as exc:
        return JSONResponse({"status": "computing", "message": f"{str(exc)[:1].upper()}{str(exc)[1:]}.",
                             "scope": scope.params(), "progress": None}, status_code=429, headers=RETRY_LATER)
    except t.TopicsError as exc:
        return JSONResponse({"status": "failed", "message": str(exc), "scope": scope.params(), "progress": None},
                            status_code=404)
    progress = job.progress() if job is not None else None
    if tmap is None:
        failed = job is not None and job.error is not None
        body = {"status": "failed" if failed else "computing", "progress": progress, "scope": scope.params(),
                "message": (job.error if failed else f"Computing the topic map of {scope.describe()}…") if job else ""}
        return JSONResponse(body, status_code=500 if failed else 202)
    extra: dict[str, Any] = {"status": "ready" if fresh else "stale", "progress": progress, "scope": scope.params(),
                             "message": "" if fresh else "Papers changed since this map was made; a new one is being computed.",
                             "layers": _library_layers(request, tmap)}
    if q.strip():
        extra["highlight"] = _matches(catalog, tmap, q)
    body = _splice(_payload_bytes(tmap), extra)
    headers = {"cache-control": "no-store", "vary": "accept-encoding"}
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 50_000:
        # 100k points are ~10 MB of JSON: level 1 takes ~50 ms and sends a quarter of it
        return Response(gzip.compress(body, compresslevel=1), media_type="application/json",
                        headers=headers | {"content-encoding": "gzip"})
    return Response(body, media_type="application/json", headers=headers)


def _matches(catalog, tmap: t.TopicMap, q: str) -> list[int]:
    try:
        ids = t.search_ids(catalog, q, venue=tmap.scope.venue, year=tmap.scope.year)
    except Exception:  # an index being rebuilt: no highlight rather than no map
        return []
    return sorted(i for i in (tmap.position(p) for p in ids) if i is not None)


@router.get("/api/map/match", tags=["topics"], responses=errors(404))
def api_map_match(request: Request, q: str = Query(..., description="search query (the search language)"),
                  key: str = Query(..., description="the map's key, from /api/map")):
    """The points of a map (indices into its arrays) whose papers match a search."""
    catalog = _catalog(request)
    tmap = t.load_topic_map(catalog, key)
    if tmap is None:
        raise _not_found("That map has been recomputed since; reload the map.")
    matches = _matches(catalog, tmap, q) if q.strip() else []
    return JSONResponse({"q": q, "key": tmap.key, "total": len(matches), "matches": matches})


@router.get("/api/map/layers", tags=["topics"], responses=errors(404))
def api_map_layers(request: Request, key: str = Query(..., description="the map's key, from /api/map")):
    """The user's library and recommended papers on a map (point indices; null when there are none)."""
    tmap = t.load_topic_map(_catalog(request), key)
    if tmap is None:
        raise _not_found("That map has been recomputed since; reload the map.")
    return JSONResponse({"key": tmap.key, "layers": _library_layers(request, tmap, recommended=True)})


class SelectionIn(BaseModel):
    key: str = Field(description="the map's key, from /api/map")
    points: list[int] = Field(default_factory=list, description="indices of the chosen points")
    ids: list[str] = Field(default_factory=list, description="or paper ids")


@router.post("/api/map/selection", tags=["topics"], responses=errors(404))
def api_map_selection(request: Request, body: SelectionIn, tz: str | None = None):
    """The papers picked on a map (lasso or box) and their key phrases against the rest of the scope."""
    catalog = _catalog(request)
    tmap = t.load_topic_map(catalog, body.key)
    if tmap is None:
        raise _not_found("That map has been recomputed since; reload the map.")
    ids = [tmap.ids[i] for i in body.points if 0 <= i < len(tmap.ids)] + [p for p in body.ids if tmap.position(p) is not None]
    ids = list(dict.fromkeys(ids))
    terms = t.selection_terms(catalog, tmap, ids) if ids else []
    from paperscope.web.views import paper_brief

    zone = _zone(request, tz)
    listed = [paper_brief(p, zone).model_dump(mode="json") for p in catalog.papers(ids[:MAX_SELECTION_LIST])]
    counts: dict[str, int] = {}
    for pid in ids:
        topic = tmap.fine_topics[int(tmap.fine[tmap.position(pid)])]
        counts[topic.id] = counts.get(topic.id, 0) + 1
    top_topics = [{"id": k, "label": tmap.topic(k).label, "count": v, "url": topic_url(k)}
                  for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]
    return JSONResponse({"count": len(ids), "terms": terms, "topics": top_topics, "papers": listed,
                         "listed": len(listed)})


# =============================================================================================
# Topics
# =============================================================================================


def _topics_data(request: Request, scope: t.Scope) -> tuple[dict[str, Any], int]:
    catalog = _catalog(request)
    try:
        tmap, job, fresh = t.map_status(catalog, scope)
    except t.TopicsBusy as exc:
        raise HTTPException(429, f"{str(exc)[:1].upper()}{str(exc)[1:]}.", headers=RETRY_LATER) from None
    except t.TopicsError as exc:
        raise _not_found(str(exc)) from None
    progress = job.progress() if job is not None else None
    base = {"scope": scope.params(), "scope_text": scope.describe(), "map_url": map_url(scope), "progress": progress}
    if tmap is None:
        failed = job is not None and job.error is not None
        return base | {"status": "failed" if failed else "computing", "message": job.error if failed and job else "",
                       "broad": [], "map": None}, (500 if failed else 202)
    broad = []
    for b in tmap.broad:
        children = [topic_json(tmap.topic(c)) for c in b.children]
        broad.append(topic_json(b) | {"fine": children})
    return base | {"status": "ready" if fresh else "stale", "map": tmap.summary(), "broad": broad, "message": ""}, 200


@router.api_route("/topics", methods=["GET", "HEAD"], include_in_schema=False)
def topics_page(request: Request, venue: str = "", year: str = "", within: str = "", q: str = "", tz: str | None = None):
    scope = _scope(venue, year, within or q)
    data, status = _topics_data(request, scope)
    titles = {}
    if data["broad"]:
        central = [c for b in data["broad"] for f in b["fine"] for c in f["central"][:1]]
        titles = {p["id"]: p["title"] for p in _catalog(request).papers(central, with_appearances=False)}
    return _render(request, "topics.html", tz, {"t": data, "titles": titles}, json_data=data,
                   status=200 if status == 202 else status)


@router.get("/api/topics", tags=["topics"],
            responses={202: {"description": "the map is being computed; poll again"}, **errors(404, 429)})
def api_topics(request: Request, venue: str = "", year: YearOrEmpty = "", q: str = Query("", description="search query: its results are the scope"),
               within: str = ""):
    """The topics of a scope: broad topics, each with its fine topics (labels, key phrases, sizes,
    most central papers). HTTP 202 with progress while the map is computed."""
    data, status = _topics_data(request, _scope(venue, year, within or q))
    return JSONResponse(data, status_code=status)


def _topic_data(request: Request, topic_id: str, tz: str | None, limit: int) -> dict[str, Any]:
    catalog = _catalog(request)
    try:
        tmap, topic = t.find_topic(catalog, topic_id)
    except t.TopicsError as exc:
        raise _not_found(str(exc)) from None
    from paperscope.web.views import paper_brief

    zone = _zone(request, tz)
    ordered = t.topic_papers(catalog, tmap, topic)
    papers = [paper_brief(p, zone).model_dump(mode="json") for p in catalog.papers(ordered[:limit])]
    parent = tmap.topic(topic.parent) if topic.parent else None
    children = [topic_json(tmap.topic(c)) for c in topic.children]
    siblings = [topic_json(tmap.topic(c)) for c in (parent.children if parent else []) if c != topic.id]
    return {"topic": topic_json(topic), "parent": topic_json(parent) if parent else None, "children": children,
            "siblings": siblings, "scope": tmap.scope.params(), "scope_text": tmap.scope.describe(),
            "map_url": map_url(tmap.scope, topic=topic.id), "topics_url": topics_url(tmap.scope),
            "papers": papers, "shown": len(papers), "total": len(ordered)}


@router.api_route("/topic/{topic_id}", methods=["GET", "HEAD"], include_in_schema=False)
def topic_page(request: Request, topic_id: str, all: str = "", tz: str | None = None):
    data = _topic_data(request, topic_id, tz, 100_000 if all else 100)
    return _render(request, "topic.html", tz, {"t": data}, json_data=data)


@router.get("/api/topic/{topic_id}", tags=["topics"], responses=errors(404))
def api_topic(request: Request, topic_id: str, limit: int = Query(100, ge=1, le=100_000), tz: str | None = None):
    """A topic: its label, key phrases, parent and sub-topics, and its papers, most central first."""
    return JSONResponse(_topic_data(request, topic_id, tz, limit))
