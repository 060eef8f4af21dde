"""The JSON shapes of every page: what ``/api/...`` returns and what ``?format=json`` gives.

HTML pages render exactly these objects, so a page and its JSON twin never disagree.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Link(BaseModel):
    label: str
    url: str


class Badge(BaseModel):
    kind: str = Field(description="award, decision, type or mode")
    text: str


class AppearanceOut(BaseModel):
    """One place the paper was met: a talk, a poster, a feed entry."""

    venue: str | None = None
    year: int | None = None
    track: str | None = None
    session: str | None = None
    room: str | None = None
    moderator: str | None = None
    presentation: str | None = Field(None, description="oral, spotlight, poster, talk or paper")
    decision: str | None = None
    mode: str | None = None
    award: str | None = None
    starts_at: str | None = Field(None, description="UTC, ISO-8601")
    ends_at: str | None = None
    source_tz: str | None = None
    slot_text: str | None = Field(None, description="the slot as the source printed it")
    slot_local: str | None = Field(None, description="the slot in the viewer's time zone")
    url: str | None = None
    source: str | None = None
    source_format: str | None = None
    line: int | None = None
    session_url: str | None = Field(None, description="this site's page of the session")


class PaperBrief(BaseModel):
    """A paper in a list: enough to decide whether to open it."""

    id: str
    title: str = Field(description="clean text (markup removed)")
    authors: list[str]
    year: int | None = None
    venue: str | None = Field(None, description='first venue and year, e.g. "ICLR 2023"')
    badges: list[Badge] = []
    appearances: list[AppearanceOut] = []
    primary: int | None = Field(None, description="index of the appearance lists show (a timed slot first)")
    url: str = Field(description="this paper's page")


class Fragment(BaseModel):
    text: str
    match: bool = False


class SearchHit(PaperBrief):
    score: float | None = None
    snippet: list[Fragment] = []


class FacetValue(BaseModel):
    value: str
    label: str | None = Field(None, description="how the value is shown, when it is an id (topics)")
    count: int
    selected: bool = False
    url: str = Field(description="the search narrowed (or widened, when selected) by this value")


class Facet(BaseModel):
    name: str
    values: list[FacetValue]
    note: str | None = Field(None, description="what the counts cover, when not every match (the topic facet)")


class SearchPage(BaseModel):
    q: str
    mode: str = Field(description="the mode asked for: keyword, meaning or hybrid")
    mode_used: str | None = Field(None, description="the mode that ran (meaning falls back to keywords without vectors)")
    message: str | None = None
    error: str | None = Field(None, description="why the query could not run, in words")
    sort: str = "relevance"
    filters: dict[str, str] = Field({}, description="facet filters from the URL (venue, year, type, award, session)")
    remove_filter_urls: dict[str, str] = Field({}, description="for each filter, the search without it")
    filter_labels: dict[str, str] = Field({}, description="for each filter, its value as the page shows it (a topic's label, not its id)")
    sort_urls: dict[str, str] = Field({}, description="this search under each sort")
    page: int = 1
    per_page: int = 20
    pages: int = 0
    total: int = 0
    hits: list[SearchHit] = []
    facets: list[Facet] = []
    tz: str = "UTC"
    prev_url: str | None = None
    next_url: str | None = None
    took_ms: float | None = None


class SimilarPaper(PaperBrief):
    score: float


class PaperDetail(PaperBrief):
    abstract: str = Field(description="clean text")
    tldr: str = ""
    keywords: list[str] = []
    ids: dict[str, str] = {}
    links: list[Link] = []
    flags: list[str] = []


class PaperPage(BaseModel):
    paper: PaperDetail
    bibtex: str
    similar_available: bool = Field(description="whether this installation can rank similar papers")
    similar_facet: str | None = Field(None, description="None (whole paper), background, method or result")
    similar_mode: str | None = Field(None, description="how similar papers were ranked: semantic (vectors) or keyword")
    similar: list[SimilarPaper] = []
    similar_message: str | None = None
    tz: str = "UTC"


class CoAuthor(BaseModel):
    name: str
    count: int
    url: str


class AuthorPage(BaseModel):
    name: str
    papers: list[PaperBrief]
    coauthors: list[CoAuthor]
    tz: str = "UTC"


class ProgramItem(BaseModel):
    """A paper in a program: its slot in a session."""

    paper_id: str
    title: str
    authors: list[str]
    venue: str | None = None
    year: int | None = None
    session: str | None = None
    room: str | None = None
    presentation: str | None = None
    award: str | None = None
    decision: str | None = None
    starts_at: str | None = None
    slot_local: str | None = None
    url: str
    session_url: str | None = None


class SessionSummary(BaseModel):
    name: str
    venue: str | None = None
    year: int | None = None
    kind: str | None = None
    room: str | None = None
    starts_at: str | None = None
    slot_local: str | None = None
    papers: int = 0
    url: str


class VenueYear(BaseModel):
    year: int | None
    papers: int
    url: str


class VenuePage(BaseModel):
    venue: str
    year: int | None = None
    years: list[VenueYear] = []
    sessions: list[SessionSummary] = []
    items: list[ProgramItem] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    prev_url: str | None = None
    next_url: str | None = None
    search_url: str
    tz: str = "UTC"


class SessionPage(BaseModel):
    venue: str | None = None
    year: int | None = None
    name: str
    room: str | None = None
    moderator: str | None = None
    slot_local: str | None = None
    items: list[ProgramItem] = []
    tz: str = "UTC"


class VenueCount(BaseModel):
    venue: str | None
    year: int | None
    papers: int
    url: str


class HomePage(BaseModel):
    papers: int
    venues: list[VenueCount]
    search_available: bool
    tz: str = "UTC"


class ErrorOut(BaseModel):
    error: str
    status: int
