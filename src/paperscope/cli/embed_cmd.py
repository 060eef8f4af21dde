"""`paperscope embed` and `paperscope similar`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json
from paperscope.cli.catalog_cmd import open_catalog


@app.command()
def embed(
    db: Optional[str] = DbOption,
    sentences: bool = typer.Option(True, "--sentences/--no-sentences",
                                   help="Also embed each abstract sentence (for 'similar in method/results'); about doubles the time."),
    limit: Optional[int] = typer.Option(None, help="Embed at most this many papers now (the rest next time)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                             help="Papers embedded and stored together (default 128): "
                                                  "an interrupted run loses at most one batch."),
    model: str = typer.Option("minilm", "--model",
                              help="minilm (all-MiniLM-L6-v2, the default), minilm-int8 (the same model "
                                   "with int8 matrix products: about 1.5x faster, vectors of its own, the "
                                   "same ranking quality on the labelled benchmarks) or static (the fast "
                                   "tier: about 100x faster, lower quality)."),
    as_json: bool = JsonOption,
) -> None:
    """Compute the vectors that search by meaning and similar papers use.

    Resumable: vectors are stored as each batch finishes, so an interrupted run continues where it
    stopped, and papers whose text did not change are never embedded again. Uses a GPU when ONNX
    Runtime offers one.
    """
    from paperscope.index.embedder import embedder_named
    from paperscope.index.features import refresh_features
    from paperscope.index.vectors import embed_catalog

    catalog = open_catalog(db)
    try:
        embedder = embedder_named(model)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        fail(f"the embedding model cannot be loaded: {exc}")
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"embedding with {embedder.name}", total=None)

        def progress(p) -> None:
            bar.update(task, completed=p.done, total=p.total)

        try:
            result = embed_catalog(catalog, embedder, with_sentences=sentences, limit=limit,
                                   progress=progress, batch_size=batch_size)
        except KeyboardInterrupt:
            err_console.print("stopped; run `paperscope embed` again to continue where it stopped")
            raise typer.Exit(130)
    result["providers"] = getattr(embedder, "providers", None)
    result["graph"] = _build_graph(catalog, embedder.name, columns, as_json)
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("recommendation features", total=None)
        try:
            result["recommend_features"] = refresh_features(
                catalog, embedder.name, lambda done, total: bar.update(task, completed=done, total=total))
        except KeyboardInterrupt:
            err_console.print("stopped; the vectors are stored, and recommendations compute what they lack on demand")
            raise typer.Exit(130)
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{result['embedded_papers']} papers embedded ({result['embedded_sentences']} sentences) in "
            f"{result['seconds']} s with {result['model']}; {result['papers_with_vectors']} papers now have vectors.",
            highlight=False)


def _build_graph(catalog, model: str, columns, as_json: bool) -> dict | None:
    """The HNSW graph of a large catalogue, built now so that searches need not wait for it."""
    from paperscope.index.ann import ensure_graph
    from paperscope.index.vectors import load_vector_index

    if not catalog.is_sqlite:  # pgvector's HNSW index in the database serves
        return None
    index = load_vector_index(catalog, model, graph=False)
    if index is None:
        return None
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("vector search graph", total=len(index))
        try:
            return ensure_graph(catalog, index, lambda done, total: bar.update(task, completed=done, total=total))
        except KeyboardInterrupt:
            err_console.print("stopped; the vectors are stored, and search by meaning is exact until "
                              "`paperscope reindex` builds the graph")
            raise typer.Exit(130)


@app.command()
def similar(
    paper_id: Optional[str] = typer.Argument(None, help="A paper id (see `paperscope search`)."),
    text: Optional[str] = typer.Option(None, "--text", help="Instead of a paper: a draft title and abstract."),
    facet: Optional[str] = typer.Option(None, "--facet", help="background, method or result: like it in that respect."),
    limit: int = typer.Option(10, help="How many papers."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Papers most like a paper (or a draft), also by background, method or results."""
    from paperscope.similar import UnknownPaper, similar_papers, similar_to_text

    if not paper_id and not text:
        fail("give a paper id or --text 'a draft abstract'")
    catalog = open_catalog(db)
    try:
        result = similar_to_text(catalog, text, facet, limit) if text else similar_papers(catalog, paper_id, facet, limit)
    except UnknownPaper:
        fail(f"no paper with id {paper_id!r} in {catalog.location}")
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json(result.as_dict())
        return
    if result.message:
        err_console.print(result.message, highlight=False)
    table = Table("score", "title", "authors", "venue", "id", title=f"mode: {result.mode}" + (f", facet: {facet}" if facet else ""))
    for p in result.papers:
        venue = next((f"{a['venue'] or ''} {a['year'] or ''}".strip() for a in p.get("appearances", [])), "")
        authors = ", ".join(p["authors"][:3]) + (" et al." if len(p["authors"]) > 3 else "")
        table.add_row(f"{p['score']:.3f}", p["title"], authors, venue, p["id"])
    console.print(table)
