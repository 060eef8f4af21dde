"""Alembic environment: migrations run on the connection ``upgrade_to_head`` hands over."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the CLI path: paperscope always passes a connection
    raise RuntimeError("run migrations through paperscope (Catalog.open or `paperscope migrate`), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
