"""Mini-Conf virtual conference sites (ICLR 2020, ACL 2020, EMNLP 2020 and the Mini-Conf template).

A site is a folder: either the site's ``sitedata`` folder itself or a folder holding one
(``sitedata/``, ``sitedata_acl2020/``). What is read, where present:

* papers: ``papers.json`` (ICLR 2020: OpenReview notes keyed by forum id, ``content`` inside),
  ``papers.csv`` and ``<kind>_papers.csv`` (``main``, ``findings``, ``demo``, ``srw``, ``tacl``,
  ``cl``, ``workshop``, ``w1``...): UID, title, authors (``|``), abstract, keywords (``|``),
  track, paper_type, pdf_url, and a ``sessions`` column naming poster sessions;
* when papers are shown:
  ``poster_schedule.yml`` + ``schedule.yml`` (ICLR 2020: named poster sessions, and per day which
  UTC time slot hosts poster session ``P<day>S<n>``), ``oral_schedule.yml`` (ICLR 2020 oral themes,
  no times), ``paper_sessions.yml`` (EMNLP 2020: sessions with UTC start/end and their papers),
  ``<kind>_paper_sessions.yml`` (ACL 2020: UTC start ``date`` per session; the end comes from the
  calendar entry linking ``papers.html?session=<id>``);
* the program: ``main_calendar.json``, ``overall_calendar.json|yml``, ``plenary_sessions.yml``,
  ``tutorials.yml``, ``workshops.yml``, ``socials.yml`` (sessions with start/end), and ICLR 2020's
  ``schedule.yml``, ``speakers.yml`` and ``socials.yml`` (weekday plus ``HH:MM-HH:MM GMT``).

Mini-Conf keeps every time in UTC. A paper shown in two sessions gives two records (two
appearances, keys ``<uid>@<session id>``); a paper in no session gives one.

Session kinds: ``poster`` (poster and Gather.town sessions), ``qa`` (live Q&A sessions for
papers: EMNLP Zoom Q&A, ACL QA sessions), ``demo`` (ACL demo Q&A), ``oral``, ``keynote``
(invited talks and their live Q&A), ``plenary`` (opening, awards, panels, business meetings),
``tutorial``, ``workshop``, ``social``, ``expo`` (sponsor booths, expo talks).

Presentation of a paper in a session: ``poster`` in poster sessions, ``talk`` in Q&A sessions and
in ICLR 2020's oral schedule (which mixes orals and spotlights, so it cannot say which), none for
demos. Every Mini-Conf conference was virtual, so appearances say ``mode="virtual"``.

Venue and year: ``--venue``/``--year``, else the folder names (``iclr2020_virtual_site``,
``sitedata_acl2020``), else ``config.yml``'s ``name`` (``ACL2020``; the template's ``MiniConf``
is ignored), else the year of the first session.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

from paperscope.ingest.base import Source, SourceError, read_source
from paperscope.ingest.paperlists import (
    VENUE_NAMES,
    looks_like_openreview_id,
    read_text,
    record_json,
    split_keywords,
    split_names,
    venue_display,
)
from paperscope.ingest.tabular import csv_rows, _CsvBroken
from paperscope.model import Appearance, ImportItem, ImportOptions, Note, PaperRecord, Problem, SessionRecord

PAPER_FILE = re.compile(r"^(?:(?P<kind>[A-Za-z0-9]+)_)?papers\.(?P<ext>csv|json)$")
SESSION_FILE = re.compile(r"^(?:(?P<kind>[A-Za-z0-9]+)_)?paper_sessions\.ya?ml$")
SCHEDULE_FILES = ("schedule.yml", "poster_schedule.yml", "oral_schedule.yml", "main_calendar.json",
                  "overall_calendar.json", "overall_calendar.yml", "config.yml")
# File prefix -> track, where the file itself says what the papers are.
KIND_TRACKS = {"findings": "Findings", "demo": "System Demonstrations", "srw": "Student Research Workshop",
               "tacl": "TACL", "cl": "Computational Linguistics", "workshop": "Workshop"}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TAG = re.compile(r"<[^>]+>")
_HHMM_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*(GMT|UTC|Z)?", re.I)
_POSTER_SHORT = re.compile(r"^P(\d+)S(\d+)$", re.I)
_WEEKDAY_SESSION = re.compile(r"^(?P<wd>[A-Za-z]{3,9})\.?\s+Session\s+(?P<n>\d+)$", re.I)
_BREAK = re.compile(r"^(?:coffee\s+|social\s+)?break\b|^lunch\b|^meal\b", re.I)


@dataclass
class _Session:
    """A timed (or named) session of the site, as papers refer to it."""

    key: str
    name: str
    kind: str | None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str | None = None
    room: str | None = None


@dataclass
class _Paper:
    uid: str
    title: str
    authors: list[str]
    abstract: str = ""
    keywords: list[str] = field(default_factory=list)
    tldr: str = ""
    track: str | None = None
    decision: str | None = None
    url: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    session_names: list[str] = field(default_factory=list)
    file: str = ""
    line: int | None = None


def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    return yaml


def _clean(text: Any) -> str:
    if text is None:
        return ""
    return " ".join(_TAG.sub(" ", str(text)).split())


def _utc(value: Any) -> datetime | None:
    """A Mini-Conf time (YAML datetime, ISO string, ``2020-07-06_05:00:00``) as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("_", " ")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:  # year 1 east of Greenwich: no instant to keep
        return None


