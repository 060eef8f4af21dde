"""Paper vectors: computing them into the catalogue, and exact nearest-neighbour search.

Vectors are stored in the catalogue's ``embeddings`` table, keyed by the text they embed:
a paper-level vector by the paper's ``content_hash`` (title + abstract), a sentence vector by the
sha1 of the sentence. So re-ingesting a paper with the same text re-embeds nothing, and an edited
abstract re-embeds only that paper. Sentence vectors serve facet-aware similarity ("like it in its
method"), which matches sentences to sentences.

Search is exact (a NumPy matrix product): 8-16 ms per query at 100k x 384 on 2 cores with perfect
recall (see DESIGN.md), so an approximate index is not worth its recall loss at this size. The
matrix is cached beside the catalogue, with its ids and generation in the same file (replaced whole,
so a matrix is never read with another state's ids), and rebuilt when a new generation is published.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from paperscope.catalog.store import Catalog

SENTENCE_SUFFIX = "#sentence"
EMBED_BATCH = 128


def sentence_model(model: str) -> str:
    return model + SENTENCE_SUFFIX


def paper_doc(row: dict):
    """The ranking view of a catalogue paper (clean title, abstract split in sentences)."""
    from paperscope.similarity import Doc

    return Doc.from_text(row["id"], row.get("title") or "", row.get("abstract") or "", row.get("year"))


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


# ------------------------------------------------------------------------------------ embedding
@dataclass
class EmbedProgress:
    done: int
    total: int
    seconds: float


def embed_catalog(
    catalog: Catalog,
    embedder,
    with_sentences: bool = True,
    limit: int | None = None,
    progress: Callable[[EmbedProgress], None] | None = None,
    batch_size: int | None = None,
) -> dict:
    """Embed every paper that has no vector yet; resumable, since each batch is stored as it finishes.

    Crash safety: within a batch the sentence vectors are stored before the paper vectors, so a
    paper that has a vector has its sentences too (when the runs so far embedded sentences); the
    vectors are published (a new generation, which searches load) only once stored, and a run
    that finds stored vectors not yet published (its predecessor was killed) publishes them.
    """
    from paperscope.index.embedder import text_key

    todo = catalog.papers_missing_vectors(embedder.name, limit=limit)
    start = time.perf_counter()
    sentences_embedded = _prepare_sentences(catalog, embedder, with_sentences, bool(todo), batch_size or EMBED_BATCH)
    done = 0
    batch_size = batch_size or EMBED_BATCH
    for first in range(0, len(todo), batch_size):
        batch = todo[first:first + batch_size]
        docs = [paper_doc(r) for r in batch]
        if with_sentences:
            sentences_embedded += embed_sentences(catalog, embedder, docs, text_key)
        vectors = embedder.embed([d.text for d in docs])
        catalog.store_vectors(embedder.name, {r["content_hash"]: to_blob(v) for r, v in zip(batch, vectors)})
        done += len(batch)
        if progress:
            progress(EmbedProgress(done, len(todo), time.perf_counter() - start))
    publish_vectors(catalog, embedder.name)
    # Whether every paper's sentences are embedded too (similar papers then use the sentence-level method).
    everything = not catalog.papers_missing_vectors(embedder.name, limit=1)
    complete = everything and _sentences_follow_papers(catalog, embedder.name)
    catalog.set_meta(f"vectors:{sentence_model(embedder.name)}:complete", "yes" if complete else "no")
    return {"model": embedder.name, "embedded_papers": done, "embedded_sentences": sentences_embedded,
            "seconds": round(time.perf_counter() - start, 2),
            "papers_with_vectors": catalog.count_paper_vectors(embedder.name)}


def _follow_key(model: str) -> str:
    """Meta key: "yes" when every paper that has a vector of ``model`` has its sentence vectors too."""
    return f"vectors:{sentence_model(model)}:follow_papers"


def _sentences_follow_papers(catalog: Catalog, model: str) -> bool:
    if catalog.get_meta(_follow_key(model)) is not None:
        return catalog.get_meta(_follow_key(model)) == "yes"
    # a catalogue embedded before this key existed: its complete flag said as much
    return catalog.count_paper_vectors(model) == 0 or catalog.get_meta(f"vectors:{sentence_model(model)}:complete") == "yes"


def _prepare_sentences(catalog: Catalog, embedder, with_sentences: bool, adding: bool, batch_size: int) -> int:
    """Keep the "sentences follow papers" flag true, or say it no longer holds, before any paper vector is stored.

    With sentences wanted and the flag not holding (a run without sentences, or an older catalogue),
    the sentences of papers embedded earlier are filled in first. Returns the sentences embedded.
    """
    follows = _sentences_follow_papers(catalog, embedder.name)
    if with_sentences and not follows:
        filled = fill_in_sentences(catalog, embedder, batch_size)
        catalog.set_meta(_follow_key(embedder.name), "yes")
        return filled
    if not with_sentences and adding and follows:
        catalog.set_meta(_follow_key(embedder.name), "no")  # first, or a crash could leave it wrongly yes
    elif catalog.get_meta(_follow_key(embedder.name)) is None:
        catalog.set_meta(_follow_key(embedder.name), "yes" if follows else "no")
    return 0


def fill_in_sentences(catalog: Catalog, embedder, batch_size: int = EMBED_BATCH) -> int:
    """Embed the missing sentence vectors of every paper that has a paper vector."""
    from paperscope.index.embedder import text_key

    missing = {row["id"] for row in catalog.papers_missing_vectors(embedder.name)}
    ids = [pid for pid, _ in catalog.content_hashes() if pid not in missing]
    filled = 0
    for first in range(0, len(ids), batch_size):
        rows = catalog.papers(ids[first:first + batch_size], with_appearances=False)
        filled += embed_sentences(catalog, embedder, [paper_doc(r) for r in rows], text_key)
    return filled


def vector_set_fingerprint(catalog: Catalog, model: str) -> str:
    """Which papers have a vector of ``model``, and of which text: changes whenever searches must reload."""
    import hashlib

    missing = {row["id"] for row in catalog.papers_missing_vectors(model)}
    digest = hashlib.sha1()
    for pid, content_hash in catalog.content_hashes():
        if pid not in missing:
            digest.update(f"{pid}\x1f{content_hash}\x1e".encode())
    return digest.hexdigest()


def publish_vectors(catalog: Catalog, model: str) -> bool:
    """Make the stored vectors the ones searches serve, unless they already are. True when published.

    Publishing is a new generation (searches reload their matrix when it changes); then the matrix
    is built, so the first search after `paperscope embed` does not wait for it.
    """
    fingerprint = vector_set_fingerprint(catalog, model)
    published = catalog.get_meta(f"vectors:{model}:generation") is not None
    if published and catalog.get_meta(f"vectors:{model}:published") == fingerprint:
        return False
    if catalog.count_paper_vectors(model) == 0 and not published:
        return False
    catalog.set_meta(f"vectors:{model}:generation", str(time.time()))
    catalog.set_meta(f"vectors:{model}:published", fingerprint)  # after: a crash between publishes again
    _prepare_serving(catalog, model)
    return True


def _prepare_serving(catalog: Catalog, model: str) -> None:
    """Build what searches serve the new vectors from: pgvector's copy on PostgreSQL, else the matrix file."""
    if not catalog.is_sqlite:
        from paperscope.index.pgvector import available, sync_paper_vectors

        if available(catalog):
            sync_paper_vectors(catalog, model)
            return
    load_vector_index(catalog, model)


