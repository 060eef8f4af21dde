"""`paperscope topics`: the topics of a venue, a year, a search result or the whole catalogue."""

from __future__ import annotations

from typing import Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json
from paperscope.cli.catalog_cmd import open_catalog


@app.command()
def topics(
    venue: Optional[str] = typer.Option(None, "--venue", help='Only this venue, e.g. "ICLR".'),
    year: Optional[int] = typer.Option(None, "--year", help="Only this year."),
    query: Optional[str] = typer.Option(None, "--query", "-q", help="Only the papers matching this search (the search language)."),
    vectors: str = typer.Option("auto", "--vectors", help="auto (stored vectors when they cover the papers, else words), tfidf, or a model name."),
    recompute: bool = typer.Option(False, "--recompute", help="Compute anew even when the cached topics are current."),
    papers: int = typer.Option(3, "--papers", help="Most central papers to list per topic."),
    fine: bool = typer.Option(True, "--fine/--broad-only", help="Also list the fine topics inside each broad one."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Cluster the papers of a scope into topics: broad ones, each split into finer ones, with their key
    phrases, sizes and most central papers.

    The result (and the 2-D map the web app draws) is cached beside the catalogue and reused until the
    papers of the scope change. Without vectors (`paperscope embed`), topics come from the papers' words.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from paperscope.topics import Scope, TopicsError, topic_map

    catalog = open_catalog(db)
    try:
        scope = Scope.of(venue, year, query)
    except TopicsError as exc:
        fail(str(exc))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"topics of {scope.describe()}", total=None)
        stages = {"papers": "reading papers and vectors", "clusters": "clustering", "layout": "laying out the map",
                  "labels": "labelling", "update": "updating the previous map", "done": "done"}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stages.get(stage, stage), completed=done, total=max(total, 1))

        try:
            tmap = topic_map(catalog, scope, vectors=vectors, recompute=recompute, progress=progress)
        except TopicsError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("stopped; nothing was cached")
            raise typer.Exit(130)
    titles = {p["id"]: p["title"] for p in catalog.papers(
        [pid for t in tmap.broad + tmap.fine_topics for pid in t.central[:papers]], with_appearances=False)}

    def topic_dict(t) -> dict:
        return {"id": t.id, "label": t.label, "terms": t.terms, "size": t.size,
                "central": [{"id": pid, "title": titles.get(pid, "")} for pid in t.central[:papers]]}

    if as_json:
        out = tmap.summary() | {"from_cache": tmap.from_cache, "topics": [
            topic_dict(b) | ({"fine": [topic_dict(tmap.topic(c)) for c in b.children]} if fine else {}) for b in tmap.broad]}
        print_json(out)
        return
    if tmap.note:
        err_console.print(tmap.note, highlight=False)
    how = "from the cache" if tmap.from_cache else ("updated from the previous map" if tmap.incremental_from else "computed")
    console.print(f"[bold]{scope.describe()}[/]: {len(tmap.ids)} papers in {len(tmap.broad)} topics "
                  f"({len(tmap.fine_topics)} finer), by {tmap.model}; {how}", highlight=False)
    for b in tmap.broad:
        console.print(f"\n[bold]{b.label}[/]  [dim]{b.size} papers · {b.id} · {' · '.join(b.terms)}[/]", highlight=False)
        if fine:
            for c in b.children:
                f = tmap.topic(c)
                console.print(f"  • {f.label}  [dim]{f.size} · {f.id}[/]", highlight=False)
                for pid in f.central[:papers]:
                    console.print(f"      [dim]{titles.get(pid, pid)}[/]", highlight=False)
        else:
            for pid in b.central[:papers]:
                console.print(f"    [dim]{titles.get(pid, pid)}[/]", highlight=False)
