"""`paperscope bench crash`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json


@bench_app.command("crash")
def bench_crash(
    runs: int = typer.Option(50, "--runs", min=1, help="Kills per kind."),
    what: str = typer.Option("ingest,embed,reindex", "--what", help="Which processes to kill: ingest, embed, reindex."),
    seed: int = typer.Option(0, help="Seed of the kill moments (the same seed kills at the same moments)."),
    corpus: str = typer.Option("full", help="full (about 2,000 real papers) or small (a few hundred, quicker)."),
    shared: Optional[Path] = typer.Option(None, help="The shared data folder (default: ../shared)."),
    as_json: bool = JsonOption,
) -> None:
    """SIGKILL real ingest, embed and reindex processes at random moments, then check and recover the catalogue.

    After each kill: SQLite's integrity and foreign-key checks, the keyword index either complete and
    equal to the catalogue or found stale (and rebuilt before it is served), the vectors whole; then the
    same command runs again and the catalogue must equal a never-killed reference run: no paper lost,
    none duplicated. Recovery time is shown against the reference run's time.
    """
    from paperscope.bench.crash import CrashBenchError, run_crash_bench

    kinds = [k.strip() for k in what.split(",") if k.strip()]
    say = (lambda message: err_console.print(message, highlight=False, markup=False))
    try:
        result = run_crash_bench(runs, kinds, shared=shared, size=corpus, seed=seed, progress=say)
    except CrashBenchError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    _print_table(result)


def _print_table(result: dict) -> None:
    table = Table("kind", "runs", "kill points (s)", "index found stale", "integrity failures", "lost", "duplicated",
                  "recovery median (s)", "× reference", "recovery max (s)",
                  title=f"Crash safety, seed {result['seed']}, {result['corpus']} corpus")
    for kind in result["kinds"]:
        points = kind["kill_points_s"]
        spread = f"{points[0]}–{points[-1]} (median {points[len(points) // 2]})" if points else "—"
        table.add_row(kind["kind"], str(kind["runs"]), spread, str(kind["stale_index_detected"]),
                      str(kind["integrity_failures"]), str(kind["lost"]), str(kind["duplicated"]),
                      str(kind["recovery_median_s"]), str(kind["recovery_vs_reference"]), str(kind["recovery_max_s"]))
    console.print(table)
    for kind in result["kinds"]:
        for problem in kind["problems"]:
            console.print(f"{kind['kind']}: {problem}", highlight=False, markup=False)
