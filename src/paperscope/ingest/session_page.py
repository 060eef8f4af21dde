"""Conference session pages saved as text (ICML/ICLR/NeurIPS virtual sites, "save as text").

The page is a header (session name, room, ``Moderator: ...``) and then one block per talk::

    Thu 21 July 12:30 - 12:35 PDT          <- slot: starts a talk
    Outstanding Paper                      <- optional badge
    Convergence of Invariant Graph Networks
    Chen Cai · Yusu Wang
    Although theoretical properties ...    <- abstract, raw (LaTeX kept)

Decisions:

* Presentation type: a badge on the talk ("Oral", "Spotlight") wins; otherwise a session whose
  name says "Oral"/"Spotlight" gives that type to all its talks (ICLR "Oral 2: ..." -> ``oral``);
  otherwise the talk is a ``talk`` (ICML 2022 session pages print 5- and 20-minute slots without
  saying which kind of presentation they are, so we do not guess).
* Times are read literally as printed (``1:00 - 1:15 PDT`` is 01:00 in Los Angeles; see ``slots``).
* The page prints no year: ``--year`` or a year in ``--venue`` ("ICLR 2023") wins; else a
  "<VENUE> <YEAR>" in the page header; else the year is inferred from the weekday of the first
  slot, and a ``Note`` says so.
* The venue is ``--venue`` or a "<VENUE> <YEAR>" printed in the header; never guessed.
* A talk without a title but with authors is kept with the flag ``missing_title``; a talk with
  neither is a ``Problem``.

The block reader (``read_paper_block``) and the header helpers are shared with the poster listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from paperscope.ingest import slots
from paperscope.ingest.base import Source, SourceError, numbered_lines, overlong_line_problems
from paperscope.model import Appearance, ImportItem, ImportOptions, Note, PaperRecord, Problem, SessionRecord
from paperscope.text import collapse_whitespace, name_key, title_key

# Site chrome a "save as text" keeps: never a session name, room, title or author.
CHROME_RE = re.compile(
    r"^(?:skip to (?:yearly menu bar|main content)\b.*|chat is not available\.?|successful page load"
    r"|toggle (?:navigation|poster|abstract).*|(?:show|hide) (?:abstract|details)|\[?\s*abstract\s*\]?"
    r"|add to calendar|bookmark|mute|timezone:.*|\|?\s*(?:video|slides|poster|chat|q&a|paper)\s*\|?)$",
    re.IGNORECASE,
)
AWARD_RE = re.compile(
    r"^(?:(?:outstanding|best|distinguished)(?: student)? paper(?: award)?"
    r"(?: (?:honou?rable mention|runner[- ]?up|finalist))?"
    r"|honou?rable mention|test of time(?: award)?|best paper runner[- ]?up)$",
    re.IGNORECASE,
)
TYPE_BADGE_RE = re.compile(r"^(?P<type>oral|spotlight|poster)(?: (?:presentation|paper|talk))?$", re.IGNORECASE)
MODERATOR_RE = re.compile(r"^(?:moderators?|session chairs?|chairs?)\s*:\s*(?P<who>.+)$", re.IGNORECASE)
ROOM_RE = re.compile(r"^(?:room|location|where)\s*:\s*(?P<room>.+)$", re.IGNORECASE)
KNOWN_VENUES = (
    "ICML", "ICLR", "NeurIPS", "NIPS", "CVPR", "ICCV", "ECCV", "ACL", "EMNLP", "NAACL", "EACL", "COLING",
    "AAAI", "IJCAI", "AISTATS", "UAI", "COLT", "KDD", "WWW", "SIGIR", "CoRL", "RSS", "MLSys", "CoLLAs", "LoG",
    "TMLR", "WACV", "BMVC", "Interspeech", "ICASSP", "MICCAI", "CHIL", "L4DC", "ALT",
)
_VENUE_YEAR_RE = re.compile(r"\b(?P<venue>" + "|".join(KNOWN_VENUES) + r")\s*'?(?P<year>(?:19|20)\d\d)\b")
_SESSION_TRACK_RE = re.compile(
    r"^(?:(?:oral|spotlight|poster)s?(?: session)?|session)\s*\d*[a-z]?\s*[:\-–—]\s*(?P<track>.+)$", re.IGNORECASE)
_AUTHOR_SEP = re.compile(r"\s*·\s*")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_NAME_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "la", "le", "dos", "das",
                   "bin", "ibn", "al", "el", "y", "ter", "zu", "st"}

# A title longer than this is an abstract that lost its title.
TITLE_MAX_CHARS = 600


# --- shared line helpers ------------------------------------------------------------------------

def content_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines, stripped, with their 1-based line numbers (overlong lines dropped)."""
    return [(n, line.strip()) for n, line in numbered_lines(text) if line.strip()]


