"""Paper feeds saved as text (Hugging Face Papers listing): a title line, then its abstract line.

No authors, no dates. The page's banner lines ("Get trending papers in your email inbox!") are
not papers, and a saved page glues the banner's "Subscribe" button to the first title
("SubscribeVisualizing Deep Networks ..."): the banner word is stripped.

Entries are read as strict title/abstract pairs. A line too long to be a title is an abstract
that lost its title (a ``Problem``); a short line followed by a short line and then a long one
is a title without an abstract, so one lost line does not shift every entry after it.
Venue: ``--venue`` else "Hugging Face Papers"; presentation ``paper``.
"""

from __future__ import annotations

import re
from typing import Iterator

from paperscope.ingest.base import Source, SourceError, overlong_line_problems
from paperscope.ingest.session_page import content_lines, is_author_list, is_markup, record_key, split_venue
from paperscope.ingest.slots import looks_like_slot
from paperscope.model import Appearance, ImportItem, ImportOptions, PaperRecord, Problem
from paperscope.text import collapse_whitespace

DEFAULT_VENUE = "Hugging Face Papers"
BANNER_RE = re.compile(
    r"^(?:get trending papers in your email inbox.*|subscribe|daily papers|trending papers|load more|show more"
    r"|submit (?:a )?paper|sign up|log in)$",
    re.IGNORECASE,
)
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=[A-Z0-9\"'“‘(\[$])")
# A line longer than this is never a title.
TITLE_MAX_CHARS = 300


class PaperFeedImporter:
    name = "paper_feed"
    description = "Paper feed saved as text (Hugging Face Papers): title line, then abstract line"

    def sniff(self, source: Source) -> float:
        if source.is_dir:
            return 0.0
        lines = [line.strip() for line in source.head(20_000).splitlines()[:400]]
        content = [line for line in lines if line]
        if not content:
            return 0.0
        banner = any(line.lower().startswith("get trending papers in your email inbox") for line in content[:5])
        body = [line for line in content if not BANNER_RE.match(line)]
        if body and _GLUED_SUBSCRIBE.match(body[0]):
            banner = True
        # Other page formats have their own markers; a feed has none of them.
        if any(is_author_list(x) or looks_like_slot(x) or is_markup(x) for x in body[:60]):
            return 0.0
        pairs = _alternation(body[:60])
        if banner and pairs >= 2:
            return 0.9
        # Without the banner: a run of short lines (titles) alternating with paragraphs (abstracts),
        # no blank lines between them. Never confident: other formats should win when they claim it.
        if pairs >= 5 and len(lines) == len(content):
            return 0.45
        return 0.1 if pairs >= 2 else 0.0

    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        if source.is_dir:
            raise SourceError("a folder is not a paper feed")
        text = source.text
        yield from overlong_line_problems(text)
        venue, venue_year = split_venue(options.venue)
        venue = venue or DEFAULT_VENUE
        year = options.year or venue_year
        lines = content_lines(text)

        entries: list[tuple[int, str]] = []  # (line, text) with banners dropped and markup reported
        banner_seen = False
        garbage: list[tuple[int, str]] = []
        for n, line in lines:
            if BANNER_RE.match(line):
                banner_seen = True
                continue
            if is_markup(line):
                garbage.append((n, line))
                continue
            if garbage:
                yield _garbage_problem(garbage)
                garbage = []
            if not entries and _GLUED_SUBSCRIBE.match(line) and (banner_seen or n <= 3):
                line = line[len("Subscribe"):].lstrip()
            entries.append((n, line))
        if garbage:
            yield _garbage_problem(garbage)

        if not entries:
            if not garbage:
                yield Problem(message="no feed entries (a title line, then its abstract line) found",
                              line=lines[0][0] if lines else None,
                              raw="\n".join(line for _, line in lines[:20])[:2000])
            return

        i = 0
        while i < len(entries):
            n, title = entries[i]
            if len(title) > TITLE_MAX_CHARS:
                yield Problem(message="a paragraph with no title line before it (an abstract whose title is missing?)",
                              line=n, raw=title[:2000])
                i += 1
                continue
            abstract = ""
            if i + 1 < len(entries):
                nxt = entries[i + 1][1]
                after = entries[i + 2][1] if i + 2 < len(entries) else None
                next_is_title = len(nxt) <= TITLE_MAX_CHARS and after is not None and len(after) > TITLE_MAX_CHARS
                if not next_is_title:
                    abstract = nxt
                    i += 1
            i += 1
            title = collapse_whitespace(title)
            yield PaperRecord(
                title=title,
                abstract=abstract,
                appearance=Appearance(venue=venue, year=year, presentation="paper"),
                key=record_key("", title, [], n),
                line=n,
            )


def _alternation(lines: list[str]) -> int:
    """How many (short title line, long abstract line) pairs the lines start with."""
    pairs = 0
    for k in range(0, len(lines) - 1, 2):
        title, abstract = lines[k], lines[k + 1]
        if len(title) <= 200 and not title.endswith(".") and len(abstract) >= 200 and len(abstract) > 2 * len(title):
            pairs += 1
        else:
            break
    return pairs


def _garbage_problem(run: list[tuple[int, str]]) -> Problem:
    first, last = run[0][0], run[-1][0]
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    return Problem(message=f"{where}: markup (HTML, script or style), not feed entries", line=first,
                   raw="\n".join(line for _, line in run[:20])[:2000])


IMPORTER = PaperFeedImporter()
