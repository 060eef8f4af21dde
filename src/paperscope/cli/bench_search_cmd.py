"""``paperscope bench search``: keyword search latency against tantivy's own parser, in one run (search
by meaning, `--mode semantic|hybrid`, is measured by bench/vector_search_bench.py)."""

from __future__ import annotations

import os
import random
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, fail, print_json

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog

BENCH_CATALOGUE = Path.home() / ".cache" / "paperscope" / "bench" / "paperlists.sqlite"
TARGET_P50_MS = 5.0
TARGET_P99_MS = 30.0
WARMUP = 50


def make_queries(catalog: "Catalog", count: int, seed: int) -> list[tuple[str, str, str]]:
    """(query, its text part, id of the paper it came from): 2-4 word spans of real titles,
    about a third with a venue: or year: filter of that paper. Deterministic for a seed."""
    rng = random.Random(seed)
    ids = [pid for pid, _ in catalog.content_hashes()]
    if not ids:
        return []
    sample = rng.sample(ids, min(len(ids), count * 2))
    queries: list[tuple[str, str, str]] = []
    for paper in catalog.papers(sample):
        words = [w for w in paper["title"].replace('"', " ").split() if any(ch.isalnum() for ch in w)]
        if len(words) < 2:
            continue
        size = rng.randint(2, min(4, len(words)))
        start = rng.randint(0, len(words) - size)
        text = " ".join(words[start:start + size])
        query = text
        apps = paper.get("appearances") or []
        roll = rng.random()
        if apps and roll < 0.17 and apps[0].get("venue") and " " not in apps[0]["venue"]:
            query = f"{text} venue:{apps[0]['venue']}"
        elif roll < 0.34 and (paper.get("year") or (apps and apps[0].get("year"))):
            query = f"{text} year:{paper.get('year') or apps[0]['year']}"
        queries.append((query, text, paper["id"]))
        if len(queries) == count:
            break
    return queries


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _summary(times_ms: list[float], cpu_ms: list[float]) -> dict[str, float]:
    """Wall-clock latency, and the process CPU time per query: the work done, whatever else the
    machine is running (on a loaded machine wall time includes waiting for a core)."""
    ordered, cpu = sorted(times_ms), sorted(cpu_ms)
    mean = statistics.fmean(ordered)
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(_percentile(ordered, 0.99), 3),
            "mean_ms": round(mean, 3), "qps": round(1000.0 / mean, 1) if mean else 0.0,
            "cpu_p50_ms": round(statistics.median(cpu), 3), "cpu_p99_ms": round(_percentile(cpu, 0.99), 3)}


