"""`paperscope bench soak`: searches, saves and an ingest against the real server for minutes on end."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json
from paperscope.cli.backup_cmd import progress_bar


@bench_app.command("soak")
def bench_soak(
    minutes: float = typer.Option(10.0, min=0.05, help="Length of the run."),
    users: int = typer.Option(8, min=1, help="Clients searching and saving at once, without think time."),
    db: Optional[str] = typer.Option(None, "--db", help="SQLite catalogue to start from (copied; never changed). "
                                                        "Default: the paperlists head/ files, built once."),
    ingest: Optional[List[Path]] = typer.Option(None, "--ingest", help="Files or folders to ingest during the run "
                                                                       "(repeatable). Default: paperlists fallback_older_commits/."),
    interval: float = typer.Option(60.0, min=1, help="Seconds per reported interval."),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
    leak_threshold: float = typer.Option(2.0, min=0, help="RSS growth over the second half, in MB/min, above which "
                                                          "memory is called growing."),
    seed: int = typer.Option(7, help="Seed for drawing titles."),
    as_json: bool = JsonOption,
) -> None:
    """Sustained load: per interval requests/s, p50/p99, errors, server memory and papers ingested; at
    the end a leak verdict (slope of the heap, the anonymous RSS, over the second half) and the errors. Exit status 1 on any error
    or growing memory."""
    from paperscope.bench.soak import SoakOptions, run_soak

    base, files = _inputs(db, ingest)
    options = SoakOptions(minutes=minutes, users=users, interval_s=interval, workers=workers, seed=seed,
                          leak_threshold_mb_per_min=leak_threshold)
    err_console.print(f"bench soak: {users} clients for {minutes:g} min over a copy of {base}, ingesting "
                      f"{', '.join(str(f) for f in files)} meanwhile…", highlight=False, soft_wrap=True)
    try:
        with progress_bar(hidden=False) as progress:
            result = run_soak(base, files, options, progress)
    except RuntimeError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
    else:
        _print(result)
    if result["errors"] or result["memory"]["leak"]:
        raise typer.Exit(1)


def _inputs(db: str | None, ingest: list[Path] | None) -> tuple[str, list[Path]]:
    """The catalogue to copy and the paths to ingest, building the default catalogue when missing."""
    from paperscope.bench.soak import SOAK_BASE, build_base, default_sources

    head, fallback = default_sources()
    if db and "://" in db:
        fail("the soak runs on a copy of a SQLite catalogue: pass a catalogue file (`paperscope migrate` makes one)")
    if db and not Path(db).expanduser().is_file():
        fail(f"no catalogue at {db}")
    paths = list(ingest or [fallback])
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"nothing to ingest at {missing[0]}: pass --ingest PATH (files or folders of paperlists dumps)")
    if db:
        return str(Path(db).expanduser()), paths
    if not SOAK_BASE.is_file():
        if not head.is_dir():
            fail(f"no paperlists corpus at {head}: pass --db CATALOGUE and --ingest PATH")
        err_console.print(f"building the soak catalogue from {head} (once; kept at {SOAK_BASE})…", highlight=False)
        with progress_bar(hidden=False) as progress:
            build_base(head, SOAK_BASE, progress)
    return str(SOAK_BASE), paths


def _print(result: dict[str, Any]) -> None:
    typer.echo(f"{'until s':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MB':>8} {'heap MB':>8} {'ingested':>9}")
    for row in result["intervals"]:
        typer.echo(f"{row['to_s']:>8} {row['req_per_s']:>7} {row['p50_ms']!s:>8} {row['p99_ms']!s:>8} "
                   f"{row['errors']:>6} {row['rss_mb']!s:>8} {row['heap_mb']!s:>8} {row['ingested_papers']:>9}")
    total, memory, ingest = result["total"], result["memory"], result["ingest"]
    console.print(
        f"{total['requests']} requests ({total['searches']} searches, {total['saves']} saves) in {result['duration_s']} s: "
        f"{total['req_per_s']} req/s, p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms "
        f"(baseline /healthz p50 {result['baseline_healthz']['p50_ms']} ms); "
        f"ingested {ingest['new_papers']} papers from {ingest['files']} files; "
        f"RSS {memory['rss_start_mb']} → {memory['rss_end_mb']} MB, second-half slope "
        f"{memory['rss_slope_mb_per_min_second_half']} MB/min (heap {memory['anon_slope_mb_per_min_second_half']} "
        f"MB/min): {memory['verdict']}; errors: {result['errors']}",
        highlight=False, soft_wrap=True)
    for kind, stats in result["by_kind"].items():
        console.print(f"  {kind}: {stats['requests']} requests, p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms",
                      highlight=False)
    for sample in result["error_samples"]:
        err_console.print(f"  {sample}", highlight=False, markup=False)
