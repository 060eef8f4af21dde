"""The agenda and plans as an iCalendar file (RFC 5545) and as CSV.

iCal: one ``VEVENT`` per talk, poster visit or session, with a ``UID`` derived from what the event is
(the same talk gets the same UID in every export, so re-importing updates instead of duplicating),
``DTSTART``/``DTEND`` in UTC, the room as ``LOCATION`` and the authors and link in ``DESCRIPTION``.
Folding at 75 octets and escaping are left to the ``icalendar`` library. Papers starred inside a
session that is itself starred become lines of that session's event rather than events of their own,
so a poster session with 20 starred posters is one event, not 21 overlapping ones.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from paperscope.schedule import Plan, parse_utc, stable_uid

PRODID = "-//paperscope//paperscope conference planner//EN"


@dataclass
class CalendarEvent:
    key: str
    title: str
    start: datetime
    end: datetime
    location: str | None = None
    lines: list[str] = field(default_factory=list)     # DESCRIPTION, one line each
    url: str | None = None
    categories: list[str] = field(default_factory=list)

    @property
    def uid(self) -> str:
        return stable_uid(self.key)


def _paper_link(paper_id: str | None, url: str | None, papers: dict[str, dict[str, Any]] | None) -> str | None:
    if papers and paper_id and paper_id in papers:
        from paperscope.export import paper_url

        link = paper_url(papers[paper_id])
        if link:
            return link
    if url and url.startswith(("http://", "https://")):
        return url
    return None


def _authors_line(authors: Sequence[str], limit: int = 12) -> str:
    names = list(authors or [])
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def events_from_agenda(items: Iterable[Any], papers: dict[str, dict[str, Any]] | None = None) -> list[CalendarEvent]:
    """Events of agenda items (``AgendaItem`` objects); untimed items are left out."""
    items = [i for i in items if parse_utc(i.starts_at) and parse_utc(i.ends_at)]
    sessions = [i for i in items if i.kind == "session"]
    events: dict[str, CalendarEvent] = {}
    for s in sessions:
        lines = [f"{s.venue or ''} {s.year or ''} · {s.title}".strip(" ·")]
        if s.reason:
            lines.append(s.reason)
        events[s.item_key] = CalendarEvent(
            key=s.item_key, title=s.title, start=parse_utc(s.starts_at), end=parse_utc(s.ends_at),
            location=s.room, lines=lines, url=s.url if (s.url or "").startswith(("http://", "https://")) else None,
            categories=["session"])
    for it in items:
        if it.kind != "paper":
            continue
        start, end = parse_utc(it.starts_at), parse_utc(it.ends_at)
        link = _paper_link(it.paper_id, it.url, papers)
        home = next((events[s.item_key] for s in sessions
                     if (s.session or s.title) == it.session and (s.venue or "").lower() == (it.venue or "").lower()
                     and parse_utc(s.starts_at) <= start and end <= parse_utc(s.ends_at)), None)
        if home is not None:
            home.lines.append("")
            home.lines.append(f"• {it.title}")
            if it.authors:
                home.lines.append(f"  {_authors_line(it.authors)}")
            if link:
                home.lines.append(f"  {link}")
            if it.reason:
                home.lines.append(f"  why: {it.reason}")
            continue
        lines = []
        if it.authors:
            lines.append(_authors_line(it.authors))
        where = " · ".join(x for x in (f"{it.venue or ''} {it.year or ''}".strip(), it.session) if x)
        if where:
            lines.append(where)
        if link:
            lines.append(link)
        if it.reason:
            lines.append(f"why: {it.reason}")
        events[it.item_key] = CalendarEvent(key=it.item_key, title=it.title, start=start, end=end,
                                            location=it.room, lines=lines, url=link, categories=["paper"])
    return sorted(events.values(), key=lambda e: (e.start, e.key))


def events_from_plan(plan: Plan) -> list[CalendarEvent]:
    events = []
    for it in plan.items():
        start, end = parse_utc(it["starts_at"]), parse_utc(it["ends_at"])
        if it["kind"] == "talk":
            link = _paper_link(it["paper_id"], it.get("url"), plan.papers)
            lines = [_authors_line(it["authors"])] if it["authors"] else []
            lines += [x for x in (" · ".join(v for v in (f"{it['venue'] or ''} {it['year'] or ''}".strip(), it["session"]) if v),
                                  link, f"why: {it['reason']}") if x]
            events.append(CalendarEvent(it["key"], it["title"], start, end, it["room"], lines, link, ["paper"]))
        else:
            lines = [f"{len(it['posters'])} posters to visit ({plan.minutes_per_poster:g} min each):"]
            for p in it["posters"]:
                link = _paper_link(p["paper_id"], None, plan.papers)
                lines += ["", f"• {p['title']}"]
                if p["authors"]:
                    lines.append(f"  {_authors_line(p['authors'])}")
                if link:
                    lines.append(f"  {link}")
                lines.append(f"  why: {p['reason']}")
            events.append(CalendarEvent(it["key"], it["title"], start, end, it["room"], lines, it.get("url"), ["posters"]))
    return events


def to_ical(events: Iterable[CalendarEvent], name: str = "paperscope agenda", stamp: datetime | None = None) -> bytes:
    """An RFC 5545 calendar of ``events`` (bytes, CRLF line ends, folded and escaped by ``icalendar``)."""
    from icalendar import Calendar, Event

    stamp = (stamp or datetime.now(timezone.utc)).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    for ev in events:
        e = Event()
        e.add("uid", ev.uid)
        e.add("dtstamp", stamp)
        e.add("dtstart", ev.start.astimezone(timezone.utc))
        e.add("dtend", ev.end.astimezone(timezone.utc))
        e.add("summary", ev.title or "(untitled)")
        if ev.location:
            e.add("location", ev.location)
        if ev.lines:
            e.add("description", "\n".join(ev.lines).strip())
        if ev.url:
            e.add("url", ev.url)
        if ev.categories:
            e.add("categories", ev.categories)
        e.add("transp", "OPAQUE")
        cal.add_component(e)
    return cal.to_ical()


CSV_COLUMNS = ("kind", "paper_id", "title", "authors", "venue", "year", "session", "room", "starts_at_utc",
               "ends_at_utc", "local_start", "local_end", "time_zone", "url", "relevance", "reason")


def to_csv(rows: Iterable[dict[str, Any]], tz=None) -> str:
    """CSV of agenda or plan rows (a header, then one row per item; times in UTC and in ``tz``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        start, end = parse_utc(r.get("starts_at")), parse_utc(r.get("ends_at"))
        rec = {
            "kind": r.get("kind"), "paper_id": r.get("paper_id") or "", "title": r.get("title") or "",
            "authors": "; ".join(r.get("authors") or []), "venue": r.get("venue") or "", "year": r.get("year") or "",
            "session": r.get("session") or "", "room": r.get("room") or "",
            "starts_at_utc": start.isoformat() if start else "", "ends_at_utc": end.isoformat() if end else "",
            "local_start": start.astimezone(tz).isoformat() if start and tz else "",
            "local_end": end.astimezone(tz).isoformat() if end and tz else "",
            "time_zone": tz.key if tz else "", "url": r.get("url") or "",
            "relevance": "" if r.get("relevance") is None else r.get("relevance"), "reason": r.get("reason") or "",
        }
        writer.writerow(rec)
    return out.getvalue()


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    """A plan flattened for CSV: each talk, and each poster to visit (with its session's times)."""
    rows = []
    for it in plan.items():
        if it["kind"] == "talk":
            rows.append(it)
        else:
            for p in it["posters"]:
                rows.append({**p, "kind": "poster", "venue": it["venue"], "year": it["year"], "session": it["session"],
                             "room": it["room"], "starts_at": it["starts_at"], "ends_at": it["ends_at"]})
    return rows
