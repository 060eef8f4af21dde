"""The personal agenda (per user): starred talks, posters and sessions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paperscope.catalog.migrations.helpers import create_table_if_missing

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table_if_missing(
        "agenda_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("paper_id", sa.Text),
        sa.Column("venue", sa.Text),
        sa.Column("year", sa.Integer),
        sa.Column("session", sa.Text),
        sa.Column("room", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("authors", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Text),
        sa.Column("ends_at", sa.Text),
        sa.Column("source_tz", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("relevance", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("added_at", sa.Text, nullable=False),
        sa.UniqueConstraint("user_id", "item_key", name="uq_agenda_user_item"),
        indexes=(("ix_agenda_user_start", ("user_id", "starts_at"), False),),
    )


def downgrade() -> None:
    op.drop_table("agenda_items")