def _clock(text: str) -> time | None:
    text = text.strip().upper().replace(".", "")
    for fmt in ("%I:%M %p", "%I:%M%p", "%H:%M", "%I %p"):
        try:
            return datetime.strptime(text, fmt).time()
        except ValueError:
            continue
    return None


def kind_for(name: str, hint: str = "") -> str | None:
    """The kind of a program entry: the site's own category first, then the entry's name."""
    n, h = name.lower(), hint.lower().strip()
    if h:
        if h.startswith("plenary"):
            return "keynote" if "keynote" in n or "invited talk" in n else "plenary"
        if h.startswith(("qa", "q&a")):
            return "demo" if n.startswith("demo") else "qa"
        for prefix, kind in (("tutorial", "tutorial"), ("workshop", "workshop"), ("social", "social"),
                             ("sponsor", "expo"), ("expo", "expo"), ("keynote", "keynote"),
                             ("poster", "poster"), ("oral", "oral"), ("demo", "demo")):
            if h.startswith(prefix):
                return kind
    if "keynote" in n or "invited talk" in n:
        return "keynote"
    if "sponsor" in n or "expo" in n:
        return "expo"
    if n.startswith("tutorial") or re.match(r"^t\d+:", n):
        return "tutorial"
    if n.startswith("workshop") or re.match(r"^w\d+:", n):
        return "workshop"
    if any(w in n for w in ("social", "mentoring", "birds of a feather", "meet-up", "meetup", "happy hour",
                            "meet & greet")):
        return "social"
    if n.startswith("demo"):
        return "demo"
    if "poster" in n or "gather session" in n:
        return "poster"
    if "q&a" in n or "qa session" in n or "live qa" in n:
        return "qa"
    if "oral" in n:
        return "oral"
    if any(w in n for w in ("opening", "closing", "award", "panel", "business meeting", "remarks", "address",
                            "town hall")):
        return "plenary"
    return None


PRESENTATION_FOR_KIND = {"poster": "poster", "qa": "talk", "oral": "talk"}


class MiniConfImporter:
    name = "miniconf"
    description = "Mini-Conf virtual conference site folder (sitedata/: papers, poster/Q&A sessions, calendar)"

    # ------------------------------------------------------------------ sniffing
    def sniff(self, source: Source) -> float:
        if not source.is_dir or source.path is None:
            return 0.0
        site = find_sitedata(source.path)
        if site is None:
            return 0.0
        names = {p.name for p in site.iterdir() if p.is_file()}
        papers = [n for n in names if PAPER_FILE.match(n)]
        if not papers:
            return 0.0
        schedule = any(n in names for n in SCHEDULE_FILES) or any(SESSION_FILE.match(n) for n in names)
        in_sitedata = site.name.lower().startswith("sitedata")
        if in_sitedata and schedule:
            return 0.95
        if in_sitedata or schedule:
            return 0.75
        return 0.3

    # ------------------------------------------------------------------ parsing
    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        if not source.is_dir or source.path is None:
            raise SourceError("a Mini-Conf site is a folder (the site's sitedata folder or the folder holding it)")
        site = find_sitedata(source.path)
        if site is None:
            raise SourceError("no Mini-Conf sitedata folder with papers.json, papers.csv or *_papers.csv here")
        yield from _SiteReader(source.path, site, options).read()


def find_sitedata(folder: Path) -> Path | None:
    """The folder holding the site's data files: ``folder`` itself or its ``sitedata*`` child."""
    candidates: list[Path] = []
    try:
        if any(PAPER_FILE.match(p.name) for p in folder.iterdir() if p.is_file()):
            candidates.append(folder)
        candidates += sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower().startswith("sitedata"))
    except OSError:
        return None
    best: tuple[int, Path] | None = None
    for cand in candidates:
        try:
            size = sum(p.stat().st_size for p in cand.iterdir() if p.is_file() and PAPER_FILE.match(p.name))
        except OSError:
            continue
        if size and (best is None or size > best[0]):
            best = (size, cand)
    return best[1] if best else None


