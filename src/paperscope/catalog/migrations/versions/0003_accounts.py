"""Accounts for server mode: users, login sessions, API tokens, invitations, password resets, login attempts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from paperscope.catalog.migrations.helpers import create_table_if_missing

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table_if_missing(
        "users",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("username_key", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.Text),
        sa.Column("email_key", sa.Text, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("last_login_at", sa.Text),
        sa.Column("password_changed_at", sa.Text),
    )
    create_table_if_missing(
        "login_sessions",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("last_seen_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("ip", sa.Text),
        sa.Column("user_agent", sa.Text),
        indexes=(("ix_login_sessions_user", ("user_id",), False),),
    )
    create_table_if_missing(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("last_used_at", sa.Text),
        indexes=(("ix_api_tokens_user", ("user_id",), False),),
    )
    create_table_if_missing(
        "invitations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code_hash", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.Text),
        sa.Column("make_admin", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("used_by", sa.Text),
        sa.Column("used_at", sa.Text),
    )
    create_table_if_missing(
        "password_resets",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("used_at", sa.Text),
    )
    create_table_if_missing(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username_key", sa.Text, nullable=False),
        sa.Column("ip", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        indexes=(("ix_login_attempts_user_at", ("username_key", "at"), False),
                 ("ix_login_attempts_ip_at", ("ip", "at"), False)),
    )


def downgrade() -> None:
    for name in ("login_attempts", "password_resets", "invitations", "api_tokens", "login_sessions", "users"):
        op.drop_table(name)
