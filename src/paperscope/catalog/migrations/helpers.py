"""Shared by the migration scripts: creating a table or index only where it is missing.

Catalogues made before migrations existed may already have some of the tables a later migration
adds (``create_all`` made every table a module had declared), so table-creating migrations are
idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def create_table_if_missing(name: str, *columns, indexes: tuple[tuple[str, tuple[str, ...], bool], ...] = ()) -> None:
    """``op.create_table`` plus its indexes ``(name, columns, unique)``, unless the table exists."""
    if has_table(name):
        return
    op.create_table(name, *columns)
    for index_name, cols, unique in indexes:
        op.create_index(index_name, name, list(cols), unique=unique)
