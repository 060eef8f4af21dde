"""Copying a whole catalogue between backends (SQLite <-> PostgreSQL), and proving nothing was lost.

Every table of the source (but Alembic's version table and the derived ``paper_vectors``, which the
destination refills from ``embeddings``) is copied row for row, ids included, into an empty
catalogue at the same schema revision, in one transaction; PostgreSQL sequences are then moved past
the copied ids. Each side is then summarised per table by a row count and a checksum that does not
depend on the backend: the SHA-256 of every row's values in a canonical form, added up modulo 2^256
(so the order rows come back in, which differs between the backends' collations, does not matter).
Meta keys about a database's own derived state (``pgvector:*``) are neither copied nor summed.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import Connection, MetaData, Table, func, inspect, select, text

from paperscope.catalog import schema as s

SKIPPED = frozenset({"alembic_version", "paper_vectors", "paper_vectors_build"})
# meta keys that describe a database's own derived state (what it copied into pgvector), not the catalogue
DERIVED_META = ("pgvector:",)
_MOD = 1 << 256


class CopyError(RuntimeError):
    """The copy cannot be made; the message says why."""


@dataclass
class TableSummary:
    table: str
    rows: int
    checksum: str

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "checksum": self.checksum}


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"\x00N"
    if isinstance(value, bool):
        return b"b1" if value else b"b0"
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, float):
        return b"f" + repr(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"x" + bytes(value)
    return b"s" + str(value).encode("utf-8", "surrogatepass")


def row_digest(columns: list[str], row) -> int:
    h = hashlib.sha256()
    for name in columns:
        encoded = _canonical(row[name])
        h.update(len(encoded).to_bytes(8, "big"))
        h.update(encoded)
    return int.from_bytes(h.digest(), "big")


def _declare_all() -> None:
    """Declare every module's tables on the metadata (their order and types are then the same on
    every call)."""
    import paperscope.catalog.accounts  # noqa: F401
    import paperscope.catalog.agenda  # noqa: F401
    import paperscope.catalog.library  # noqa: F401


def _tables(engine, names: Iterable[str]) -> dict[str, Table]:
    """Table objects for ``names``: the declared ones (their types read the same on both backends),
    else reflected."""
    _declare_all()
    reflected = MetaData()
    out = {}
    for name in names:
        out[name] = s.metadata.tables[name] if name in s.metadata.tables else Table(name, reflected, autoload_with=engine)
    return out


def table_names(engine) -> list[str]:
    """The catalogue's tables in an order that satisfies foreign keys (parents first)."""
    _declare_all()
    present = set(inspect(engine).get_table_names()) - SKIPPED
    declared = [t.name for t in s.metadata.sorted_tables if t.name in present]
    return declared + sorted(present - set(declared))


def summarise(bind, names: list[str] | None = None, batch: int = 2000) -> list[TableSummary]:
    """Row count and backend-independent checksum of each table. ``bind`` is an engine, or a
    connection whose open transaction fixes the snapshot to sum (a backup sums what it dumped)."""
    names = names or table_names(bind)
    tables = _tables(bind, names)
    out = []
    with (nullcontext(bind) if isinstance(bind, Connection) else bind.connect()) as conn:
        for name in names:
            table = tables[name]
            columns = sorted(c.name for c in table.columns)
            total, rows = 0, 0
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(select(table))
            for row in result.mappings():
                if name == "meta" and str(row["key"]).startswith(DERIVED_META):
                    continue
                total = (total + row_digest(columns, row)) % _MOD
                rows += 1
            out.append(TableSummary(name, rows, f"{total:064x}"))
    return out


def copy_catalogue(src, dst, progress: Callable[[str, int, int], None] | None = None,
                   batch: int = 2000) -> dict[str, int]:
    """Copy every row of ``src`` into the empty catalogue ``dst`` (both open ``Catalog``s at the same
    revision). Returns rows copied per table."""
    from paperscope.catalog.migrations import current_revision

    with src.engine.connect() as a, dst.engine.connect() as b:
        if current_revision(a) != current_revision(b):
            raise CopyError(f"the catalogues are at different schema revisions ({current_revision(a)} and "
                            f"{current_revision(b)}); open both with this version of paperscope first")
    names = table_names(src.engine)
    missing = [n for n in names if n not in set(inspect(dst.engine).get_table_names())]
    if missing:
        raise CopyError(f"the destination has no table {', '.join(missing)}: is it a paperscope catalogue "
                        "of the same version?")
    src_tables = _tables(src.engine, names)
    dst_tables = _tables(dst.engine, names)
    with dst.engine.connect() as conn:
        for name in names:
            if name == "meta":
                continue
            n = conn.execute(select(func.count()).select_from(dst_tables[name])).scalar_one()
            if n:
                raise CopyError(f"the destination is not empty ({n} rows in {name}); copy into a new catalogue")
    counts: dict[str, int] = {}
    with src.engine.connect() as reader, dst.engine.begin() as writer:
        writer.execute(dst_tables["meta"].delete())   # Catalog.open wrote its own; the source's replace them
        for name in names:
            table = dst_tables[name]
            total = reader.execute(select(func.count()).select_from(src_tables[name])).scalar_one()
            done = 0
            result = reader.execution_options(stream_results=True, yield_per=batch).execute(select(src_tables[name]))
            for chunk in result.mappings().partitions(batch):
                rows = [dict(r) for r in chunk
                        if not (name == "meta" and str(r["key"]).startswith(DERIVED_META))]
                if not rows:
                    continue
                try:
                    writer.execute(table.insert(), rows)
                except Exception as exc:
                    raise CopyError(f"rows of {name} could not be written: {str(exc).splitlines()[0]}") from exc
                done += len(rows)
                if progress:
                    progress(name, done, total)
            counts[name] = done
        if writer.dialect.name == "postgresql":
            _advance_sequences(writer, [dst_tables[n] for n in names])
    return counts


def _advance_sequences(conn, tables: list[Table]) -> None:
    """Explicit ids were copied: move each serial column's sequence past the largest."""
    for table in tables:
        key = list(table.primary_key.columns)
        if len(key) != 1:
            continue
        try:
            if key[0].type.python_type is not int:
                continue
        except NotImplementedError:
            continue
        name = key[0].name
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": name}).scalar()
        if sequence:
            conn.execute(text(f'SELECT setval(:s, COALESCE((SELECT MAX("{name}") FROM "{table.name}"), 0) + 1, false)'),
                         {"s": sequence})


def vector_models(engine) -> list[str]:
    """Models that have published paper-level vectors (``vectors:<model>:generation`` in meta)."""
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(select(s.meta.c.key).where(s.meta.c.key.like("vectors:%:generation")))]
    models = [k[len("vectors:"):-len(":generation")] for k in keys]
    return [m for m in models if not m.endswith("#sentence")]
