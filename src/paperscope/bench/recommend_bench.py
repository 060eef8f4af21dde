"""``paperscope bench recommend``: how long a recommendation request takes for a library over a whole
catalogue, measured against a plain vector-cosine ranking of the same catalogue in the same run.

Each library is ``library_size`` papers on a few topics (the neighbours of 4 random papers), saved
for a bench user that is removed afterwards. Reported, each as milliseconds and as a ratio to the
baseline request over the same libraries:

- ``cold``: the first request for each of several libraries never seen, in a process that has
  served others (the catalogue's vectors and stored features loaded; nothing about these papers
  remembered): what a reader meets on opening "For you" for the first time;
- ``warm``: the same library asked again (what the process remembers of its papers is used);
- ``cold_on_demand``: cold, with every per-paper feature computed on demand instead of read from
  the feature store (what a catalogue never ``embed``-ed or ``reindex``-ed since the store came);
- ``process_first``: the very first request, which also loads the vectors and the store.

Each figure is wall-clock time; ``cpu_p50_ms``/``cpu_p95_ms`` give the process CPU time of the same
requests (one thread does a request's work), which a machine shared with other work inflates far less.

The baseline is the plain recommender a catalogue of vectors allows: the library's mean vector,
its cosine to every catalogue paper, the best 20 read back; it pays the same library read and paper
reads, so the ratio isolates what the full ranker adds. The libraries' requests alternate with their
baseline requests, so a machine busy with other work slows both alike.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BENCH_USER = "bench-recommend-{}"
TARGET_MS = 300.0
TOPICS_PER_LIBRARY = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Timings:
    """Wall-clock and CPU milliseconds of a series of requests."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def time(self, call):
        c0, t0 = time.process_time(), time.perf_counter()
        result = call()
        self.wall.append((time.perf_counter() - t0) * 1000)
        self.cpu.append((time.process_time() - c0) * 1000)
        return result


def summary(times: Timings, baseline: Timings | None = None) -> dict[str, Any]:
    wall, cpu = times.wall, times.cpu
    out = {"n": len(wall), "p50_ms": round(statistics.median(wall), 1), "p95_ms": round(percentile(wall, 0.95), 1),
           "max_ms": round(max(wall), 1), "cpu_p50_ms": round(statistics.median(cpu), 1),
           "cpu_p95_ms": round(percentile(cpu, 0.95), 1)}
    if baseline is not None:
        out["p50_ratio_to_baseline"] = round(out["p50_ms"] / statistics.median(baseline.wall), 2)
        out["p95_ratio_to_baseline"] = round(out["p95_ms"] / percentile(baseline.wall, 0.95), 2)
        out["cpu_p50_ratio_to_baseline"] = round(out["cpu_p50_ms"] / statistics.median(baseline.cpu), 2)
    return out


