"""What the recommender reads of each paper, computed ahead: tf-idf term rows and mean sentence vectors.

A recommendation request re-ranks a few hundred candidates against a library of up to a few hundred
papers in three views (:mod:`paperscope.recommend`). Two of the views cost far more to derive than
to compare: a paper's terms (stemmed words and word pairs, weighted by tf-idf) and the mean of its
abstract-sentence vectors (read back from the catalogue sentence by sentence). Derived on demand
they made the first request for a new library take over a second on 92k papers; read from here it is
a row gather.

The store is derived and disposable, like the vector index it sits beside: ``paperscope embed``
brings it up to date, ``paperscope reindex`` rebuilds it, and deleting it only slows requests down.
Each paper's features are kept with the content hash of the text they were computed from, so a paper
whose title or abstract changed since is computed on demand, never served stale. The term weights
use the document frequencies stored with them (a reproducible sample of the catalogue), and papers
computed on demand use those same frequencies, so every row of a request is on one scale.

Layout: ``<index folder>/recommend/current.json`` names the build in use; a build is a folder with
``manifest.json`` (ids, content hashes, document frequencies), ``sentences.npy`` and the term matrix
as ``terms.indptr.npy``, ``terms.indices.npy``, ``terms.data.npy`` (CSR; a term's column is its CRC-32)
with each row's norm before normalising in ``terms.norms.npy``.
Arrays are memory-mapped: a request reads the rows it gathers. A new build is written beside the old
one and published by replacing ``current.json``, so readers never see half a build.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

FORMAT = 4
BUILD_BATCH = 2000
# Document frequencies are re-sampled (a full rebuild) once the catalogue has grown or shrunk by this
# share since they were taken; below it, updates keep them and recompute only new or changed papers.
RESAMPLE_AFTER = 0.25


@dataclass
class FeatureStore:
    """One published build: per paper (by position) its content hash, term row and sentence mean."""

    folder: Path
    model: str
    generation: str
    catalogue_papers: int
    sentence_vectors: int           # sentence vectors stored when it was built (more since: means to redo)
    ids: list[str]
    hashes: list[str]
    stats: Any                      # recommend.TermStats the rows were weighted with
    sentences: np.ndarray           # (n, dim) float32, memory-mapped
    has_sentences: np.ndarray       # (n,) bool: the mean is of stored sentence vectors (else the paper vector)
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    norms: np.ndarray               # (n,) float32: each term row's norm before normalising

    def __post_init__(self) -> None:
        self.position = {pid: i for i, pid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, paper_id: str, content_hash: str | None) -> int | None:
        """The position of the paper's features, when they were computed from its current text."""
        i = self.position.get(paper_id)
        if i is None or not content_hash or self.hashes[i] != content_hash:
            return None
        return i

    def term_rows(self, positions: list[int]):
        """The term row (``recommend.Row``) of each position."""
        from paperscope.recommend import Row

        out = []
        for i in positions:
            start, end = int(self.indptr[i]), int(self.indptr[i + 1])
            out.append(Row(self.indices[start:end], self.data[start:end], float(self.norms[i])))
        return out


# =============================================================================================
# Reading
# =============================================================================================


_LOADED: dict[tuple[str, str], tuple[str, FeatureStore]] = {}
_LOCK = threading.Lock()


def forget_rows() -> None:
    """Forget the tf-idf rows computed on demand with the loaded stores' weights."""
    with _LOCK:
        for _, store in _LOADED.values():
            store.stats._rows.clear()


def folder_of(catalog) -> Path:
    from paperscope.index.maintain import index_root

    return index_root(catalog) / "recommend"


def load_features(catalog, model: str) -> FeatureStore | None:
    """The published store of ``model``'s features for this catalogue, or None when there is none yet.

    Kept per process; a newer build (``paperscope embed`` or ``reindex`` in another process) is
    picked up on the next call: reading which build is current costs one small file read.
    """
    root = folder_of(catalog)
    try:
        pointer = json.loads((root / "current.json").read_text())
        build = str(pointer["builds"][model])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    key = (catalog.location, model)
    with _LOCK:
        hit = _LOADED.get(key)
        if hit is not None and hit[0] == build:
            return hit[1]
    try:
        store = _read_build(root / build, model)
    except (OSError, ValueError, KeyError):
        return None   # replaced or removed meanwhile, or damaged: requests compute on demand
    with _LOCK:
        _LOADED[key] = (build, store)
    return store


