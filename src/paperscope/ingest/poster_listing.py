"""Poster session listings saved as text (ICLR 2023 virtual site, "Poster Session 3").

The first line names the session; then one block per poster::

    In-Person Poster presentation / top 5% paper      <- presentation line: starts a poster
    Outstanding Paper                                  <- optional award badge
    Rethinking the Expressive Power of GNNs via Graph Biconnectivity
    Bohang Zhang · Shengjie Luo · Liwei Wang · Di He
    Designing expressive Graph Neural Networks ...    <- abstract, raw

The presentation line gives the mode ("Virtual" -> ``virtual``, "In-Person" -> ``in-person``)
and the decision ("poster accept", "top 5% paper" -> ``top 5%``, "top 25% paper" -> ``top 25%``).
Every entry is a ``poster`` unless the line says "Oral"/"Spotlight" presentation. The listing has
no times, so the year is ``--year``/``--venue "ICLR 2023"`` or a "<VENUE> <YEAR>" the header prints.
"""

from __future__ import annotations

import re
from typing import Iterator

from paperscope.ingest.base import Source, SourceError, overlong_line_problems
from paperscope.ingest.session_page import (
    CHROME_RE,
    content_lines,
    header_venue,
    is_author_list,
    is_markup,
    read_paper_block,
    record_key,
    resolve_venue_year,
    unbracket,
)
from paperscope.model import Appearance, ImportItem, ImportOptions, PaperRecord, Problem, SessionRecord
from paperscope.text import collapse_whitespace

PRESENTATION_RE = re.compile(
    r"^(?P<how>[A-Za-z][A-Za-z -]{0,40}?)\s+presentation\s*/\s*(?P<decision>[^/]{1,80})$", re.IGNORECASE)
_MODES = (("in-person", "in-person"), ("in person", "in-person"), ("virtual", "virtual"), ("online", "virtual"),
          ("remote", "virtual"), ("hybrid", "hybrid"))


def read_presentation_line(line: str) -> tuple[str | None, str, str] | None:
    """(mode, presentation type, decision) of a line like "In-Person Poster presentation / top 5% paper"."""
    m = PRESENTATION_RE.match(line.strip())
    if not m:
        return None
    how = m.group("how").lower()
    mode = next((value for word, value in _MODES if word in how), None)
    if "oral" in how:
        presentation = "oral"
    elif "spotlight" in how:
        presentation = "spotlight"
    else:
        presentation = "poster"
    decision = collapse_whitespace(m.group("decision"))
    decision = re.sub(r"\s+paper$", "", decision, flags=re.IGNORECASE)
    return mode, presentation, decision


class PosterListingImporter:
    name = "poster_listing"
    description = "Poster session listing saved as text: presentation line, title, authors, abstract per poster"

    def sniff(self, source: Source) -> float:
        if source.is_dir:
            return 0.0
        lines = [line.strip() for line in source.head(20_000).splitlines()[:600] if line.strip()]
        marks = [i for i, line in enumerate(lines) if len(line) <= 130 and read_presentation_line(line)]
        if not marks:
            return 0.0
        posters = sum(1 for i in marks if any(is_author_list(x) for x in lines[i + 1:i + 5]))
        titled = bool(lines) and re.match(r"^poster session\b", lines[0], re.IGNORECASE) is not None
        if posters >= 2:
            score = 0.9
        elif posters == 1:
            score = 0.6
        else:
            score = 0.2
        return min(0.95, score + (0.05 if titled else 0.0))

    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        if source.is_dir:
            raise SourceError("a folder is not a poster listing")
        text = source.text
        yield from overlong_line_problems(text)
        lines = content_lines(text)
        starts = [i for i, (_, line) in enumerate(lines) if len(line) <= 130 and read_presentation_line(line)]
        if not starts:
            yield Problem(
                message="no presentation lines (like 'In-Person Poster presentation / poster accept') found: "
                        "not a poster listing",
                line=lines[0][0] if lines else None,
                raw="\n".join(line for _, line in lines[:20])[:2000],
            )
            return

        header_lines = [unbracket(line) for _, line in lines[:starts[0]]]
        header_lines = [x for x in header_lines if x and not CHROME_RE.match(x) and not is_markup(x)]
        page_venue, page_year = header_venue(header_lines)
        venue, year = resolve_venue_year(options, page_venue, page_year)
        if options.session:
            session = collapse_whitespace(options.session)
        else:
            named = [x for x in header_lines if re.search(r"\bsession\b", x, re.IGNORECASE) and len(x) <= 120]
            session = collapse_whitespace((named or header_lines or [""])[0])[:300] or None

        for k, i in enumerate(starts):
            n, mark = lines[i]
            body = lines[i + 1:(starts[k + 1] if k + 1 < len(starts) else len(lines))]
            raw_block = "\n".join([mark] + [line for _, line in body])[:2000]
            mode, presentation, decision = read_presentation_line(mark)
            if not body:
                yield Problem(message="a presentation line with no poster under it (page cut short?)", line=n,
                              raw=raw_block)
                continue
            block = read_paper_block(body)
            if block.garbage:
                yield Problem(message="a poster entry that is markup, not text (HTML in a saved page?)", line=n,
                              raw=raw_block)
                continue
            if not block.title and not block.authors:
                yield Problem(message="a poster entry with neither a title nor authors", line=n, raw=raw_block)
                continue
            flags = []
            if not block.title:
                flags.append("missing_title")
            if not block.authors:
                flags.append("missing_authors")
            yield PaperRecord(
                title=block.title,
                authors=block.authors,
                abstract=block.abstract,
                year=year,
                flags=flags,
                appearance=Appearance(
                    venue=venue, year=year, session=session,
                    presentation=block.badge_type if block.badge_type in ("oral", "spotlight") else presentation,
                    decision=decision, mode=mode, award=block.award,
                ),
                key=record_key("", block.title, block.authors, n),
                line=n,
            )

        if session:
            yield SessionRecord(name=session, venue=venue, year=year, kind="poster", key=session)


IMPORTER = PosterListingImporter()
