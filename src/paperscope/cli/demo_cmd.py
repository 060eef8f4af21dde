"""`paperscope demo`: a real catalogue on a fresh machine, offline, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from paperscope.cli.app import app, console, err_console, fail

DEMO_SITE = Path(__file__).resolve().parents[1] / "demo" / "miniconf_iclr2020"


def demo_db_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("paperscope")) / "demo.sqlite"


def build_demo_catalogue(db: str, embed_vectors: bool = True) -> dict:
    """Ingest the bundled ICLR 2020 sample (and embed it); re-running changes nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from paperscope.catalog.store import Catalog
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    catalog = Catalog.open(db)
    run = ingest_targets(catalog, [str(DEMO_SITE)], ImportOptions(venue="ICLR", year=2020))
    if not run.anything_read:
        fail("the bundled demo data could not be read: " + "; ".join(run.problem_lines()))
    summary = {"catalogue": db, "papers": catalog.paper_count(), "ingest": run.totals()}
    if embed_vectors:
        from paperscope.index.embedder import default_embedder
        from paperscope.index.vectors import embed_catalog

        embedder = default_embedder()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("embedding the demo papers (once)", total=None)
            summary["embed"] = embed_catalog(
                catalog, embedder, progress=lambda p: bar.update(task, completed=p.done, total=p.total))
    catalog.close()
    return summary


@app.command()
def demo(
    db: Optional[str] = typer.Option(None, "--db", help="Where to build the demo catalogue (default: your data dir)."),
    port: int = typer.Option(8000, help="Port of the web app."),
    embed_vectors: bool = typer.Option(True, "--embed/--no-embed", help="Compute vectors for search by meaning (about 2 minutes the first time)."),
    serve_web: bool = typer.Option(True, "--serve/--no-serve", help="Serve the web app afterwards."),
) -> None:
    """Build a catalogue of the 687 ICLR 2020 papers and their calendar (bundled, MIT) and open it on the web."""
    location = db or str(demo_db_path())
    summary = build_demo_catalogue(location, embed_vectors)
    console.print(f"Demo catalogue: {summary['papers']} papers in {location}", highlight=False)
    console.print(f"Try: paperscope search --db {location} 'graph neural network expressivity'", highlight=False)
    if serve_web:
        from paperscope.cli.serve_cmd import serve

        serve(db=location, host="127.0.0.1", port=port, workers=1)
