"""The catalogue's tables: one schema for SQLite and PostgreSQL (SQLAlchemy Core).

Times are stored as ISO-8601 strings in UTC (``2022-07-21T19:30:00+00:00``), which sort
correctly as text in both databases; the source's zone is kept beside them.
Lists (authors, keywords) are JSON text on the paper row for fast reads; ``paper_authors``
normalises authors for author pages and the ``author:`` filter.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1

metadata = MetaData()

papers = Table(
    "papers", metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("title_key", Text, nullable=False),
    Column("abstract_raw", Text, nullable=False, default=""),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", Text, nullable=False, default="[]"),      # JSON list of names, in order
    Column("year", Integer),
    Column("keywords", Text, nullable=False, default="[]"),     # JSON list
    Column("tldr", Text, nullable=False, default=""),
    Column("openreview_id", Text),
    Column("arxiv_id", Text),
    Column("doi", Text),
    Column("flags", Text, nullable=False, default=""),          # comma-separated, e.g. "missing_title"
    Column("provenance", Text, nullable=False, default="{}"),   # JSON {field: source locator}
    Column("content_hash", Text, nullable=False),               # of title + abstract: what embeddings key on
    Column("added_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)
Index("ix_papers_title_key", papers.c.title_key)
Index("ix_papers_openreview", papers.c.openreview_id)
Index("ix_papers_arxiv", papers.c.arxiv_id)
Index("ix_papers_doi", papers.c.doi)
Index("ix_papers_added", papers.c.added_at)

authors = Table(
    "authors", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("name_key", Text, nullable=False, unique=True),
)

paper_authors = Table(
    "paper_authors", metadata,
    Column("paper_id", Text, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("author_id", Integer, ForeignKey("authors.id"), nullable=False),
)
Index("ix_paper_authors_author", paper_authors.c.author_id)

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("locator", Text, nullable=False, unique=True),
    Column("format", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("ingested_at", Text, nullable=False),
    Column("records", Integer, nullable=False, default=0),
    Column("problems", Integer, nullable=False, default=0),
    Column("notes", Text, nullable=False, default="[]"),        # JSON list of messages
)

appearances = Table(
    "appearances", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Text, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("source_key", Text, nullable=False),
    Column("venue", Text),
    Column("year", Integer),
    Column("track", Text),
    Column("session", Text),
    Column("room", Text),
    Column("moderator", Text),
    Column("presentation", Text),
    Column("decision", Text),
    Column("mode", Text),
    Column("award", Text),
    Column("starts_at", Text),
    Column("ends_at", Text),
    Column("source_tz", Text),
    Column("slot_text", Text),
    Column("url", Text),
    Column("line", Integer),
    UniqueConstraint("source_id", "source_key", name="uq_appearance_source_key"),
)
Index("ix_appearances_paper", appearances.c.paper_id)
Index("ix_appearances_venue_year", appearances.c.venue, appearances.c.year)
Index("ix_appearances_starts", appearances.c.starts_at)

sessions = Table(
    "sessions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("venue", Text),
    Column("year", Integer),
    Column("kind", Text),
    Column("room", Text),
    Column("starts_at", Text),
    Column("ends_at", Text),
    Column("source_tz", Text),
    Column("url", Text),
    UniqueConstraint("source_id", "key", name="uq_session_source_key"),
)
Index("ix_sessions_venue_year", sessions.c.venue, sessions.c.year)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_locator", Text, nullable=False),
    Column("line", Integer),
    Column("problem", Text, nullable=False),
    Column("raw", Text, nullable=False, default=""),
    Column("first_seen", Text, nullable=False),
    UniqueConstraint("source_locator", "line", "problem", name="uq_quarantine_record"),
)

# Embedding vectors keyed by the text they embed, so re-ingest and renames re-embed only what changed.
embeddings = Table(
    "embeddings", metadata,
    Column("content_hash", Text, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
