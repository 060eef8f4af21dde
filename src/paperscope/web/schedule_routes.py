"""The planner on the web: Schedule, Agenda and Plan pages, each with a JSON twin (``?format=json``).

Mounted by the web app with ``app.include_router(schedule_routes.router)``. It reads the catalogue
and templates the app keeps in ``app.state`` (``catalog``, ``templates``), so it adds no state of its own.

Writes (starring, unstarring, resolving a clash, accepting a plan) are HTML forms that POST here.
Each form carries a CSRF token that must equal the ``csrf`` cookie (double submit; the cookie is
SameSite=Strict), and a request whose ``Origin`` is another site is refused; the JSON write API only
takes ``application/json``, which a foreign page cannot send without the browser asking first.

Whose agenda: ``request.app.state.agenda_user(request)`` when the app defines it (the multi-user
server), else the laptop's single user ``"local"``.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode, urlparse

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from paperscope.schedule import (
    LOCAL_USER,
    ScheduleError,
    agenda_timed,
    clash_groups,
    entry_agenda_row,
    find_clashes,
    format_range,
    parse_utc,
    plan_agenda_rows,
    program_days,
    schedule_json,
    session_agenda_row,
)
from paperscope.web.guards import ROW_ID_MAX, DayOrAll, ProgramYearOrEmpty, RowId, errors

router = APIRouter()
CSRF_COOKIE = "csrf"
MAX_INTERESTS_CHARS = 20_000

PLANNER_CSS = """
.planner-day { margin: 1.2rem 0 .4rem; }
.planner-session { margin: .8rem 0; }
.planner-session > header { display: flex; flex-wrap: wrap; gap: .2rem 1rem; align-items: baseline; }
.planner-session h3 { margin: 0; font-size: 1.05rem; }
.planner-row { display: grid; grid-template-columns: 9rem minmax(0, 1fr) auto; gap: .8rem; padding: .5rem 1rem;
  border-bottom: 1px solid var(--line); align-items: start; }
