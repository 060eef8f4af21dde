"""Tables of papers: CSV, TSV, JSON Lines, and JSON lists of objects.

The first row of a CSV/TSV is its header (a UTF-8 byte-order mark is ignored). The delimiter is a
tab for ``.tsv`` and for headers with tabs, a semicolon when the header has more semicolons than
commas, otherwise a comma. JSON Lines has one object per line; a JSON file may be a list of
objects, an object holding such a list (``{"papers": [...]}``), or an object of objects keyed by
id (OpenReview note dumps: ``content`` fields, and ``{"value": ...}`` wrappers, are unwrapped).

Column mapping
--------------
Column names are matched case-insensitively, ignoring spaces, dashes and punctuation. The first
column found for each field is used:

=============  ===========================================================================
field          column names
=============  ===========================================================================
title          title, paper_title, paper, paper_name
authors        authors, author, author_names, author_list, speakers, speaker, presenters
               (joined by ``|``, ``;``, `` · ``, ``,`` or `` and ``; a JSON list also works)
abstract       abstract, paper_abstract, summary, description
tldr           tldr, tl_dr
keywords       keywords, keyword, tags, topics (joined by ``|``, ``;`` or ``,``)
year           year, publication_year
venue          venue, conference, conf, booktitle
track          track, area, primary_area, subject_area
session        session, session_name, session_title, sessions
room           room, location, hall
moderator      moderator, chair, session_chair
presentation   presentation, presentation_type, type, format, paper_type
               (oral / spotlight / poster / talk; any other value becomes the decision)
award          award, awards, prize
decision       decision, status, acceptance, outcome (``Accept (Oral)`` also gives the
               presentation; Reject / Withdraw keep the paper with that decision)
start, end     start, start_time, starts_at, begin / end, end_time, ends_at: ISO 8601
               (``2022-07-21T12:30-07:00``, ``2022-07-21 19:30Z``) or a date and time followed
               by a zone (``2022-07-21 12:30 PDT``, ``2022-07-21 12:30 America/Los_Angeles``);
               a bare time (``12:35``) takes its date from the start or the ``date`` column
date, time     date + time (``12:30 - 12:35``) when there are no start/end columns
timezone       timezone, tz, time_zone: the zone of times that carry none
url            url, link, paper_url, pdf_url, pdf, site
doi            doi (a DOI or a doi.org link)
arxiv          arxiv_id, arxiv, arxiv_url
openreview     openreview_id, openreview, forum, forum_id (an OpenReview link in any URL
               column gives the id as well)
id             id, uid, paper_id, paper_number, number (the record's stable key)
=============  ===========================================================================

Other column names can be given with ``paperscope ingest --map FIELD=COLUMN`` (repeatable, e.g.
``--map title="Paper Name" --map authors=Writers``); a chosen column wins over the names above.

Times without any zone are read as UTC, and a note says so. Venue and year come from
``--venue``/``--year``, then the columns, then the file or folder name (``iclr2021_...``).

A table with an id column and no decision column picks up decisions from a companion table in
the same folder that has the same id column and a decision column (the ICLR 2021 OpenReview crawl
keeps decisions in ``ratings.tsv`` next to ``paperlist.tsv``); a note names the file. A table with
no title column imports nothing on its own and says why.

Every row without a title is a ``Problem`` naming its real line in the file (quoted fields that
span lines are counted), with the row's raw text kept.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from paperscope.ingest.base import Source, SourceError
from paperscope.ingest.paperlists import (
    VENUE_NAMES,
    arxiv_id,
    cut_problem,
    doi_from,
    iter_json_array,
    json_reason,
    looks_like_openreview_id,
    map_status,
    openreview_from_url,
    read_text,
    record_json,
    split_keywords,
    split_names,
    venue_display,
    where,
)
from paperscope.model import Appearance, ImportItem, ImportOptions, Note, PaperRecord, Problem

csv.field_size_limit(64 * 1024 * 1024)

ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "paper_title", "papertitle", "paper", "paper_name", "title_of_paper"),
    "authors": ("authors", "author", "author_names", "author_list", "authors_list", "speakers", "speaker",
                "presenters", "presenter", "creators", "creator"),
    "abstract": ("abstract", "paper_abstract", "summary", "description"),
    "tldr": ("tldr", "tl_dr", "one_sentence_summary"),
    "keywords": ("keywords", "keyword", "tags", "topics", "subjects"),
    "year": ("year", "publication_year", "pub_year"),
    "venue": ("venue", "conference", "conf", "booktitle"),
    "track": ("track", "area", "primary_area", "subject_area"),
    "session": ("session", "session_name", "session_title", "sessions"),
    "room": ("room", "location", "hall"),
    "moderator": ("moderator", "chair", "session_chair"),
    "presentation": ("presentation", "presentation_type", "type", "format", "paper_type"),
    "award": ("award", "awards", "prize"),
    "decision": ("decision", "status", "acceptance", "outcome"),
    "start": ("start", "start_time", "starts_at", "starttime", "begin", "start_datetime", "starts_at_utc"),
    "end": ("end", "end_time", "ends_at", "endtime", "finish", "end_datetime", "ends_at_utc"),
    "date": ("date", "day"),
    "time": ("time", "slot", "time_slot"),
    "timezone": ("timezone", "tz", "time_zone"),
    "url": ("url", "link", "paper_url", "pdf_url", "pdf", "site", "page"),
    "doi": ("doi",),
    "arxiv": ("arxiv_id", "arxiv", "arxiv_url", "arxivid"),
    "openreview": ("openreview_id", "openreview", "forum", "forum_id", "openreview_url", "openreview_link"),
    "id": ("id", "uid", "paper_id", "paperid", "paper_number", "number", "submission_id"),
}
_ALIAS_OF = {alias: field for field, names in ALIASES.items() for alias in names}
_NORM = re.compile(r"[^0-9a-z]+")
_PRESENTATIONS = ("oral", "spotlight", "poster", "talk")
_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{1,2}-\d{1,2})(?:[T _]+(?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"\s*(?P<zone>.*))?$")
_CLOCK = re.compile(r"^(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s*(?P<mer>[ap]\.?m\.?)?\s*(?P<zone>.*)$", re.I)
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?$", re.I)
_RANGE = re.compile(r"\s*(?:–|—|-|\bto\b)\s*")
_PLACEHOLDERS = {"abstract missing", "no abstract", "no abstract available", "abstract not available", "n/a",
                 "none", "null", "-", "tba", "tbd"}
_SMALL_ZONES = {"UTC": "UTC", "GMT": "UTC", "Z": "UTC"}


def norm_column(name: str) -> str:
    return _NORM.sub("_", name.replace("\ufeff", "").strip().lower()).strip("_")


def resolve_columns(names: list[str], chosen: dict[str, str] | None = None,
                    notes: list[str] | None = None) -> dict[str, int]:
    """field -> column index: the columns the user ``chose`` for some fields (``--map``), then the
    aliases above for the others (the first matching column wins). A chosen column missing from
    the header is reported in ``notes`` and that field falls back to the aliases."""
    mapped = _chosen_columns(names, chosen or {}, notes)
    found: dict[str, tuple[int, int]] = {}
    for index, name in enumerate(names):
        key = norm_column(name)
        field = _ALIAS_OF.get(key)
        if field is None:
            continue
        rank = ALIASES[field].index(key)
        if field not in found or rank < found[field][0]:
            found[field] = (rank, index)
    taken = set(mapped.values())
    automatic = {field: index for field, (_, index) in found.items() if index not in taken}
    return {**automatic, **mapped}


def _chosen_columns(names: list[str], chosen: dict[str, str], notes: list[str] | None) -> dict[str, int]:
    by_name = {}
    for index, name in enumerate(names):
        by_name.setdefault(norm_column(name), index)
    mapped = {}
    for field, column in chosen.items():
        index = by_name.get(norm_column(column))
        if index is not None:
            mapped[field] = index
        elif notes is not None:
            note = (f"--map {field}={column}: no column '{column}' here (columns: "
                    f"{', '.join(n for n in names[:12] if n)}); {field} was mapped automatically")
            if note not in notes:
                notes.append(note)
    return mapped


# --------------------------------------------------------------------------- time values

def _zone(token: str):
    """A tzinfo for a zone token (abbreviation, offset, IANA name) and its IANA name, or (None, None)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    token = token.strip().strip("()")
    if not token:
        return None, None
    if token.upper() in _SMALL_ZONES:
        return timezone.utc, "UTC"
    m = _OFFSET.match(token)
    if m:
        delta = timedelta(hours=int(m.group("h")), minutes=int(m.group("m") or 0))
        if delta >= timedelta(hours=24):  # "+99" is no offset of any clock
            return None, None
        return timezone(delta if m.group("sign") == "+" else -delta), None
    if "/" in token:
        try:
            return ZoneInfo(token), token
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America/Indiana")
            return None, None
    try:  # the page importers' table of abbreviations (PDT, CEST, AoE, ...)
        from paperscope.ingest.slots import zone_for

        name = zone_for(token)
        return ZoneInfo(name), name
    except Exception:
        return None, None