class _SiteReader:
    def __init__(self, root: Path, site: Path, options: ImportOptions):
        self.root = root
        self.site = site
        self.options = options
        self.items: list[ImportItem] = []
        self.papers: dict[str, _Paper] = {}
        self.sessions: dict[str, _Session] = {}          # key -> session
        self.by_name: dict[str, _Session] = {}           # normalised name / id -> session
        self.paper_sessions: dict[str, list[str]] = {}   # uid -> session keys
        self.program: list[SessionRecord] = []
        self.calendar_types: set[str] = set()
        self.unknown_refs: list[str] = []
        self.venue: str | None = None
        self.year: int | None = None
        self.yaml = _yaml()
        self.weekday_dates: dict[int, date] = {}

    # ---------------------------------------------------------------- helpers
    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name

    def problem(self, path: Path, message: str, line: int | None = None, raw: str = "") -> None:
        where = f"{self.rel(path)}" + (f" line {line}" if line else "")
        self.items.append(Problem(message=f"{where}: {message}", line=line, raw=raw[:4000]))

    def load(self, name: str) -> Any:
        path = self.site / name
        if not path.is_file():
            return None
        try:
            text = read_text(read_source(path))
        except SourceError as exc:
            self.problem(path, f"unreadable ({exc})")
            return None
        if name.endswith(".json"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                self.problem(path, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})",
                             line=exc.lineno, raw=text[max(0, exc.pos - 200): exc.pos + 200])
                return None
        if self.yaml is None:
            self.problem(path, "YAML files need PyYAML (pip install pyyaml); this file was skipped")
            return None
        try:
            return self.yaml.load(text, Loader=self._yaml_loader(path))
        except self.yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            self.problem(path, f"not valid YAML ({getattr(exc, 'problem', None) or exc})", line=line)
            return None

    def _yaml_loader(self, path: Path):
        """PyYAML's safe loader, except that an impossible date or time (``2020-13-01``, a 25th
        hour) stays text and is reported with its line: PyYAML raises a bare ValueError for it,
        which would lose the whole file."""
        base = getattr(self.yaml, "CSafeLoader", self.yaml.SafeLoader)

        def timestamp(loader, node):
            try:
                return base.construct_yaml_timestamp(loader, node)
            except (ValueError, OverflowError) as exc:
                self.problem(path, f"impossible date or time {node.value!r} ({exc}); kept as text",
                             line=node.start_mark.line + 1, raw=str(node.value))
                return node.value

        loader = type("TolerantLoader", (base,), {})
        loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
        return loader

    def as_list(self, name: str, what: str, value: Any) -> list:
        """``value`` where the file should hold a list: the list itself, a lone id or name as a list
        of one (hand-edited files drop the brackets), nothing when it is missing; a mapping or a
        true/false there is reported, naming the file and the field, and skipped."""
        if isinstance(value, list):
            return value
        if value is None or value == "":
            return []
        if isinstance(value, (dict, bool)):
            self.problem(self.site / name, f"{what} should be a list, found {_kind(value)}; skipped")
            return []
        return [value]

    def as_mapping(self, name: str, what: str, value: Any) -> dict:
        """``value`` where the file should hold a mapping; anything else is reported and skipped."""
        if isinstance(value, dict):
            return value
        if value is not None and value != "":
            self.problem(self.site / name, f"{what} should be a mapping, found {_kind(value)}; skipped")
        return {}

    def add_session(self, sess: _Session, *aliases: str) -> _Session:
        existing = self.sessions.get(sess.key)
        if existing is None:
            self.sessions[sess.key] = sess
            existing = sess
        else:  # fill what the other description lacked
            for attr in ("starts_at", "ends_at", "url", "room", "kind"):
                if getattr(existing, attr) is None and getattr(sess, attr) is not None:
                    setattr(existing, attr, getattr(sess, attr))
        for alias in (sess.key, sess.name, *aliases):
            if alias:
                self.by_name.setdefault(_norm(alias), existing)
        return existing

    # ---------------------------------------------------------------- main
    def read(self) -> Iterator[ImportItem]:
        self._venue_year()
        self._read_papers()
        if not self.papers and not any(isinstance(i, Problem) for i in self.items):
            raise SourceError(f"{self.rel(self.site)}: no papers in the paper files")
        self._read_calendar()
        self._read_iclr_schedule()
        self._read_poster_schedule()
        self._read_emnlp_sessions()
        self._read_acl_sessions()
        self._read_program_lists()
        self._read_oral_schedule()
        self._link_session_columns()
        if not self.year:
            years = sorted(s.starts_at.year for s in self.sessions.values() if s.starts_at)
            years += sorted(r.starts_at.year for r in self.program if r.starts_at)
            if years:
                self.year = years[0]
                self.items.append(Note(f"year {self.year} taken from the session dates (--year overrides)"))
        if not self.venue:
            self.items.append(Note("the site does not say which conference it is; pass --venue"))
        yield from self.items
        yield from self._paper_records()
        yield from self._session_records()
        if self.unknown_refs:
            shown = ", ".join(self.unknown_refs[:8]) + (" ..." if len(self.unknown_refs) > 8 else "")
            yield Note(f"{len(self.unknown_refs)} session entries name papers that are not in the paper files: {shown}")

    # ---------------------------------------------------------------- venue and year
    def _venue_year(self) -> None:
        venue, year = self.options.venue, self.options.year
        found_venue = found_year = None
        for name in (self.root.name, self.site.name, self.root.parent.name):
            for token in re.split(r"[_\-\s.]+", name.lower()):
                m = re.match(r"^([a-z][a-z]*?)((?:19|20)\d\d)$", token)
                if m and m.group(1) in VENUE_NAMES and m.group(1) != "miniconf":
                    found_venue = found_venue or venue_display(m.group(1))
                    found_year = found_year or int(m.group(2))
            if found_venue:
                break
        config = self.load("config.yml") if (self.site / "config.yml").is_file() else None
        if not found_venue and isinstance(config, dict):
            name = str(config.get("name") or config.get("site_title") or "")
            m = re.match(r"^\s*([A-Za-z][A-Za-z\- ]*?)\s*'?((?:19|20)?\d\d)\s*$", name)
            if m and m.group(1).lower() != "miniconf":
                found_venue = venue_display(m.group(1).strip().lower())
                y = m.group(2)
                found_year = int(y) if len(y) == 4 else 2000 + int(y)
        self.venue = venue or found_venue
        self.year = year or found_year

    # ---------------------------------------------------------------- papers
    def _read_papers(self) -> None:
        files = sorted(p for p in self.site.iterdir() if p.is_file() and PAPER_FILE.match(p.name))
        # main files first so that a paper listed twice keeps its main-track description
        files.sort(key=lambda p: (PAPER_FILE.match(p.name).group("kind") not in (None, "main"), p.name))
        workshop_titles = self._workshop_titles()
        for path in files:
            m = PAPER_FILE.match(path.name)
            kind = (m.group("kind") or "").lower()
            if m.group("ext") == "json":
                self._papers_json(path, kind)
            else:
                self._papers_csv(path, kind, workshop_titles)

    def _workshop_titles(self) -> dict[str, str]:
        titles: dict[str, str] = {}
        data = self.load("workshops.yml") if (self.site / "workshops.yml").is_file() else None
        if isinstance(data, dict):
            data = data.get("workshops")
        if isinstance(data, list):
            for w in data:
                if isinstance(w, dict) and w.get("UID") and (w.get("title") or w.get("name")):
                    titles[str(w["UID"]).lower()] = _clean(w.get("title") or w.get("name"))
        return titles

    def _add_paper(self, paper: _Paper) -> None:
        if paper.uid in self.papers:
            return  # the same paper in a second file (e.g. demo and main): the first description stays
        self.papers[paper.uid] = paper

    def _papers_json(self, path: Path, kind: str) -> None:
        data = self.load(path.name)
        if data is None:
            return
        entries: list[tuple[str | None, Any]]
        if isinstance(data, dict):
            entries = list(data.items())
        elif isinstance(data, list):
            entries = [(None, v) for v in data]
        else:
            self.problem(path, "expected a list or an object of papers")
            return
        for number, (key, entry) in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                self.problem(path, f"record {number}: expected an object", line=number, raw=record_json(entry))
                continue
            content = entry.get("content") if isinstance(entry.get("content"), dict) else entry
            uid = str(entry.get("UID") or entry.get("id") or entry.get("forum") or key or "").strip()
            title = _clean(content.get("title"))
            authors = split_names(content.get("authors"))
            if not title:
                self.problem(path, f"record {number} ({uid or 'no id'}): no title", line=number,
                             raw=record_json(entry))
                continue
            if not uid:
                uid = f"{path.stem}:{number}"
            ids: dict[str, str] = {}
            forum = str(entry.get("forum") or "").strip()
            if forum and looks_like_openreview_id(forum):
                ids["openreview"] = forum
            elif looks_like_openreview_id(uid) and ("forum" in entry or "_bibtex" in content):
                ids["openreview"] = uid
            url = None
            if "openreview" in ids:
                url = f"https://openreview.net/forum?id={ids['openreview']}"
            for k in ("pdf_url", "url"):
                if not url and isinstance(content.get(k), str) and content[k].startswith("http"):
                    url = content[k]
            self._add_paper(_Paper(
                uid=uid, title=title, authors=authors,
                abstract=str(content.get("abstract") or "").strip(),
                keywords=split_keywords(content.get("keywords")),
                tldr=str(content.get("TL;DR") or content.get("tldr") or "").strip(),
                track=_clean(content.get("track")) or KIND_TRACKS.get(kind) or None,
                decision=_clean(content.get("paper_type")) or None,
                url=url, ids=ids,
                session_names=_session_list(content.get("sessions")),
                file=path.name, line=number,
            ))

    def _papers_csv(self, path: Path, kind: str, workshop_titles: dict[str, str]) -> None:
        try:
            text = read_text(read_source(path))
        except SourceError as exc:
            self.problem(path, f"unreadable ({exc})")
            return
        header: list[str] | None = None
        cols: dict[str, int] = {}
        lines: list[str] | None = None
        try:
            for first, last, cells in csv_rows(text, ","):
                if header is None:
                    header = [c.replace("\ufeff", "").strip() for c in cells]
                    cols = {h.lower(): i for i, h in enumerate(header)}
                    continue
                if not any(c.strip() for c in cells):
                    continue

                def get(name: str) -> str:
                    i = cols.get(name)
                    return cells[i] if i is not None and i < len(cells) else ""

                uid = get("uid").strip()
                title = _clean(get("title"))
                if not title:
                    if lines is None:
                        lines = text.splitlines()
                    self.problem(path, f"no title (UID {uid or '?'})", line=first,
                                 raw="\n".join(lines[first - 1: last]))
                    continue
                if not uid:
                    uid = f"{path.stem}:{first}"
                elif "." not in uid and kind not in ("", "main"):
                    uid = f"{kind}.{uid}"  # ACL 2020 numbers workshop papers per file: "1", "W0101", "IT01"
                workshop = get("workshop").strip()
                track = _clean(get("track")) or None
                if workshop:
                    track = workshop_titles.get(workshop.lower(), workshop)
                elif kind and re.fullmatch(r"w\d+", kind):
                    track = workshop_titles.get(kind, f"Workshop {kind.upper()}")
                elif not track:
                    track = KIND_TRACKS.get(kind)
                decision = _clean(get("paper_type")) or None
                if kind == "findings" and not decision:
                    decision = "Findings"
                url = get("pdf_url").strip() or None
                ids: dict[str, str] = {}
                if looks_like_openreview_id(uid) and "." not in uid:
                    ids["openreview"] = uid
                    url = url or f"https://openreview.net/forum?id={uid}"
                self._add_paper(_Paper(
                    uid=uid, title=title,
                    authors=split_names(get("authors") or get("speakers")),
                    abstract=get("abstract").strip(),
                    keywords=split_keywords(get("keywords")),
                    track=track, decision=decision, url=url, ids=ids,
                    session_names=_session_list(get("sessions")),
                    file=path.name, line=first,
                ))
        except _CsvBroken as exc:
            self.problem(path, f"the table cannot be read past this line ({exc.reason})", line=exc.line)

    # ---------------------------------------------------------------- calendars
    def _read_calendar(self) -> None:
        for name in ("main_calendar.json", "overall_calendar.json", "overall_calendar.yml", "overall_calendar.yaml"):
            if not (self.site / name).is_file():
                continue
            data = self.load(name)
            if not isinstance(data, list):
                continue
            entries = [e for e in data if isinstance(e, dict)]
            has_day_view = {str(e.get("type")) for e in entries if e.get("view") == "day"}
            for number, e in enumerate(entries, start=1):
                etype = str(e.get("type") or "")
                if e.get("view") == "week" and etype in has_day_view:
                    continue  # a week-view summary of entries listed one by one in the day view
                title = _clean(e.get("title"))
                starts, ends = _utc(e.get("start")), _utc(e.get("end"))
                if not title or starts is None:
                    continue
                if etype:
                    self.calendar_types.add(etype.lower())
                link = str(e.get("link") or e.get("location") or "") or None
                session_ref = _session_param(link)
                hint = etype or str(e.get("calendarId") or "")
                kind = kind_for(title, hint if hint != "---" else "")
                if link and re.search(r"speaker[_-]?\w*\.html", link):
                    kind = "keynote"  # a live Q&A with an invited speaker: the keynote's scheduled slot
                if session_ref:
                    # a paper session: "Poster Day 1 Session 3 (P1S3)" -> papers.html?session=Mon+Session+3
                    poster_key = _poster_key(session_ref)
                    name_ = session_ref if poster_key else title
                    kind = kind or ("poster" if poster_key else "qa")
                    self.add_session(_Session(key=poster_key or f"session:{session_ref}", name=name_, kind=kind,
                                              starts_at=starts, ends_at=ends, url=link), session_ref, title)
                    continue
                self.program.append(SessionRecord(
                    name=title, venue=None, year=None, kind=kind, starts_at=starts, ends_at=ends,
                    url=link if link and link.startswith("http") else None,
                    key=f"calendar:{title}|{starts.isoformat()}",
                ))

    # ---------------------------------------------------------------- ICLR 2020
    def _read_iclr_schedule(self) -> None:
        if not (self.site / "schedule.yml").is_file():
            return
        data = self.load("schedule.yml")
        if not isinstance(data, dict):
            return
        slots: dict[str, tuple[time, time]] = {}
        for slot, value in self.as_mapping("schedule.yml", "'time_slots'", data.get("time_slots")).items():
            if isinstance(value, list) and len(value) == 2:
                a, b = _clock(str(value[0])), _clock(str(value[1]))
                if a and b:
                    slots[str(slot)] = (a, b)
        speakers = self._speakers()
        for day_entry in self.as_list("schedule.yml", "'conference'", data.get("conference")):
            if not isinstance(day_entry, dict):
                continue
            try:
                day = date.fromisoformat(str(day_entry.get("day")))
            except ValueError:
                continue
            self.weekday_dates.setdefault(day.weekday(), day)
            for event in self.as_list("schedule.yml", f"the events of {day}", day_entry.get("events")):
                if not isinstance(event, dict) or str(event.get("slot")) not in slots:
                    continue
                a, b = slots[str(event["slot"])]
                starts = datetime.combine(day, a, tzinfo=timezone.utc)
                ends = _end_after(starts, datetime.combine(day, b, tzinfo=timezone.utc))
                if ends is None:
                    continue
                etype = str(event.get("type") or "").lower()
                short = str(event.get("short") or "")
                if etype == "poster" and _POSTER_SHORT.match(short):
                    n = int(_POSTER_SHORT.match(short).group(2))
                    name = f"{day.strftime('%a')} Session {n}"
                    self.add_session(_Session(key=_poster_key(name), name=name, kind="poster",
                                              starts_at=starts, ends_at=ends), short.upper(),
                                     *_weekday_aliases(day, n))
                    continue
                name = _clean(event.get("name")) or short or etype
                if not name:
                    continue  # nothing says what the slot holds
                kind = "expo" if etype == "expo" else kind_for(name, etype)
                speaker = speakers.get(str(event.get("id"))) if etype == "qa" else None
                if speaker is not None:
                    kind = "keynote"
                    timed = _hhmm_on(day, speaker.get("time"))
                    if timed:
                        starts, ends = timed
                self.program.append(SessionRecord(name=name, kind=kind, starts_at=starts, ends_at=ends,
                                                  key=f"schedule:{name}|{starts.isoformat()}"))
        self._iclr_socials()

    def _speakers(self) -> dict[str, dict]:
        data = self.load("speakers.yml") if (self.site / "speakers.yml").is_file() else None
        if isinstance(data, dict):
            data = data.get("speakers")
        out: dict[str, dict] = {}
        for s in self.as_list("speakers.yml", "'speakers'", data):
            if isinstance(s, dict) and s.get("id") is not None:
                out[str(s["id"])] = s
        return out

    def _iclr_socials(self) -> None:
        data = self.load("socials.yml") if (self.site / "socials.yml").is_file() else None
        if not isinstance(data, dict) or not isinstance(data.get("socials"), list):
            return
        for social in data["socials"]:
            if not isinstance(social, dict) or not isinstance(social.get("times"), list):
                continue
            name = _clean(social.get("name"))
            days = social.get("day") if isinstance(social.get("day"), list) else [social.get("day")]
            for day_text, time_text in zip(days, social["times"]):
                label = None
                day_text = str(day_text or "")
                if ":" in day_text:  # "Molecules: Monday"
                    label, day_text = (p.strip() for p in day_text.split(":", 1))
                wd = WEEKDAYS.get(day_text.strip()[:3].lower())
                day = self.weekday_dates.get(wd) if wd is not None else None
                timed = _hhmm_on(day, time_text) if day else None
                if not timed:
                    continue  # "All Day", "Wednesday/Thursday": no single time to keep
                full = f"{name}: {label}" if label and name else name or label
                if not full:
                    continue
                self.program.append(SessionRecord(name=full, kind="social", starts_at=timed[0], ends_at=timed[1],
                                                  key=f"social:{full}|{timed[0].isoformat()}"))

    def _read_poster_schedule(self) -> None:
        """ICLR 2020: ``- name: Mon Session 1`` with ``posters: [{id: ...}]``; times come from schedule.yml."""
        if not (self.site / "poster_schedule.yml").is_file():
            return
        data = self.load("poster_schedule.yml")
        if not isinstance(data, list):
            return
        for entry in data:
            if not isinstance(entry, dict) or not entry.get("name"):
                continue
            name = _clean(entry["name"])
            if not name:
                continue
            sess = self.find_session(name)
            if sess is None:
                sess = self.add_session(_Session(key=_poster_key(name) or f"session:{name}", name=name, kind="poster"))
            else:
                sess.name = name  # the site's own spelling ("Tues Session 1")
                self.by_name.setdefault(_norm(name), sess)
            for poster in self.as_list("poster_schedule.yml", f"the posters of {name!r}", entry.get("posters")):
                uid = poster.get("id") if isinstance(poster, dict) else poster
                self._attach(str(uid or ""), sess.key)

    def find_session(self, name: str) -> _Session | None:
        found = self.by_name.get(_norm(name))
        if found is None:
            key = _poster_key(name)
            found = self.sessions.get(key) if key else None
        return found

    def _read_oral_schedule(self) -> None:
        if not (self.site / "oral_schedule.yml").is_file():
            return
        data = self.load("oral_schedule.yml")
        if not isinstance(data, list):
            return
        for day_entry in data:
            if not isinstance(day_entry, dict):
                continue
            day = _clean(day_entry.get("day"))
            sections = self.as_list("oral_schedule.yml", f"the sections of {day or 'a day'}", day_entry.get("section"))
            for number, section in enumerate(sections, start=1):
                if not isinstance(section, dict):
                    continue
                theme = _clean(section.get("theme"))
                listed = self.as_list("oral_schedule.yml", f"the ids of {theme or 'a section'}", section.get("ids"))
                ids = [str(i).strip() for i in listed if str(i or "").strip()]
                if not ids or not (day or theme):
                    continue
                name = f"Orals {day}: {theme}" if day and theme else f"Orals: {theme or day}"
                sess = self.add_session(_Session(key=f"oral:{day}:{number}", name=name, kind="oral"))
                for uid in ids:
                    self._attach(uid, sess.key)

    # ---------------------------------------------------------------- EMNLP 2020
    def _read_emnlp_sessions(self) -> None:
        if not (self.site / "paper_sessions.yml").is_file():
            return
        data = self.load("paper_sessions.yml")
        if not isinstance(data, dict):
            return
        for sid, entry in data.items():
            if not isinstance(entry, dict):
                continue
            short = _clean(entry.get("name")) or _clean(sid)
            name = _clean(entry.get("long_name")) or short
            if not name:
                continue
            kind = kind_for(short) or "qa"
            sess = self.add_session(_Session(key=f"session:{sid}", name=name, kind=kind,
                                             starts_at=_utc(entry.get("start_time")),
                                             ends_at=_utc(entry.get("end_time"))), str(sid), short)
            for uid in self.as_list("paper_sessions.yml", f"the papers of session {name!r}", entry.get("papers")):
                self._attach(str(uid), sess.key)

    # ---------------------------------------------------------------- ACL 2020
    def _read_acl_sessions(self) -> None:
        files = sorted(p for p in self.site.iterdir() if p.is_file() and SESSION_FILE.match(p.name)
                       and p.name != "paper_sessions.yml")
        for path in files:
            data = self.load(path.name)
            if not isinstance(data, dict):
                continue
            for sid, entry in data.items():
                if not isinstance(entry, dict):
                    continue
                sid = str(sid)
                starts = _utc(entry.get("date") or entry.get("start_time"))
                known = self.by_name.get(_norm(sid))
                if known is not None and known.key.startswith("session:"):
                    sess = known
                    if sess.starts_at is None:
                        sess.starts_at = starts
                else:
                    name = f"Demo Session {sid[1:]}" if sid.startswith("D") else f"QA Session {sid}"
                    sess = self.add_session(_Session(key=f"session:{sid}", name=name,
                                                     kind="demo" if sid.startswith("D") else "qa",
                                                     starts_at=starts, ends_at=_utc(entry.get("end_time"))), sid)
                for uid in self.as_list(path.name, f"the papers of session {sid!r}", entry.get("papers")):
                    self._attach(str(uid), sess.key)

    # ---------------------------------------------------------------- program lists (EMNLP-style)
    def _read_program_lists(self) -> None:
        lists = (("plenary_sessions.yml", "plenary sessions", None), ("tutorials.yml", "tutorials", "tutorial"),
                 ("workshops.yml", "workshops", "workshop"), ("socials.yml", "socials", "social"))
        for name, calendar_type, kind in lists:
            if calendar_type in self.calendar_types or not (self.site / name).is_file():
                continue  # the calendar already lists these
            data = self.load(name)
            if isinstance(data, dict):
                data = next((v for v in data.values() if isinstance(v, list)), None)
            if not isinstance(data, list):
                continue
            for entry in data:
                if not isinstance(entry, dict) or not isinstance(entry.get("sessions"), list):
                    continue
                title = _clean(entry.get("title") or entry.get("name"))
                for sub in entry["sessions"]:
                    if not isinstance(sub, dict):
                        continue
                    starts, ends = _utc(sub.get("start_time")), _utc(sub.get("end_time"))
                    if starts is None:
                        continue
                    sub_name = _first_line(sub.get("name"))
                    if sub_name and _BREAK.match(sub_name):
                        continue
                    if sub_name.startswith(("P-", "S-")):  # Mini-Conf's "P-Live Presentation", "S-Social A"
                        sub_name = sub_name[2:].strip()
                    if kind is None:  # plenary: the entry's own title says what it is
                        full = title
                        this_kind = kind_for(title, "plenary") or "plenary"
                    else:
                        full = f"{title}: {sub_name}" if title and sub_name and sub_name.lower() != title.lower() \
                            else title or sub_name
                        this_kind = kind
                    if not full:
                        self.problem(self.site / name, f"a session of the {calendar_type} without a title; skipped",
                                     raw=record_json(entry))
                        continue
                    self.program.append(SessionRecord(name=full, kind=this_kind, starts_at=starts, ends_at=ends,
                                                      key=f"{kind or 'plenary'}:{full}|{starts.isoformat()}"))

    # ---------------------------------------------------------------- linking
    def _attach(self, uid: str, session_key: str) -> None:
        uid = uid.strip()
        if not uid:
            return
        if uid not in self.papers:
            self.unknown_refs.append(uid)
            return
        keys = self.paper_sessions.setdefault(uid, [])
        if session_key not in keys:
            keys.append(session_key)

    def _link_session_columns(self) -> None:
        """Papers whose own row names sessions (``sessions`` column): "Mon Session 1|Tues Session 2"."""
        for uid, paper in self.papers.items():
            for name in paper.session_names:
                sess = self.find_session(name)
                if sess is None:
                    key = _poster_key(name)
                    kind = "poster" if key else kind_for(name)
                    sess = self.add_session(_Session(key=key or f"session:{name}", name=name, kind=kind))
                self._attach(uid, sess.key)

    # ---------------------------------------------------------------- output
    def _paper_records(self) -> Iterator[PaperRecord]:
        for uid, paper in self.papers.items():
            keys = self.paper_sessions.get(uid) or [None]
            for key in keys:
                sess = self.sessions.get(key) if key else None
                presentation = PRESENTATION_FOR_KIND.get(sess.kind) if sess else None
                yield PaperRecord(
                    title=paper.title,
                    authors=list(paper.authors),
                    abstract=paper.abstract,
                    ids=dict(paper.ids),
                    keywords=list(paper.keywords),
                    tldr=paper.tldr,
                    year=self.year,
                    appearance=Appearance(
                        venue=self.venue, year=self.year, track=paper.track,
                        session=sess.name if sess else None,
                        room=sess.room if sess else None,
                        presentation=presentation,
                        decision=paper.decision,
                        mode="virtual",
                        starts_at=sess.starts_at if sess else None,
                        ends_at=sess.ends_at if sess else None,
                        source_tz="UTC" if sess and sess.starts_at else None,
                        url=paper.url,
                    ),
                    key=f"{uid}@{key.split(':', 1)[1]}" if key else uid,
                    line=paper.line,
                )

    def _session_records(self) -> Iterator[SessionRecord]:
        seen: set[str] = set()
        for sess in self.sessions.values():
            if sess.starts_at is None:
                continue  # ICLR 2020's oral themes have no times; their papers carry the name
            seen.add(sess.key)
            yield SessionRecord(name=sess.name, venue=self.venue, year=self.year, kind=sess.kind, room=sess.room,
                                starts_at=sess.starts_at, ends_at=sess.ends_at, source_tz="UTC",
                                url=sess.url if sess.url and sess.url.startswith("http") else None, key=sess.key)
        for rec in self.program:
            if rec.key in seen:
                continue
            seen.add(rec.key)
            rec.venue, rec.year, rec.source_tz = self.venue, self.year, "UTC"
            yield rec


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a number" if isinstance(value, (int, float)) else "text"


