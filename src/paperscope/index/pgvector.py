"""Search by meaning in PostgreSQL: paper vectors in pgvector behind an HNSW index.

On PostgreSQL the paper-level vectors are copied from ``embeddings`` into ``paper_vectors``
(``vector(384)``, HNSW, cosine), so every web worker searches the database instead of holding its own
matrix. The copy is refreshed when ``paperscope embed`` has published a new generation of vectors
(the ``vectors:<model>:generation`` meta key), by whichever process needs it first, under an
advisory lock. SQLite keeps the exact NumPy index of :mod:`paperscope.index.vectors`.

The one call for ``index/vectors.py``::

    index = load_pg_vector_index(catalog, model)   # None: not PostgreSQL/pgvector, or no vectors yet

which returns an object with ``VectorIndex``'s interface (``search``, ``vector``, ``len``, and
``ids``/``matrix``/``position`` read from the database on first use, for the topic map).

HNSW is approximate: ``ef_search`` is raised with ``k`` (at least :data:`EF_SEARCH_MIN`), which
measured recall@10 >= 0.98 against exact search on 5,000 random unit vectors (tests/test_postgres.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

import numpy as np

from paperscope.catalog import pgvectors as sql
from paperscope.catalog.store import Catalog

EF_SEARCH_MIN = 100
log = logging.getLogger("paperscope.index")
SYNC_META = "pgvector:{model}:generation"

_LOCK = threading.Lock()


def _state(catalog: Catalog) -> dict:
    """What this process knows of a catalogue's pgvector table (kept on the open catalogue)."""
    state = catalog.__dict__.get("_pgvector_state")
    if state is None:
        state = catalog.__dict__.setdefault("_pgvector_state", {"synced": {}, "indexes": {}, "iterative": None})
    return state


def available(catalog: Catalog) -> bool:
    """Whether this catalogue keeps its vectors in pgvector (PostgreSQL with the extension)."""
    return not catalog.is_sqlite and sql.has_vector_table(catalog.engine)


def sync_paper_vectors(catalog: Catalog, model: str, force: bool = False, wait: bool = True) -> dict[str, int] | None:
    """Bring ``paper_vectors`` up to date with the catalogue's vectors of ``model``.

    Cheap when nothing changed (two meta reads). Returns what was removed, added and rebuilt, or
    None when it was already in step (or, with ``wait=False``, when another process is syncing).
    Call it after `paperscope embed` on PostgreSQL so that the first search does not wait for it.
    """
    generation = catalog.get_meta(f"vectors:{model}:generation")
    seen = _state(catalog)["synced"]
    if not force and generation is not None and seen.get(model) == generation:
        return None
    with _LOCK:
        synced = catalog.get_meta(SYNC_META.format(model=model))
        if not force and generation is not None and synced == generation:
            seen[model] = generation
            return None
        done = sql.sync_vectors(catalog.engine, model, wait=wait)
        if done is not None and generation is not None:
            catalog.set_meta(SYNC_META.format(model=model), generation)
            seen[model] = generation
        return done


def _sync_in_background(catalog: Catalog, model: str) -> None:
    state = _state(catalog)
    running = state.setdefault("syncing", {})
    thread = running.get(model)
    if thread is not None and thread.is_alive():
        return

    def run() -> None:
        try:
            sync_paper_vectors(catalog, model, wait=False)
        except Exception:  # the exact index serves meanwhile; the next search tries again
            log.exception("copying the vectors of %s into pgvector failed", model)

    thread = threading.Thread(target=run, name=f"pgvector-sync-{model}", daemon=True)
    running[model] = thread
    thread.start()


class PgVectorIndex:
    """``VectorIndex``'s interface over ``paper_vectors`` (approximate nearest neighbours by HNSW)."""

    def __init__(self, catalog: Catalog, model: str, generation: str | None = None):
        self.catalog = catalog
        self.model = model
        self.generation = generation
        self._count: int | None = None
        self._ids: list[str] | None = None
        self._matrix: np.ndarray | None = None
        self._position: dict[str, int] | None = None
        self.iterative = _iterative_scan(catalog)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sql.count_vectors(self.catalog.engine, self.model)
        return self._count

    def search(self, query: np.ndarray, k: int = 10, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        excluded = set(exclude)
        want = k + len(excluded)
        hits = sql.nearest(self.catalog.engine, self.model, query, want, max(EF_SEARCH_MIN, 2 * want), self.iterative)
        return [(pid, score) for pid, score in hits if pid not in excluded][:k]

    def vector(self, paper_id: str) -> np.ndarray | None:
        if self._position is not None:
            i = self._position.get(paper_id)
            return None if i is None else self._matrix[i]
        blob = sql.paper_vector(self.catalog.engine, self.model, paper_id)
        return None if blob is None else np.frombuffer(blob, dtype=np.float32)

    # the whole matrix, for callers that need every vector at once (the topic map): read once
    def _load_all(self) -> None:
        ids, blobs = self.catalog.paper_vectors(self.model)
        self._matrix = (np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1)
                        if ids else np.zeros((0, sql.DIMENSIONS), np.float32))
        self._ids = ids
        self._position = {pid: i for i, pid in enumerate(ids)}

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._load_all()
        return self._ids

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._load_all()
        return self._matrix

    @property
    def position(self) -> dict[str, int]:
        if self._position is None:
            self._load_all()
        return self._position


def load_pg_vector_index(catalog: Catalog, model: str, wait: bool = False) -> PgVectorIndex | None:
    """The pgvector index of ``model`` for this catalogue, or None: not PostgreSQL with pgvector, no
    vectors of ``model`` yet, or their first copy into pgvector still being made (in the background,
    unless ``wait``): the caller then uses the exact index meanwhile.

    After later `paperscope embed` runs the index is served as it is while the new vectors are copied
    in the background (a few papers missing for a while, like the keyword index's last commit).
    """
    if not available(catalog):
        return None
    generation = catalog.get_meta(f"vectors:{model}:generation")
    if generation is None:
        return None
    synced = catalog.get_meta(SYNC_META.format(model=model))
    if synced != generation:
        if wait:
            sync_paper_vectors(catalog, model)
            synced = generation
        else:
            _sync_in_background(catalog, model)
            if synced is None:
                return None
    indexes = _state(catalog)["indexes"]
    index = indexes.get(model)
    if index is None or index.generation != synced:
        index = indexes[model] = PgVectorIndex(catalog, model, synced)
    return index


def _iterative_scan(catalog: Catalog) -> bool:
    """pgvector 0.8 and later can keep scanning the graph when a filter (the model) drops candidates."""
    state = _state(catalog)
    if state["iterative"] is None:
        with catalog.engine.connect() as conn:
            version = sql.vector_extension_version(conn) or "0"
        parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        state["iterative"] = parts >= (0, 8)
    return state["iterative"]