def split_when(text: str) -> tuple[str | None, str | None, str] | None:
    """(date, 24-hour time, zone text) of a cell, or None when it is not a time we read.

    ``2022-07-21T12:30:00-07:00`` -> ("2022-07-21", "12:30:00", "-07:00");
    ``12:35 pm PDT`` -> (None, "12:35", "PDT"); ``2022-07-21`` -> ("2022-07-21", None, "").
    """
    text = text.strip()
    m = _ISO.match(text)
    if m:
        return m.group("date"), m.group("time"), (m.group("zone") or "").strip()
    c = _CLOCK.match(text)
    if c:
        clock = c.group("time")
        if c.group("mer"):
            hour, rest = clock.split(":", 1)
            h = int(hour) % 12 + (12 if c.group("mer").lower().startswith("p") else 0)
            clock = f"{h}:{rest}"
        return None, clock, (c.group("zone") or "").strip()
    return None


def to_utc(day: str, clock: str | None, zone_text: str, zone_column: str | None,
           ) -> tuple[datetime | None, str | None, str | None, bool]:
    """(UTC datetime, IANA zone, problem, zone_was_assumed)."""
    try:
        y, mo, d = (int(p) for p in day.split("-"))
        parts = (clock or "0:00").split(":")
        hh, mm = int(parts[0]), int(parts[1])
        ss = int(float(parts[2])) if len(parts) > 2 else 0
        naive = datetime(y, mo, d, hh, mm, ss)
    except (ValueError, IndexError):
        return None, None, f"{day} {clock or ''} is not a valid date and time".strip(), False
    zone_text = zone_text.strip()
    if zone_text in ("Z", "z"):
        zone_text = "UTC"
    token = zone_text or (zone_column or "")
    if token:
        tz, name = _zone(token)
        if tz is None:
            return None, None, f"unknown time zone {token!r}", False
        try:
            return naive.replace(tzinfo=tz).astimezone(timezone.utc), name, None, False
        except OverflowError:  # 0001-01-01 00:00 east of Greenwich is before the first representable instant
            return None, None, f"{day} {clock or ''} {token} is outside the range of dates", False
    return naive.replace(tzinfo=timezone.utc), None, None, True


