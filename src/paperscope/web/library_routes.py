"""The library and "For you" on the web, each page with a JSON twin (``?format=json``), the private Atom
feeds, and the Save / "Not relevant" buttons other pages include (``library_buttons.html``).

Mounted by the web app with ``app.include_router(library_routes.router)``; it reads the catalogue and
the templates the app keeps in ``app.state``.

Writes are HTML forms that POST here with a CSRF token equal to the ``csrf`` cookie (double submit,
SameSite=Strict, shared with the planner's pages), and a request whose ``Origin`` is another site is
refused. The Save and "Not relevant" buttons sit on pages rendered elsewhere, which may carry no
token: those two writes are also taken when the browser vouches that the form comes from this site
(``Origin`` or ``Sec-Fetch-Site: same-origin``); otherwise they lead to a page asking to confirm,
which writes nothing by itself. ``/library.js`` (loaded by the library's pages; other pages may load
it too) marks saved papers and fills a missing token. The JSON write API only takes
``application/json``.

Whose library: ``request.app.state.library_user(request)`` (or ``agenda_user``) when the app defines
it (the multi-user server), else the laptop's single user ``"local"``.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlparse

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel

from paperscope.web.guards import DateOrEmpty, RowId, errors

router = APIRouter()
CSRF_COOKIE = "csrf"
LOCAL_USER = "local"
MAX_IMPORT_BYTES = 20 * 1024 * 1024

LIBRARY_CSS = """
.lib-buttons { display: inline-flex; gap: .4rem; flex-wrap: wrap; margin: .3rem 0; }
.lib-buttons form { display: inline; margin: 0; }
.lib-button { font-size: .85rem; padding: .15rem .65rem; cursor: pointer; white-space: nowrap; }
.lib-button.on { font-weight: 600; border-color: var(--link); }
.lib-layout { display: grid; grid-template-columns: 14rem minmax(0, 1fr); gap: 1.4rem; }
.lib-side h2 { font-size: .78rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 1rem 0 .3rem; }
.lib-side ul { list-style: none; padding: 0; margin: 0; }
.lib-side li a { display: flex; justify-content: space-between; padding: .15rem .4rem; border-radius: 4px; }
.lib-side li a.active { background: var(--accent); color: #fff; }
.lib-side form { margin: .4rem 0 1rem; }
.lib-side input[type=text], .lib-side input[type=file] { width: 100%; font: inherit; padding: .3rem; margin-bottom: .3rem; box-sizing: border-box; }
.lib-entry { padding: .7rem 0; border-bottom: 1px solid var(--line); }
.lib-entry h3 { margin: 0 0 .2rem; font-size: 1.02rem; }
.lib-entry .meta { font-size: .88rem; color: var(--muted); }
.lib-entry details { margin-top: .3rem; }
.lib-entry textarea { width: 100%; min-height: 3.5rem; font: inherit; box-sizing: border-box; }
.lib-edit { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
.lib-edit label { font-size: .85rem; color: var(--muted); }
.lib-state-read { opacity: .8; }
.lib-tag { display: inline-block; font-size: .78rem; padding: 0 .45rem; border-radius: 99px; background: var(--badge); margin-right: .25rem; }
.foryou-list { list-style: none; padding: 0; margin: 0; }
.foryou-item { padding: .8rem 0; border-bottom: 1px solid var(--line); }
.foryou-item h3 { margin: 0 0 .2rem; font-size: 1.05rem; }
.foryou-reason { font-size: .9rem; color: var(--muted); margin: .25rem 0; }
.foryou-reason .term { display: inline-block; padding: 0 .4rem; border-radius: 4px; background: var(--badge); margin: 0 .15rem .15rem 0; color: var(--text); }
.foryou-tabs a { margin-right: .8rem; }
.foryou-tabs a.active { font-weight: 600; text-decoration: underline; }
.feed-link { font-size: .88rem; }
.import-report li { font-size: .9rem; }
@media (max-width: 760px) { .lib-layout { grid-template-columns: minmax(0, 1fr); } }
"""

LIBRARY_JS = r"""
/* paperscope library buttons: fill a missing CSRF token, save / mark without reloading, show saved state. */
(function () {
  "use strict";
  if (window.__paperscopeLibrary) return;
  window.__paperscopeLibrary = true;
  var token = null;
  function getToken() {
    if (token) return Promise.resolve(token);
    return fetch("/library/token", {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (d) { token = d.csrf; return token; });
  }
  function init() {
    var forms = Array.prototype.slice.call(document.querySelectorAll("form[data-library-action]"));
    if (!forms.length) return;
    var ids = {};
    forms.forEach(function (f) { ids[f.getAttribute("data-library-paper")] = true; });
    var list = Object.keys(ids).slice(0, 200);
    fetch("/api/library/status?ids=" + encodeURIComponent(list.join(",")), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (st) {
        if (!st) return;
        forms.forEach(function (f) { mark(f, st); });
      }).catch(function () {});
    forms.forEach(function (f) {
      var next = f.querySelector("input[name=next]");
      if (next && !next.value) next.value = location.pathname + location.search;
      f.addEventListener("submit", function (ev) {
        var input = f.querySelector("input[name=csrf]");
        if (input && input.value) return;   /* a token is there: the plain form post works */
        ev.preventDefault();
        getToken().then(function (t) {
          document.querySelectorAll("form[data-library-action] input[name=csrf]").forEach(function (i) { i.value = t; });
          f.submit();
        }, function () { f.submit(); });
      });
    });
  }
  function mark(f, st) {
    var id = f.getAttribute("data-library-paper"), action = f.getAttribute("data-library-action");
    var button = f.querySelector("button");
    if (!button) return;
    if (action === "save" && st.saved && st.saved.indexOf(id) >= 0) {
      button.textContent = "Saved ✓"; button.classList.add("on"); button.title = "In your library (saving again keeps it)";
    }
    if (action === "not-relevant" && st.not_relevant && st.not_relevant.indexOf(id) >= 0) {
      button.textContent = "Marked not relevant"; button.classList.add("on"); button.disabled = true;
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
"""


# =============================================================================================
# Plumbing (the planner's CSRF pattern, same cookie)
# =============================================================================================


def _catalog(request: Request):
    return request.app.state.catalog


def _env(request: Request):
    env = getattr(request.app.state, "templates", None)
    if env is None:
        from paperscope.web.app import make_templates

        env = request.app.state.templates = make_templates()
    return env


def library_user(request: Request) -> str:
    for name in ("library_user", "agenda_user"):
        who = getattr(request.app.state, name, None)
        if callable(who):
            return who(request)
    return LOCAL_USER


def _zone(request: Request, tz: str | None = None):
    from paperscope.web.timefmt import resolve_zone

    return resolve_zone(tz, request.cookies.get("tz"))


def _csrf(request: Request) -> tuple[str, bool]:
    """(the token forms must carry, whether to set it as the cookie). With accounts (server mode) it is
    the session's token, which the sign-in middleware checks and sets as the cookie itself."""
    session = getattr(request.state, "session", None)
    if session is not None and getattr(session, "csrf_token", None):
        return session.csrf_token, False
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32 and token.isalnum():
        return token, False
    return secrets.token_hex(24), True


def _set_csrf(response: Response, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=7 * 24 * 3600)


def _foreign_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin == "null":
        return True
    return bool(origin) and urlparse(origin).netloc != request.headers.get("host", "")


def _token_ok(request: Request, token: str) -> bool:
    session = getattr(request.state, "session", None)
    if session is not None and getattr(session, "csrf_token", None):
        return bool(token) and secrets.compare_digest(session.csrf_token, token)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie and token) and secrets.compare_digest(cookie, token)


def _same_origin(request: Request) -> bool:
    """The browser says this request comes from a page of this site (``Origin`` or ``Sec-Fetch-Site``;
    a page elsewhere cannot make a browser say so)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlparse(origin).netloc == request.headers.get("host", ""):
        return True
    return request.headers.get("sec-fetch-site") == "same-origin"


def _check_write(request: Request, token: str) -> None:
    if _foreign_origin(request):
        raise HTTPException(403, "This form was sent from another site; it was refused.")
    if not _token_ok(request, token):
        raise HTTPException(403, "This form has expired (its security token does not match). Reload the page and try again.")


def _back(request: Request, target: str | None, default: str) -> str:
    """Where a form returns to: its ``next``, else the page it was sent from (same site only)."""
    if target:
        return _safe_next(target, default)
    referer = urlparse(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.headers.get("host", "") and referer.path:
        return _safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), default)
    return default


def _safe_next(target: str | None, default: str) -> str:
    """A redirect target on this site only (a path, never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _render(request: Request, template: str, data: dict[str, Any], json_data: Any = None, status: int = 200) -> Response:
    if request.query_params.get("format") == "json":
        return JSONResponse(json_data if json_data is not None else data, status_code=status)
    token, new = _csrf(request)
    zone = _zone(request)
    html = _env(request).get_template(template).render(
        page=None, zone=zone, request=request, path=request.url.path, query=request.url.query, csrf_token=token, **data)
    response = HTMLResponse(html, status_code=status)
    if new:
        _set_csrf(response, token)
    return response


def _confirm(request: Request, action: str, paper_id: str, tag: str, next_: str) -> Response:
    """A write that came without a valid token (the page that sent it set no cookie): ask to confirm."""
    from paperscope.web.views import NotFound

    paper = _catalog(request).paper(paper_id)
    if paper is None:
        raise NotFound(f"No paper with id “{paper_id}” in this catalogue.")
    return _render(request, "library_confirm.html", {"action": action, "paper": paper, "tag": tag,
                                                     "next": _back(request, next_, f"/paper/{quote(paper_id, safe='')}")})


def _require_json(request: Request) -> None:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise HTTPException(415, "Send JSON (Content-Type: application/json).")


def _lib_error(exc: Exception) -> HTTPException:
    return HTTPException(400, str(exc))


# =============================================================================================
# Static bits
# =============================================================================================


@router.get("/library.css", include_in_schema=False)
def library_css():
    return PlainTextResponse(LIBRARY_CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


@router.get("/library.js", include_in_schema=False)
def library_js():
    return PlainTextResponse(LIBRARY_JS, media_type="text/javascript", headers={"cache-control": "public, max-age=3600"})


@router.get("/library/token", include_in_schema=False)
def library_token(request: Request):
    """This site's CSRF token for the buttons on pages that did not set it (same-origin readers only)."""
    token, new = _csrf(request)
    response = JSONResponse({"csrf": token}, headers={"cache-control": "no-store"})
    if new:
        _set_csrf(response, token)
    return response


# =============================================================================================
# Library page
# =============================================================================================


def _entry_view(e) -> dict[str, Any]:
    d = e.as_dict()
    d["url"] = f"/paper/{quote(e.paper_id, safe='')}" if e.paper_id else None
    d.pop("extra", None)
    return d


def _library_data(request: Request, tag: str, state: str, q: str) -> dict[str, Any]:
    from paperscope import library as lib

    catalog, user = _catalog(request), library_user(request)
    if state and state not in ("unread", "reading", "read"):
        raise HTTPException(400, "The read state is unread, reading or read.")
    try:
        found = lib.entries(catalog, user, tag=tag or None, read_state=state or None, query=q or None)
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    from paperscope.catalog import library as store

    return {"tag": tag or None, "state": state or None, "q": q or None,
            "total": store.entry_count(catalog, user),
            "tags": [{"tag": t, "papers": n} for t, n in lib.tags(catalog, user)],
            "entries": [_entry_view(e) for e in found]}


@router.get("/library", include_in_schema=False)
def library_page(request: Request, tag: str = "", state: str = "", q: str = ""):
    data = _library_data(request, tag, state, q)
    report = request.query_params.get("imported")
    return _render(request, "library.html", {"lib": data, "imported": report}, json_data=data)


@router.get("/api/library", tags=["library"])
def api_library(request: Request, tag: str = "", state: Literal["", "unread", "reading", "read"] = "",
                q: str = "") -> dict[str, Any]:
    """Your library: entries (saved catalogue papers and profile-only papers) with tags, notes, read state."""
    return _library_data(request, tag, state, q)


@router.get("/api/library/status", tags=["library"])
def api_library_status(request: Request, ids: str = Query("", description="Comma-separated paper ids")) -> dict[str, Any]:
    """Which of these papers are in your library, and which you marked not relevant."""
    from paperscope.catalog import library as store
    from paperscope.library import saved_ids

    wanted = [i for i in ids.split(",") if i][:500]
    catalog, user = _catalog(request), library_user(request)
    marked = {f["paper_id"] for f in store.list_feedback(catalog, user)}
    return {"saved": sorted(saved_ids(catalog, user, wanted)), "not_relevant": sorted(set(wanted) & marked)}


@router.get("/library/save", include_in_schema=False)
def library_save_confirm(request: Request, paper_id: str, tag: str = "", next: str = ""):
    return _confirm(request, "save", paper_id, tag, next)


@router.post("/library/save", include_in_schema=False)
def library_save_form(request: Request, paper_id: str = Form(...), tag: str = Form(""), csrf: str = Form(""),
                      next: str = Form("")):
    from paperscope import library as lib

    if _foreign_origin(request):
        raise HTTPException(403, "This form was sent from another site; it was refused.")
    if not (_token_ok(request, csrf) or _same_origin(request)):
        return _confirm(request, "save", paper_id, tag, next)
    try:
        lib.save(_catalog(request), library_user(request), paper_id, tags=[tag] if tag else [])
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    return RedirectResponse(_back(request, next, "/library"), status_code=303)


@router.post("/library/remove", include_in_schema=False)
def library_remove_form(request: Request, entry: str = Form(...), csrf: str = Form(""), next: str = Form("")):
    from paperscope import library as lib

    _check_write(request, csrf)
    try:
        lib.remove(_catalog(request), library_user(request), [entry])
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    return RedirectResponse(_safe_next(next, "/library"), status_code=303)


@router.post("/library/entry", include_in_schema=False)
def library_entry_form(request: Request, entry: str = Form(...), csrf: str = Form(""), note: str = Form(""),
                       state: str = Form("unread"), tags: str = Form(""), next: str = Form("")):
    """Edit one entry: its note, read state and tags (comma-separated; the form shows the current ones)."""
    from paperscope import library as lib

    _check_write(request, csrf)
    catalog, user = _catalog(request), library_user(request)
    try:
        found = lib.resolve(catalog, user, [entry])[0]
        if not found:
            raise lib.LibraryError("that entry is not in your library (any more)")
        e = found[0]
        lib.set_note(catalog, user, [str(e.id)], note.strip())
        lib.set_read(catalog, user, [str(e.id)], state)
        wanted = lib.clean_tags([tags])
        lib.tag(catalog, user, [str(e.id)], add=wanted, remove_=[t for t in e.tags if t not in wanted])
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    return RedirectResponse(_safe_next(next, "/library"), status_code=303)


@router.post("/library/mine", include_in_schema=False)
def library_mine_form(request: Request, author: str = Form(...), csrf: str = Form(""), tag: str = Form("mine")):
    from paperscope import library as lib

    _check_write(request, csrf)
    try:
        result = lib.add_my_papers(_catalog(request), library_user(request), author, tag or "mine")
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    return RedirectResponse("/library?" + urlencode({"tag": result.tag}), status_code=303)


@router.post("/library/import", include_in_schema=False)
async def library_import_form(request: Request, file: UploadFile = File(...), csrf: str = Form(""), tag: str = Form("")):
    """Import a BibTeX / CSL JSON / paperscope export file; shows what matched."""
    from paperscope import library as lib

    _check_write(request, csrf)
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(413, "That file is larger than 20 MB; import it with `paperscope library import`.")
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        report = lib.import_text(_catalog(request), library_user(request), text, file.filename or "upload", tags=[tag] if tag else [])
    except (lib.LibraryError, ValueError) as exc:
        raise _lib_error(exc) from None
    data = _library_data(request, "", "", "")
    return _render(request, "library.html", {"lib": data, "imported": report.as_dict()}, json_data=report.as_dict())


@router.get("/library/export.json", include_in_schema=False)
def library_export_json(request: Request):
    import json

    from paperscope.library import export_library

    data = json.dumps(export_library(_catalog(request), library_user(request)), ensure_ascii=False, indent=1)
    return Response(data, media_type="application/json; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-library.json"'})


@router.get("/library/export.bib", include_in_schema=False)
def library_export_bib(request: Request, tag: str = ""):
    from paperscope.library import export_bibtex

    data = export_bibtex(_catalog(request), library_user(request), tag or None)
    return Response(data, media_type="application/x-bibtex; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-library.bib"'})


class SaveIn(BaseModel):
    paper_id: str
    tags: list[str] = []
    note: str | None = None
    read_state: Literal["unread", "reading", "read"] | None = None


@router.post("/api/library", tags=["library"], responses=errors(404, 415))
def api_library_save(request: Request, body: SaveIn) -> dict[str, Any]:
    """Save a catalogue paper (saving again adds tags and keeps the rest)."""
    from paperscope import library as lib

    _require_json(request)
    if _catalog(request).paper(body.paper_id) is None:
        raise HTTPException(404, f"No paper with id “{body.paper_id}” in this catalogue.")
    try:
        entry, new = lib.save(_catalog(request), library_user(request), body.paper_id, body.tags, body.note, body.read_state)
    except lib.LibraryError as exc:
        raise _lib_error(exc) from None
    return {"entry": _entry_view(entry), "new": new}


@router.delete("/api/library/{entry_id:int}", tags=["library"], responses=errors(404))
def api_library_remove(request: Request, entry_id: RowId) -> dict[str, Any]:
    """Remove one entry of your library."""
    from paperscope import library as lib

    try:
        n = lib.remove(_catalog(request), library_user(request), [str(entry_id)])
    except lib.LibraryError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"removed": n}


# =============================================================================================
# For you
# =============================================================================================


def _foryou_data(request: Request, tag: str, since: str, limit: int) -> dict[str, Any]:
    from paperscope import library as lib
    from paperscope.catalog import library as store
    from paperscope.recommend import RecommendError, recommend

    catalog, user = _catalog(request), library_user(request)
    try:
        result = recommend(catalog, user, tag=tag or None, since=since or None, limit=limit)
    except RecommendError as exc:
        raise HTTPException(400, str(exc)) from None
    data = result.as_dict()
    for item in data["items"]:
        item["url"] = f"/foryou/open/{quote(item['id'], safe='')}"
    token = store.feed_token(catalog, user, tag or "")
    base = str(request.base_url).rstrip("/")
    data["feed_url"] = f"{base}/feed/{token}.atom"
    data["tags"] = [{"tag": t, "papers": n} for t, n in lib.tags(catalog, user)]
    return data


@router.get("/foryou", include_in_schema=False)
def foryou_page(request: Request, tag: str = "", since: str = "", limit: int = Query(20, ge=1, le=100)):
    data = _foryou_data(request, tag, since, limit)
    return _render(request, "foryou.html", {"fy": data}, json_data=data)


@router.get("/api/recommend", tags=["library"])
def api_recommend(request: Request, tag: str = Query("", description="A tag of your library (default: all of it)"),
                  since: DateOrEmpty = Query("", description="Only papers added since this date, YYYY-MM-DD"),
                  limit: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
    """Papers for you, each with its reason; saved, seen and "not relevant" papers left out."""
    return _foryou_data(request, tag, str(since), limit)


@router.get("/foryou/open/{paper_id}", include_in_schema=False)
def foryou_open(request: Request, paper_id: str):
    """Follow a recommendation: the paper counts as seen (it will not be recommended again)."""
    from paperscope.catalog import library as store

    if _catalog(request).paper(paper_id) is not None:
        store.mark_seen(_catalog(request), library_user(request), [paper_id], "opened")
    return RedirectResponse(f"/paper/{quote(paper_id, safe='')}", status_code=303)


@router.get("/foryou/not-relevant", include_in_schema=False)
def not_relevant_confirm(request: Request, paper_id: str, tag: str = "", next: str = ""):
    return _confirm(request, "not-relevant", paper_id, tag, next)


@router.post("/foryou/not-relevant", include_in_schema=False)
def not_relevant_form(request: Request, paper_id: str = Form(...), tag: str = Form(""), csrf: str = Form(""),
                      next: str = Form(""), undo: str = Form("")):
    from paperscope.recommend import RecommendError, mark_not_relevant, undo_not_relevant

    if _foreign_origin(request):
        raise HTTPException(403, "This form was sent from another site; it was refused.")
    if not (_token_ok(request, csrf) or _same_origin(request)):
        return _confirm(request, "not-relevant", paper_id, tag, next)
    try:
        if undo:
            undo_not_relevant(_catalog(request), library_user(request), paper_id)
        else:
            mark_not_relevant(_catalog(request), library_user(request), paper_id, tag or None)
    except RecommendError as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse(_back(request, next, "/foryou"), status_code=303)


class FeedbackIn(BaseModel):
    paper_id: str
    tag: str | None = None


@router.post("/api/feedback", tags=["library"], responses=errors(404, 415))
def api_feedback(request: Request, body: FeedbackIn) -> dict[str, Any]:
    """Mark a paper "not relevant": it is hidden, and papers like it are demoted."""
    from paperscope.recommend import RecommendError, mark_not_relevant

    _require_json(request)
    try:
        new = mark_not_relevant(_catalog(request), library_user(request), body.paper_id, body.tag)
    except RecommendError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"paper_id": body.paper_id, "new": new}


@router.delete("/api/feedback/{paper_id}", tags=["library"])
def api_feedback_undo(request: Request, paper_id: str) -> dict[str, Any]:
    from paperscope.recommend import undo_not_relevant

    return {"removed": undo_not_relevant(_catalog(request), library_user(request), paper_id)}


# =============================================================================================
# Atom feeds at private URLs
# =============================================================================================


@router.get("/feed/{token}.atom", include_in_schema=False)
def atom_feed(request: Request, token: str):
    from paperscope.catalog import library as store
    from paperscope.digest import atom_feed as build

    owner = store.feed_owner(_catalog(request), token)
    if owner is None:
        # the same answer for a wrong and a revoked token: a feed URL is a secret
        return PlainTextResponse("No feed at this address (it may have been revoked).", status_code=404)
    user, tag = owner
    base = str(request.base_url).rstrip("/")
    body = build(_catalog(request), user, tag or None, base, str(request.url))
    return Response(body, media_type="application/atom+xml; charset=utf-8",
                    headers={"cache-control": "private, max-age=600", "x-robots-tag": "noindex"})
