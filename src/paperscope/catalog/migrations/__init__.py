"""Schema migrations (Alembic) for both backends, run by ``Catalog.open``.

``upgrade_to_head(engine)`` brings a catalogue to the newest revision: a fresh one is created by the
migrations, a catalogue made before migrations existed (tables made by ``create_all``, no
``alembic_version``) is stamped at the baseline first and then upgraded. Opening a catalogue that
is already at :data:`HEAD` costs one query; Alembic itself is only imported when there is work.

Several processes may open a fresh PostgreSQL catalogue at once (``serve --workers``): the upgrade
runs under a transaction-level advisory lock, so one of them migrates and the others find it done.

Adding a migration: copy a file in ``versions/``, give it the next number as ``revision`` and the
previous one as ``down_revision``, and set :data:`HEAD` to it (a test checks that HEAD is the
scripts' head and that the migrated schema is exactly the one the code declares).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

HERE = Path(__file__).parent
HEAD = "0005"
BASELINE = "0001"
# pg_advisory_xact_lock key: any constant shared by every paperscope process ("pscope" in ASCII)
_LOCK_KEY = 0x7073636F7065


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(engine: Engine) -> str | None:
    """Migrate the catalogue behind ``engine`` to :data:`HEAD`; returns the revision it was at (None: new).

    An empty database gets the declared tables at once and is stamped at HEAD (Alembic's recipe for
    building a database from scratch; a test checks that running every migration gives the same
    schema). A catalogue at an older revision, or made before migrations, runs the migrations.
    """
    from paperscope.catalog.schema import metadata

    with engine.connect() as conn:
        if current_revision(conn) == HEAD and _has_declared_tables(conn, metadata):
            return HEAD
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        before = current_revision(conn)
        if before is None and not inspect(conn).has_table("papers"):
            _create_at_head(conn)
            return None
        if before != HEAD:
            _run_alembic(conn, stamp_baseline=before is None)
        # tables a module declares before its migration is written: made here, under the same lock,
        # so that workers starting together do not race to create them
        metadata.create_all(conn)
    return before


def _has_declared_tables(conn, metadata) -> bool:
    return set(metadata.tables) <= set(inspect(conn).get_table_names())


def run_migrations(engine: Engine) -> None:
    """Every migration from wherever the catalogue is, through Alembic (never the from-scratch shortcut)."""
    with engine.begin() as conn:
        before = current_revision(conn)
        _run_alembic(conn, stamp_baseline=before is None and inspect(conn).has_table("papers"))


def _run_alembic(conn, stamp_baseline: bool) -> None:
    from alembic import command

    cfg = alembic_config(conn)
    if stamp_baseline:
        command.stamp(cfg, BASELINE)   # made by create_all before migrations: its tables are the baseline's
    command.upgrade(cfg, "head")


def _create_at_head(conn) -> None:
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    import paperscope.catalog.accounts  # noqa: F401  (declares the tables of migration 0003)
    import paperscope.catalog.agenda  # noqa: F401  (0002)
    import paperscope.catalog.library  # noqa: F401  (0005)
    from paperscope.catalog.schema import metadata

    metadata.create_all(conn)
    if conn.dialect.name == "postgresql":
        from paperscope.catalog.pgvectors import create_vector_table

        create_vector_table(conn)
    version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))