def is_markup(line: str) -> bool:
    """HTML/XML, CSS or script text: not a title or an author list."""
    s = line.strip()
    if not s:
        return False
    if s.startswith(("<!", "<?", "<")) and ">" in s:
        return True
    tags = _TAG.findall(s)
    if tags and sum(len(t) for t in tags) >= 0.25 * len(s):
        return True
    code = sum(s.count(ch) for ch in "{};<>=")
    return len(s) >= 12 and code >= 0.15 * len(s)


def split_authors(line: str) -> list[str]:
    return [collapse_whitespace(part) for part in _AUTHOR_SEP.split(line) if part.strip()]


def is_author_list(line: str) -> bool:
    """Names joined by " · " (the virtual sites' separator)."""
    if "·" not in line or len(line) > 5000 or is_markup(line):
        return False
    parts = split_authors(line)
    return bool(parts) and all(len(p) <= 100 for p in parts) and (len(parts) >= 2 or line.rstrip().endswith("·"))


def looks_like_name(line: str) -> bool:
    """A single person's name ("Christian Koke", "Marc A Finzi", "X.Y. Han")."""
    if len(line) > 60 or is_markup(line) or any(ch.isdigit() for ch in line) or ":" in line:
        return False
    words = line.replace("-", " ").split()
    if not 2 <= len(words) <= 6:
        return False
    return all(w[0].isupper() or w.lower() in _NAME_PARTICLES or w[0] in "(\"'" for w in words)


def header_venue(lines: list[str]) -> tuple[str | None, int | None]:
    """A "<VENUE> <YEAR>" the page header prints ("ICML 2022"), or (None, None)."""
    for line in lines:
        m = _VENUE_YEAR_RE.search(line)
        if m:
            return m.group("venue"), int(m.group("year"))
    return None, None


def split_venue(venue: str | None) -> tuple[str | None, int | None]:
    """'ICLR 2023' -> ('ICLR', 2023); "ICML'22" -> ('ICML', 2022); 'ICML' -> ('ICML', None)."""
    if not venue or not venue.strip():
        return None, None
    v = collapse_whitespace(venue)
    m = re.match(r"^(?P<name>.*?)[\s,'-]*(?P<year>(?:19|20)\d\d)$", v)
    if m and m.group("name"):
        return m.group("name"), int(m.group("year"))
    m = re.match(r"^(?P<name>.*?)\s*'(?P<yy>\d\d)$", v)
    if m and m.group("name"):
        return m.group("name"), 2000 + int(m.group("yy"))
    return v, None


def resolve_venue_year(options: ImportOptions, page_venue: str | None,
                       page_year: int | None) -> tuple[str | None, int | None]:
    """Venue and year: what the user gave (--venue "ICLR 2023", --year) wins over what the page prints."""
    venue, venue_year = split_venue(options.venue)
    if venue is None:
        return page_venue, options.year or page_year
    year = options.year or venue_year
    if year is None and page_venue and page_venue.lower() == venue.lower():
        year = page_year
    return venue, year


def unbracket(line: str) -> str:
    """'[ Hall F ]' -> 'Hall F'."""
    s = line.strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1].strip()
    return s


@dataclass
class PaperBlock:
    """What one talk/poster block of a page holds."""

    title: str = ""
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    awards: list[str] = field(default_factory=list)
    badge_type: str | None = None     # "oral"/"spotlight"/"poster" from a badge line
    garbage: bool = False             # title/author lines are markup, not text

    @property
    def award(self) -> str | None:
        return "; ".join(self.awards) if self.awards else None