def _norm(name: str) -> str:
    return " ".join(name.replace("+", " ").lower().split())


def _first_line(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    text = re.split(r"<br\s*/?>|\n", text, maxsplit=1)[0]
    text = _clean(text)
    return text[:200].rstrip(" :")


def _session_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [_clean(v) for v in value if _clean(v)]
    return [s.strip() for s in str(value).split("|") if s.strip()]


def _session_param(link: str | None) -> str | None:
    if not link or "session=" not in link:
        return None
    try:
        values = parse_qs(urlparse(link).query).get("session")
    except ValueError:
        return None
    return values[0].strip() if values and values[0].strip() else None


def _poster_key(name: str) -> str | None:
    """``Tues Session 1`` / ``Tue Session 1`` / ``Tuesday Session 1`` -> ``poster:tue-1``."""
    m = _WEEKDAY_SESSION.match(name.replace("+", " ").strip())
    if not m or m.group("wd")[:3].lower() not in WEEKDAYS:
        return None
    return f"poster:{m.group('wd')[:3].lower()}-{int(m.group('n'))}"


def _weekday_aliases(day: date, n: int) -> list[str]:
    names = {day.strftime("%a"), day.strftime("%A")}
    short = day.strftime("%a")
    if short == "Tue":
        names.add("Tues")
    if short == "Thu":
        names |= {"Thur", "Thurs"}
    return [f"{d} Session {n}" for d in names]


def _hhmm_on(day: date | None, text: Any) -> tuple[datetime, datetime] | None:
    if day is None or not text:
        return None
    m = _HHMM_RANGE.search(str(text))
    if not m:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups()[:4])
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        return None
    starts = datetime.combine(day, time(h1, m1), tzinfo=timezone.utc)
    ends = _end_after(starts, datetime.combine(day, time(h2 % 24, m2), tzinfo=timezone.utc))
    return (starts, ends) if ends else None


def _end_after(starts: datetime, ends: datetime) -> datetime | None:
    """The end of a range printed as clock times: an end before the start is on the next day
    (None when that day is past the last representable date)."""
    if ends > starts:
        return ends
    if ends.date() == date.max:
        return None
    return ends + timedelta(days=1)


IMPORTER = MiniConfImporter()
