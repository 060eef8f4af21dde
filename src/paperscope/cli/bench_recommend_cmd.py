"""``paperscope eval recommend`` (ranking quality of the recommender) and ``paperscope bench recommend``
(its latency over a whole catalogue)."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, err_console, eval_app, fail, print_json

BENCH_CATALOGUE = Path.home() / ".cache" / "paperscope" / "bench" / "paperlists.sqlite"
TARGET_MS = 300.0
BENCH_USER = "bench-recommend"


# =============================================================================================
# eval recommend
# =============================================================================================


@eval_app.command("recommend")
def eval_recommend(
    folder: Path = typer.Argument(..., help="The reviewer-expertise folder (shared/eval/reviewer-expertise)."),
    method: str = typer.Option("profile", "--method", help="profile (default) | linear | profile+linear | mean | vector."),
    views: str = typer.Option("vector,sentences,terms", "--views", help="Views the profile ranker sums (comma-separated)."),
    k: int = typer.Option(3, "--k", help="Best matches averaged per candidate."),
    seeds: int = typer.Option(10, "--seeds", help="Profile draws (1-10) to average."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores JSON here."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the on-disk embedding cache."),
) -> None:
    """The recommender on the reviewer-expertise benchmark: its loss (lower is better) under the
    benchmark's protocol, next to the plain MiniLM baseline (mean cosine to the profile)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from paperscope.bench import eval_reviewer as R
    from paperscope.index.embedder import EmbeddingCache, cache_dir, default_embedder
    from paperscope.recommend import METHODS, VIEWS, eval_runs
    from paperscope.similarity import CachedEmbedder

    if method not in METHODS:
        fail(f"unknown method {method!r}; one of: {', '.join(METHODS)}")
    chosen = tuple(v.strip() for v in views.split(",") if v.strip())
    if not chosen or any(v not in VIEWS for v in chosen):
        fail(f"--views takes some of: {', '.join(VIEWS)}")
    try:
        data = R.load(folder)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    t0 = time.time()
    base = default_embedder()
    emb = CachedEmbedder(base, None if no_cache else EmbeddingCache(cache_dir() / "eval", base.name), batch_size=32)
    use_seeds = R.SEEDS[:max(1, min(seeds, len(R.SEEDS)))]
    params = {"k": k, "views": chosen}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console) as prog:
        texts = R.all_texts(data, sentences=True)
        task = prog.add_task(f"embedding {len(texts)} texts (cached ones are instant)", total=len(texts))
        emb.embed(texts, progress=lambda n: prog.advance(task, n))
        task = prog.add_task("scoring profiles", total=len(use_seeds) * len(data.ratings) * 2)
        runs = eval_runs(data, emb, method=method, params=params, seeds=use_seeds, progress=lambda n: prog.advance(task, n))
        baseline = eval_runs(data, emb, method="mean", seeds=use_seeds, progress=lambda n: prog.advance(task, n))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(runs, indent=1), encoding="utf-8")
    res = R.evaluate(runs, data.ratings)
    base_res = R.evaluate(baseline, data.ratings)
    print_json({"dataset": "reviewer", "recommender": method, "views": list(chosen), "k": k, "model": base.name,
                "seconds": round(time.time() - t0, 1), **res,
                "baseline_mean_cosine": {"loss": base_res["loss"], "loss_sd": base_res["loss_sd"]},
                "paired_bootstrap_vs_baseline": _paired_bootstrap(runs, baseline, data.ratings)})


