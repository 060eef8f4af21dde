"""``paperscope eval recommend`` (ranking quality of the recommender) and ``paperscope bench recommend``
(its latency over a whole catalogue)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, err_console, eval_app, fail, print_json

BENCH_CATALOGUE = Path.home() / ".cache" / "paperscope" / "bench" / "paperlists.sqlite"


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


@bench_app.command("recommend")
def bench_recommend(
    db: Optional[str] = typer.Option(None, "--db", help=f"Catalogue (default: {BENCH_CATALOGUE}, made by `paperscope bench ingest`)."),
    library_size: int = typer.Option(200, "--library", min=2, help="Papers in each bench library."),
    libraries: int = typer.Option(8, "--libraries", min=1, help="Distinct libraries, each asked once cold."),
    requests: int = typer.Option(20, "--requests", min=1, help="Warm requests (one library asked again)."),
    on_demand: int = typer.Option(3, "--on-demand", min=0, help="Cold requests timed without the feature store (0: none)."),
    embed_subset: int = typer.Option(0, "--embed-subset", help="Embed papers until this many have vectors (when the catalogue has none)."),
    fill_to: Optional[int] = typer.Option(None, "--fill-to", help="Time over this many vectors: the embedded ones plus random unit vectors (said in the report)."),
    as_json: bool = JsonOption,
) -> None:
    """Latency of recommendation requests for a library over the whole catalogue, cold and warm, against
    a plain vector-cosine ranking (target: < 300 ms)."""
    from paperscope.bench.recommend_bench import run_recommend_bench

    location = db or str(BENCH_CATALOGUE)
    if "://" not in location and not Path(location).expanduser().exists():
        fail(f"no catalogue at {location}" + ("" if db else ": run `paperscope bench ingest` first, or pass --db PATH"))
    try:
        result = run_recommend_bench(location, library_size, libraries, requests, embed_subset=embed_subset,
                                     fill_to=fill_to, on_demand=on_demand)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except RuntimeError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        console.print(f"{key:24} {value}", highlight=False)
