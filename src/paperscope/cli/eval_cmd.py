"""``paperscope eval csfcube|reviewer``: ranking quality on the labelled benchmarks."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from paperscope.cli.app import err_console, eval_app, fail, print_json

FolderArg = typer.Argument(..., help="Benchmark folder (same layout as shared/eval/...).")
OutputOpt = typer.Option(None, "--output", "-o", help="Write the ranking/scores JSON here.")
ReferenceOpt = typer.Option(None, "--reference", help="Score this file instead of running a method.")
NoCacheOpt = typer.Option(False, "--no-cache", help="Do not read or write the on-disk embedding cache.")
ModelOpt = typer.Option(
    "minilm", "--model",
    help="minilm (ONNX float32, default), minilm-int8 (the int8 tier) or static (the distilled fast tier).",
)


@contextmanager
def _progress():
    """A Rich progress bar on stderr; yields ``task(description, total) -> advance(n)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as prog:

        def task(description: str, total: int):
            tid = prog.add_task(description, total=total)
            return lambda n=1: prog.advance(tid, n)

        yield task


def _embedder(no_cache: bool, model: str = "minilm"):
    from paperscope.index.embedder import EmbeddingCache, MiniLMEmbedder, StaticEmbedder, cache_dir, default_embedder
    from paperscope.similarity import CachedEmbedder

    if model == "static":
        try:
            base = StaticEmbedder()
        except FileNotFoundError as exc:
            fail(str(exc))
        return CachedEmbedder(base, None, batch_size=1024), base  # fast enough to need no disk cache
    if model not in ("minilm", "minilm-int8"):
        fail(f"unknown model {model!r}; minilm, minilm-int8 or static")
    try:
        base = default_embedder() if model == "minilm" else MiniLMEmbedder(precision="int8-dynamic")
    except RuntimeError as exc:
        fail(str(exc))
    disk = None if no_cache else EmbeddingCache(cache_dir() / "eval", base.name)
    return CachedEmbedder(base, disk, batch_size=32), base


def _warm(emb, texts: list[str], task) -> None:
    """Embed every text a run needs up front, with a progress bar (cached ones are instant)."""
    if emb.disk is None:
        missing = list(dict.fromkeys(texts))
    else:
        missing = [t for t in dict.fromkeys(texts) if t not in emb.disk]
    if missing:
        advance = task(f"embedding {len(missing)} texts", len(missing))
        emb.embed(missing, progress=advance)
    emb.embed([t for t in texts])  # fill the in-memory map from the disk cache


def _write(path: Optional[Path], data) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


@eval_app.command("csfcube")
def csfcube(
    folder: Path = FolderArg,
    output: Optional[Path] = OutputOpt,
    reference: Optional[Path] = ReferenceOpt,
    method: str = typer.Option(None, "--method", help="cosine | lexical | hybrid | fusion (default)."),
    given_roles: bool = typer.Option(False, "--given-roles", help="Use corpus.jsonl's sentence labels instead of the classifier (comparison only)."),
    exclude_query: bool = typer.Option(False, "--exclude-query", help="Put a query paper found in its own pool last."),
    no_cache: bool = NoCacheOpt,
    model: str = ModelOpt,
) -> None:
    """Faceted query by example: rank every query's pool; print NDCG%20 and MAP (overall, per facet)."""
    from paperscope.bench import eval_csfcube as C
    from paperscope.similarity import DEFAULT_BY_EXAMPLE, METHODS_BY_EXAMPLE

    try:
        data = C.load(folder)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    if not C.judged(data):
        fail(f"no query of {folder / 'queries.csv'} has judgements in {folder / 'qrels.json'}: nothing to score")
    if reference is not None:
        try:
            ranking = json.loads(reference.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read {reference}: {exc}")
        res = C.evaluate(ranking, C.judged(data))
        print_json({"dataset": "csfcube", "reference": str(reference), **res})
        return
    method = method or DEFAULT_BY_EXAMPLE
    if method not in METHODS_BY_EXAMPLE:
        fail(f"unknown method {method!r}; one of: {', '.join(METHODS_BY_EXAMPLE)}")
    t0 = time.time()
    emb, base = _embedder(no_cache, model)
    with _progress() as task:
        _warm(emb, C.all_texts(data, sentences=method == "fusion"), task)
        advance = task("ranking queries", len(data.queries))
        ranking = C.run(data, emb, method=method, use_given_labels=given_roles, progress=advance, exclude_query=exclude_query)
    _write(output, ranking)
    res = C.evaluate(ranking, C.judged(data))
    print_json({"dataset": "csfcube", "method": method, "model": base.name, "seconds": round(time.time() - t0, 1), **res})


@eval_app.command("reviewer")
def reviewer(
    folder: Path = FolderArg,
    output: Optional[Path] = OutputOpt,
    reference: Optional[Path] = ReferenceOpt,
    method: str = typer.Option(None, "--method", help="mean | centroid | topk | softmax | hybrid | coverage (default)."),
    no_cache: bool = NoCacheOpt,
    model: str = ModelOpt,
) -> None:
    """Expertise from a profile: score rated papers against each participant's 20 latest papers
    (10 seeds); print the weighted pairwise misranking loss (lower is better)."""
    from paperscope.bench import eval_reviewer as R
    from paperscope.similarity import BEST_PROFILE, METHODS_PROFILE

    try:
        data = R.load(folder)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    if reference is not None:
        try:
            ref = json.loads(reference.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read {reference}: {exc}")
        # {seed: {participant: {paper: score}}} (our output) or {algorithm: {seed: ...}}
        def depth(x) -> int:
            return 1 + depth(next(iter(x.values()))) if isinstance(x, dict) and x else 0

        if depth(ref) >= 4:
            res = {alg: R.evaluate(runs, data.ratings) for alg, runs in ref.items()}
            print_json({"dataset": "reviewer", "reference": str(reference), "algorithms": res})
        else:
            print_json({"dataset": "reviewer", "reference": str(reference), **R.evaluate(ref, data.ratings)})
        return
    method = method or BEST_PROFILE
    if method not in METHODS_PROFILE:
        fail(f"unknown method {method!r}; one of: {', '.join(METHODS_PROFILE)}")
    t0 = time.time()
    emb, base = _embedder(no_cache, model)
    with _progress() as task:
        _warm(emb, R.all_texts(data, sentences=method == "coverage"), task)
        advance = task("scoring profiles", len(R.SEEDS) * len(data.ratings))
        runs = R.run(data, emb, method=method, progress=advance)
    _write(output, runs)
    res = R.evaluate(runs, data.ratings)
    print_json({"dataset": "reviewer", "method": method, "model": base.name, "seconds": round(time.time() - t0, 1), **res})