def read_paper_block(lines: list[tuple[int, str]]) -> PaperBlock:
    """Badges, title, authors and abstract of a block (the lines after a slot/presentation line).

    The author line is the first of the first three lines with names joined by " · "; what is
    above it is the title (nothing above: the title is missing); what is below is the abstract.
    Without such a line, a second line that reads as one person's name is the author.
    """
    block = PaperBlock()
    rest = [line for _, line in lines]
    while rest and (AWARD_RE.match(rest[0]) or TYPE_BADGE_RE.match(rest[0])):
        badge = rest.pop(0)
        m = TYPE_BADGE_RE.match(badge)
        if m:
            block.badge_type = m.group("type").lower()
        else:
            block.awards.append(collapse_whitespace(badge))
    if any(is_markup(line) for line in rest[:2]):
        block.garbage = True
        return block
    author_at = next((i for i, line in enumerate(rest[:3]) if is_author_list(line)), None)
    if author_at is None and len(rest) >= 2 and looks_like_name(rest[1]) and len(rest[0]) <= TITLE_MAX_CHARS:
        author_at = 1
    if author_at is not None:
        title_lines, abstract_lines = rest[:author_at], rest[author_at + 1:]
        block.authors = split_authors(rest[author_at])
    else:
        title_lines, abstract_lines = rest[:1], rest[1:]
    title = collapse_whitespace(" ".join(title_lines))
    if len(title) > TITLE_MAX_CHARS:  # a paragraph, not a title: the title line is missing
        abstract_lines = title_lines + abstract_lines
        title = ""
    block.title = title
    block.abstract = "\n".join(abstract_lines)
    return block


def record_key(prefix: str, title: str, authors: list[str], line: int) -> str:
    """Stable key of a record within its source: prefix + title key, else first author, else line."""
    if title_key(title):
        ident = title_key(title)
    elif authors:
        ident = "authors:" + name_key(authors[0]).replace(" ", "-")
    else:
        ident = f"line-{line}"
    return f"{prefix}|{ident}" if prefix else ident


def presentation_from_session(name: str | None) -> str | None:
    if not name:
        return None
    if re.search(r"\boral", name, re.IGNORECASE):
        return "oral"
    if re.search(r"\bspotlight", name, re.IGNORECASE):
        return "spotlight"
    if re.search(r"\bposter", name, re.IGNORECASE):
        return "poster"
    return None


def track_from_session(name: str | None) -> str | None:
    """'Oral 2: Understanding Deep Learning' -> 'Understanding Deep Learning'; 'Deep Learning' stays."""
    if not name:
        return None
    m = _SESSION_TRACK_RE.match(name)
    return collapse_whitespace(m.group("track")) if m else name


# --- the importer ------------------------------------------------------------------------------

def _slot_line_indexes(lines: list[tuple[int, str]]) -> list[int]:
    return [i for i, (_, line) in enumerate(lines) if len(line) <= 200 and slots.looks_like_slot(line)]


@dataclass
class _Header:
    name: str | None = None
    room: str | None = None
    moderator: str | None = None
    venue: str | None = None
    year: int | None = None


def _read_header(lines: list[tuple[int, str]]) -> _Header:
    header = _Header()
    kept: list[str] = []
    for _, raw in lines:
        line = unbracket(raw)
        if not line or CHROME_RE.match(line) or is_markup(line):
            continue
        if m := MODERATOR_RE.match(line):
            header.moderator = collapse_whitespace(m.group("who"))
        elif m := ROOM_RE.match(line):
            header.room = collapse_whitespace(m.group("room"))
        else:
            kept.append(collapse_whitespace(line))
    header.venue, header.year = header_venue([raw for _, raw in lines])
    if kept:
        header.name = kept[0] if len(kept[0]) <= 300 else None
    if header.room is None and len(kept) >= 2 and len(kept[1]) <= 80 and not AWARD_RE.match(kept[1]):
        header.room = kept[1]
    return header


