"""Baseline: the catalogue's tables as SQLAlchemy's create_all made them before migrations existed.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_key", sa.Text, nullable=False),
        sa.Column("abstract_raw", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.Text, nullable=False),
        sa.Column("year", sa.Integer),
        sa.Column("keywords", sa.Text, nullable=False),
        sa.Column("tldr", sa.Text, nullable=False),
        sa.Column("openreview_id", sa.Text),
        sa.Column("arxiv_id", sa.Text),
        sa.Column("doi", sa.Text),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("added_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("ix_papers_title_key", "papers", ["title_key"])
    op.create_index("ix_papers_openreview", "papers", ["openreview_id"])
    op.create_index("ix_papers_arxiv", "papers", ["arxiv_id"])
    op.create_index("ix_papers_doi", "papers", ["doi"])
    op.create_index("ix_papers_added", "papers", ["added_at"])

    op.create_table(
        "authors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False, unique=True),
    )
    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.Text, sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id"), nullable=False),
    )
    op.create_index("ix_paper_authors_author", "paper_authors", ["author_id"])

    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("locator", sa.Text, nullable=False, unique=True),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("ingested_at", sa.Text, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("problems", sa.Integer, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
    )
    op.create_table(
        "appearances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("paper_id", sa.Text, sa.ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_key", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text) for name in ("venue",)),
        sa.Column("year", sa.Integer),
        *(sa.Column(name, sa.Text) for name in ("track", "session", "room", "moderator", "presentation", "decision",
                                                  "mode", "award", "starts_at", "ends_at", "source_tz", "slot_text", "url")),
        sa.Column("line", sa.Integer),
        sa.UniqueConstraint("source_id", "source_key", name="uq_appearance_source_key"),
    )
    op.create_index("ix_appearances_paper", "appearances", ["paper_id"])
    op.create_index("ix_appearances_venue_year", "appearances", ["venue", "year"])
    op.create_index("ix_appearances_starts", "appearances", ["starts_at"])

    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("venue", sa.Text),
        sa.Column("year", sa.Integer),
        *(sa.Column(name, sa.Text) for name in ("kind", "room", "starts_at", "ends_at", "source_tz", "url")),
        sa.UniqueConstraint("source_id", "key", name="uq_session_source_key"),
    )
    op.create_index("ix_sessions_venue_year", "sessions", ["venue", "year"])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_locator", sa.Text, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Text, nullable=False),
        sa.UniqueConstraint("source_locator", "line", "problem", name="uq_quarantine_record"),
    )
    op.create_table(
        "embeddings",
        sa.Column("content_hash", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("meta", "embeddings", "quarantine", "sessions", "appearances", "sources", "paper_authors",
                 "authors", "papers"):
        op.drop_table(name)