def run_recommend_bench(db: str, library_size: int = 200, libraries: int = 8, requests: int = 20, seed: int = 5,
                        embed_subset: int = 0, fill_to: int | None = None, on_demand: int = 3) -> dict[str, Any]:
    """Time cold and warm recommendation requests (see the module's docstring); returns the report."""
    from paperscope import recommend as rec
    from paperscope.catalog.store import Catalog

    catalog = Catalog.open(db)
    try:
        out: dict[str, Any] = {"catalogue": catalog.display_location, "papers": catalog.paper_count(),
                               "library_size": library_size, "cpu_count": os.cpu_count(), "notes": []}
        index = _real_index(catalog, library_size, embed_subset, out)
        out["features"] = _ensure_features(catalog, index.model)
        index = _filled(catalog, index, fill_to, seed, out)
        users = _save_libraries(catalog, index, library_size, libraries, seed)
        out["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        first = Timings()
        first.time(lambda: rec.recommend(catalog, users[0], limit=20))
        out["process_first_ms"] = round(first.wall[0], 1)
        baseline, cold, stages = _cold_requests(catalog, index, users)
        out["baseline_plain_cosine"] = summary(baseline)
        out["cold"] = summary(cold, baseline) | {"stage_p50_ms": stages}
        warm = Timings()
        for _ in range(requests):
            warm.time(lambda: rec.recommend(catalog, users[0], limit=20))
        out["warm"] = summary(warm, baseline)
        out["cold_on_demand"] = _on_demand(catalog, users[:on_demand], cold) if on_demand else None
        out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        out["quality"] = _stage_quality(catalog, index, users[0], rec)
        out["target_ms"] = TARGET_MS
        out["met"] = out["cold"]["p95_ms"] < TARGET_MS and out["warm"]["p95_ms"] < TARGET_MS
        return out
    finally:
        _remove_libraries(catalog, libraries)
        catalog.close()


def _real_index(catalog, library_size: int, embed_subset: int, out: dict[str, Any]):
    """The catalogue's vector index (embedding papers first when ``embed_subset`` asks for more)."""
    from paperscope.index.embedder import default_embedder
    from paperscope.index.vectors import embed_catalog, load_vector_index

    embedder = default_embedder()
    embedded = catalog.count_paper_vectors(embedder.name)
    if embed_subset and embedded < embed_subset:
        started = time.perf_counter()
        embed_catalog(catalog, embedder, with_sentences=True, limit=embed_subset - embedded)
        out["notes"].append(f"embedded {embed_subset - embedded} papers (with sentences) in "
                            f"{time.perf_counter() - started:.0f} s for this run")
    index = load_vector_index(catalog, embedder.name, graph=False)   # (no graph built during the timing)
    if index is None or len(index) < library_size * 2:
        raise RuntimeError(f"only {0 if index is None else len(index)} of {out['papers']} papers have vectors; run "
                           f"`paperscope embed` or pass --embed-subset N (N >= {library_size * 2})")
    out["papers_with_vectors"] = len(index)
    return index


def _ensure_features(catalog, model: str) -> dict[str, Any]:
    """The feature store, built now when missing or behind the vectors (what `paperscope embed` does)."""
    from paperscope.index.features import update_features

    return update_features(catalog, model)


def _filled(catalog, index, fill_to: int | None, seed: int, out: dict[str, Any]):
    """Time at full catalogue size when only a subset is embedded: the real vectors plus random unit
    vectors up to ``fill_to`` rows. Stage 1 multiplies every row, so a request costs what a catalogue of
    that size costs; random vectors are near no library, so they never become candidates and what is
    recommended (and read, and explained) is real."""
    if not fill_to or fill_to <= len(index):
        out["matrix_rows"] = len(index)
        return index
    from paperscope import recommend as rec
    from paperscope.index import vectors as V

    rng = np.random.default_rng(seed)
    extra = fill_to - len(index)
    filler = rec._unit(rng.standard_normal((extra, index.matrix.shape[1])).astype(np.float32))
    filled = V.VectorIndex(index.model, list(index.ids) + [f"__fill{i}" for i in range(extra)],
                           np.ascontiguousarray(np.vstack([index.matrix, filler]), dtype=np.float32), index.generation)
    V._LOADED[(catalog.location, index.model)] = filled   # what the recommender loads in this process
    out["matrix_rows"] = len(filled)
    out["notes"].append(f"timed over {fill_to} vectors: the {len(index)} real ones and {extra} random unit "
                        f"vectors (never candidates)")
    return filled


def _library(index, size: int, rng) -> list[str]:
    real = [i for i, pid in enumerate(index.ids) if not pid.startswith("__fill")]
    per_topic = size // TOPICS_PER_LIBRARY + 1
    library: list[str] = []
    for s in rng.choice(real, TOPICS_PER_LIBRARY, replace=False):
        for pid, _ in index.search(index.matrix[s], per_topic * 3):
            if not pid.startswith("__fill") and pid not in library:
                library.append(pid)
                if len(library) % per_topic == 0:
                    break
    return library[:size]


def _save_libraries(catalog, index, size: int, count: int, seed: int) -> list[str]:
    from paperscope.library import save

    _remove_libraries(catalog, count)
    users = []
    for k in range(count):
        user = BENCH_USER.format(k)
        for pid in _library(index, size, np.random.default_rng(seed + k)):
            save(catalog, user, pid)
        users.append(user)
    return users


def _remove_libraries(catalog, count: int) -> None:
    from paperscope.catalog import library as store

    for k in range(count):
        user = BENCH_USER.format(k)
        store.remove_entries(catalog, user, [e.id for e in store.list_entries(catalog, user)])
        store.clear_seen(catalog, user)


def plain_cosine(catalog, index, user: str, limit: int = 20) -> list[dict[str, Any]]:
    """The baseline request: papers ranked by cosine to the library's mean vector, the best read back."""
    from paperscope import recommend as rec
    from paperscope.catalog import library as store

    mine = store.library_paper_ids(catalog, user)
    vectors = [v for v in (index.vector(pid) for pid in mine) if v is not None]
    scores = index.matrix @ rec._unit(np.mean(vectors, axis=0))
    scores[[index.position[pid] for pid in mine if pid in index.position]] = -np.inf
    top = np.argpartition(-scores, limit)[:limit]
    return catalog.papers([index.ids[i] for i in top[np.argsort(-scores[top])]])


def _cold_requests(catalog, index, users: list[str]) -> tuple[Timings, Timings, dict[str, float]]:
    """Per library: its baseline request, then its first recommendation request with nothing about its
    papers remembered. Returns (baseline, cold, median ms of each stage of the cold requests)."""
    from paperscope import recommend as rec

    baseline, cold = Timings(), Timings()
    stages: dict[str, list[float]] = {}
    for user in users:
        baseline.time(lambda: plain_cosine(catalog, index, user))
        rec._CACHE.forget_papers()
        result = cold.time(lambda: rec.recommend(catalog, user, limit=20))
        for stage, value in result.timings_ms.items():
            stages.setdefault(stage, []).append(value)
    return baseline, cold, {k: round(statistics.median(v), 1) for k, v in stages.items()}


def _on_demand(catalog, users: list[str], cold: Timings) -> dict[str, Any]:
    from paperscope import recommend as rec

    times = Timings()
    for user in users:
        rec._CACHE.forget_papers()
        times.time(lambda: rec.recommend(catalog, user, limit=20, params={"features": False}))
    same = Timings(cold.wall[:len(times.wall)], cold.cpu[:len(times.cpu)])
    return summary(times) | {"p50_ratio_to_cold": round(statistics.median(times.wall) / statistics.median(same.wall), 2),
                             "cpu_p50_ratio_to_cold": round(statistics.median(times.cpu) / statistics.median(same.cpu), 2)}


def _stage_quality(catalog, index, user: str, rec) -> dict[str, Any]:
    """What the two stages keep of the exact answers: the share of the exact vector-view top 20 in the
    stage-1 pool, and of the full ranker's top 20 over every real paper in the staged ranking."""
    from paperscope.catalog import library as store

    library = store.library_paper_ids(catalog, user)
    real = np.array([not pid.startswith("__fill") for pid in index.ids])
    allowed = real & ~np.isin(np.array(index.ids, dtype=object), library)
    profile = np.stack([index.vector(p) for p in library])
    exact = np.full(len(index), -np.inf)
    rows = np.flatnonzero(allowed)
    for start in range(0, len(rows), 20000):
        chunk = rows[start:start + 20000]
        exact[chunk] = rec.top_k_mean(index.matrix[chunk] @ profile.T, 3)
    top = set(np.argsort(-exact)[:20])
    pool = set(rec.candidate_pool(index, profile, allowed, rec.DEFAULT_PARAMS["pool"], rec.DEFAULT_PARAMS["centroids"]))
    n_real = int(real.sum())
    # (the full ranker z-scores its views over the papers it ranks, so its order over all papers and
    # over the re-ranked ones differ a little even when every paper is there: both figures are given)
    everything = rec.recommend(catalog, user, limit=20, hide_seen=False, params={"pool": n_real, "rerank": n_real, "diversity": 0.0})
    staged = [r.paper["id"] for r in rec.recommend(catalog, user, limit=rec.DEFAULT_PARAMS["rerank"], hide_seen=False,
                                                   params={"diversity": 0.0}).items]
    best = {r.paper["id"] for r in everything.items}
    return {"exact_vector_top20_in_pool": round(len(top & pool) / 20, 3),
            "full_ranker_top20_reranked": round(len(best & set(staged)) / max(1, len(best)), 3),
            "full_ranker_top20_in_staged_top20": round(len(best & set(staged[:20])) / max(1, len(best)), 3)}
