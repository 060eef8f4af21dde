"""A conference's program in the reader's time zone, the personal agenda's clashes, and the planner.

Everything here works on plain objects; the catalogue is read through ``Catalog`` (and the agenda
through :mod:`paperscope.catalog.agenda`), so this module has no SQL and no HTML.

Time
    Times are aware UTC datetimes (the catalogue stores ISO-8601 UTC text). A *day* is a calendar
    day in the zone the reader chose: an item belongs to the local day its start falls on, and
    conversions go through ``zoneinfo`` so that each date gets its own offset (DST edges included);
    never a fixed offset.

Program
    :func:`load_program` turns a venue's sessions and appearances into :class:`ProgramSession` objects
    holding :class:`ProgramEntry` objects (one per paper appearance): talks with their own slot, posters
    that share their session's span. Appearances with no time are kept apart (``Program.untimed``).

Clashes
    Two items clash when their half-open intervals ``[start, end)`` overlap: touching items
    (one ends at 10:00, the next starts at 10:00) do not clash; the same item met twice is one item;
    a talk or poster inside a session that is itself in the agenda does not clash with that session.

Planner (:func:`plan_program`)
    The model: every timed talk is an interval whose weight is its paper's relevance; every poster
    session is one interval (its whole span) whose weight is the sum of the relevance of the posters
    visited in it, at most ``floor(duration / minutes_per_poster)`` of them, the most relevant first
    (a 2-hour session at 5 minutes a poster: 24 posters). Weighted interval scheduling (sort by end,
    dynamic programming over "the last interval ending before this one starts") then picks the set of
    non-overlapping intervals of greatest total weight, exactly.

    A paper can be presented more than once (twice as a poster at ICLR 2020; a talk and a poster at
    ICML). The interval model counts each appearance on its own, which is an *upper bound* of what a
    visitor gains (a paper seen twice counts once). So after the intervals are chosen, papers are
    assigned to them exactly — a maximum-weight independent set of a transversal matroid, found by
    greedy over papers with augmenting paths — a repeated paper is visited once and its place goes to
    the next poster. The loop then re-plans with the papers already seen elsewhere taken out, while
    that improves the total. The plan reports its total and an upper bound (the lesser of the
    interval model's optimum and the relevance of every relevant paper seen once): when they are
    equal, the plan is optimal for the distinct-paper model too.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from paperscope.catalog.store import Catalog

DEFAULT_MINUTES_PER_POSTER = 5
LOCAL_USER = "local"


class ScheduleError(ValueError):
    """Something the user asked for that cannot be done; the message says what to do instead."""


# =============================================================================================
# Time zones and days
# =============================================================================================


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a clear ``ScheduleError`` for an unknown one."""
    try:
        if not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin, America/Los_Angeles or UTC"
        ) from None


def local_zone_name() -> str:
    """The IANA name of this computer's zone: ``$TZ``, ``/etc/timezone``, the ``/etc/localtime`` link; else UTC.

    A fixed offset (what ``datetime.now().astimezone()`` gives) would put items on the wrong hour
    across a DST change, so only a named zone is used.
    """
    candidates: list[str] = []
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        candidates.append(env)
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        try:
            zone(name)
            return name
        except ScheduleError:
            continue
    return "UTC"


