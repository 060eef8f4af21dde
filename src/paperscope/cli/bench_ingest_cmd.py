"""`paperscope bench ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json


@bench_app.command("ingest")
def bench_ingest(
    corpus: Optional[Path] = typer.Option(None, help="The paperlists folder (default: ../shared/data/paperlists)."),
    all_records: bool = typer.Option(False, "--all-records", help="Also records without an abstract (168k instead of 92k)."),
    keep: bool = typer.Option(True, "--keep/--no-keep", help="Keep the catalogue for the search benchmarks (--no-keep: a temporary one, the kept one untouched)."),
    as_json: bool = JsonOption,
) -> None:
    """Ingest the paperlists corpus into a fresh catalogue; papers/s next to a plain executemany baseline.

    The catalogue is kept at ~/.cache/paperscope/bench/paperlists.sqlite for the search benchmarks.
    """
    from paperscope.bench.ingest_bench import default_corpus, run_ingest_bench

    corpus = corpus or default_corpus()
    if not corpus.is_dir():
        fail(f"no paperlists corpus at {corpus} (pass --corpus PATH)")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        result = run_ingest_bench(corpus, with_abstract_only=not all_records, keep=keep, progress=progress)
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        console.print(f"{key:32} {value}", highlight=False)
