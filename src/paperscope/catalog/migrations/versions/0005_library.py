"""The library (per user): saved and imported papers, tags, feedback, papers seen, digests, feed tokens.

A frozen copy of the tables ``paperscope.catalog.library`` declares (a change to them is a new
migration). Catalogues that already have them (made by ``create_all``) keep them as they are.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paperscope.catalog.migrations.helpers import create_table_if_missing

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table_if_missing(
        "library_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("entry_key", sa.Text, nullable=False),
        sa.Column("paper_id", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("authors", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("year", sa.Integer),
        sa.Column("venue", sa.Text),
        sa.Column("ids", sa.Text, nullable=False),
        sa.Column("cite_key", sa.Text),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("read_state", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("added_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.UniqueConstraint("user_id", "entry_key", name="uq_library_user_entry"),
        indexes=(("ix_library_user_paper", ("user_id", "paper_id"), False),),
    )
    create_table_if_missing(
        "library_tags",
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("library_entries.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        indexes=(("ix_library_tags_user_tag", ("user_id", "tag"), False),),
    )
    create_table_if_missing(
        "library_feedback",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("paper_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    create_table_if_missing(
        "library_seen",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("paper_id", sa.Text, primary_key=True),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("seen_at", sa.Text, nullable=False),
    )
    create_table_if_missing(
        "digest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("window_start", sa.Text),
        sa.Column("window_end", sa.Text, nullable=False),
        sa.Column("papers", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.Text, nullable=False),
        indexes=(("ix_digest_runs_user", ("user_id", "channel", "tag"), False),),
    )
    create_table_if_missing(
        "digest_items",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("paper_id", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("digest_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
    )
    create_table_if_missing(
        "feed_tokens",
        sa.Column("token", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.UniqueConstraint("user_id", "tag", name="uq_feed_user_tag"),
    )


def downgrade() -> None:
    for name in ("feed_tokens", "digest_items", "digest_runs", "library_seen", "library_feedback", "library_tags",
                 "library_entries"):
        op.drop_table(name)