def _paired_bootstrap(a: dict, b: dict, ratings: dict, draws: int = 2000) -> dict[str, Any]:
    """95% interval of loss(a) - loss(b) when participants are resampled (the two see the same draws)."""
    import numpy as np

    from paperscope.bench.eval_reviewer import participant_loss_terms

    def per_participant(runs: dict) -> dict[str, tuple[float, float]]:
        out: dict[str, list[float]] = {}
        for scores in runs.values():
            for part, rated in ratings.items():
                num, den = participant_loss_terms(rated, scores.get(part, {}))
                acc = out.setdefault(part, [0.0, 0.0])
                acc[0] += num
                acc[1] += den
        return {k: (v[0], v[1]) for k, v in out.items()}

    pa, pb = per_participant(a), per_participant(b)
    parts = sorted(pa)
    na, nb = np.array([pa[p][0] for p in parts]), np.array([pb[p][0] for p in parts])
    den = np.array([pa[p][1] for p in parts])
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(draws):
        s = rng.integers(0, len(parts), len(parts))
        d = den[s].sum()
        diffs.append((na[s].sum() - nb[s].sum()) / d if d else 0.0)
    lo, mid, hi = np.percentile(diffs, [2.5, 50, 97.5])
    return {"difference": round(float(mid), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "better_in": round(float(np.mean(np.array(diffs) < 0)), 3)}


# =============================================================================================
# bench recommend
# =============================================================================================


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run_recommend_bench(db: str, library_size: int = 200, requests: int = 20, seed: int = 5,
                        embed_subset: int = 0, fill_to: int | None = None) -> dict[str, Any]:
    """Time ``requests`` recommendation requests for a library of ``library_size`` papers.

    The library is ``library_size`` papers near one another (a few topics: the neighbours of a few
    random seed papers), saved for a bench user that is removed afterwards. Stage-1 recall (the share
    of the exact ranker's top 20 that the candidate pool contains) is measured on the same requests.
    """
    import numpy as np

    from paperscope.catalog import library as store
    from paperscope.catalog.store import Catalog
    from paperscope.index.embedder import default_embedder
    from paperscope.index.vectors import VectorIndex, embed_catalog, load_vector_index
    from paperscope import recommend as rec

    catalog = Catalog.open(db)
    store.ensure_library_tables(catalog)
    papers = catalog.paper_count()
    out: dict[str, Any] = {"catalogue": db, "papers": papers, "library_size": library_size, "requests": requests,
                           "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    embedder = default_embedder()
    embedded = catalog.count_paper_vectors(embedder.name)
    notes = []
    if embed_subset and embedded < embed_subset:
        started = time.perf_counter()
        embed_catalog(catalog, embedder, with_sentences=True, limit=embed_subset - embedded)
        notes.append(f"embedded {embed_subset - embedded} papers (with sentences) in {time.perf_counter() - started:.0f} s for this run")
        embedded = catalog.count_paper_vectors(embedder.name)
    index = load_vector_index(catalog, embedder.name)
    if index is None or len(index) < library_size * 2:
        catalog.close()
        raise RuntimeError(f"only {embedded} of {papers} papers have vectors; run `paperscope embed` "
                           f"or pass --embed-subset N (N >= {library_size * 2})")
    out["papers_with_vectors"] = len(index)
    if fill_to and fill_to > len(index):
        # Time at full catalogue size when only a subset is embedded: the real vectors plus random unit
        # vectors up to ``fill_to`` rows. A request multiplies every row, so it costs what a catalogue of
        # that size costs; random vectors are near no library, so they never become candidates and
        # what is recommended (and fetched, and explained) is real.
        rng = np.random.default_rng(seed)
        filler = rec._unit(rng.standard_normal((fill_to - len(index), index.matrix.shape[1])).astype(np.float32))
        ids = list(index.ids) + [f"__fill{i}" for i in range(fill_to - len(index))]
        index = VectorIndex(index.model, ids, np.ascontiguousarray(np.vstack([index.matrix, filler]), dtype=np.float32),
                            index.generation)
        notes.append(f"timed over {fill_to} vectors: the {out['papers_with_vectors']} real ones and "
                     f"{fill_to - out['papers_with_vectors']} random unit vectors (never candidates)")
        from paperscope.index import vectors as V

        V._LOADED[(catalog.location, index.model)] = index   # the service reads this process's cached index
    out["matrix_rows"] = len(index)
    rng = np.random.default_rng(seed)
    real = [i for i, pid in enumerate(index.ids) if not pid.startswith("__fill")]
    seeds_ = rng.choice(real, 4, replace=False)
    library: list[str] = []
    per_topic = library_size // len(seeds_) + 1
    for s in seeds_:
        for pid, _ in index.search(index.matrix[s], per_topic * 3):
            if not pid.startswith("__fill") and pid not in library:
                library.append(pid)
                if len(library) % per_topic == 0:
                    break
    library = library[:library_size]
    store.remove_entries(catalog, BENCH_USER, [e.id for e in store.list_entries(catalog, BENCH_USER)])
    from paperscope.library import save

    for pid in library:
        save(catalog, BENCH_USER, pid)
    out["library_saved"] = len(library)
    rec._CACHE.stats.clear()
    cold_started = time.perf_counter()
    first = rec.recommend(catalog, BENCH_USER, limit=20)
    out["cold_first_request_ms"] = round((time.perf_counter() - cold_started) * 1000, 1)
    out["cold_timings_ms"] = first.timings_ms
    times, cpu = [], []
    stages: dict[str, list[float]] = {}
    for _ in range(requests):
        c0, t0 = time.process_time(), time.perf_counter()
        result = rec.recommend(catalog, BENCH_USER, limit=20)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
    ordered = sorted(times)
    out["warm"] = {"p50_ms": round(statistics.median(ordered), 1), "p95_ms": round(_percentile(ordered, 0.95), 1),
                   "max_ms": round(ordered[-1], 1), "cpu_p50_ms": round(statistics.median(cpu), 1)}
    # a new reader's first request in a running server: nothing about its candidates is remembered
    fresh, fresh_cpu = [], []
    for _ in range(max(3, requests // 4)):
        rec._CACHE.bags.clear()
        rec._CACHE.sentences.clear()
        rec._CACHE.no_sentences.clear()
        rec._CACHE.forms.clear()
        for stats in rec._CACHE.stats.values():
            stats._rows.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        rec.recommend(catalog, BENCH_USER, limit=20)
        fresh.append((time.perf_counter() - t0) * 1000)
        fresh_cpu.append((time.process_time() - c0) * 1000)
    out["fresh_candidates"] = {"p50_ms": round(statistics.median(fresh), 1), "max_ms": round(max(fresh), 1),
                               "cpu_p50_ms": round(statistics.median(fresh_cpu), 1)}
    out["stage_p50_ms"] = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    out["pool"] = result.pool
    out["items"] = len(result.items)
    out["recall_stage1"] = _stage1_recall(catalog, index, rec, library)
    # the two stages against the full ranker over every real paper: the share of its top 20 kept
    real = sum(1 for pid in index.ids if not pid.startswith("__fill"))
    # (the full ranker z-scores its views over the papers it ranks, so its order over all papers and
    # over the re-ranked ones differ a little even when every paper is there: both figures are given)
    everything = rec.recommend(catalog, BENCH_USER, limit=20, params={"pool": real, "rerank": real, "diversity": 0.0})
    reranked = rec.recommend(catalog, BENCH_USER, limit=rec.DEFAULT_PARAMS["rerank"], params={"diversity": 0.0})
    best = {r.paper["id"] for r in everything.items}
    staged = [r.paper["id"] for r in reranked.items]
    out["full_ranker_top20_reranked"] = round(len(best & set(staged)) / max(1, len(best)), 3)
    out["full_ranker_top20_in_staged_top20"] = round(len(best & set(staged[:20])) / max(1, len(best)), 3)
    out["target_ms"] = TARGET_MS
    out["met"] = out["warm"]["p95_ms"] < TARGET_MS and out["fresh_candidates"]["p50_ms"] < TARGET_MS
    out["notes"] = notes
    store.remove_entries(catalog, BENCH_USER, [e.id for e in store.list_entries(catalog, BENCH_USER)])
    catalog.close()
    return out


def _stage1_recall(catalog, index, rec, library: list[str]) -> dict[str, Any]:
    """Share of the exact top 20 (the vector view over every real catalogue paper) that stage 1 keeps."""
    import numpy as np

    real = np.array([not pid.startswith("__fill") for pid in index.ids])
    lib = set(library)
    allowed = real & np.array([pid not in lib for pid in index.ids])
    profile = np.stack([index.vector(p) for p in library])
    exact = np.full(len(index), -np.inf)
    rows = np.flatnonzero(allowed)
    for start in range(0, len(rows), 20000):
        chunk = rows[start:start + 20000]
        exact[chunk] = rec.top_k_mean(index.matrix[chunk] @ profile.T, 3)
    top = set(np.argsort(-exact)[:20])
    pool = set(rec.candidate_pool(index, profile, allowed, rec.DEFAULT_PARAMS["pool"], rec.DEFAULT_PARAMS["centroids"]))
    return {"exact_top20_in_pool": round(len(top & pool) / 20, 3), "pool": len(pool)}


@bench_app.command("recommend")
def bench_recommend(
    db: Optional[str] = typer.Option(None, "--db", help=f"Catalogue (default: {BENCH_CATALOGUE}, made by `paperscope bench ingest`)."),
    library_size: int = typer.Option(200, "--library", help="Papers in the bench library."),
    requests: int = typer.Option(20, "--requests", help="Timed requests (after one cold request)."),
    embed_subset: int = typer.Option(0, "--embed-subset", help="Embed papers until this many have vectors (when the catalogue has none)."),
    fill_to: Optional[int] = typer.Option(None, "--fill-to", help="Time over this many vectors: the embedded ones repeated with noise (say so in reports)."),
    as_json: bool = JsonOption,
) -> None:
    """Latency of a recommendation request for a library over the whole catalogue (target: < 300 ms)."""
    location = db or str(BENCH_CATALOGUE)
    if "://" not in location and not Path(location).expanduser().exists():
        fail(f"no catalogue at {location}" + ("" if db else ": run `paperscope bench ingest` first, or pass --db PATH"))
    try:
        result = run_recommend_bench(location, library_size, requests, embed_subset=embed_subset, fill_to=fill_to)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except RuntimeError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        console.print(f"{key:24} {value}", highlight=False)
