"""The SQL of paper vectors in pgvector (PostgreSQL only): the ``paper_vectors`` table and its HNSW index.

``paper_vectors`` is derived from the ``embeddings`` table: one row per (model, paper) holding the
paper-level vector of the paper's current text, with the ``content_hash`` it was made from, so that a
paper whose abstract changed is noticed and re-filled. Deleting a paper deletes its row (foreign key).
:mod:`paperscope.index.pgvector` decides when to fill it and serves searches from it.

Scores are cosine similarities (``1 - (embedding <=> query)``), equal to the dot product the exact
NumPy index ranks by, since paperscope's vectors are unit length.
"""

from __future__ import annotations

import logging
import struct
from typing import Iterable

import numpy as np
from sqlalchemy import text

log = logging.getLogger("paperscope.catalog")

TABLE = "paper_vectors"
DIMENSIONS = 384
# HNSW build parameters: pgvector's defaults, which measure ~0.99 recall@10 at ef_search 100 here.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
# Key of the advisory lock that makes one process at a time refill the table.
SYNC_LOCK_KEY = 0x7073766563  # "psvec"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)


def vector_extension_version(conn) -> str | None:
    return conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()


def create_vector_table(conn) -> bool:
    """Create the extension (when allowed), the table and its HNSW index. False when pgvector is unavailable."""
    if vector_extension_version(conn) is None:
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
        if not available:
            log.warning("PostgreSQL has no pgvector extension: search by meaning uses the exact in-memory index")
            return False
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except Exception as exc:  # not allowed (needs a superuser or the database owner on trusted installs)
            log.warning("cannot create the pgvector extension (%s); ask an administrator to run "
                        "CREATE EXTENSION vector in this database", str(exc).splitlines()[0])
            return False
    conn.execute(text(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " model text NOT NULL,"
        " paper_id text NOT NULL REFERENCES papers (id) ON DELETE CASCADE,"
        " content_hash text NOT NULL,"
        f" embedding vector({DIMENSIONS}) NOT NULL,"
        " PRIMARY KEY (model, paper_id))"))
    conn.execute(text(
        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_hnsw ON {TABLE} USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"))
    return True


def has_vector_table(engine) -> bool:
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}).scalar())


def _copy_rows(rows: Iterable[tuple[str, str, str, bytes]]) -> Iterable[bytes]:
    """COPY BINARY tuples (model, paper_id, content_hash, vector): pgvector's binary form is
    int16 dimensions, int16 unused, then big-endian float4s."""
    yield _COPY_HEADER
    for model, paper_id, content_hash, blob in rows:
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape[0] != DIMENSIONS:
            continue
        body = struct.pack("!hh", DIMENSIONS, 0) + vec.astype(">f4").tobytes()
        parts = [struct.pack("!h", 4)]
        for value in (model.encode(), paper_id.encode(), content_hash.encode(), body):
            parts.append(struct.pack("!i", len(value)))
            parts.append(value)
        yield b"".join(parts)
    yield _COPY_TRAILER


_STALE_ROWS = (
    f"FROM {TABLE} pv WHERE pv.model = :m AND NOT EXISTS ("
    " SELECT 1 FROM papers p JOIN embeddings e ON e.content_hash = p.content_hash AND e.model = :m"
    " WHERE p.id = pv.paper_id AND p.content_hash = pv.content_hash)")
_CURRENT = ("SELECT p.id, p.content_hash, e.vector FROM papers p"
            " JOIN embeddings e ON e.content_hash = p.content_hash AND e.model = :m")


def _copy_in(conn, table: str, rows: list) -> int:
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} (model, paper_id, content_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        for chunk in _copy_rows(rows):
            copy.write(chunk)
    return sum(1 for *_, blob in rows if len(blob) == DIMENSIONS * 4)


def sync_vectors(engine, model: str, wait: bool = True, rebuild_fraction: float = 0.2,
                 min_rebuild: int = 2000) -> dict[str, int] | None:
    """Make ``paper_vectors`` hold exactly the current paper-level vectors of ``model``.

    A few changes are applied in place (the HNSW index takes each insert; readers are not blocked).
    Many (more than ``rebuild_fraction`` of the rows and at least ``min_rebuild``, e.g. the first fill)
    are loaded into a new table whose index is built in one go, which is then swapped in: readers keep
    searching the old table meanwhile, and wait only for the rename. One process at a time (advisory
    lock): with ``wait=False`` a process that finds another syncing returns None at once.
    """
    with engine.begin() as conn:
        if wait:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SYNC_LOCK_KEY})
        elif not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SYNC_LOCK_KEY}).scalar():
            return None
        stale = conn.execute(text("SELECT count(*) " + _STALE_ROWS), {"m": model}).scalar_one()
        rows_now = conn.execute(text(f"SELECT count(*) FROM {TABLE} WHERE model = :m"), {"m": model}).scalar_one()
        missing = conn.execute(text(
            _CURRENT + f" LEFT JOIN {TABLE} pv ON pv.model = :m AND pv.paper_id = p.id"
            " AND pv.content_hash = p.content_hash WHERE pv.paper_id IS NULL"), {"m": model}).all()
        changes = stale + len(missing)
        if not changes:
            return {"removed": 0, "added": 0, "rebuilt": 0}
        if changes < max(min_rebuild, rebuild_fraction * rows_now):
            removed = conn.execute(text("DELETE " + _STALE_ROWS), {"m": model}).rowcount or 0
            # a paper whose text changed still has its old row: replace it
            ids = [pid for pid, _, _ in missing]
            for start in range(0, len(ids), 1000):
                conn.execute(text(f"DELETE FROM {TABLE} WHERE model = :m AND paper_id = ANY(:ids)"),
                             {"m": model, "ids": ids[start:start + 1000]})
            added = _copy_in(conn, TABLE, [(model, pid, h, bytes(v)) for pid, h, v in missing])
            conn.execute(text(f"ANALYZE {TABLE}"))
            return {"removed": removed, "added": added, "rebuilt": 0}
        return _rebuild(conn, model, stale)


