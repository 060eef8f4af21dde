"""`paperscope migrate SRC DST`: copy a catalogue between SQLite and PostgreSQL, with proof."""

from __future__ import annotations

import typer

from paperscope.cli.app import JsonOption, app, console, err_console, fail, print_json


@app.command()
def migrate(
    src: str = typer.Argument(..., help="The catalogue to copy: a SQLite file or a database URL."),
    dst: str = typer.Argument(..., help="An empty catalogue to copy into: a new SQLite file or a database URL "
                                        "(e.g. postgresql://user:pass@host/db)."),
    as_json: bool = JsonOption,
) -> None:
    """Copy every table (papers, sources, embeddings, accounts, agendas, ...) and print, per table,
    the rows and a checksum on both sides: equal checksums mean nothing was lost."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from sqlalchemy.exc import SQLAlchemyError

    from paperscope.catalog.copy import CopyError, copy_catalogue, summarise, table_names
    from paperscope.catalog.store import Catalog

    if "://" not in src and not Path(src).expanduser().is_file():
        fail(f"no catalogue at {src}")
    if src == dst:
        fail("the source and the destination are the same catalogue")
    try:
        source = Catalog.open(src)
        target = Catalog.open(dst)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open a catalogue: {str(exc).splitlines()[0]}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                      transient=True, disable=as_json) as bar:
            tasks: dict[str, int] = {}

            def advance(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(f"copying {table}", total=total)
                bar.update(tasks[table], completed=done)

            copied = copy_catalogue(source, target, progress=advance)
        names = table_names(source.engine)
        before, after = summarise(source.engine, names), summarise(target.engine, names)
        vectors = _refill_vectors(target)
    except CopyError as exc:
        fail(str(exc))
    finally:
        source.close()
        target.close()
    rows = [{"table": a.table, "rows_src": a.rows, "rows_dst": b.rows, "checksum_src": a.checksum,
             "checksum_dst": b.checksum, "same": a.rows == b.rows and a.checksum == b.checksum}
            for a, b in zip(before, after)]
    ok = all(r["same"] for r in rows)
    if as_json:
        print_json({"src": src, "dst": _safe(dst), "copied": copied, "tables": rows, "identical": ok, "vectors": vectors})
    else:
        typer.echo(f"{'table':<18} {'rows src':>9} {'rows dst':>9}  {'checksum src':<16}  {'checksum dst':<16}  same")
        for r in rows:
            typer.echo(f"{r['table']:<18} {r['rows_src']:>9} {r['rows_dst']:>9}  {r['checksum_src'][:16]}  "
                       f"{r['checksum_dst'][:16]}  {'yes' if r['same'] else 'NO'}")
        console.print(("every table is identical" if ok else "[red]the copy differs from the source[/]")
                      + (f"; vectors in pgvector: {vectors}" if vectors else ""), highlight=False)
    if not ok:
        raise typer.Exit(1)


def _refill_vectors(catalog) -> dict | None:
    """On PostgreSQL, fill pgvector now rather than on the first search by meaning."""
    from paperscope.index.pgvector import available, sync_paper_vectors

    if not available(catalog):
        return None
    from paperscope.catalog.copy import vector_models

    return {m: sync_paper_vectors(catalog, m, force=True) for m in vector_models(catalog.engine)}


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True) if "://" in url else url
    except Exception:  # noqa: BLE001 - only for display
        return url