def _read_build(folder: Path, model: str) -> FeatureStore:
    from paperscope.recommend import TermStats

    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT or manifest.get("model") != model:
        raise ValueError("another format or model")
    # plain arrays over the mapped files: slicing a np.memmap costs a Python call per slice, per row
    arrays = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r"))
              for name in ("sentences", "has_sentences", "terms.indptr", "terms.indices", "terms.data", "terms.norms")}
    n = len(manifest["ids"])
    if arrays["sentences"].shape[0] != n or arrays["terms.indptr"].shape[0] != n + 1:
        raise ValueError("arrays and manifest disagree")
    return FeatureStore(folder, model, manifest["generation"], manifest["catalogue_papers"], manifest["sentence_vectors"],
                        manifest["ids"],
                        manifest["hashes"], TermStats(Counter(manifest["df"]), manifest["n_docs"]), arrays["sentences"],
                        arrays["has_sentences"], arrays["terms.indptr"], arrays["terms.indices"], arrays["terms.data"],
                        arrays["terms.norms"])


# =============================================================================================
# Building
# =============================================================================================


Progress = Callable[[int, int], None]


def update_features(catalog, model: str, rebuild: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Bring the store in step with the catalogue's vector index of ``model``: features for every paper
    that has a vector, reusing those of unchanged papers unless ``rebuild`` (or the catalogue has
    changed size enough to take new document frequencies). Returns what was done."""
    from paperscope.catalog import library as store
    from paperscope.index.vectors import load_vector_index, sentence_model

    started = time.perf_counter()
    index = load_vector_index(catalog, model, graph=False)   # (the matrix is all it reads)
    if index is None or not len(index):
        return {"papers": 0, "message": "no paper vectors yet (run `paperscope embed`)"}
    previous = None if rebuild else load_features(catalog, model)
    papers = catalog.paper_count()
    sentences = store.stored_vector_count(catalog, sentence_model(model))
    if previous is not None and (previous.generation, previous.sentence_vectors) == (index.generation, sentences):
        return {"papers": len(previous), "computed": 0, "seconds": 0.0, "message": "up to date"}
    if previous is not None and abs(papers - previous.catalogue_papers) > RESAMPLE_AFTER * max(1, previous.catalogue_papers):
        previous = None
    stats = previous.stats if previous is not None else _sample_stats(catalog)
    computed = _write_build(catalog, index, stats, papers, sentences, previous, progress)
    return {"papers": len(index.ids), "computed": computed, "reused": len(index.ids) - computed,
            "seconds": round(time.perf_counter() - started, 1)}


def refresh_features(catalog, model: str, progress: Progress | None = None) -> dict[str, Any] | None:
    """After ``paperscope embed``: bring the store up to date when the recommender reads ``model``'s
    vectors (None when it does not)."""
    from paperscope.recommend import vector_models

    if model not in vector_models():
        return None
    return _stored_or_said(lambda: update_features(catalog, model, progress=progress))


def rebuild_features(catalog, progress: Progress | None = None) -> dict[str, Any]:
    """``paperscope reindex``: the store of each vector set the recommender reads, from scratch."""
    from paperscope.recommend import vector_models

    out: dict[str, Any] = {}
    for model in vector_models():
        if catalog.get_meta(f"vectors:{model}:generation") is not None:
            out[model] = _stored_or_said(lambda: update_features(catalog, model, rebuild=True, progress=progress))
    return out or {"message": "no paper vectors yet (run `paperscope embed`)"}


def _stored_or_said(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A build's report, or why the store could not be written (a full disk, a read-only folder): the
    vectors are stored all the same, and recommendations compute what they lack on demand."""
    try:
        return build()
    except OSError as exc:
        return {"papers": 0, "message": f"the recommendation features were not stored ({exc}); "
                                        f"recommendations compute them on demand"}


def _sample_stats(catalog):
    from paperscope.recommend import DEFAULT_PARAMS, TermStats
    from paperscope.catalog import library as store

    return TermStats.from_texts(store.sample_paper_texts(catalog, int(DEFAULT_PARAMS["term_sample"])))


def _write_build(catalog, index, stats, papers: int, sentences: int, previous: FeatureStore | None,
                 progress: Progress | None) -> int:
    root = folder_of(catalog)
    build = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder = root / build
    folder.mkdir(parents=True, exist_ok=True)
    try:
        hashes, computed = _write_arrays(catalog, index, stats, previous, folder, progress)
        manifest = {"format": FORMAT, "model": index.model, "generation": index.generation, "catalogue_papers": papers,
                    "sentence_vectors": sentences, "ids": list(index.ids), "hashes": hashes, "n_docs": stats.n_docs,
                    "df": dict(stats.df)}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        _publish(root, index.model, build)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return computed


def _write_arrays(catalog, index, stats, previous: FeatureStore | None, folder: Path, progress: Progress | None) -> tuple[list[str], int]:
    """Features of every paper of ``index`` in its order: reused from ``previous`` when its text and its
    sentence vectors are unchanged, computed otherwise. Returns (content hashes, papers computed)."""
    n, dim = len(index.ids), index.matrix.shape[1]     # (len(index) on PostgreSQL counts stored vectors)
    sentences = np.lib.format.open_memmap(folder / "sentences.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    has_sentences = np.zeros(n, bool)
    hashes: list[str] = [""] * n
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lengths = np.zeros(n, np.int64)
    norms = np.zeros(n, np.float32)
    computed = 0
    for first in range(0, n, BUILD_BATCH):
        ids = index.ids[first:first + BUILD_BATCH]
        rows = _batch_features(catalog, index, stats, previous, ids)
        for offset, (chash, row, mean, sentenced, fresh) in enumerate(rows):
            i = first + offset
            hashes[i] = chash
            sentences[i] = mean
            has_sentences[i] = sentenced
            cols.append(np.asarray(row.cols, np.uint32))
            vals.append(np.asarray(row.vals, np.float32))
            lengths[i] = len(row.cols)
            norms[i] = row.norm
            computed += fresh
        if progress:
            progress(min(n, first + BUILD_BATCH), n)
    sentences.flush()
    del sentences
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    np.save(folder / "has_sentences.npy", has_sentences)
    np.save(folder / "terms.indptr.npy", indptr)
    np.save(folder / "terms.norms.npy", norms)
    np.save(folder / "terms.indices.npy", np.concatenate(cols) if cols else np.zeros(0, np.uint32))
    np.save(folder / "terms.data.npy", np.concatenate(vals) if vals else np.zeros(0, np.float32))
    return hashes, computed


def _batch_features(catalog, index, stats, previous: FeatureStore | None, ids: list[str]):
    """(content hash, term row, sentence mean, whether of sentences, whether its terms were computed)
    of each id. An unchanged paper keeps its term row; its sentence mean is kept too unless it had no
    sentence vectors then (they may have been embedded since)."""
    from paperscope import recommend as rec
    from paperscope.catalog import library as store

    texts = store.paper_texts(catalog, ids)
    rows = [texts.get(pid) or {"id": pid, "title": "", "abstract": "", "content_hash": ""} for pid in ids]
    kept = [previous.find(r["id"], r["content_hash"]) if previous is not None else None for r in rows]
    redo = [k for k, pos in enumerate(kept) if pos is None or not previous.has_sentences[pos]]
    means: dict[int, tuple[np.ndarray, bool]] = {}
    if redo:
        fallback = np.stack([index.matrix[index.position[rows[k]["id"]]] for k in redo])
        computed, sentenced = rec.stored_sentence_means(catalog, index.model, [rows[k] for k in redo], fallback)
        means = {k: (computed[j], bool(sentenced[j])) for j, k in enumerate(redo)}
    out = []
    for k, r in enumerate(rows):
        pos = kept[k]
        row = previous.term_rows([pos])[0] if pos is not None else stats.row(rec.bag_of_terms(rec._text(r)))
        mean, sentenced = means[k] if k in means else (previous.sentences[pos], True)
        out.append((r["content_hash"], row, mean, sentenced, pos is None))
    return out


def _publish(root: Path, model: str, build: str) -> None:
    """Make ``build`` the current one for ``model`` and remove the builds nothing names any more."""
    pointer_path = root / "current.json"
    try:
        pointer = json.loads(pointer_path.read_text())
        builds = dict(pointer.get("builds") or {})
    except (OSError, ValueError, AttributeError):
        builds = {}
    builds[model] = build
    tmp = root / f".current.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    tmp.write_text(json.dumps({"builds": builds}))
    os.replace(tmp, pointer_path)
    keep = set(builds.values())
    for child in root.iterdir():
        # (a process still reading a removed build keeps its open files; it loads the new one next time)
        if child.is_dir() and child.name not in keep and _older_than(child, 60):
            shutil.rmtree(child, ignore_errors=True)


def _older_than(path: Path, seconds: float) -> bool:
    """Whether ``path`` was last changed long enough ago not to be a build still being written."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