def _rebuild(conn, model: str, stale: int) -> dict[str, int]:
    build = f"{TABLE}_build"
    conn.execute(text(f"DROP TABLE IF EXISTS {build}"))
    conn.execute(text(
        f"CREATE TABLE {build} ("
        " model text NOT NULL,"
        " paper_id text NOT NULL REFERENCES papers (id) ON DELETE CASCADE,"
        " content_hash text NOT NULL,"
        f" embedding vector({DIMENSIONS}) NOT NULL,"
        f" CONSTRAINT {build}_pkey PRIMARY KEY (model, paper_id))"))
    conn.execute(text(f"INSERT INTO {build} SELECT model, paper_id, content_hash, embedding FROM {TABLE}"
                      " WHERE model <> :m"), {"m": model})
    current = conn.execute(text(_CURRENT), {"m": model}).all()
    added = _copy_in(conn, build, [(model, pid, h, bytes(v)) for pid, h, v in current])
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    conn.execute(text(
        f"CREATE INDEX {build}_hnsw ON {build} USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"))
    # the swap: readers of the old table finish first, the next ones read the new table
    conn.execute(text(f"DROP TABLE {TABLE}"))
    conn.execute(text(f"ALTER TABLE {build} RENAME TO {TABLE}"))
    conn.execute(text(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {build}_pkey TO {TABLE}_pkey"))
    conn.execute(text(f"ALTER INDEX {build}_hnsw RENAME TO ix_{TABLE}_hnsw"))
    conn.execute(text(f"ANALYZE {TABLE}"))
    return {"removed": stale, "added": added, "rebuilt": 1}


def count_vectors(engine, model: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {TABLE} WHERE model = :m"), {"m": model}).scalar_one()


def nearest(engine, model: str, query: np.ndarray, k: int, ef_search: int,
            iterative: bool = True) -> list[tuple[str, float]]:
    """The ``k`` papers nearest ``query`` by cosine, through the HNSW index, best first.

    The search settings are made once per pooled connection (each is a round trip) and changed only
    when a larger ``ef_search`` is asked for.
    """
    literal = "[" + ",".join(f"{x:.8g}" for x in np.asarray(query, dtype=np.float32).tolist()) + "]"
    with engine.connect() as conn:
        info = conn.connection.info
        if info.get("hnsw.ef_search") != ef_search:
            settings = f"SET hnsw.ef_search = {int(ef_search)}"
            if iterative:  # pgvector >= 0.8: keep scanning the graph when the model filter drops candidates
                settings += "; SET hnsw.iterative_scan = relaxed_order"
            conn.exec_driver_sql(settings)
            conn.commit()  # session settings made in a transaction that rolls back would be undone
            info["hnsw.ef_search"] = ef_search
        rows = conn.execute(text(
            f"SELECT paper_id, 1 - (embedding <=> CAST(:q AS vector)) AS score FROM {TABLE}"
            " WHERE model = :m ORDER BY embedding <=> CAST(:q AS vector) LIMIT :k"),
            {"q": literal, "m": model, "k": int(k)}).all()
        conn.rollback()
    hits = [(pid, float(score)) for pid, score in rows]
    hits.sort(key=lambda h: -h[1])  # relaxed_order may return near-ties slightly out of order
    return hits


def paper_vector(engine, model: str, paper_id: str) -> bytes | None:
    """The stored paper-level vector of one paper (from ``embeddings``: exact, not re-encoded)."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT e.vector FROM papers p JOIN embeddings e ON e.content_hash = p.content_hash AND e.model = :m"
            " WHERE p.id = :id"), {"m": model, "id": paper_id}).first()
        return bytes(row[0]) if row else None