def parse_utc(value: str | datetime | None) -> datetime | None:
    """An aware UTC datetime from catalogue text (naive text is read as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_utc(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of a local day (23 or 25 hours long on DST change days)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(timezone.utc)
    return start, end


def parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(f"{text!r} is not a day: give it as YYYY-MM-DD, e.g. 2020-04-27") from None


def format_range(start: datetime | None, end: datetime | None, tz: ZoneInfo, with_day: bool = True) -> str:
    """``Mon 27 Apr 07:00–09:00 CEST`` in ``tz`` (the end's day is printed when it differs)."""
    if start is None:
        return "no time given"
    s = start.astimezone(tz)
    text = f"{s:%a %d %b %H:%M}" if with_day else f"{s:%H:%M}"
    if end is not None:
        e = end.astimezone(tz)
        if e.tzname() != s.tzname():   # the clocks change during the item: name both offsets
            text += f" {s.tzname()}"
            return text + (f"–{e:%H:%M}" if e.date() == s.date() else f" – {e:%a %d %b %H:%M}") + f" {e.tzname()}"
        text += f"–{e:%H:%M}" if e.date() == s.date() else f" – {e:%a %d %b %H:%M}"
    return f"{text} {s.tzname() or tz.key}"


# =============================================================================================
# The program
# =============================================================================================


@dataclass
class ProgramEntry:
    """One appearance of a paper in the program: a talk with its own slot, or a poster."""

    paper_id: str
    title: str
    authors: list[str]
    venue: str | None
    year: int | None
    session: str | None
    room: str | None
    track: str | None
    presentation: str | None
    decision: str | None
    award: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    source_tz: str | None
    slot_text: str | None
    url: str | None
    kind: str = "talk"        # "talk" or "poster"

    @property
    def key(self) -> str:
        return appearance_key(self.paper_id, self.venue, self.year, self.session, self.starts_at)

    def as_dict(self, tz: ZoneInfo | None = None) -> dict[str, Any]:
        out = {
            "key": self.key, "kind": self.kind, "paper_id": self.paper_id, "title": self.title,
            "authors": self.authors, "venue": self.venue, "year": self.year, "session": self.session,
            "room": self.room, "track": self.track, "presentation": self.presentation,
            "decision": self.decision, "award": self.award, "starts_at": iso_utc(self.starts_at),
            "ends_at": iso_utc(self.ends_at), "source_tz": self.source_tz, "slot_text": self.slot_text,
            "url": self.url,
        }
        if tz is not None:
            out["local"] = _local_fields(self.starts_at, self.ends_at, tz)
        return out


@dataclass
class ProgramSession:
    """A timed session (oral, poster, keynote) and the papers in it, in slot order."""

    name: str
    venue: str | None
    year: int | None
    kind: str | None
    room: str | None
    track: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    source_tz: str | None = None
    url: str | None = None
    entries: list[ProgramEntry] = field(default_factory=list)

    @property
    def key(self) -> str:
        return session_key(self.venue, self.year, self.name, self.starts_at, self.room)

    @property
    def is_poster_session(self) -> bool:
        if self.kind:
            return "poster" in self.kind.lower()
        return bool(self.entries) and sum(e.kind == "poster" for e in self.entries) * 2 > len(self.entries)

    def as_dict(self, tz: ZoneInfo | None = None, with_entries: bool = True) -> dict[str, Any]:
        out = {
            "key": self.key, "name": self.name, "venue": self.venue, "year": self.year, "kind": self.kind,
            "room": self.room, "track": self.track, "starts_at": iso_utc(self.starts_at),
            "ends_at": iso_utc(self.ends_at), "source_tz": self.source_tz, "url": self.url,
            "papers": len(self.entries),
        }
        if tz is not None:
            out["local"] = _local_fields(self.starts_at, self.ends_at, tz)
        if with_entries:
            out["entries"] = [e.as_dict(tz) for e in self.entries]
        return out


@dataclass
class Program:
    venue: str | None
    year: int | None
    sessions: list[ProgramSession]
    untimed: list[ProgramEntry] = field(default_factory=list)

    def entries(self) -> list[ProgramEntry]:
        return [e for s in self.sessions for e in s.entries]

    def find_sessions(self, name: str, room: str | None = None) -> list[ProgramSession]:
        want = name.strip().lower()
        found = [s for s in self.sessions if s.name.lower() == want]
        if room:
            found = [s for s in found if (s.room or "").lower() == room.strip().lower()]
        return found


def _local_fields(start: datetime | None, end: datetime | None, tz: ZoneInfo) -> dict[str, Any] | None:
    if start is None:
        return None
    s = start.astimezone(tz)
    e = end.astimezone(tz) if end else None
    return {"zone": tz.key, "day": s.date().isoformat(), "start": s.isoformat(), "end": e.isoformat() if e else None,
            "text": format_range(start, end, tz), "time": format_range(start, end, tz, with_day=False)}


def appearance_key(paper_id: str, venue: str | None, year: int | None, session: str | None,
                   starts_at: datetime | str | None) -> str:
    """A stable key of one appearance (what agenda items, clashes and calendar UIDs use)."""
    start = iso_utc(parse_utc(starts_at)) if starts_at else ""
    return f"paper|{paper_id}|{(venue or '').lower()}|{year or ''}|{session or ''}|{start}"


def session_key(venue: str | None, year: int | None, name: str, starts_at: datetime | str | None,
                room: str | None = None) -> str:
    start = iso_utc(parse_utc(starts_at)) if starts_at else ""
    return f"session|{(venue or '').lower()}|{year or ''}|{name}|{start}|{room or ''}"


def _entry_from_row(row: dict[str, Any]) -> ProgramEntry:
    presentation = (row.get("presentation") or "").lower() or None
    return ProgramEntry(
        paper_id=row["paper_id"], title=row.get("title") or "", authors=list(row.get("authors") or []),
        venue=row.get("venue"), year=row.get("year"), session=row.get("session"), room=row.get("room"),
        track=row.get("track"), presentation=presentation, decision=row.get("decision"), award=row.get("award"),
        starts_at=parse_utc(row.get("starts_at")), ends_at=parse_utc(row.get("ends_at")),
        source_tz=row.get("source_tz"), slot_text=row.get("slot_text"), url=row.get("url"),
        kind="poster" if presentation == "poster" else "talk",
    )


def _same_room(a: str | None, b: str | None) -> bool:
    return not a or not b or a.strip().lower() == b.strip().lower()


def build_program(session_rows: Sequence[dict[str, Any]], appearance_rows: Sequence[dict[str, Any]],
                  venue: str | None = None, year: int | None = None) -> Program:
    """A program from catalogue rows (``Catalog.sessions`` and ``Catalog.appearances_where``).

    Appearances join the session of their name whose span holds their start (or, untimed, the one
    session of that name); appearances of a session the source did not list as a session are
    grouped by name and room, a gap of more than an hour starting a new session.
    """
    sessions: list[ProgramSession] = []
    by_name: dict[str, list[ProgramSession]] = defaultdict(list)
    for r in session_rows:
        s = ProgramSession(
            name=r["name"], venue=r.get("venue") or venue, year=r.get("year") or year, kind=r.get("kind"),
            room=r.get("room"), track=None, starts_at=parse_utc(r.get("starts_at")),
            ends_at=parse_utc(r.get("ends_at")), source_tz=r.get("source_tz"), url=r.get("url"),
        )
        sessions.append(s)
        by_name[s.name.lower()].append(s)

    loose: dict[tuple[str, str], list[ProgramEntry]] = defaultdict(list)
    untimed: list[ProgramEntry] = []
    seen: set[str] = set()
    for row in appearance_rows:
        entry = _entry_from_row(row)
        if entry.key in seen:       # one paper merged from two sources with the same slot
            continue
        seen.add(entry.key)
        home = _find_session(by_name.get((entry.session or "").lower(), []), entry)
        if home is not None:
            if entry.starts_at is None:
                entry.starts_at, entry.ends_at = home.starts_at, home.ends_at
            if entry.room is None:
                entry.room = home.room
            if home.track is None and entry.track:
                home.track = entry.track
            home.entries.append(entry)
        elif entry.starts_at is None:
            untimed.append(entry)
        else:
            loose[(entry.session or "", (entry.room or "").lower())].append(entry)

    for (name, _room), entries in loose.items():
        entries.sort(key=lambda e: (e.starts_at, e.ends_at or e.starts_at))
        group: list[ProgramEntry] = []
        group_end: datetime | None = None
        for e in entries:
            end = e.ends_at or e.starts_at
            if group and group_end is not None and e.starts_at - group_end > timedelta(hours=1):
                sessions.append(_derived_session(name, group, venue, year))
                group = []
                group_end = None
            group.append(e)
            group_end = end if group_end is None else max(group_end, end)
        if group:
            sessions.append(_derived_session(name, group, venue, year))

    for s in sessions:
        s.entries.sort(key=lambda e: (e.starts_at or datetime.max.replace(tzinfo=timezone.utc), e.title))
        if s.kind is None and s.entries:
            s.kind = "poster" if s.is_poster_session else (s.entries[0].presentation or "talk")
        poster = s.is_poster_session
        for e in s.entries:
            # A poster session's papers are posters even when the source calls them "paper".
            if poster and e.kind == "talk" and e.starts_at == s.starts_at and e.ends_at == s.ends_at and len(s.entries) > 1:
                e.kind = "poster"
    far = datetime.max.replace(tzinfo=timezone.utc)
    sessions.sort(key=lambda s: (s.starts_at or far, s.room or "", s.name))
    untimed.sort(key=lambda e: (e.session or "", e.title))
    return Program(venue=venue, year=year, sessions=sessions, untimed=untimed)


def _find_session(candidates: list[ProgramSession], entry: ProgramEntry) -> ProgramSession | None:
    if not candidates:
        return None
    rooms = [s for s in candidates if _same_room(s.room, entry.room)]
    if entry.starts_at is None:
        return rooms[0] if len(rooms) == 1 else None
    for s in rooms:
        if s.starts_at is None:
            continue
        end = s.ends_at or s.starts_at
        if s.starts_at <= entry.starts_at < end or entry.starts_at == s.starts_at:
            return s
    return None


def _derived_session(name: str, entries: list[ProgramEntry], venue, year) -> ProgramSession:
    first = entries[0]
    start = min(e.starts_at for e in entries)
    end = max((e.ends_at or e.starts_at) for e in entries)
    return ProgramSession(
        name=name or first.title, venue=first.venue or venue, year=first.year or year, kind=None,
        room=first.room, track=first.track, starts_at=start, ends_at=end, source_tz=first.source_tz,
        entries=list(entries),
    )


def load_program(catalog: "Catalog", venue: str, year: int | None = None) -> Program:
    """The program of ``venue`` (and ``year``) as the catalogue knows it."""
    rows = catalog.appearances_where(venue=venue, year=year)
    session_rows = catalog.sessions(venue, year)
    if not rows and not session_rows:
        raise ScheduleError(
            f"no program for {venue}{' ' + str(year) if year else ''} in this catalogue: ingest its pages first "
            f"(paperscope ingest --venue \"{venue}{' ' + str(year) if year else ''}\" PAGES), or check `paperscope stats`"
        )
    return build_program(session_rows, rows, venue=venue, year=year)


# ---------------------------------------------------------------------------------------------
# Days and rooms
# ---------------------------------------------------------------------------------------------


@dataclass
class ScheduleTrack:
    room: str
    sessions: list[ProgramSession]


@dataclass
class ScheduleDay:
    day: date
    tracks: list[ScheduleTrack]

    @property
    def sessions(self) -> list[ProgramSession]:
        return sorted((s for t in self.tracks for s in t.sessions), key=lambda s: (s.starts_at, s.room or ""))


def schedule_days(program: Program, tz: ZoneInfo, day: date | None = None) -> list[ScheduleDay]:
    """The program by local day (in ``tz``) and by room (or track, or session kind where no room is given)."""
    days: dict[date, dict[str, list[ProgramSession]]] = defaultdict(lambda: defaultdict(list))
    for s in program.sessions:
        if s.starts_at is None:
            continue
        d = local_day(s.starts_at, tz)
        if day is not None and d != day:
            continue
        days[d][track_label(s)].append(s)
    out = []
    for d in sorted(days):
        tracks = [ScheduleTrack(room, sorted(ss, key=lambda s: s.starts_at)) for room, ss in days[d].items()]
        tracks.sort(key=lambda t: (t.sessions[0].starts_at, t.room))
        out.append(ScheduleDay(d, tracks))
    return out


def track_label(s: ProgramSession) -> str:
    return s.room or s.track or ("Posters" if s.is_poster_session else "Sessions")


def program_days(program: Program, tz: ZoneInfo) -> list[date]:
    return sorted({local_day(s.starts_at, tz) for s in program.sessions if s.starts_at})


def schedule_json(program: Program, tz: ZoneInfo, day: date | None = None, with_entries: bool = True) -> dict[str, Any]:
    days = schedule_days(program, tz, day)
    return {
        "venue": program.venue, "year": program.year, "tz": tz.key,
        "day": day.isoformat() if day else None,
        "days": [
            {"day": d.day.isoformat(), "weekday": d.day.strftime("%A"),
             "tracks": [{"room": t.room, "sessions": [s.as_dict(tz, with_entries) for s in t.sessions]} for t in d.tracks]}
            for d in days
        ],
        "all_days": [d.isoformat() for d in program_days(program, tz)],
        "untimed": [e.as_dict() for e in program.untimed] if with_entries else len(program.untimed),
    }


# =============================================================================================
# Clashes
# =============================================================================================


@dataclass
class TimedItem:
    """Anything with a span that can sit in an agenda: a talk, a poster visit, a session."""

    key: str
    start: datetime
    end: datetime
    label: str = ""
    session: str | None = None       # the session an appearance belongs to
    kind: str = "paper"             # "paper" or "session"
    venue: str | None = None
    year: int | None = None
    ref: Any = None                  # the caller's own object


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals overlap; touching ones (a ends when b starts) do not."""
    return a_start < b_end and b_start < a_end


def _part_of(a: TimedItem, b: TimedItem) -> bool:
    """``a`` is a talk/poster inside the session ``b`` (so being at both is no clash)."""
    return (a.kind == "paper" and b.kind == "session" and a.session is not None and b.session is not None
            and a.session.lower() == b.session.lower() and (a.venue or "").lower() == (b.venue or "").lower()
            and b.start <= a.start and a.end <= b.end)


def find_clashes(items: Iterable[TimedItem]) -> list[tuple[TimedItem, TimedItem]]:
    """Pairs of items that overlap in time, each pair once, earlier-starting item first.

    The same key twice is one item; an appearance inside a session that is also listed is not a clash.
    A sweep over start times: O(n log n + clashes).
    """
    unique: dict[str, TimedItem] = {}
    for it in items:
        if it.start is None or it.end is None:
            continue
        unique.setdefault(it.key, it)
    ordered = sorted(unique.values(), key=lambda i: (i.start, i.end, i.key))
    clashes: list[tuple[TimedItem, TimedItem]] = []
    active: list[TimedItem] = []
    for it in ordered:
        active = [a for a in active if a.end > it.start]
        for a in active:
            if overlaps(a.start, a.end, it.start, it.end) and not (_part_of(a, it) or _part_of(it, a)):
                clashes.append((a, it))
        active.append(it)
    return clashes


def clash_groups(items: Iterable[TimedItem]) -> list[list[TimedItem]]:
    """Connected groups of clashing items (for "choose one of these")."""
    pairs = find_clashes(items)
    parent: dict[str, str] = {}
    by_key: dict[str, TimedItem] = {}

    def root(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in pairs:
        by_key[a.key], by_key[b.key] = a, b
        parent[root(a.key)] = root(b.key)
    groups: dict[str, list[TimedItem]] = defaultdict(list)
    for k, it in by_key.items():
        groups[root(k)].append(it)
    return sorted((sorted(g, key=lambda i: (i.start, i.key)) for g in groups.values()), key=lambda g: g[0].start)


def clashing_with(keep: TimedItem, items: Iterable[TimedItem]) -> list[TimedItem]:
    """The items to drop so that ``keep`` clashes with nothing (``agenda resolve --keep``)."""
    return [b if a.key == keep.key else a for a, b in find_clashes([keep, *items]) if keep.key in (a.key, b.key)]


# =============================================================================================
# The planner: weighted interval scheduling with poster budgets
# =============================================================================================


@dataclass
class Candidate:
    """An interval the planner may pick: a talk (one paper) or a poster session (many papers, a budget)."""

    key: str
    start: datetime
    end: datetime
    kind: str                               # "talk" or "posters"
    papers: list[str]                       # paper ids that can be seen in it
    capacity: int                           # how many of them fit (1 for a talk)
    ref: Any = None                         # the ProgramEntry or ProgramSession

    def weight(self, relevance: dict[str, float], exclude: set[str] | frozenset = frozenset()) -> float:
        picks = self.picks(relevance, exclude)
        return float(sum(relevance[p] for p in picks))

    def picks(self, relevance: dict[str, float], exclude: set[str] | frozenset = frozenset()) -> list[str]:
        """The most relevant papers (relevance > 0) that fit the budget, best first."""
        scored = sorted(({p for p in self.papers if relevance.get(p, 0.0) > 0 and p not in exclude}),
                        key=lambda p: (-relevance[p], p))
        return scored[: self.capacity]


def poster_capacity(start: datetime, end: datetime, minutes_per_poster: float) -> int:
    """Posters that fit a session: ``floor(duration / minutes_per_poster)`` (2 h at 5 min: 24)."""
    if minutes_per_poster <= 0:
        raise ScheduleError("--minutes-per-poster must be more than 0")
    minutes = (end - start).total_seconds() / 60
    return max(0, int(math.floor(minutes / minutes_per_poster + 1e-9)))


def weighted_interval_schedule(intervals: Sequence[tuple[Any, Any, float]]) -> tuple[float, list[int]]:
    """The maximum-weight set of pairwise non-overlapping half-open intervals ``(start, end, weight)``.

    Returns (total weight, indices of the chosen intervals in start order). Intervals that touch
    may both be chosen; intervals of weight <= 0 never are. O(n log n).
    """
    order = sorted((i for i, iv in enumerate(intervals) if iv[2] > 0 and iv[0] < iv[1]),
                   key=lambda i: (intervals[i][1], intervals[i][0], i))
    ends = [intervals[i][1] for i in order]
    best = [0.0] * (len(order) + 1)
    take = [False] * (len(order) + 1)
    prev = [0] * (len(order) + 1)
    for j, i in enumerate(order, start=1):
        start, _end, w = intervals[i]
        p = bisect.bisect_right(ends, start, 0, j - 1)   # intervals ending at or before this start
        prev[j] = p
        with_it = best[p] + w
        if with_it > best[j - 1] + 1e-12:
            best[j], take[j] = with_it, True
        else:
            best[j] = best[j - 1]
    chosen: list[int] = []
    j = len(order)
    while j > 0:
        if take[j]:
            chosen.append(order[j - 1])
            j = prev[j]
        else:
            j -= 1
    chosen.sort(key=lambda i: (intervals[i][0], intervals[i][1]))
    return best[len(order)], chosen


def assign_papers(chosen: Sequence[Candidate], relevance: dict[str, float]) -> tuple[float, dict[int, list[str]]]:
    """Which paper to see in which chosen interval, each paper once, within each interval's budget.

    The sets of papers that can be seen together form a transversal matroid, so taking papers by
    decreasing relevance and keeping each one that can still be placed (an augmenting path moves
    earlier papers between intervals to make room) is optimal. Returns (total, {interval index: papers}).
    """
    holders: dict[str, list[int]] = defaultdict(list)
    for idx, c in enumerate(chosen):
        for p in set(c.papers):
            if relevance.get(p, 0.0) > 0:
                holders[p].append(idx)
    members: dict[int, set[str]] = defaultdict(set)

    def place(paper: str, visited: set[int]) -> bool:
        # Kuhn's augmenting path: a full interval makes room when one of its papers can move on.
        for idx in holders[paper]:
            if idx in visited:
                continue
            visited.add(idx)
            if len(members[idx]) < chosen[idx].capacity:
                members[idx].add(paper)
                return True
            for other in sorted(members[idx]):
                if place(other, visited):
                    members[idx].discard(other)
                    members[idx].add(paper)
                    return True
        return False

    total = 0.0
    for paper in sorted(holders, key=lambda p: (-relevance[p], p)):
        if place(paper, set()):
            total += relevance[paper]
    out = {idx: sorted(ps, key=lambda p: (-relevance[p], p)) for idx, ps in members.items() if ps}
    return total, out


@dataclass
class PlanPick:
    """One interval of the plan: a talk, or a poster session with the posters to visit."""

    candidate: Candidate
    papers: list[str]                 # what to see in it, best first
    relevance: float                  # sum of the papers' relevance

    @property
    def start(self) -> datetime:
        return self.candidate.start

    @property
    def end(self) -> datetime:
        return self.candidate.end


@dataclass
class PlanResult:
    picks: list[PlanPick]
    total: float                      # distinct-paper relevance of the plan
    upper_bound: float                # min(best total of the interval model, every relevant paper once)
    candidates: int
    rounds: int

    @property
    def proven_optimal(self) -> bool:
        return self.total >= self.upper_bound - 1e-9


def plan_candidates(program: Program, minutes_per_poster: float = DEFAULT_MINUTES_PER_POSTER,
                    window: tuple[datetime, datetime] | None = None,
                    blocked: Sequence[tuple[datetime, datetime]] = ()) -> list[Candidate]:
    """The intervals a plan is made of: each timed talk, and each poster session as one interval.

    ``window`` keeps only intervals that start inside it (a local day); ``blocked`` drops intervals
    that overlap a time already taken.
    """
    out: list[Candidate] = []
    for s in program.sessions:
        if s.starts_at is None:
            continue
        posters = [e for e in s.entries if e.kind == "poster" and e.starts_at is not None]
        talks = [e for e in s.entries if e.kind != "poster" and e.starts_at is not None and e.ends_at is not None]
        if posters:
            start = min(e.starts_at for e in posters)
            end = max((e.ends_at or s.ends_at or e.starts_at) for e in posters)
            cap = poster_capacity(start, end, minutes_per_poster)
            out.append(Candidate(key=s.key, start=start, end=end, kind="posters",
                                 papers=list(dict.fromkeys(e.paper_id for e in posters)), capacity=cap, ref=s))
        for e in talks:
            if e.ends_at <= e.starts_at:
                continue
            out.append(Candidate(key=e.key, start=e.starts_at, end=e.ends_at, kind="talk",
                                 papers=[e.paper_id], capacity=1, ref=e))
    if window is not None:
        lo, hi = window
        out = [c for c in out if lo <= c.start < hi]
    if blocked:
        out = [c for c in out if not any(overlaps(c.start, c.end, b0, b1) for b0, b1 in blocked)]
    return out


def plan_intervals(candidates: Sequence[Candidate], relevance: dict[str, float], max_rounds: int = 6) -> PlanResult:
    """The best non-overlapping set of candidates for ``relevance`` (see the module's docstring)."""
    rel = {p: float(v) for p, v in relevance.items() if v and v > 0}
    cands = list(candidates)
    if not cands:
        return PlanResult([], 0.0, 0.0, 0, 0)

    def solve(exclude_for: dict[int, set[str]]) -> tuple[float, list[int]]:
        intervals = [(c.start, c.end, c.weight(rel, exclude_for.get(i, set()))) for i, c in enumerate(cands)]
        return weighted_interval_schedule(intervals)

    upper, chosen = solve({})
    # A second bound: no plan sees more than every relevant paper once.
    upper = min(upper, float(sum(rel.get(p, 0.0) for p in {p for c in cands for p in c.papers})))
    best_total, best_assign = assign_papers([cands[i] for i in chosen], rel)
    best_chosen = chosen
    rounds = 1
    # Re-plan with each paper already seen in one interval taken out of the others, while it helps.
    while rounds < max_rounds and best_total < upper - 1e-9:
        seen_in: dict[str, int] = {}
        for local_idx, papers in best_assign.items():
            for p in papers:
                seen_in[p] = best_chosen[local_idx]
        exclude_for = {i: {p for p, home in seen_in.items() if home != i and p in set(c.papers)}
                       for i, c in enumerate(cands)}
        _, chosen = solve(exclude_for)
        rounds += 1
        total, assign = assign_papers([cands[i] for i in chosen], rel)
        if total <= best_total + 1e-9:
            break
        best_total, best_assign, best_chosen = total, assign, chosen

    picks = []
    for local_idx, i in enumerate(best_chosen):
        papers = best_assign.get(local_idx, [])
        if not papers:   # only repeats of papers seen elsewhere: the time stays free
            continue
        picks.append(PlanPick(cands[i], papers, float(sum(rel[p] for p in papers))))
    return PlanResult(picks, best_total, upper, len(cands), rounds)


# =============================================================================================
# Relevance to the user's interests
# =============================================================================================


@dataclass
class Interest:
    """One thing the user is interested in: a free text, a title, or a paper of the catalogue."""

    label: str                        # what to show ("your text", a title)
    title: str = ""
    abstract: str = ""
    paper_id: str | None = None

    @property
    def text(self) -> str:
        t, a = self.title.strip(), self.abstract.strip()
        return f"{t}. {a}" if t and a else (t or a)


@dataclass
class Relevance:
    """Relevance of each candidate paper to the interests, and why."""

    scores: dict[str, float]          # raw similarity (what ``score_against_profile`` gives)
    relevance: dict[str, float]       # planner weight: how far above the venue's typical paper (>= 0)
    closest: dict[str, tuple[int, float]]   # paper -> (index of its closest interest, cosine/tf-idf)
    shared_terms: dict[str, list[str]]
    method: str                       # "embedding (all-MiniLM-L6-v2/onnx-fp32)" or "tf-idf"
    note: str = ""                    # why a fallback was used
    threshold: float = 1.0


_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")


def read_interests(path: Path, catalog: "Catalog | None" = None) -> list[Interest]:
    """Interests from a file: a BibTeX file, or one paper id or title per line (``#`` comments)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ScheduleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if re.search(r"^\s*@\w+\s*[{(]", text, re.MULTILINE):
        interests = _bibtex_interests(text)
        if not interests:
            raise ScheduleError(f"{path} looks like BibTeX but has no entry with a title")
        return interests
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ScheduleError(f"{path} lists no interests: write one paper id or title per line, or give a BibTeX file")
    return interests_from_lines(lines, catalog)


def interests_from_lines(lines: Sequence[str], catalog: "Catalog | None" = None) -> list[Interest]:
    """Each line a catalogue paper id, a catalogue title (its abstract is used), or a free text."""
    found: dict[str, dict] = {}
    by_title: dict[str, dict] = {}
    if catalog is not None:
        from paperscope.catalog.agenda import papers_by_title_keys
        from paperscope.text import title_key

        for p in catalog.papers(list(lines), with_appearances=False):
            found[p["id"]] = p
        keys = [title_key(ln) for ln in lines if ln not in found]
        for p in papers_by_title_keys(catalog, [k for k in keys if k]):
            by_title.setdefault(p["title_key"], p)
    out = []
    for ln in lines:
        p = found.get(ln)
        if p is None and by_title:
            from paperscope.text import title_key

            p = by_title.get(title_key(ln))
        if p is not None:
            out.append(Interest(label=p["title"], title=p["title"], abstract=p.get("abstract") or "", paper_id=p["id"]))
        else:
            out.append(Interest(label=ln, title=ln))
    return out


def _bibtex_interests(text: str) -> list[Interest]:
    entries: list[dict[str, str]] = []
    try:
        import bibtexparser

        db = bibtexparser.loads(text)
        entries = [{k.lower(): v for k, v in e.items()} for e in db.entries]
    except Exception:  # a file bibtexparser cannot read: fall back to a plain field reader
        for block in re.split(r"(?m)^\s*@", text)[1:]:
            fields = dict((m.group(1).lower(), m.group(2)) for m in
                          re.finditer(r"(\w+)\s*=\s*[{\"](.*?)[}\"]\s*,?\s*$", block, re.MULTILINE | re.DOTALL))
            entries.append(fields)
    out = []
    for e in entries:
        title = re.sub(r"[{}]", "", e.get("title", "")).strip()
        title = " ".join(title.split())
        if not title:
            continue
        abstract = " ".join(re.sub(r"[{}]", "", e.get("abstract", "")).split())
        out.append(Interest(label=title, title=title, abstract=abstract))
    return out


def _embedder_or_none(progress: Callable[[int], None] | None, catalog: "Catalog | None" = None):
    """The cached MiniLM embedder (in the vector space ``catalog`` holds, so that its stored vectors
    serve), or (None, reason) when it cannot be loaded."""
    try:
        from paperscope.index.embedder import EmbeddingCache, cache_dir, catalogue_minilm
        from paperscope.similarity import CachedEmbedder

        base = catalogue_minilm(catalog)
        disk = EmbeddingCache(cache_dir() / "embeddings", base.name)
        return CachedEmbedder(base, disk, batch_size=32, progress=progress), ""
    except Exception as exc:  # missing model package, ONNX Runtime problem
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class _KnownVectors:
    """An embedder that answers from vectors already computed for the catalogue, else asks ``inner``."""

    def __init__(self, inner, known: dict[str, Any]):
        self.inner, self.known = inner, known
        self.name, self.dim = inner.name, inner.dim

    def embed(self, texts: list[str], batch_size: int | None = None, progress=None):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        if missing:
            vecs = self.inner.embed(missing)
            self.known.update(zip(missing, vecs))
        return np.vstack([np.asarray(self.known[t], dtype=np.float32) for t in texts]) if texts else \
            np.zeros((0, self.dim), np.float32)


def stored_catalogue_vectors(catalog: "Catalog | None", papers: Sequence[dict[str, Any]], docs: Sequence[Any],
                             model_name: str) -> dict[str, Any]:
    """Vectors ``paperscope embed`` already stored for these papers (keyed by content hash), by text.

    Read only: vectors the planner computes itself go to the embedding cache on disk, so a plan never
    writes to the catalogue's vector tables.
    """
    if catalog is None:
        return {}
    hashes = {p["id"]: p.get("content_hash") for p in papers if p.get("content_hash")}
    if not hashes:
        return {}
    try:
        from paperscope.index.vectors import from_blob

        stored = catalog.stored_vectors(model_name, list(hashes.values()))
    except Exception:  # noqa: BLE001 - no vector support in this catalogue: embed instead
        return {}
    out = {}
    for d in docs:
        blob = stored.get(hashes.get(d.id, ""))
        if blob is not None:
            v = from_blob(blob)
            if v.shape == (384,):
                out[d.text] = v
    return out


def score_relevance(interests: Sequence[Interest], papers: Sequence[dict[str, Any]], method: str = "auto",
                    catalog: "Catalog | None" = None, progress: Callable[[int], None] | None = None,
                    threshold: float = 1.0) -> Relevance:
    """How relevant each paper is to the interests.

    ``method``: ``embedding`` (MiniLM cosine fused with tf-idf, :func:`paperscope.similarity.score_against_profile`),
    ``tfidf``, or ``auto`` (embedding when the model loads, else tf-idf; the result says which).
    The planner's weight of a paper is how many spreads (standard deviations over the venue's papers)
    its score lies above the median, minus ``threshold``; papers below that count 0.
    """
    import numpy as np

    from paperscope.similarity import Doc, score_against_profile, tfidf_matrix, tokenize

    if not interests:
        raise ScheduleError("no interests given: use --interests FILE, --text \"...\" or --library")
    profile = [Doc.from_text(f"interest-{i}", it.title, it.abstract) for i, it in enumerate(interests)]
    cands = [Doc.from_text(p["id"], p.get("title") or "", p.get("abstract") or "") for p in papers]
    if not cands:
        return Relevance({}, {}, {}, {}, method="none", threshold=threshold)

    embedder, note = (None, "")
    if method in ("auto", "embedding"):
        embedder, note = _embedder_or_none(progress, catalog)
        if embedder is None and method == "embedding":
            raise ScheduleError(f"the embedding model cannot be loaded ({note}); use --method tfidf")
    toks_c = [tokenize(c.text) for c in cands]
    toks_p = [tokenize(d.text) for d in profile]
    if embedder is not None:
        known = stored_catalogue_vectors(catalog, papers, cands, embedder.name)
        if progress and known:
            progress(len(known))
        missing = [t for t in dict.fromkeys([d.text for d in profile] + [c.text for c in cands]) if t not in known]
        if missing:
            known.update(zip(missing, embedder.embed(missing)))
        emb = _KnownVectors(embedder, known)
        raw = score_against_profile(profile, cands, emb)
        pv = emb.embed([d.text for d in profile])
        cv = emb.embed([d.text for d in cands])
        sims = cv @ pv.T
        used = f"embedding ({embedder.name}, fused with tf-idf)"
    else:
        m, _ = tfidf_matrix(toks_p + toks_c)
        sims = m[len(profile):] @ m[: len(profile)].T
        k = min(3, sims.shape[1])
        top = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
        raw = {c.id: float(v) for c, v in zip(cands, top)}
        used = "tf-idf"
        if method == "auto":
            note = f"the embedding model is unavailable ({note}); relevance is tf-idf" if note else ""

    values = np.array([raw[c.id] for c in cands], dtype=np.float64)
    med = float(np.median(values))
    spread = float(values.std()) or 1.0
    relevance = {c.id: max(0.0, (raw[c.id] - med) / spread - threshold) for c in cands}
    closest = {c.id: (int(np.argmax(sims[i])), float(sims[i].max())) for i, c in enumerate(cands)}

    # Shared key terms, weighted by how rare they are among the venue's papers.
    df = Counter(t for toks in toks_c for t in set(toks))
    n = len(cands)
    surface = _surface_forms([c.text for c in cands] + [d.text for d in profile])
    shared: dict[str, list[str]] = {}
    for i, c in enumerate(cands):
        j = closest[c.id][0]
        # Words in more than a third of the venue's papers ("learning" at ICLR) explain nothing.
        common = {t for t in set(toks_c[i]) & set(toks_p[j]) if df.get(t, 0) <= max(2, n / 3)}
        ranked = sorted(common, key=lambda t: (-math.log((1 + n) / (1 + df.get(t, 0))), t))
        shared[c.id] = [surface.get(t, t) for t in ranked[:5]]
    return Relevance(raw, relevance, closest, shared, method=used, note=note, threshold=threshold)


def _surface_forms(texts: Iterable[str]) -> dict[str, str]:
    """Stemmed token -> its most frequent written form, so reasons show words, not stems."""
    from paperscope.similarity import tokenize

    counts: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        for w in _WORD.findall(text or ""):
            toks = tokenize(w)
            if len(toks) == 1:
                counts[toks[0]][w.lower()] += 1
    return {t: c.most_common(1)[0][0] for t, c in counts.items()}


# =============================================================================================
# A plan for a venue (the service the CLI and the web call)
# =============================================================================================


@dataclass
class Plan:
    venue: str | None
    year: int | None
    tz: ZoneInfo
    day: date | None
    minutes_per_poster: float
    result: PlanResult
    relevance: Relevance
    interests: list[Interest]
    papers: dict[str, dict[str, Any]]          # paper id -> catalogue paper
    seconds: float = 0.0

    def reason(self, paper_id: str) -> str:
        r = self.relevance
        j, sim = r.closest.get(paper_id, (0, 0.0))
        label = self.interests[j].label if self.interests else ""
        if len(label) > 70:
            label = label[:67] + "…"
        terms = r.shared_terms.get(paper_id) or []
        text = f"closest to “{label}” (similarity {sim:.2f})"
        if terms:
            text += "; shares " + ", ".join(terms)
        return text + f"; relevance {r.relevance.get(paper_id, 0.0):.2f}"

    def items(self) -> list[dict[str, Any]]:
        """The picks as plain dicts (JSON, templates, agenda)."""
        out = []
        for pick in self.result.picks:
            c = pick.candidate
            if c.kind == "talk":
                e: ProgramEntry = c.ref
                out.append({
                    "kind": "talk", "key": c.key, "paper_id": e.paper_id, "title": e.title, "authors": e.authors,
                    "session": e.session, "room": e.room, "venue": e.venue, "year": e.year,
                    "starts_at": iso_utc(c.start), "ends_at": iso_utc(c.end),
                    "local": _local_fields(c.start, c.end, self.tz), "relevance": round(pick.relevance, 4),
                    "score": round(self.relevance.scores.get(e.paper_id, 0.0), 4),
                    "reason": self.reason(e.paper_id), "url": e.url,
                })
            else:
                s: ProgramSession = c.ref
                posters = []
                for pid in pick.papers:
                    p = self.papers.get(pid, {})
                    posters.append({
                        "paper_id": pid, "title": p.get("title", pid), "authors": p.get("authors", []),
                        "relevance": round(self.relevance.relevance.get(pid, 0.0), 4),
                        "score": round(self.relevance.scores.get(pid, 0.0), 4), "reason": self.reason(pid),
                    })
                out.append({
                    "kind": "posters", "key": c.key, "session": s.name, "room": s.room, "venue": s.venue,
                    "year": s.year, "starts_at": iso_utc(c.start), "ends_at": iso_utc(c.end),
                    "local": _local_fields(c.start, c.end, self.tz), "relevance": round(pick.relevance, 4),
                    "capacity": c.capacity, "posters_in_session": len(c.papers), "posters": posters,
                    "title": f"Posters: {s.name}", "url": s.url,
                })
        return out

    def as_dict(self) -> dict[str, Any]:
        res = self.result
        return {
            "venue": self.venue, "year": self.year, "tz": self.tz.key,
            "day": self.day.isoformat() if self.day else None,
            "minutes_per_poster": self.minutes_per_poster,
            "relevance_method": self.relevance.method, "relevance_note": self.relevance.note,
            "interests": [i.label for i in self.interests],
            "total_relevance": round(res.total, 4), "upper_bound": round(res.upper_bound, 4),
            "proven_optimal": res.proven_optimal, "candidates": res.candidates, "rounds": res.rounds,
            "seconds": round(self.seconds, 3),
            "items": self.items(),
        }


def make_plan(catalog: "Catalog", venue: str, year: int | None, interests: Sequence[Interest], *,
              tz: ZoneInfo, day: date | None = None, minutes_per_poster: float = DEFAULT_MINUTES_PER_POSTER,
              method: str = "auto", threshold: float = 1.0, blocked: Sequence[tuple[datetime, datetime]] = (),
              progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None) -> Plan:
    """Plan ``venue``/``year`` (one local ``day`` or all) for ``interests``."""
    import time as _time

    t0 = _time.perf_counter()
    program = load_program(catalog, venue, year)
    window = day_bounds(day, tz) if day else None
    cands = plan_candidates(program, minutes_per_poster, window=window, blocked=blocked)
    if not cands:
        where = f" on {day.isoformat()} ({tz.key})" if day else ""
        days = ", ".join(d.isoformat() for d in program_days(program, tz)) or "none"
        raise ScheduleError(f"no timed talks or poster sessions{where} for {venue} {year or ''}; days with a program: {days}")
    ids = list(dict.fromkeys(p for c in cands for p in c.papers))
    papers = {p["id"]: p for p in catalog.papers(ids, with_appearances=False)}
    if on_total:
        on_total(len(ids) + len(interests))
    rel = score_relevance(interests, [papers[i] for i in ids if i in papers], method=method, catalog=catalog,
                          progress=progress, threshold=threshold)
    result = plan_intervals(cands, rel.relevance)
    return Plan(venue, year, tz, day, minutes_per_poster, result, rel, list(interests), papers,
                seconds=_time.perf_counter() - t0)


def stable_uid(key: str) -> str:
    """A calendar UID that is the same for the same item in every export."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24] + "@paperscope"


# =============================================================================================
# Agenda glue: program objects <-> agenda rows <-> timed items
# =============================================================================================


def entry_agenda_row(e: ProgramEntry, origin: str = "manual", relevance: float | None = None,
                     reason: str = "") -> dict[str, Any]:
    return {
        "item_key": e.key, "kind": "paper", "paper_id": e.paper_id, "venue": e.venue, "year": e.year,
        "session": e.session, "room": e.room, "title": e.title, "authors": e.authors,
        "starts_at": iso_utc(e.starts_at), "ends_at": iso_utc(e.ends_at), "source_tz": e.source_tz,
        "url": e.url, "origin": origin, "relevance": relevance, "reason": reason,
    }


def session_agenda_row(s: ProgramSession, origin: str = "manual", relevance: float | None = None,
                       reason: str = "") -> dict[str, Any]:
    return {
        "item_key": s.key, "kind": "session", "paper_id": None, "venue": s.venue, "year": s.year,
        "session": s.name, "room": s.room, "title": s.name, "authors": [],
        "starts_at": iso_utc(s.starts_at), "ends_at": iso_utc(s.ends_at), "source_tz": s.source_tz,
        "url": s.url, "origin": origin, "relevance": relevance, "reason": reason,
    }


def plan_agenda_rows(plan: Plan) -> list[dict[str, Any]]:
    """What ``plan --accept`` stars: each talk; each poster session visited, and its chosen posters."""
    rows = []
    for pick in plan.result.picks:
        c = pick.candidate
        if c.kind == "talk":
            rows.append(entry_agenda_row(c.ref, "plan", pick.relevance, plan.reason(c.ref.paper_id)))
            continue
        s: ProgramSession = c.ref
        rows.append(session_agenda_row(s, "plan", pick.relevance,
                                       f"{len(pick.papers)} posters picked for you ({plan.minutes_per_poster:g} min each)"))
        by_paper = {e.paper_id: e for e in s.entries}
        for pid in pick.papers:
            e = by_paper[pid]
            rows.append(entry_agenda_row(e, "plan", plan.relevance.relevance.get(pid), plan.reason(pid)))
    return rows


def agenda_timed(items: Iterable[Any]) -> list[TimedItem]:
    """Agenda items (``AgendaItem``) as timed items for clash detection (untimed ones are left out)."""
    out = []
    for it in items:
        start, end = parse_utc(it.starts_at), parse_utc(it.ends_at)
        if start is None or end is None:
            continue
        out.append(TimedItem(key=it.item_key, start=start, end=end, label=it.title, session=it.session,
                             kind=it.kind, venue=it.venue, year=it.year, ref=it))
    return out


def entry_timed(e: ProgramEntry) -> TimedItem:
    return TimedItem(key=e.key, start=e.starts_at, end=e.ends_at or e.starts_at, label=e.title, session=e.session,
                     kind="paper", venue=e.venue, year=e.year, ref=e)


def session_timed(s: ProgramSession) -> TimedItem:
    return TimedItem(key=s.key, start=s.starts_at, end=s.ends_at or s.starts_at, label=s.name, session=s.name,
                     kind="session", venue=s.venue, year=s.year, ref=s)


def paper_entries(catalog: "Catalog", paper_id: str, venue: str | None = None, year: int | None = None,
                  session: str | None = None) -> list[ProgramEntry]:
    """The program entries (timed where the program gives a time) of one paper, at one venue or all."""
    paper = catalog.paper(paper_id)
    if paper is None:
        raise ScheduleError(f"no paper with id {paper_id!r} in this catalogue (find ids with `paperscope search`)")
    venues = {(a.get("venue"), a.get("year")) for a in paper["appearances"] if a.get("venue")}
    if venue:
        venues = {(v, y) for v, y in venues if v.lower() == venue.lower() and (not year or y == year)}
    out: list[ProgramEntry] = []
    for v, y in sorted(venues, key=lambda vy: (vy[0], vy[1] or 0)):
        program = load_program(catalog, v, y)
        out += [e for e in program.entries() if e.paper_id == paper_id]
        out += [e for e in program.untimed if e.paper_id == paper_id]
    if session:
        out = [e for e in out if (e.session or "").lower() == session.lower()]
    return out


def choose_entry(entries: Sequence[ProgramEntry], agenda: Sequence[TimedItem]) -> ProgramEntry:
    """Of a paper's appearances, the first timed one that clashes with nothing in the agenda (else the first)."""
    timed = [e for e in entries if e.starts_at is not None]
    for e in timed:
        if not clashing_with(entry_timed(e), agenda):
            return e
    return (timed or list(entries))[0]