def embed_sentences(catalog: Catalog, embedder, docs, text_key) -> int:
    units = list(dict.fromkeys(u for d in docs for u in sentence_units(d)))
    keys = [text_key(u) for u in units]
    model = sentence_model(embedder.name)
    known = catalog.stored_vectors(model, keys)
    missing = [(u, k) for u, k in zip(units, keys) if k not in known]
    if not missing:
        return 0
    vectors = embedder.embed([u for u, _ in missing])
    catalog.store_vectors(model, {k: to_blob(v) for (_, k), v in zip(missing, vectors)})
    return len(missing)


def sentence_units(doc) -> list[str]:
    """The texts of a paper's sentence vectors: its title, then each abstract sentence."""
    return ([doc.title] if doc.title else []) + list(doc.sentences)


def sentence_vectors_for(catalog: Catalog, model: str, docs) -> list[np.ndarray] | None:
    """Stored sentence vectors of each doc (title first), or None if any is missing."""
    from paperscope.index.embedder import text_key

    units = [sentence_units(d) for d in docs]
    keys = list(dict.fromkeys(text_key(u) for us in units for u in us))
    stored = catalog.stored_vectors(sentence_model(model), keys)
    out = []
    for us in units:
        rows = [stored.get(text_key(u)) for u in us]
        if any(r is None for r in rows):
            return None
        out.append(np.stack([from_blob(r) for r in rows]) if rows else np.zeros((0, 384), np.float32))
    return out