def run_search_bench(db: str, queries: int = 1000, seed: int = 13, limit: int = 10) -> dict[str, Any]:
    """Time ``queries`` searches three ways, interleaved query by query so machine load hits all alike:

    - paperscope: the full service (parse, build, top-``limit``, total, facets over all matches,
      snippets, stored papers for display);
    - paperscope without facets;
    - baseline: tantivy's own query parser on the same text over title/abstract/authors, top-``limit``
      and total, no facets, no snippets, nothing fetched.
    """
    import tantivy

    from paperscope.catalog.store import Catalog
    from paperscope.index.lexical import LexicalIndex
    from paperscope.search import SearchService

    catalog = Catalog.open(db)
    papers = catalog.paper_count()
    index = LexicalIndex.for_catalog(catalog)
    state = index.state(catalog)
    build_seconds = None
    if not state.fresh:
        started = time.perf_counter()
        index.rebuild(catalog)
        build_seconds = round(time.perf_counter() - started, 2)
    service = SearchService(catalog, index=index, ensure=False)
    workload = make_queries(catalog, queries + WARMUP, seed)
    if len(workload) <= WARMUP:
        catalog.close()
        raise RuntimeError("the catalogue has too few titles to draw queries from")
    tindex = index.index
    searcher = index.searcher()

    def ours(query: str):
        return service.search(query, limit=limit)

    def ours_no_facets(query: str):
        return service.search(query, limit=limit, facets=False)

    def baseline(query: str):
        parsed, _errors = tindex.parse_query_lenient(query, ["title", "abstract", "authors"])
        return searcher.search(parsed, limit, count=True)

    runners = {"paperscope": ours, "paperscope_no_facets": ours_no_facets, "baseline_tantivy_parser": baseline}
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu_times: dict[str, list[float]] = {name: [] for name in runners}
    found = {"paperscope": 0, "baseline_tantivy_parser": 0}
    facet_paths = {"aggregation": 0, "term_walk": 0}
    zero_hits = 0
    stages: dict[str, list[float]] = {}
    for number, (query, _text, source_id) in enumerate(workload):
        names = list(runners)
        rotation = number % len(names)
        for name in names[rotation:] + names[:rotation]:
            cpu_started, started = time.process_time(), time.perf_counter()
            result = runners[name](query)
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.process_time() - cpu_started) * 1000
            if number < WARMUP:
                continue
            times[name].append(elapsed)
            cpu_times[name].append(cpu)
            if name == "paperscope":
                found[name] += any(h.paper_id == source_id for h in result.hits)
                zero_hits += result.total == 0
                for stage, ms in result.timings.items():
                    stages.setdefault(stage, []).append(ms)
                if result.facets_by:
                    facet_paths[result.facets_by] += 1
            elif name == "baseline_tantivy_parser":
                found[name] += any(searcher.doc(a).get_first("id") == source_id for _, a in result.hits)
    timed = len(workload) - WARMUP
    out: dict[str, Any] = {
        "catalogue": db, "papers": papers, "index_path": str(index.path), "index_bytes": index.size_bytes(),
        "index_rebuilt_seconds": build_seconds, "queries": timed, "seed": seed, "limit": limit,
        "with_filter": sum(1 for q, t, _ in workload[WARMUP:] if q != t),
        "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for name in runners:
        out[name] = _summary(times[name], cpu_times[name])
    base = out["baseline_tantivy_parser"]
    out["p50_ratio_to_baseline"] = round(out["paperscope"]["p50_ms"] / base["p50_ms"], 2) if base["p50_ms"] else None
    out["facet_cost_p50_ms"] = round(out["paperscope"]["p50_ms"] - out["paperscope_no_facets"]["p50_ms"], 3)
    out["facets_counted_by"] = facet_paths
    out["paperscope_stage_p50_ms"] = {k: round(statistics.median(v), 3) for k, v in stages.items()}
    out["zero_hit_queries"] = zero_hits
    out["source_paper_in_top"] = {name: round(n / timed, 3) for name, n in found.items()}
    out["targets"] = {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS,
                      "met": out["paperscope"]["p50_ms"] < TARGET_P50_MS and out["paperscope"]["p99_ms"] < TARGET_P99_MS}
    catalog.close()
    return out


@bench_app.command("search")
def bench_search(
    db: Optional[str] = typer.Option(None, "--db", help=f"Catalogue to search (default: {BENCH_CATALOGUE}, made by `paperscope bench ingest`)."),
    queries: int = typer.Option(1000, "--queries", help="Timed queries (after 50 warm-up ones)."),
    seed: int = typer.Option(13, "--seed", help="Seed of the query sample."),
    mode: str = typer.Option("keyword", "--mode",
                             help="keyword; or semantic / hybrid: search by meaning with the vector graph, "
                                  "next to exact vector search in the same run (needs `paperscope embed`)."),
    model: Optional[str] = typer.Option(None, "--model", help="semantic/hybrid: minilm or static "
                                                              "(default: the model the catalogue's vectors come from)."),
    as_json: bool = JsonOption,
) -> None:
    """Search latency (p50/p99): keyword search with facets next to tantivy's own parser; with
    --mode semantic|hybrid, search by meaning next to exact vector search, ANN recall@10 and memory."""
    location = db or str(BENCH_CATALOGUE)
    if "://" not in location and not Path(location).expanduser().exists():
        if db:
            fail(f"no catalogue at {location}")
        fail(f"no bench catalogue at {location}: run `paperscope bench ingest` first, or pass --db PATH")
    if queries < 1:
        fail("--queries must be at least 1")
    if mode not in ("keyword", "semantic", "hybrid"):
        fail(f"unknown --mode {mode!r}: keyword, semantic or hybrid")
    try:
        if mode == "keyword":
            result = run_search_bench(location, queries=queries, seed=seed)
        else:
            from paperscope.bench.vector_search_bench import run_vector_search_bench

            result = run_vector_search_bench(location, mode, queries=queries, seed=seed, model=model)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        fail(f"search benchmark failed: {' '.join(str(exc).split()) or type(exc).__name__}")
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        console.print(f"{key:28} {value}", highlight=False)
