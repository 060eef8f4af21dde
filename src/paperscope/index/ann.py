"""Approximate nearest neighbours for large laptop catalogues: an HNSW graph beside the vectors.

Exact search (:class:`~paperscope.index.vectors.VectorIndex`) reads the whole matrix for every
query, so its cost grows with the catalogue (memory-bound: 15.6 ms per query at 92k x 256 on 2
cores). Above :data:`ANN_MIN_PAPERS` papers an HNSW graph (faiss ``IndexHNSWSQ`` over 8-bit codes
of the centred vectors) proposes candidates instead, and they are re-scored exactly against the
matrix, so the scores and their order are those of exact search; only a missed neighbour can differ.

The graph is derived data, like the matrix: one file per vector generation under the catalogue's
index folder (``<catalogue>.index/vectors/<model>.<digest>.hnsw``), where the digest covers the
model, the vectors' generation, the ids in matrix order and the graph parameters. A file is
written under a temporary name and renamed into place, so it exists only complete; when the
vectors change the digest changes and the old file is stale by construction. Until a fresh file
exists search is exact, and the graph is built in a background thread (``paperscope embed`` and
``paperscope reindex`` build it in the foreground).

Measured on real vectors, CPU time per query (one thread, 2 shared cores), recall@10 against
exact search; queries are 2-4 word spans of real titles (static tier: 92,000 paperlists papers,
256 dims) or held-out texts (MiniLM: 34,446 texts of the evaluation corpora, 384 dims):

- library (M=16, efConstruction=128, plain vectors): faiss-cpu 1.15.1 built the MiniLM set in
  26 s and answered in 0.48 ms at recall 0.988 (ef=64); usearch 2.26.6 took 44 s and 1.29 ms for
  the same recall. On the static set faiss built in 80 s (usearch 156 s) and both reached only
  0.88-0.89 at ef=128 (0.89 ms vs 1.84 ms). hnswlib ships no wheel for this Python.
- the static tier's vectors crowd into a narrow cone (their mean has norm 0.84); centring them
  for the graph lifted recall from 0.90 to 0.96 at ef=64 on 6,000 papers. 8-bit codes with twice
  the candidates re-scored exactly lose nothing against float32 (0.989 vs 0.989 at ef=128).
- parameters, static tier at 92,000 papers: M=16/efc=128 reached 0.962 at ef=256 (1.6 ms), 0.977
  at ef=512 (2.9 ms), 0.987 at ef=1024 (4.8 ms); M=32/efc=200 reached 0.985 at ef=256 (2.2 ms),
  0.992 at ef=512 (3.5 ms), against 15.6 ms for exact search. Build: 97 s of CPU on one core.
- threshold (M=32, efc=200, ef=256; exact vs graph, ms per query for the 10 / 90 best):
  static   1k 0.07/0.32 vs 0.27/0.64, 5k 0.54/1.06 vs 0.73/1.24, 10k 2.22/2.50 vs 1.29/1.37,
           20k 4.02/4.25 vs 1.34/1.88 (recall >= 0.995 up to 20k);
  MiniLM   3k 0.28/0.68 vs 0.64/1.05, 5k 1.33/1.80 vs 0.97/1.30, 10k 2.37/3.04 vs 1.51/1.98,
           34k 8.21/8.92 vs 1.78/2.49 (recall >= 0.9994).
  Exact search stops fitting the CPU cache between 5k and 10k papers and is slower than the
  graph from there for both models (the ef=320 now used adds about 0.3 ms to the graph's figures).
- ``paperscope bench search --mode hybrid`` on the 92k static-tier catalogue, 1,000 queries: CPU
  p50 15.1 ms against 41.0 ms with exact vectors (vector step 2.6 ms against 16.7 ms), recall@10
  0.984, graph file 46 MB beside a 90 MB matrix.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog
    from paperscope.index.vectors import VectorIndex

log = logging.getLogger(__name__)

# Below this many papers exact search is about as fast as the graph or faster (at 5,000 static-tier
# papers 0.54 ms against 0.73 ms), and the graph would cost its build and its memory for nothing;
# at 10,000 the graph is faster for both models (1.29 vs 2.22 ms static, 1.51 vs 2.37 ms MiniLM)
# at recall@10 >= 0.997. Curves in the module docstring.
ANN_MIN_PAPERS = 10_000
# HNSW parameters: links per node, and the breadth of the search while inserting and querying.
CONNECTIVITY = 32
EF_CONSTRUCTION = 200
# ef=256 gave recall@10 0.981-0.984 on the 92k static tier over four samples of 1,000 title
# queries; 320 gives 0.986-0.988 for +0.3 ms (2.1-2.5 ms per query against 19 ms exact).
EF_SEARCH = 320
# The graph ranks by 8-bit codes (a quarter of the float32 memory): it proposes this many
# candidates per wanted result, and the matrix re-scores them exactly.
CANDIDATES_PER_RESULT = 2
# Papers inserted per step of a build: the unit of progress, and the most a process exiting during a
# background build waits for (about two seconds of CPU at 92k papers).
BUILD_STEP = 2048
GRAPH_FORMAT = "faiss-hnsw-sq8-centred-ip-1"

Progress = Callable[[int, int], None]


def ann_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class AnnIndex:
    """An HNSW graph over the rows of one :class:`VectorIndex` matrix (row number = graph label)."""

    graph: object  # faiss.IndexHNSWSQ
    digest: str
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.graph.ntotal)

    def candidate_rows(self, query: np.ndarray, count: int, ef: int | None = None) -> np.ndarray:
        """Rows of (about) the ``count`` nearest vectors by the graph's 8-bit codes; -1 where it ran out."""
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef or EF_SEARCH, count)
        _, rows = self.graph.search(np.asarray(query, dtype=np.float32).reshape(1, -1), count, params=params)
        return rows[0]

    def search(self, index: "VectorIndex", query: np.ndarray, k: int, exclude: Iterable[str] = (),
               ef: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` best papers among the graph's candidates, scored exactly against the matrix."""
        query = np.asarray(query, dtype=np.float32)
        excluded = {index.position[p] for p in exclude if p in index.position}
        wanted = min(len(index), CANDIDATES_PER_RESULT * k + len(excluded))
        rows = self.candidate_rows(query, wanted, ef)
        rows = np.array([r for r in rows if r >= 0 and r not in excluded], dtype=np.int64)
        if not len(rows):
            return []
        scores = index.matrix[rows] @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(index.ids[rows[i]], float(scores[i])) for i in order]


# ------------------------------------------------------------------------------------ files
def graph_digest(index: "VectorIndex") -> str:
    """What a graph file must have been built from to serve ``index`` (kept on the index: an
    index's ids and generation never change)."""
    known = getattr(index, "_graph_digest", None)
    if known is not None:
        return known
    h = hashlib.sha1()
    for part in (GRAPH_FORMAT, index.model, index.generation, str(index.matrix.shape),
                 f"M{CONNECTIVITY}-efc{EF_CONSTRUCTION}"):
        h.update(part.encode("utf-8") + b"\0")
    h.update("\n".join(index.ids).encode("utf-8"))
    index._graph_digest = h.hexdigest()[:20]
    return index._graph_digest


def graph_path(catalog: "Catalog", index: "VectorIndex", digest: str | None = None) -> Path:
    from paperscope.index.vectors import index_folder

    stem = index.model.replace("/", "__")
    return index_folder(catalog) / f"{stem}.{digest or graph_digest(index)}.hnsw"


def read_graph(path: Path, index: "VectorIndex", digest: str) -> AnnIndex | None:
    """The graph in ``path`` when it exists and fits ``index``; None otherwise (search stays exact)."""
    import faiss

    if not path.is_file():
        return None
    try:
        graph = faiss.read_index(str(path))
    except RuntimeError as exc:  # truncated or foreign file: rebuilt from the vectors
        log.warning("ignoring unreadable vector graph %s: %s", path, exc)
        return None
    if graph.ntotal != len(index) or graph.d != index.matrix.shape[1]:
        log.warning("ignoring vector graph %s: it holds %d x %d vectors, the catalogue %d x %d",
                    path, graph.ntotal, graph.d, len(index), index.matrix.shape[1])
        return None
    return AnnIndex(graph, digest, path)


class BuildStopped(Exception):
    """A build given up between two steps (the process is exiting); nothing was written."""


def build_graph(index: "VectorIndex", progress: Progress | None = None, threads: int | None = None,
                stop: threading.Event | None = None) -> AnnIndex:
    """Insert every row of ``index.matrix`` into a new HNSW graph (inner product = cosine here).

    ``stop``: checked between steps; once set, :class:`BuildStopped` is raised."""
    import faiss

    # Centred: q.(x - mean) orders the rows as q.x does, for any query q, but the rows no longer
    # crowd into one narrow cone (the static tier's mean vector has norm 0.84), where the graph's
    # neighbourhoods are poor: recall@10 0.90 -> 0.96 at ef=64 on 6,000 real papers.
    centred = np.asarray(index.matrix, dtype=np.float32) - index.matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    graph = faiss.IndexHNSWSQ(centred.shape[1], faiss.ScalarQuantizer.QT_8bit, CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    if threads:
        faiss.omp_set_num_threads(threads)
    graph.train(centred)
    for start in range(0, len(centred), BUILD_STEP):
        if stop is not None and stop.is_set():
            raise BuildStopped(f"stopped after {start} of {len(centred)} vectors")
        graph.add(np.ascontiguousarray(centred[start:start + BUILD_STEP]))
        if progress:
            progress(min(start + BUILD_STEP, len(centred)), len(centred))
    return AnnIndex(graph, graph_digest(index))


def write_graph(ann: AnnIndex, path: Path) -> Path:
    """Write under a temporary name, then rename: a reader sees no file or a whole one."""
    import faiss

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        faiss.write_index(ann.graph, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    ann.path = path
    _remove_other_graphs(path)
    return path


def _remove_other_graphs(keep: Path) -> None:
    """Graphs of earlier generations of the same model (a process that loaded one keeps its copy)."""
    stem = keep.name.split(".", 1)[0]
    for old in keep.parent.glob(f"{stem}.*.hnsw"):
        if old != keep:
            old.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ serving
_BUILDING: dict[str, threading.Thread] = {}
_FAILED: set[str] = set()  # not tried again by this process: search stays exact, reindex retries
_LOCK = threading.Lock()
_EXITING = threading.Event()


def uses_graph(index: "VectorIndex") -> bool:
    return len(index) >= ANN_MIN_PAPERS and ann_available()


def attach_graph(catalog: "Catalog", index: "VectorIndex", background: bool = True) -> AnnIndex | None:
    """Give ``index`` its graph when the catalogue is large enough: read a fresh file, or else
    (``background``) start building one while exact search serves. Returns the graph attached now."""
    if not uses_graph(index):
        return None
    digest = graph_digest(index)
    path = graph_path(catalog, index, digest)
    ann = read_graph(path, index, digest)
    if ann is not None:
        index.ann = ann
    elif background:
        _build_in_background(catalog, index, path)
    return ann


def _build_in_background(catalog: "Catalog", index: "VectorIndex", path: Path) -> None:
    def run() -> None:
        try:
            # one core: the other keeps serving requests while the graph is built
            ann = build_graph(index, threads=1, stop=_EXITING)
            write_graph(ann, path)
            index.ann = ann
        except BuildStopped:
            pass  # the process is exiting; the next one builds it
        except Exception as exc:  # noqa: BLE001 - search stays exact
            log.warning("building the vector graph %s failed: %s", path, exc)
            with _LOCK:
                _FAILED.add(str(path))
        finally:
            with _LOCK:
                _BUILDING.pop(str(path), None)

    with _LOCK:
        if str(path) in _BUILDING or str(path) in _FAILED or _EXITING.is_set():
            return
        thread = threading.Thread(target=run, name=f"vector-graph {path.name}", daemon=True)
        _BUILDING[str(path)] = thread
    thread.start()


def _stop_background_builds() -> None:
    """At exit, let a build finish its current step and give up: a daemon thread still inside faiss
    while the interpreter tears down could crash the exit of an otherwise finished command."""
    _EXITING.set()
    with _LOCK:
        threads = list(_BUILDING.values())
    for thread in threads:
        thread.join(timeout=120)


atexit.register(_stop_background_builds)


def ensure_graph(catalog: "Catalog", index: "VectorIndex", progress: Progress | None = None,
                 force: bool = False) -> dict:
    """Build the graph of ``index`` now unless a fresh one is on disk (``force``: build anyway).

    Returns what was done, for ``embed`` and ``reindex`` to report."""
    import time

    if not uses_graph(index):
        why = "faiss is not installed" if len(index) >= ANN_MIN_PAPERS else f"exact search below {ANN_MIN_PAPERS} papers"
        index.ann = None
        return {"model": index.model, "papers": len(index), "graph": None, "reason": why}
    digest = graph_digest(index)
    path = graph_path(catalog, index, digest)
    ann = None if force else read_graph(path, index, digest)
    started = time.perf_counter()
    built = ann is None
    if built:
        ann = build_graph(index, progress=progress)
        write_graph(ann, path)
    index.ann = ann
    return {"model": index.model, "papers": len(index), "graph": str(path), "built": built,
            "seconds": round(time.perf_counter() - started, 2)}


def rebuild_graphs(catalog: "Catalog", progress: Progress | None = None, force: bool = True) -> list[dict]:
    """Graphs of every model with paper vectors (``paperscope reindex``); none on PostgreSQL,
    where pgvector's own HNSW index serves."""
    from paperscope.index.vectors import load_vector_index

    if not catalog.is_sqlite:
        return []
    report = []
    for model in vector_models(catalog):
        index = load_vector_index(catalog, model, graph=False)
        if index is not None:
            report.append(ensure_graph(catalog, index, progress=progress, force=force))
    return report


def vector_models(catalog: "Catalog") -> list[str]:
    """Models with published paper-level vectors (a ``vectors:<model>:generation`` meta key)."""
    keys = catalog.get_meta_prefix("vectors:")
    return sorted(k[len("vectors:"):-len(":generation")] for k in keys if k.endswith(":generation"))