class SessionPageImporter:
    name = "session_page"
    description = "Conference session page saved as text: talks with time slots, titles, authors, abstracts"

    def sniff(self, source: Source) -> float:
        if source.is_dir:
            return 0.0
        lines = [line.strip() for line in source.head(20_000).splitlines()[:600] if line.strip()]
        slot_at = [i for i, line in enumerate(lines) if len(line) <= 200 and slots.looks_like_slot(line)]
        if not slot_at:
            return 0.0
        # A slot followed (after an optional badge and a title) by an author line is a talk.
        talks = sum(1 for i in slot_at if any(is_author_list(x) or looks_like_name(x) for x in lines[i + 1:i + 5]))
        chrome = any(MODERATOR_RE.match(x) or CHROME_RE.match(x) for x in lines[:12])
        if talks >= 2:
            score = 0.9
        elif talks == 1:
            score = 0.6
        else:
            score = 0.25 if len(slot_at) >= 2 else 0.1
        return min(0.95, score + (0.05 if chrome else 0.0))

    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        if source.is_dir:
            raise SourceError("a folder is not a session page")
        text = source.text
        yield from overlong_line_problems(text)
        lines = content_lines(text)
        starts = _slot_line_indexes(lines)
        if not starts:
            yield Problem(
                message="no talk slots (like 'Thu 21 July 12:30 - 12:35 PDT') found: not a session page",
                line=lines[0][0] if lines else None,
                raw="\n".join(line for _, line in lines[:20])[:2000],
            )
            return

        header = _read_header(lines[:starts[0]])
        session_name = collapse_whitespace(options.session) if options.session else header.name
        venue, year = resolve_venue_year(options, header.venue, header.year)

        parts_by_start: dict[int, slots.SlotParts] = {}
        for i in starts:
            n, line = lines[i]
            parts_by_start[i] = slots.split_slot(line)
        if year is None and any(p.year is None for p in parts_by_start.values()):
            first = next((p for p in parts_by_start.values() if p.weekday is not None and p.year is None), None)
            if first is not None:
                year = slots.infer_year(first.weekday, first.day, first.month)
                if year is not None:
                    yield Note(message=f"year {year} inferred from {first.date_text!r} (the page prints no year; "
                                       f"give --year or a venue with its year to set it)")
            if year is None:
                yield Note(message="the page prints no year and none was given (--year): "
                                   "talks are kept without times")

        notes_seen: set[str] = set()
        track = track_from_session(session_name)
        session_type = presentation_from_session(session_name)
        session_starts, session_ends, session_tz = [], [], None

        for k, i in enumerate(starts):
            n, slot_line = lines[i]
            end_index = starts[k + 1] if k + 1 < len(starts) else len(lines)
            body = lines[i + 1:end_index]
            raw_block = "\n".join([slot_line] + [line for _, line in body])
            parts = parts_by_start[i]

            start = end = tz_name = None
            try:
                slot = slots.slot_from_parts(parts, year)
                start, end, tz_name = slot
            except slots.SlotError as exc:
                if year is not None or parts.year:
                    yield Problem(message=f"time slot not understood ({exc}); the talk is kept without a time",
                                  line=n, raw=slot_line)
            else:
                for warning in (slots.abbreviation_mismatch(parts.tz, slot),
                                slots.weekday_mismatch(parts, parts.year or year)):
                    if warning and warning not in notes_seen:
                        notes_seen.add(warning)
                        yield Note(message=warning)

            if not body:
                yield Problem(message=f"the slot {slot_line!r} has no talk under it (page cut short?)",
                              line=n, raw=raw_block[:2000])
                continue
            block = read_paper_block(body)
            if block.garbage:
                yield Problem(message=f"the talk at {slot_line!r} is markup, not text (HTML in a saved page?)",
                              line=n, raw=raw_block[:2000])
                continue
            if not block.title and not block.authors:
                yield Problem(message=f"the talk at {slot_line!r} has neither a title nor authors",
                              line=n, raw=raw_block[:2000])
                continue

            if start is not None:
                session_starts.append(start)
                session_ends.append(end)
                session_tz = session_tz or tz_name
            flags = []
            if not block.title:
                flags.append("missing_title")
            if not block.authors:
                flags.append("missing_authors")
            effective_year = parts.year or year
            yield PaperRecord(
                title=block.title,
                authors=block.authors,
                abstract=block.abstract,
                year=effective_year,
                flags=flags,
                appearance=Appearance(
                    venue=venue, year=effective_year, track=track, session=session_name, room=header.room,
                    moderator=header.moderator, presentation=block.badge_type or session_type or "talk",
                    award=block.award, starts_at=start, ends_at=end, source_tz=tz_name, slot_text=slot_line,
                ),
                key=record_key(slot_line, block.title, block.authors, n),
                line=n,
            )

        if session_name:
            first_slot = lines[starts[0]][1]
            yield SessionRecord(
                name=session_name, venue=venue, year=parts_by_start[starts[0]].year or year,
                kind=session_type, room=header.room,
                starts_at=min(session_starts) if session_starts else None,
                ends_at=max(session_ends) if session_ends else None,
                source_tz=session_tz,
                key=f"{session_name}|{header.room or ''}|{first_slot}",
            )


IMPORTER = SessionPageImporter()

__all__ = ["IMPORTER", "SessionPageImporter", "read_paper_block", "PaperBlock", "content_lines", "is_markup",
           "split_authors", "is_author_list", "looks_like_name", "split_venue", "header_venue", "record_key",
           "unbracket", "resolve_venue_year", "CHROME_RE", "AWARD_RE"]
