"""The domain: what importers yield and what the catalogue stores.

Importers never write SQL; they yield these records (``PaperRecord``, ``SessionRecord``,
``Problem``, ``Note``) and the catalogue merges them into papers with appearances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

# Presentation types a user can filter on with ``type:``.
PRESENTATION_TYPES = ("oral", "spotlight", "poster", "talk", "paper")

# Strong identifiers, in the order they are trusted for merging.
STRONG_ID_KINDS = ("openreview", "arxiv", "doi")


@dataclass
class Appearance:
    """One place a paper was met: a talk in a session, a poster, a feed entry, a list entry."""

    venue: str | None = None          # "ICML", "ICLR", "Hugging Face Papers"
    year: int | None = None
    track: str | None = None          # "Deep Learning", "main", "Findings"
    session: str | None = None        # "Oral 2: Understanding Deep Learning", "Poster Session 3"
    room: str | None = None
    moderator: str | None = None
    presentation: str | None = None   # one of PRESENTATION_TYPES
    decision: str | None = None       # "top 5%", "poster accept", "Accept (Oral)"
    mode: str | None = None           # "in-person" / "virtual"
    award: str | None = None          # "Outstanding Paper", "Honorable Mention"
    starts_at: datetime | None = None  # timezone-aware, UTC
    ends_at: datetime | None = None
    source_tz: str | None = None      # IANA zone of the page's times, e.g. "America/Los_Angeles"
    slot_text: str | None = None      # the slot as printed, e.g. "Thu 21 July 12:30 - 12:35 PDT"
    url: str | None = None


@dataclass
class PaperRecord:
    """A paper as one source describes it, with the appearance that source gives it."""

    title: str
    authors: list[str] = field(default_factory=list)
    abstract: str = ""                # raw, as in the source (LaTeX kept)
    ids: dict[str, str] = field(default_factory=dict)  # {"openreview": ..., "arxiv": ..., "doi": ...}
    keywords: list[str] = field(default_factory=list)
    tldr: str = ""
    year: int | None = None
    flags: list[str] = field(default_factory=list)  # e.g. "missing_title"
    appearance: Appearance = field(default_factory=Appearance)
    key: str = ""                     # stable key of the record within its source (idempotent re-ingest)
    line: int | None = None           # where the record starts in the source, for messages


@dataclass
class SessionRecord:
    """A timed session of a conference program (may exist before its papers are known)."""

    name: str
    venue: str | None = None
    year: int | None = None
    kind: str | None = None           # "oral", "poster", "qa", "keynote", "workshop"
    room: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    source_tz: str | None = None
    url: str | None = None
    key: str = ""


@dataclass
class Problem:
    """A record that could not be read. It is reported and kept in quarantine, never dropped."""

    message: str
    line: int | None = None
    raw: str = ""


@dataclass
class Note:
    """Something the user should know about how a source was read (e.g. an inferred year)."""

    message: str


ImportItem = Union[PaperRecord, SessionRecord, Problem, Note]


@dataclass
class ImportOptions:
    """What the user told us about a source; importers fill the rest from the source itself."""

    venue: str | None = None
    year: int | None = None
    format: str | None = None
    session: str | None = None
    # A table's columns named by the user, field -> column header (``--map title="Paper Name"``);
    # they win over the automatic mapping of ``ingest/tabular.py``.
    columns: dict[str, str] = field(default_factory=dict)