# ------------------------------------------------------------------------------------ search
class VectorIndex:
    """Exact cosine search over the paper-level vectors of one model."""

    def __init__(self, model: str, ids: list[str], matrix: np.ndarray, generation: str):
        self.model = model
        self.ids = ids
        self.matrix = matrix
        self.generation = generation
        self.position = {pid: i for i, pid in enumerate(ids)}
        self.ann = None  # an HNSW graph over the matrix for large catalogues (index/ann.py)

    def __len__(self) -> int:
        return len(self.ids)

    def vector(self, paper_id: str) -> np.ndarray | None:
        i = self.position.get(paper_id)
        return None if i is None else self.matrix[i]

    def search(self, query: np.ndarray, k: int = 10, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        if self.ann is not None and len(self.ids):
            return self.ann.search(self, query, k, exclude)
        return self.exact_search(query, k, exclude)

    def exact_search(self, query: np.ndarray, k: int = 10, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        if not len(self.ids):
            return []
        scores = self.matrix @ np.asarray(query, dtype=np.float32)
        excluded = [self.position[p] for p in exclude if p in self.position]
        if excluded:
            scores[excluded] = -np.inf
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]


_LOADED: dict[tuple[str, str], VectorIndex] = {}
_LOCK = threading.Lock()


def index_folder(catalog: Catalog) -> Path:
    from paperscope.index.maintain import index_root

    return index_root(catalog) / "vectors"


def load_vector_index(catalog: Catalog, model: str, graph: bool = True) -> VectorIndex | None:
    """The vector index of ``model``, or None when no paper has a vector yet.

    Kept in memory per process and re-read when `paperscope embed` has added vectors since.
    ``graph``: attach the HNSW graph of a large catalogue (see index/ann.py).
    """
    if not catalog.is_sqlite:  # PostgreSQL: pgvector's HNSW index in the database serves the search
        from paperscope.index.pgvector import load_pg_vector_index

        pg_index = load_pg_vector_index(catalog, model)
        if pg_index is not None:
            return pg_index
    generation = catalog.get_meta(f"vectors:{model}:generation")
    if generation is None:
        return None
    key = (catalog.location, model)
    with _LOCK:
        index = _LOADED.get(key)
        if index is None or index.generation != generation:
            index = _read_or_build(catalog, model, generation)
            _LOADED[key] = index
    if graph and index.ann is None:  # also picks up a graph another process has written since
        from paperscope.index.ann import attach_graph

        attach_graph(catalog, index)
    return index


def _read_or_build(catalog: Catalog, model: str, generation: str) -> VectorIndex:
    path = index_folder(catalog) / f"{model.replace('/', '__')}.npz"
    cached = _read_matrix(path, generation)
    if cached is not None:
        return VectorIndex(model, cached[0], cached[1], generation)
    ids, blobs = catalog.paper_vectors(model)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1) if ids else np.zeros((0, 384), np.float32)
    _write_matrix(path, ids, matrix, generation)
    return VectorIndex(model, ids, np.array(matrix), generation)


def _read_matrix(path: Path, generation: str) -> tuple[list[str], np.ndarray] | None:
    """The cached (ids, matrix) of ``generation``, or None when missing, of another generation or damaged."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["generation"]) != generation:
                return None
            ids, matrix = [str(i) for i in data["ids"]], data["matrix"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: rebuilt from the catalogue, which is the truth
    if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[0] != len(ids) or len(set(ids)) != len(ids):
        return None
    return ids, matrix


def _write_matrix(path: Path, ids: list[str], matrix: np.ndarray, generation: str) -> None:
    """Ids, matrix and generation in one file, replaced whole: a reader never pairs a matrix with other ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")  # one per writer
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array(ids, dtype=str), matrix=matrix, generation=np.array(generation))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for legacy in (path.with_suffix(".npy"), path.with_suffix(".json")):  # the two-file cache of earlier versions
        legacy.unlink(missing_ok=True)


class VectorSearcher:
    """Search by meaning over a catalogue's paper vectors (what ``search.SemanticSearcher`` asks for).

    The embedding model is loaded on the first search by meaning, not when search opens, so
    keyword search never pays for it.
    """

    def __init__(self, catalog: Catalog, embedder=None):
        self.catalog = catalog
        self.embedder = embedder  # None: the model the catalogue's vectors come from
        self._chosen = None  # that model once it has vectors: choosing costs a query per search

    def _parts(self):
        from paperscope.index.embedder import search_embedder

        embedder = self.embedder or self._chosen or search_embedder(self.catalog)
        index = load_vector_index(self.catalog, embedder.name)
        if index is not None and self.embedder is None:
            self._chosen = embedder
        return embedder, index

    def available(self) -> tuple[bool, str]:
        if not self.catalog.get_meta_prefix("vectors:"):
            return False, "no paper vectors yet (run `paperscope embed`)"
        try:
            _, index = self._parts()
        except Exception as exc:  # model files missing or unreadable: keywords still work
            return False, f"the embedding model cannot be loaded ({type(exc).__name__}: {exc})"
        if index is None or not len(index):
            return False, "no paper vectors yet for this model (run `paperscope embed`)"
        return True, ""

    def search(self, text: str, limit: int) -> list[tuple[str, float]]:
        embedder, index = self._parts()
        if index is None or not text.strip():
            return []
        return index.search(embedder.embed([text])[0], limit)


def semantic_searcher(catalog: Catalog) -> VectorSearcher:
    return VectorSearcher(catalog)
