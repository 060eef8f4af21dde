"""`paperscope backup DEST` and `paperscope restore SRC`: a catalogue to one file and back, with proof."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json, resolve_db


@contextmanager
def progress_bar(hidden: bool) -> Iterator:
    """A progress callback (stage, done, total) drawing one bar per stage on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=hidden) as bar:
        tasks: dict[str, int] = {}

        def advance(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                for other in tasks.values():      # a new stage: the ones before it are over
                    bar.update(other, visible=False)
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield advance


@app.command()
def backup(
    dest: Path = typer.Argument(..., help="The backup file to write (or a folder: a dated file is made in it)."),
    db: Optional[str] = DbOption,
    force: bool = typer.Option(False, "--force", help="Replace DEST if it exists."),
    as_json: bool = JsonOption,
) -> None:
    """Back the catalogue up while it is in use: SQLite's online backup API for a SQLite file (checked
    with PRAGMA integrity_check), pg_dump for PostgreSQL. Writes DEST and DEST.manifest.json (size,
    SHA-256, and rows and a checksum per table)."""
    from paperscope.catalog.backup import BackupError, StageClock, backup_catalogue, safe_location

    location = resolve_db(db)
    try:
        with progress_bar(as_json) as progress:
            clock = StageClock(progress)
            path, manifest = backup_catalogue(location, dest, overwrite=force, progress=clock)
    except BackupError as exc:
        fail(str(exc))
    except OSError as exc:      # the disk: full, unwritable, gone
        fail(f"{exc.filename or location}: {exc.strerror or exc}")
    if as_json:
        print_json({"catalogue": safe_location(location), "backup": str(path), **manifest.as_dict(),
                    "stages_s": clock.seconds()})
        return
    typer.echo(f"{'table':<18} {'rows':>9}  checksum")
    for t in manifest.tables:
        typer.echo(f"{t.table:<18} {t.rows:>9}  {t.checksum[:16]}")
    console.print(f"backed up {safe_location(location)} to {path} ({manifest.bytes / 1e6:.1f} MB, "
                  f"sha256 {manifest.sha256[:16]}…); manifest in {path}.manifest.json", highlight=False, soft_wrap=True)


@app.command()
def restore(
    src: Path = typer.Argument(..., help="A backup made by `paperscope backup`."),
    db: Optional[str] = DbOption,
    force: bool = typer.Option(False, "--force", help="Replace the catalogue even if it is not empty."),
    as_json: bool = JsonOption,
) -> None:
    """Restore a backup into the catalogue (a new or empty one unless --force), after checking the backup
    (its manifest, or SQLite's integrity check); prove every table equal to the backup's and rebuild
    the keyword index and vectors. Stop `paperscope serve` on that catalogue first."""
    from paperscope.catalog.backup import BackupError, StageClock, restore_catalogue

    location = resolve_db(db)
    try:
        with progress_bar(as_json) as progress:
            clock = StageClock(progress)
            report = restore_catalogue(src, location, force=force, progress=clock)
    except BackupError as exc:
        fail(str(exc))
    except OSError as exc:      # the disk: full, unwritable, gone
        fail(f"{exc.filename or location}: {exc.strerror or exc}")
    if as_json:
        print_json({**report.as_dict(), "stages_s": clock.seconds()})
    else:
        _print_restore(report)
    if report.identical is False:
        raise typer.Exit(1)


def _print_restore(report) -> None:
    typer.echo(f"{'table':<18} {'rows':>9} {'in backup':>9}  {'checksum':<16}  same")
    for t in report.tables:
        same = {True: "yes", False: "NO", None: "-"}[t["same"]]
        expected = "" if t["expected_rows"] is None else t["expected_rows"]
        typer.echo(f"{t['table']:<18} {'' if t['rows'] is None else t['rows']:>9} {expected:>9}  "
                   f"{(t['checksum'] or '')[:16]:<16}  {same}")
    verdict = {True: f"every table is identical to the {report.verified_against}",
               False: f"[red]the restored catalogue differs from the {report.verified_against}[/]",
               None: f"restored; compared with {report.verified_against}"}[report.identical]
    indexes = report.derived.get("indexes", {})
    rebuilt = ", ".join(f"{name}: {value}" for name, value in indexes.items())
    console.print(f"{verdict}; restored into {report.catalogue} in {report.seconds:.1f} s; indexes rebuilt ({rebuilt})"
                  + (f"; vectors: {report.derived['vectors']}" if report.derived.get("vectors") else ""), highlight=False, soft_wrap=True)
