"""Checks that a catalogue is whole: what a crash (or a bad tool) could have broken.

Used after an interrupted process to prove nothing was lost, half-written or duplicated
(``paperscope bench crash``). Each check returns the problems it found, as short sentences;
an empty list means the check passed.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text

from paperscope.catalog import schema as s

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog


def storage_problems(catalog: "Catalog") -> list[str]:
    """SQLite's own verdict on the file (``PRAGMA integrity_check``) and any dangling foreign key."""
    if not catalog.is_sqlite:
        return []  # PostgreSQL keeps its own files consistent and enforces foreign keys on every write
    with catalog.engine.connect() as conn:
        verdict = [row[0] for row in conn.execute(text("PRAGMA integrity_check"))]
        dangling = conn.execute(text("PRAGMA foreign_key_check")).all()
    problems = [] if verdict == ["ok"] else [f"integrity_check: {line}" for line in verdict[:5]]
    for table, rowid, parent, _fk in dangling[:5]:
        problems.append(f"foreign key: {table} row {rowid} points to a missing {parent} row")
    if len(dangling) > 5:
        problems.append(f"foreign key: {len(dangling) - 5} more dangling rows")
    return problems


def paper_identity(row) -> str:
    """What makes two catalogue papers the same real paper: a strong id, else the title key."""
    for kind, column in (("openreview", "openreview_id"), ("arxiv", "arxiv_id"), ("doi", "doi")):
        if row[column]:
            return f"{kind}:{row[column]}"
    return f"title:{row['title_key']}"


def paper_identities(catalog: "Catalog") -> Counter:
    """How many catalogue papers each real paper (by :func:`paper_identity`) has."""
    columns = (s.papers.c.openreview_id, s.papers.c.arxiv_id, s.papers.c.doi, s.papers.c.title_key)
    with catalog.engine.connect() as conn:
        return Counter(paper_identity(row) for row in conn.execute(select(*columns)).mappings())


def paper_titles(catalog: "Catalog") -> dict[str, str]:
    """Paper id -> title, for comparing a derived index with the catalogue."""
    with catalog.engine.connect() as conn:
        return {pid: title for pid, title in conn.execute(select(s.papers.c.id, s.papers.c.title))}


def appearance_counts(catalog: "Catalog") -> dict[str, int]:
    """Paper id -> number of appearances."""
    query = select(s.appearances.c.paper_id, func.count()).group_by(s.appearances.c.paper_id)
    with catalog.engine.connect() as conn:
        return {pid: n for pid, n in conn.execute(query)}


def vector_problems(catalog: "Catalog", model: str, dim: int) -> list[str]:
    """Stored vectors of ``model`` that are not ``dim`` float32 numbers (a torn write would show here)."""
    width = dim * 4
    query = (select(func.count()).select_from(s.embeddings)
             .where(s.embeddings.c.model == model, func.length(s.embeddings.c.vector) != width))
    with catalog.engine.connect() as conn:
        bad = conn.execute(query).scalar_one()
    return [f"{bad} vectors of {model} are not {dim} float32 numbers"] if bad else []


def embedded_hashes(catalog: "Catalog", model: str) -> set[str]:
    """Content hashes that have a vector of ``model``."""
    query = select(s.embeddings.c.content_hash).where(s.embeddings.c.model == model)
    with catalog.engine.connect() as conn:
        return {h for (h,) in conn.execute(query)}


def missing_tables(catalog: "Catalog") -> list[str]:
    """Catalogue tables the database lacks (a process killed while creating the catalogue leaves some out)."""
    from sqlalchemy import inspect

    present = set(inspect(catalog.engine).get_table_names())
    return sorted(set(s.metadata.tables) - present)