.planner-row:last-child { border-bottom: none; }
.planner-row form, .inline-form { display: inline; margin: 0; }
.star { font-size: .85rem; padding: .15rem .6rem; cursor: pointer; white-space: nowrap; }
.star.on { font-weight: 600; }
.clash { border-left: 4px solid var(--accent); }
.clash-pair { margin: .6rem 0; }
.reason { font-size: .85rem; color: var(--muted); margin: .15rem 0 0; }
.plan-form textarea { width: 100%; min-height: 5rem; font: inherit; }
.plan-form .fields { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: end; margin: .5rem 0; }
.plan-summary { margin: .6rem 0; }
.exports a { margin-right: .8rem; }
.print-page { max-width: 48rem; margin: 1rem auto; font-size: 11pt; }
.print-page h1 { font-size: 16pt; }
.print-page table { width: 100%; border-collapse: collapse; }
.print-page td, .print-page th { text-align: left; vertical-align: top; padding: .25rem .4rem; border-bottom: 1px solid #ccc; }
@media (max-width: 760px) { .planner-row { grid-template-columns: minmax(0, 1fr); } }
@media print { .top, .foot, .no-print, form { display: none !important; } body { background: #fff; } }
"""


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


def agenda_user(request: Request) -> str:
    who = getattr(request.app.state, "agenda_user", None)
    return who(request) if callable(who) else LOCAL_USER


def _zone(request: Request, tz: str | None):
    from paperscope.web.timefmt import resolve_zone

    return resolve_zone(tz, request.cookies.get("tz"))


def _csrf(request: Request) -> tuple[str, bool]:
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32 and token.isalnum():
        return token, False
    return secrets.token_hex(24), True


def _check_write(request: Request, token: str) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlparse(origin).netloc != request.headers.get("host", ""):
            raise HTTPException(403, "This form was sent from another site; it was refused.")
    elif origin == "null":
        raise HTTPException(403, "This form was sent from an opaque origin; it was refused.")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not token or not secrets.compare_digest(cookie, token):
        raise HTTPException(403, "This form has expired (its security token does not match). Reload the page and try again.")


def _safe_next(target: str | None, default: str) -> str:
    """A redirect target on this site only (a path, never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _render(request: Request, template: str, zone, data: dict[str, Any], json_data: Any = None,
            status: int = 200) -> Response:
    if request.query_params.get("format") == "json":
        return JSONResponse(json_data if json_data is not None else data, status_code=status)
    token, new = _csrf(request)
    html = _env(request).get_template(template).render(
        page=None, zone=zone, request=request, path=request.url.path, query=request.url.query,
        csrf_token=token, **data)
    response = HTMLResponse(html, status_code=status)
    if new:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=7 * 24 * 3600)
    return response


def _year(text: str | int | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        y = int(str(text).strip())
    except ValueError:
        raise HTTPException(400, f"“{text}” is not a year.") from None
    if not 1900 <= y <= 2200:
        raise HTTPException(400, f"“{text}” is not a year.")
    return y


def _day(text: str | None) -> date | None:
    if not text or text == "all":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"“{text}” is not a day; give it as YYYY-MM-DD.") from None


def _schedule_error(exc: ScheduleError) -> Exception:
    """A 404 that says what is missing (the app renders ``NotFound`` with its message)."""
    from paperscope.web.views import NotFound

    message = str(exc)
    return NotFound(message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."))


def _venues(catalog) -> list[dict[str, Any]]:
    """Venues and years that have a timed program (for the chooser)."""
    seen = {}
    for s in catalog.sessions():
        if s.get("venue") and s.get("starts_at"):
            seen[(s["venue"], s.get("year"))] = seen.get((s["venue"], s.get("year")), 0) + 1
    return [{"venue": v, "year": y, "sessions": n, "url": "/schedule?" + urlencode({"venue": v, "year": y or ""})}
            for (v, y), n in sorted(seen.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))]


def _when(start: str | None, end: str | None, tz) -> str:
    return format_range(parse_utc(start), parse_utc(end), tz)


# =============================================================================================
# Schedule
# =============================================================================================


class ScheduleOut(BaseModel):
    venue: str | None = None
    year: int | None = None
    tz: str
    day: str | None = None
    days: list[dict[str, Any]] = []
    all_days: list[str] = []
    untimed: Any = None
    starred: list[str] = []
    venues: list[dict[str, Any]] = []


def _schedule_data(request: Request, venue: str, year: str, day: str, tz: str | None):
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import load_program

    catalog = _catalog(request)
    zone = _zone(request, tz)
    if not venue:
        return zone, {"venue": None, "year": None, "tz": zone.name, "day": None, "days": [], "all_days": [],
                      "untimed": [], "starred": [], "venues": _venues(catalog)}, None
    y = _year(year)
    try:
        program = load_program(catalog, venue, y)
    except ScheduleError as exc:
        raise _schedule_error(exc) from None
    days = program_days(program, zone.zone)
    chosen = _day(day)
    if chosen is None and day != "all" and days:
        chosen = days[0]
    data = schedule_json(program, zone.zone, chosen)
    data["starred"] = sorted(i.item_key for i in list_agenda(catalog, agenda_user(request), venue, y))
    data["venues"] = []
    return zone, data, program


@router.get("/schedule", include_in_schema=False)
def schedule_page(request: Request, venue: str = "", year: str = "", day: str = "", tz: str | None = None):
    zone, data, _ = _schedule_data(request, venue, year, day, tz)
    starred = set(data["starred"])
    return _render(request, "schedule.html", zone, {"s": data, "starred": starred}, json_data=data)


@router.get("/api/schedule", response_model=ScheduleOut, tags=["planner"], responses=errors(404))
def api_schedule(request: Request, venue: str = Query("", description="e.g. ICLR"), year: ProgramYearOrEmpty = "",
                 day: DayOrAll = Query("", description="YYYY-MM-DD in the zone, or 'all' (default: the first day)"),
                 tz: str | None = Query(None, description="IANA time zone, e.g. Europe/Berlin")):
    """A conference's program by local day and room, each session with its papers."""
    return _schedule_data(request, venue, str(year), str(day), tz)[1]


@router.get("/planner.css", include_in_schema=False)
def planner_css():
    return PlainTextResponse(PLANNER_CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


# =============================================================================================
# Agenda
# =============================================================================================


def _agenda_data(request: Request, zone) -> dict[str, Any]:
    from paperscope.catalog.agenda import list_agenda

    items = list_agenda(_catalog(request), agenda_user(request))
    timed = agenda_timed(items)
    pairs = find_clashes(timed)
    clashing = {k for a, b in pairs for k in (a.key, b.key)}
    days: dict[str, list[dict[str, Any]]] = {}
    out_items = []
    for it in items:
        start = parse_utc(it.starts_at)
        d = it.as_dict() | {
            "when": _when(it.starts_at, it.ends_at, zone.zone),
            "day": start.astimezone(zone.zone).date().isoformat() if start else None,
            "clash": it.item_key in clashing,
        }
        out_items.append(d)
        days.setdefault(d["day"] or "no time given", []).append(d)
    return {
        "tz": zone.name,
        "items": out_items,
        "days": [{"day": k, "items": v} for k, v in days.items()],
        "clashes": [{"a": _short(a.ref, zone), "b": _short(b.ref, zone)} for a, b in pairs],
        "clash_groups": [[_short(t.ref, zone) for t in g] for g in clash_groups(timed)],
    }


def _short(item, zone) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "kind": item.kind, "session": item.session, "room": item.room,
            "when": _when(item.starts_at, item.ends_at, zone.zone), "item_key": item.item_key}


@router.get("/agenda", include_in_schema=False)
def agenda_page(request: Request, tz: str | None = None):
    zone = _zone(request, tz)
    data = _agenda_data(request, zone)
    return _render(request, "agenda.html", zone, {"a": data}, json_data=data)


@router.get("/api/agenda", tags=["planner"])
def api_agenda(request: Request, tz: str | None = None) -> dict[str, Any]:
    """Your starred talks, posters and sessions in time order, with the pairs that clash."""
    return _agenda_data(request, _zone(request, tz))


@router.get("/agenda/print", include_in_schema=False)
def agenda_print(request: Request, tz: str | None = None):
    zone = _zone(request, tz)
    data = _agenda_data(request, zone)
    return _render(request, "agenda_print.html", zone, {"a": data}, json_data=data)


def _star(request: Request, key: str, venue: str, year: str) -> dict[str, Any]:
    """Star the entry or session with ``key`` in the program of venue/year (found again server-side)."""
    from paperscope.catalog.agenda import add_agenda_item
    from paperscope.schedule import load_program

    try:
        program = load_program(_catalog(request), venue, _year(year))
    except ScheduleError as exc:
        raise _schedule_error(exc) from None
    row = None
    for s in program.sessions:
        if s.key == key:
            row = session_agenda_row(s)
            break
        hit = next((e for e in s.entries if e.key == key), None)
        if hit is not None:
            row = entry_agenda_row(hit)
            break
    if row is None:
        raise _schedule_error(ScheduleError("that talk or session is no longer in this program; reload the schedule"))
    item, created = add_agenda_item(_catalog(request), agenda_user(request), row)
    return {"item": item.as_dict(), "created": created}


@router.post("/agenda/add", include_in_schema=False)
def agenda_add_form(request: Request, key: str = Form(...), venue: str = Form(...), year: str = Form(""),
                    csrf: str = Form(""), next: str = Form("")):
    _check_write(request, csrf)
    _star(request, key, venue, year)
    return RedirectResponse(_safe_next(next, "/agenda"), status_code=303)


@router.post("/agenda/remove", include_in_schema=False)
def agenda_remove_form(request: Request, csrf: str = Form(""), id: str = Form(""), key: str = Form(""),
                       next: str = Form("")):
    from paperscope.catalog.agenda import remove_agenda_items

    _check_write(request, csrf)
    ids = [int(id)] if id.isdigit() else []
    remove_agenda_items(_catalog(request), agenda_user(request), ids=ids, keys=[key] if key else [])
    return RedirectResponse(_safe_next(next, "/agenda"), status_code=303)


@router.post("/agenda/resolve", include_in_schema=False)
def agenda_resolve_form(request: Request, keep: str = Form(...), csrf: str = Form(""), next: str = Form("")):
    _check_write(request, csrf)
    _resolve(request, keep)
    return RedirectResponse(_safe_next(next, "/agenda"), status_code=303)


def _resolve(request: Request, keep: str) -> dict[str, Any]:
    from paperscope.catalog.agenda import list_agenda, remove_agenda_items
    from paperscope.schedule import clashing_with

    catalog, user = _catalog(request), agenda_user(request)
    timed = agenda_timed(list_agenda(catalog, user))
    mine = next((t for t in timed if str(t.ref.id) == str(keep)), None)
    if mine is None:
        raise _schedule_error(ScheduleError("that item is not in your agenda (any more)"))
    drop = clashing_with(mine, [t for t in timed if t.key != mine.key])
    remove_agenda_items(catalog, user, ids=[d.ref.id for d in drop])
    return {"kept": mine.ref.as_dict(), "removed": [d.ref.as_dict() for d in drop]}


class StarIn(BaseModel):
    key: str
    venue: str
    year: int | None = Field(None, ge=1900, le=2200)


def _require_json(request: Request) -> None:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise HTTPException(415, "Send JSON (Content-Type: application/json).")


@router.post("/api/agenda", tags=["planner"], responses=errors(404, 415))
def api_agenda_add(request: Request, body: StarIn) -> dict[str, Any]:
    """Star a talk, poster or session by the ``key`` the schedule gives it."""
    _require_json(request)
    return _star(request, body.key, body.venue, str(body.year or ""))


@router.delete("/api/agenda/{item_id:int}", tags=["planner"], responses=errors(404))
def api_agenda_remove(request: Request, item_id: RowId) -> dict[str, Any]:
    """Unstar one item of your agenda."""
    from paperscope.catalog.agenda import remove_agenda_items

    n = remove_agenda_items(_catalog(request), agenda_user(request), ids=[item_id])
    if not n:
        raise _schedule_error(ScheduleError("that item is not in your agenda"))
    return {"removed": n}


class ResolveIn(BaseModel):
    keep: int = Field(ge=1, le=ROW_ID_MAX)


@router.post("/api/agenda/resolve", tags=["planner"], responses=errors(404, 415))
def api_agenda_resolve(request: Request, body: ResolveIn) -> dict[str, Any]:
    """Keep one item and unstar everything that clashes with it."""
    _require_json(request)
    return _resolve(request, str(body.keep))


# ---------------------------------------------------------------------------------------------
# Exports of the agenda
# ---------------------------------------------------------------------------------------------


def _agenda_items_and_papers(request: Request):
    from paperscope.catalog.agenda import list_agenda

    items = list_agenda(_catalog(request), agenda_user(request))
    papers = {p["id"]: p for p in _catalog(request).papers([i.paper_id for i in items if i.paper_id])}
    return items, papers


@router.get("/agenda.ics", include_in_schema=False)
def agenda_ics(request: Request):
    from paperscope.calendar_export import events_from_agenda, to_ical

    items, papers = _agenda_items_and_papers(request)
    data = to_ical(events_from_agenda(items, papers), name="paperscope agenda")
    return Response(data, media_type="text/calendar; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-agenda.ics"'})


@router.get("/agenda.csv", include_in_schema=False)
def agenda_csv(request: Request, tz: str | None = None):
    from paperscope.calendar_export import to_csv

    items, _ = _agenda_items_and_papers(request)
    data = to_csv([i.as_dict() for i in items], _zone(request, tz).zone)
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-agenda.csv"'})


@router.get("/agenda.bib", include_in_schema=False)
def agenda_bib(request: Request):
    from paperscope.export import to_bibtex

    items, papers = _agenda_items_and_papers(request)
    ids = list(dict.fromkeys(i.paper_id for i in items if i.paper_id))
    data = "\n".join(to_bibtex(papers[i]) for i in ids if i in papers)
    return Response(data, media_type="application/x-bibtex; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-agenda.bib"'})


# =============================================================================================
# Plan
# =============================================================================================


def _plan(request: Request, venue: str, year: str, text: str, day: str, mpp: str, tz: str | None, method: str):
    from paperscope.schedule import make_plan

    zone = _zone(request, tz)
    try:
        minutes = float(mpp or 5)
    except ValueError:
        raise HTTPException(400, f"“{mpp}” is not a number of minutes.") from None
    if not 0.5 <= minutes <= 240:
        raise HTTPException(400, "Minutes per poster must be between 0.5 and 240.")
    if method not in ("auto", "embedding", "tfidf"):
        raise HTTPException(400, "The relevance method is auto, embedding or tfidf.")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()][:50]
    if len(text or "") > MAX_INTERESTS_CHARS:
        raise HTTPException(400, "Those interests are too long; a few lines are enough.")
    interests = _interest_lines(request, lines)
    try:
        plan = make_plan(_catalog(request), venue, _year(year), interests, tz=zone.zone, day=_day(day),
                         minutes_per_poster=minutes, method=method)
    except ScheduleError as exc:
        raise _schedule_error(exc) from None
    return zone, plan


def _interest_lines(request: Request, lines: list[str]):
    from paperscope.schedule import interests_from_lines

    return interests_from_lines(lines, _catalog(request))


def _plan_view(plan, zone) -> dict[str, Any]:
    data = plan.as_dict()
    for it in data["items"]:
        it["when"] = _when(it["starts_at"], it["ends_at"], zone.zone)
    return data


@router.get("/plan", include_in_schema=False)
def plan_page(request: Request, venue: str = "", year: str = "", text: str = "", day: str = "", mpp: str = "5",
              tz: str | None = None, method: str = "auto"):
    zone = _zone(request, tz)
    form = {"venue": venue, "year": year, "text": text, "day": day, "mpp": mpp or "5", "method": method}
    data: dict[str, Any] | None = None
    if venue and text.strip():
        zone, plan = _plan(request, venue, year, text, day, mpp, tz, method)
        data = _plan_view(plan, zone)
    venues = _venues(_catalog(request))
    query = urlencode({k: v for k, v in form.items() if v and k != "method"} | ({"tz": tz} if tz else {}))
    return _render(request, "plan.html", zone, {"form": form, "plan": data, "venues": venues, "plan_query": query},
                   json_data=data or {"plan": None, "form": form})


@router.get("/api/plan", tags=["planner"], responses=errors(404))
def api_plan(request: Request, venue: str,
             text: str = Query(..., max_length=MAX_INTERESTS_CHARS, description="Interests, one per line: free text, paper ids or titles"),
             year: ProgramYearOrEmpty = "", day: DayOrAll = "",
             mpp: float = Query(5, ge=0.5, le=240, description="minutes per poster"), tz: str | None = None,
             method: Literal["auto", "embedding", "tfidf"] = "auto") -> dict[str, Any]:
    """The best set of non-overlapping talks and poster visits for the interests, each with its reason."""
    zone, plan = _plan(request, venue, str(year), text, str(day), str(mpp), tz, method)
    return _plan_view(plan, zone)


@router.post("/plan/accept", include_in_schema=False)
def plan_accept(request: Request, venue: str = Form(...), text: str = Form(...), year: str = Form(""),
                day: str = Form(""), mpp: str = Form("5"), tz: str = Form(""), method: str = Form("auto"),
                csrf: str = Form("")):
    from paperscope.catalog.agenda import add_agenda_item, remove_plan_items
    from paperscope.schedule import day_bounds, iso_utc

    _check_write(request, csrf)
    zone, plan = _plan(request, venue, year, text, day, mpp, tz or None, method)
    lo, hi = day_bounds(plan.day, zone.zone) if plan.day else (None, None)
    user = agenda_user(request)
    remove_plan_items(_catalog(request), user, venue, plan.year, iso_utc(lo), iso_utc(hi))
    for row in plan_agenda_rows(plan):
        add_agenda_item(_catalog(request), user, row)
    return RedirectResponse("/agenda", status_code=303)


@router.get("/plan.ics", include_in_schema=False)
def plan_ics(request: Request, venue: str, text: str, year: str = "", day: str = "", mpp: str = "5",
             tz: str | None = None, method: str = "auto"):
    from paperscope.calendar_export import events_from_plan, to_ical

    _, plan = _plan(request, venue, year, text, day, mpp, tz, method)
    data = to_ical(events_from_plan(plan), name=f"paperscope plan: {venue} {year}".strip())
    return Response(data, media_type="text/calendar; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="paperscope-plan.ics"'})
