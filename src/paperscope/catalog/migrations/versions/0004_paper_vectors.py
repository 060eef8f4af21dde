"""PostgreSQL only: paper vectors in pgvector with an HNSW index (SQLite keeps exact NumPy search).

The table is derived from ``embeddings`` (see ``paperscope.index.pgvector``) and can be refilled at
any time. Without the ``vector`` extension (a PostgreSQL without pgvector, or a role that may not
create it) the table is not made and search by meaning stays on the exact NumPy index.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from paperscope.catalog.pgvectors import create_vector_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        create_vector_table(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS paper_vectors")
