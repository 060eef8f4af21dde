"""``paperscope bench fuzz``: coverage-guided fuzzing of the importers and the query language."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, err_console, fail, print_json

COLUMNS = ("target", "executions", "exec/s", "coverage", "features", "crashes", "hangs")


@bench_app.command("fuzz")
def bench_fuzz(
    seconds: int = typer.Option(60, "--seconds", min=1, help="Fuzzing time per target, in seconds."),
    targets: Optional[str] = typer.Option(None, "--targets", help="Comma-separated targets (default: all; --list)."),
    artifacts: Optional[Path] = typer.Option(
        None, "--artifacts", help="Folder for crashing and hanging inputs (default: ~/.cache/paperscope/fuzz/artifacts)."),
    corpus: Optional[Path] = typer.Option(
        None, "--corpus", help="Folder keeping what each target learnt (default: ~/.cache/paperscope/fuzz/corpus)."),
    hang_seconds: int = typer.Option(10, "--hang-seconds", min=1, help="One input running longer is a hang."),
    rss_limit_mb: int = typer.Option(2048, "--rss-limit-mb", min=1, help="A target using more memory is a crash."),
    seed: int = typer.Option(0, "--seed", min=0, help="libFuzzer's random seed (0: a new one each run)."),
    list_targets: bool = typer.Option(False, "--list", help="List the targets and exit."),
    as_json: bool = JsonOption,
) -> None:
    """Feed each importer (and the query parser, and slot parsing) mutated inputs for --seconds each,
    starting from real pages, dumps and sites; report executions, coverage, crashes and hangs.

    Exits non-zero when any input crashes or hangs; the inputs and their tracebacks are saved under
    --artifacts, and `python -m paperscope.bench.fuzz TARGET --reproduce FILE` replays one.
    """
    from paperscope.bench.fuzz import TARGETS, FuzzUnavailable, Limits, run_campaign

    if list_targets:
        for name, info in TARGETS.items():
            typer.echo(f"{name:16} {info.description}")
        return
    chosen = [t.strip() for t in targets.split(",") if t.strip()] if targets else list(TARGETS)
    if not chosen:
        fail("--targets names no target (see --list)")

    def report(result) -> None:  # on stderr, so that --json output stays clean
        err_console.print(f"{result.target}: {result.executions:,} executions, {result.crashes} crashes, "
                          f"{result.hangs} hangs", highlight=False)

    try:
        results = run_campaign(chosen, seconds, artifacts, corpus, Limits(hang_seconds, rss_limit_mb, seed),
                               progress=report)
    except FuzzUnavailable as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the corpus or the artifacts: {exc.filename or ''}: {exc.strerror or exc}")
    failed = [r for r in results if not r.ok]
    if as_json:
        print_json({"seconds_per_target": seconds, "targets": [r.as_dict() for r in results],
                    "crashes": sum(r.crashes for r in results), "hangs": sum(r.hangs for r in results)})
    else:
        _print_table(results)
    if failed:
        raise typer.Exit(1)


def _row(cells) -> str:
    return "".join(f"{c:>11}" if i else f"{c:16}" for i, c in enumerate(cells))


def _print_table(results) -> None:
    """One line per target (plain text: a table that never wraps), then each finding with its input."""
    typer.echo(_row(COLUMNS))
    for r in results:
        typer.echo(_row([r.target, f"{r.executions:,}", f"{r.exec_per_s:,.0f}", r.coverage, r.features,
                         r.crashes, r.hangs]))
    for r in results:
        for finding in r.findings:
            where = finding["input"] or f"(no input saved; see {r.log})"
            typer.echo(f"{r.target}: {finding['kind']}: {finding['signature']}: {where}")
        if r.executions == 0:
            typer.echo(f"{r.target}: no input ran; see {r.log}")
    if results:
        typer.echo(f"logs: {Path(results[0].log).parent.parent}")