# --------------------------------------------------------------------------- CSV reading

def sniff_delimiter(header_line: str, name: str) -> str:
    lower = name.lower()
    if lower.endswith((".tsv", ".tsv.gz", ".tab")) or "\t" in header_line:
        return "\t"
    if header_line.count(";") > header_line.count(","):
        return ";"
    return ","


def csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) per row; line numbers are the file's own, from 1."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvBroken(previous + 1, str(exc)) from None
        start = previous + 1
        previous = reader.line_num
        yield start, previous, row


class _CsvBroken(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _Lines:
    """Raw text of line ranges, split only when a problem needs it."""

    def __init__(self, text: str):
        self.text = text
        self._lines: list[str] | None = None

    def get(self, first: int, last: int) -> str:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return "\n".join(self._lines[first - 1: last])[:4000]


# --------------------------------------------------------------------------- venue / year guesses

_TOKEN_YEAR = re.compile(r"^([a-z][a-z]*?)((?:19|20)\d\d)$")


def guess_venue_year(path: Path | None, name: str) -> tuple[str | None, int | None, str | None]:
    """Venue and year from a file or folder name (``iclr2021_openreview``, ``neurips/2019.json``).

    Returns (venue, year, the names they were read from).
    """
    venue = year = None
    used: list[str] = []
    names = [name]
    if path is not None:
        names += [p.name for p in list(path.parents)[:2]]
    for part in names:
        stem = part
        for suffix in (".gz", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".txt"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        before = (venue, year)
        for token in re.split(r"[_\-\s.]+", stem.lower()):
            m = _TOKEN_YEAR.match(token)
            if m and m.group(1) in VENUE_NAMES and m.group(1) != "miniconf":
                venue = venue or venue_display(m.group(1))
                year = year or int(m.group(2))
            elif token in VENUE_NAMES and token != "miniconf":
                venue = venue or venue_display(token)
            elif re.fullmatch(r"(?:19|20)\d\d", token) and part == name:
                year = year or int(token)
        if (venue, year) != before:
            used.append(part)
        if venue and year:
            break
    return venue, year, (" and ".join(repr(u) for u in used) or None)


# --------------------------------------------------------------------------- the importer

class TabularImporter:
    name = "tabular"
    description = "CSV / TSV / JSON Lines / JSON list of papers, columns mapped by name (see `paperscope formats`)"

    # ------------------------------------------------------------------ sniffing
    def sniff(self, source: Source) -> float:
        if source.is_dir:
            return 0.0
        head = source.head(20000)
        stripped = head.lstrip("\ufeff \t\r\n")
        if not stripped:
            return 0.0
        if stripped[0] in "[{":
            return self._sniff_json(stripped)
        first_line = stripped.split("\n", 1)[0].rstrip("\r")
        delimiter = sniff_delimiter(first_line, source.name)
        try:
            header = next(csv.reader([first_line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            return 0.0
        if len(header) < 2:
            return 0.0
        columns = resolve_columns(header)
        known = len(columns)
        lower = source.name.lower()
        table_name = lower.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".tab"))
        if "title" in columns:
            return 0.8 if table_name else 0.6
        if known >= 2 and ("id" in columns or "decision" in columns):
            return 0.35 if table_name else 0.25
        # A table, but not of papers: claimed weakly so that reading it says why nothing came of it.
        return 0.2 if table_name else 0.0

    @staticmethod
    def _sniff_json(head: str) -> float:
        if head[0] == "{":
            first_line = head.split("\n", 1)[0].strip()
            if first_line.endswith("}"):
                try:
                    obj = json.loads(first_line)
                except ValueError:
                    obj = None
                if isinstance(obj, dict):  # JSON Lines
                    return 0.7 if _paper_like(list(obj)) else 0.15
            return 0.5 if re.search(r'"(?:title|paper_title)"\s*:', head) else 0.1
        body = head[1:].lstrip()
        if not body.startswith("{"):
            return 0.0
        try:
            first, _ = json.JSONDecoder().raw_decode(body)
        except ValueError:  # the first object is longer than the sniffed head
            return 0.4 if re.search(r'"(?:title|paper_title)"\s*:', head) else 0.0
        if not isinstance(first, dict):
            return 0.0
        return 0.5 if _paper_like(list(_flatten(first))) else 0.15

    # ------------------------------------------------------------------ parsing
    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        text = read_text(source)
        stripped = text.lstrip("\ufeff \t\r\n")
        if not stripped:
            raise SourceError("the source has no content")
        context = _Context(source, options)
        if stripped[0] in "[{":
            first_line = stripped.split("\n", 1)[0].strip()
            if stripped[0] == "{" and first_line.endswith("}") and _is_json_object(first_line) \
                    and stripped.strip() != first_line:
                items = self._parse_jsonl(text, context)
            else:
                items = self._parse_json(text, context)
        else:
            items = self._parse_csv(text, context)
        yield from items
        yield from context.closing()

    # CSV / TSV -----------------------------------------------------------
    def _parse_csv(self, text: str, ctx: "_Context") -> Iterator[ImportItem]:
        first_line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
        delimiter = sniff_delimiter(first_line, ctx.source.name)
        lines = _Lines(text)
        rows = csv_rows(text, delimiter)
        header: list[str] | None = None
        header_line = 0
        try:
            for first, last, cells in rows:
                if header is None:
                    if not any(c.strip() for c in cells):
                        continue
                    header = [c.replace("\ufeff", "").strip() for c in cells]
                    header_line = first
                    ctx.set_columns(header)
                    if "title" not in ctx.columns:
                        yield from ctx.no_title_column(header, delimiter)
                        return
                    ctx.join_companion(header, delimiter)
                    continue
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                    yield Problem(
                        message=(f"line {first}: {len(cells)} fields but the header (line {header_line}) has "
                                 f"{len(header)}; an unquoted {_delimiter_name(delimiter)} in a value? Row skipped"),
                        line=first, raw=lines.get(first, last))
                    continue
                item = ctx.record(cells, first, lambda: lines.get(first, last))
                if item is not None:
                    yield item
        except _CsvBroken as exc:
            yield Problem(message=f"line {exc.line}: the table cannot be read past this line ({exc.reason})",
                          line=exc.line, raw=lines.get(exc.line, exc.line + 3))
        if header is None:
            raise SourceError("no header row: the table is empty")

    # JSON Lines ------------------------------------------------------------
    def _parse_jsonl(self, text: str, ctx: "_Context") -> Iterator[ImportItem]:
        for number, line in enumerate(text.splitlines(), start=1):
            s = line.strip().lstrip("\ufeff")
            if not s:
                continue
            try:
                obj = json.loads(s)
            except ValueError as exc:
                reason = json_reason(exc) if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield Problem(message=f"line {number}: not a JSON object ({reason})", line=number, raw=line[:4000])
                continue
            if not isinstance(obj, dict):
                yield Problem(message=f"line {number}: expected a JSON object, found {type(obj).__name__}",
                              line=number, raw=line[:4000])
                continue
            item = ctx.record_from_object(obj, number, lambda: line[:4000])
            if item is not None:
                yield item

    # JSON ------------------------------------------------------------------
    def _parse_json(self, text: str, ctx: "_Context") -> Iterator[ImportItem]:
        stripped = text.lstrip("\ufeff \t\r\n")
        if stripped[0] == "[":
            yield from self._json_array(text.lstrip("\ufeff"), ctx)
            return
        try:
            data = json.loads(text.lstrip("\ufeff"))
        except json.JSONDecodeError as exc:
            raise SourceError(f"not readable JSON: {json_reason(exc)} at {where(text, exc.pos)}") from None
        records: list[tuple[str | None, Any]] = []
        if isinstance(data, dict):
            for key in ("papers", "data", "items", "records", "results", "notes", "submissions"):
                if isinstance(data.get(key), list):
                    records = [(None, v) for v in data[key]]
                    break
            else:
                values = list(data.values())
                if values and sum(isinstance(v, dict) for v in values) >= max(1, len(values) // 2):
                    records = list(data.items())
        if not records:
            raise SourceError("JSON without a list of paper objects (expected [...], {\"papers\": [...]} "
                              "or an object of objects)")
        for number, (key, obj) in enumerate(records, start=1):
            if not isinstance(obj, dict):
                yield Problem(message=f"record {number}: expected a JSON object, found {type(obj).__name__}",
                              line=number, raw=record_json(obj))
                continue
            item = ctx.record_from_object(obj, number, lambda: record_json(obj), key=key, counted="record")
            if item is not None:
                yield item

    def _json_array(self, text: str, ctx: "_Context") -> Iterator[ImportItem]:
        line = 1
        last = 0
        read = 0
        try:
            for pos, value in iter_json_array(text):
                if isinstance(value, json.JSONDecodeError):
                    if not read:
                        raise SourceError(f"not readable JSON: {json_reason(value)} at {where(text, value.pos)}")
                    yield cut_problem(text, (pos, value), read, "record")
                    return
                line += text.count("\n", last, pos)
                last = pos
                read += 1
                if not isinstance(value, dict):
                    yield Problem(message=f"line {line}: expected a JSON object, found {type(value).__name__}",
                                  line=line, raw=record_json(value))
                    continue
                item = ctx.record_from_object(value, line, lambda: record_json(value))
                if item is not None:
                    yield item
        except ValueError as exc:
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"not a JSON list ({exc})") from None


# Fields that make an object with a title a paper rather than, say, a calendar event.
_PAPER_EVIDENCE = {"authors", "abstract", "keywords", "decision", "openreview", "arxiv", "doi", "tldr", "track",
                   "venue", "award"}


def _paper_like(keys: list[str]) -> bool:
    fields = set(resolve_columns(keys))
    return "title" in fields and bool(fields & _PAPER_EVIDENCE)


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and set(value) <= {"value", "readers", "writers", "nonreaders"} and "value" in value:
        return value["value"]
    return value


def _flatten(obj: dict) -> dict:
    content = obj.get("content")
    if isinstance(content, dict):
        merged = {k: v for k, v in obj.items() if k != "content"}
        merged.update(content)
        obj = merged
    return {k: _unwrap(v) for k, v in obj.items()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value if v is not None)
    if isinstance(value, dict):
        return str(value.get("name") or value.get("value") or "")
    return str(value)


class _Context:
    """Per-source state: column mapping, venue/year defaults, notes collected while reading."""

    def __init__(self, source: Source, options: ImportOptions):
        self.source = source
        self.options = options
        self.columns: dict[str, int] = {}
        self.header: list[str] = []
        self.notes: list[str] = []
        self.assumed_utc = 0
        self.companion: dict[str, str] = {}
        self.companion_hits = 0
        self.records = 0
        venue, year, where_from = guess_venue_year(source.path, source.name)
        self.venue = options.venue
        self.year = options.year
        self.guessed = []
        if not self.venue and venue:
            self.venue = venue
            self.guessed.append(f"venue {venue}")
        if not self.year and year:
            self.year = year
            self.guessed.append(f"year {year}")
        self.guess_source = where_from
        self._key_cache: dict[tuple, dict[str, str]] = {}

    # notes --------------------------------------------------------------
    def closing(self) -> Iterator[Note]:
        if self.companion:
            yield Note(f"decisions for {self.companion_hits:,} papers joined from "
                       f"{self._companion_name} (same id column, in the same folder)")
        if self.guessed and self.guess_source and self.records:
            yield Note(f"{' and '.join(self.guessed)} taken from the name {self.guess_source} "
                       "(rows that name their own keep theirs; --venue/--year override)")
        if self.assumed_utc:
            yield Note(f"{self.assumed_utc} time value(s) carry no time zone and were read as UTC")
        for note in self.notes:
            yield Note(note)

    # columns ------------------------------------------------------------
    def set_columns(self, header: list[str]) -> None:
        self.header = header
        self.columns = resolve_columns(header, self.options.columns, self.notes)

    def no_title_column(self, header: list[str], delimiter: str) -> Iterator[ImportItem]:
        shown = ", ".join(h or "(blank)" for h in header[:12])
        if "decision" in self.columns and "id" in self.columns:
            yield Note(f"no title column (columns: {shown}): a table of ids and decisions is not imported on "
                       "its own; its decisions are joined when the paper list next to it is imported")
        else:
            yield Note(f"no title column (columns: {shown}); nothing imported. Rename the title column to "
                       "'title' (see `paperscope formats`)")

    def join_companion(self, header: list[str], delimiter: str) -> None:
        """Decisions from a sibling table with the same id column (see the module docstring)."""
        if "decision" in self.columns or "id" not in self.columns or self.source.path is None:
            return
        id_name = norm_column(header[self.columns["id"]])
        folder = self.source.path.parent
        best: tuple[int, str, dict[str, str]] | None = None
        try:
            candidates = sorted(p for p in folder.iterdir()
                                if p.is_file() and p != self.source.path
                                and p.name.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz"))
                                and p.stat().st_size < 50 * 2**20)
        except OSError:
            return
        for path in candidates[:20]:
            table = _decision_table(path, id_name)
            if table:
                key = (len(table), path.name)
                if best is None or key[0] > best[0]:
                    best = (len(table), path.name, table)
        if best:
            self.companion = best[2]
            self._companion_name = best[1]

    # records ------------------------------------------------------------
    def record(self, cells: list[str], line: int, raw) -> ImportItem | None:
        cols = self.columns

        def get(field: str) -> str:
            i = cols.get(field)
            if i is None or i >= len(cells):
                return ""
            return cells[i]

        return self._build(get, line, raw, key=None, counted="line")

    def record_from_object(self, obj: dict, line: int, raw, key: str | None = None,
                           counted: str = "line") -> ImportItem | None:
        obj = _flatten(obj)
        names = tuple(obj)
        mapping = self._key_cache.get(names)
        if mapping is None:
            resolved = resolve_columns(list(names), self.options.columns, self.notes)
            mapping = self._key_cache[names] = {field: names[i] for field, i in resolved.items()}

        def get(field: str) -> Any:
            k = mapping.get(field)
            return obj.get(k) if k is not None else None

        return self._build(get, line, raw, key=key, counted=counted)

    def _build(self, get, line: int, raw, key: str | None, counted: str) -> ImportItem | None:
        where_ = f"{counted} {line}"
        title = " ".join(_cell(get("title")).split())
        authors = split_names(get("authors") if isinstance(get("authors"), list) else _cell(get("authors")))
        abstract = _cell(get("abstract")).strip()
        if abstract.lower() in _PLACEHOLDERS:
            abstract = ""
        if not title:
            if not authors and not abstract and not _cell(get("id")).strip():
                return None  # an empty row
            return Problem(message=f"{where_}: no title", line=line, raw=raw())

        ids: dict[str, str] = {}
        rid = _cell(get("id")).strip()
        value = _cell(get("openreview")).strip()
        if value:
            ids["openreview"] = openreview_from_url(value) or value.rsplit("=", 1)[-1]
        url = _cell(get("url")).strip()
        for link in (url, rid):
            if link and "openreview.net" in link and "openreview" not in ids:
                found = openreview_from_url(link)
                if found:
                    ids["openreview"] = found
        if "openreview" not in ids and rid and looks_like_openreview_id(rid) and \
                (url and "openreview.net" in url):
            ids["openreview"] = rid
        ax = _cell(get("arxiv")).strip()
        if ax:
            found = arxiv_id(ax)
            if found:
                ids["arxiv"] = found
        elif url and "arxiv.org" in url:
            found = arxiv_id(url)
            if found:
                ids["arxiv"] = found
        doi = _cell(get("doi")).strip()
        if doi:
            found = doi_from(doi)
            if found:
                ids["doi"] = found
        elif url and "doi.org/" in url:
            found = doi_from(url)
            if found:
                ids["doi"] = found

        decision_raw = _cell(get("decision")).strip()
        if not decision_raw and self.companion and rid:
            decision_raw = self.companion.get(rid, "")
            if decision_raw:
                self.companion_hits += 1
        presentation, decision = map_status(decision_raw) if decision_raw else (None, None)
        ptype = _cell(get("presentation")).strip()
        if ptype:
            low = ptype.lower()
            found_p = next((p for p in _PRESENTATIONS if p in low), None)
            if found_p:
                presentation = found_p
            elif not decision:
                decision = ptype

        year = self.options.year
        if year is None:
            y = _cell(get("year")).strip()
            m = re.search(r"(?:19|20)\d\d", y)
            year = int(m.group(0)) if m else self.year
        venue = self.options.venue or (" ".join(_cell(get("venue")).split()) or None) or self.venue

        starts = ends = None
        tz_name = slot_text = None
        start_raw, end_raw = _cell(get("start")).strip(), _cell(get("end")).strip()
        if not start_raw and not end_raw and _cell(get("time")).strip():
            parts = _RANGE.split(_cell(get("time")).strip(), maxsplit=1)
            start_raw, end_raw = parts[0], (parts[1] if len(parts) > 1 else "")
        if start_raw:
            slot_text = start_raw + (f" - {end_raw}" if end_raw else "")
            timed = self._times(start_raw, end_raw, _cell(get("date")).strip(), _cell(get("timezone")).strip())
            if isinstance(timed, str):
                return Problem(message=f"{where_}: {timed}", line=line, raw=raw())
            starts, ends, tz_name = timed

        keywords = get("keywords")
        paper = PaperRecord(
            title=title,
            authors=authors,
            abstract=abstract,
            ids=ids,
            keywords=split_keywords(keywords if isinstance(keywords, list) else _cell(keywords)),
            tldr=_cell(get("tldr")).strip(),
            year=year,
            appearance=Appearance(
                venue=venue,
                year=year,
                track=" ".join(_cell(get("track")).split()) or None,
                session=" ".join(_cell(get("session")).split()) or self.options.session or None,
                room=" ".join(_cell(get("room")).split()) or None,
                moderator=" ".join(_cell(get("moderator")).split()) or None,
                presentation=presentation,
                decision=decision,
                award=" ".join(_cell(get("award")).split()) or None,
                starts_at=starts,
                ends_at=ends,
                source_tz=tz_name,
                slot_text=slot_text,
                url=url or (f"https://openreview.net/forum?id={ids['openreview']}" if "openreview" in ids else None),
            ),
            key=f"id:{rid}" if rid else (f"id:{key}" if key else ""),
            line=line,
        )
        self.records += 1
        return paper

    def _times(self, start_raw: str, end_raw: str, day: str, zone_column: str,
               ) -> tuple[datetime | None, datetime | None, str | None] | str:
        """(start, end, IANA zone) in UTC, or a problem message."""
        start = split_when(start_raw)
        if start is None:
            try:  # other ISO 8601 spellings (week dates, compact forms)
                dt = datetime.fromisoformat(start_raw.replace("Z", "+00:00"))
            except ValueError:
                return f"start time {start_raw!r} is not ISO 8601 or 'YYYY-MM-DD HH:MM zone'"
            if dt.tzinfo is None:
                self.assumed_utc += 1
                dt = dt.replace(tzinfo=timezone.utc)
            try:
                dt = dt.astimezone(timezone.utc)
            except OverflowError:
                return f"start time {start_raw!r} is outside the range of dates"
            start = (dt.strftime("%Y-%m-%d"), dt.strftime("%H:%M:%S"), "UTC")
        end = split_when(end_raw) if end_raw else None
        if end_raw and end is None:
            return f"end time {end_raw!r} is not ISO 8601 or 'HH:MM zone'"
        s_day, s_clock, s_zone = start
        s_day = s_day or (split_when(day) or (None, None, ""))[0] if day else s_day
        if not s_day:
            return f"time {start_raw!r} has no date (add a date column or write YYYY-MM-DD HH:MM)"
        if end is not None and not s_zone and end[2] and not end[0]:
            s_zone = end[2]  # "12:30 - 12:35 PDT": the zone is printed once, at the end
        starts, tz_name, problem, assumed = to_utc(s_day, s_clock, s_zone, zone_column or None)
        if problem:
            return f"start {problem}"
        self.assumed_utc += assumed
        ends = None
        if end is not None:
            e_day, e_clock, e_zone = end
            ends, tz2, problem, assumed = to_utc(e_day or s_day, e_clock, e_zone or s_zone, zone_column or None)
            if problem:
                return f"end {problem}"
            if ends is not None and starts is not None and ends < starts and not e_day:
                if ends.date() == date.max:
                    return f"end {end_raw!r} falls after the last representable date"
                ends += timedelta(days=1)  # 23:30 - 0:30
            tz_name = tz_name or tz2
        return starts, ends, tz_name


def _decision_table(path: Path, id_name: str) -> dict[str, str]:
    """id -> decision from a companion table, or {} when it has no such columns."""
    from paperscope.ingest.base import read_source

    try:
        src = read_source(path)
        text = read_text(src)
    except Exception:
        return {}
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    delimiter = sniff_delimiter(first_line, path.name)
    try:
        rows = csv_rows(text, delimiter)
        _, _, header = next(rows)
    except (StopIteration, _CsvBroken):
        return {}
    names = [norm_column(h) for h in header]
    cols = resolve_columns(header)
    if id_name not in names or "decision" not in cols or "title" in cols:
        return {}
    id_index = names.index(id_name)
    d_index = cols["decision"]
    table: dict[str, str] = {}
    try:
        for _, _, cells in rows:
            if len(cells) > max(id_index, d_index):
                rid, decision = cells[id_index].strip(), cells[d_index].strip()
                if rid and decision:
                    table[rid] = decision
    except _CsvBroken:
        pass
    return table


IMPORTER = TabularImporter()
