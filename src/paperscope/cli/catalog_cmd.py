"""Catalogue commands: ingest, show, stats, quarantine, formats."""

from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json, resolve_db


def open_catalog(db: str | None):
    from sqlalchemy.exc import SQLAlchemyError

    from paperscope.catalog.store import Catalog

    location = resolve_db(db)
    try:
        return Catalog.open(location)
    except (SQLAlchemyError, OSError) as exc:
        from sqlalchemy.engine import make_url

        shown = make_url(location).render_as_string(hide_password=True) if "://" in location else location
        fail(f"cannot open the catalogue {shown}: {str(exc).splitlines()[0]}")


def split_venue_year(venue: str | None, year: int | None) -> tuple[str | None, int | None]:
    """`--venue "ICLR 2023"` means venue ICLR, year 2023 (an explicit --year wins)."""
    if venue:
        parts = venue.rsplit(" ", 1)
        if len(parts) == 2 and parts[1].isdigit() and len(parts[1]) == 4:
            return parts[0].strip(), year or int(parts[1])
    return venue, year


def parse_column_map(pairs: list[str]) -> dict[str, str]:
    """``--map FIELD=COLUMN`` values as a dict, or a clear error naming the bad one."""
    from paperscope.ingest.tabular import ALIASES

    chosen: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        field, column = field.strip().lower(), column.strip().strip('"').strip()
        if not sep or not column:
            fail(f"--map {pair}: expected FIELD=COLUMN, e.g. --map title=\"Paper Name\"")
        if field not in ALIASES:
            fail(f"--map {pair}: unknown field '{field}'; fields: {', '.join(ALIASES)}")
        chosen[field] = column
    return chosen


@app.command()
def ingest(
    targets: list[str] = typer.Argument(..., help="Files, folders or URLs: saved pages, JSON/CSV dumps, Mini-Conf sites."),
    venue: Optional[str] = typer.Option(None, help='Venue of these sources, e.g. "ICML" or "ICLR 2023".'),
    year: Optional[int] = typer.Option(None, help="Year, when the source does not say it."),
    format: Optional[str] = typer.Option(None, "--format", help="Force an importer (see `paperscope formats`)."),
    column_map: list[str] = typer.Option([], "--map", metavar="FIELD=COLUMN",
                                         help='A table\'s column for a field, e.g. --map title="Paper Name" (repeatable; fields: `paperscope formats`).'),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Read conference programs, poster listings, paper feeds and dumps into the catalogue."""
    from paperscope.ingest.pipeline import ingest_targets, list_sources
    from paperscope.model import ImportOptions

    venue, year = split_venue_year(venue, year)
    options = ImportOptions(venue=venue, year=year, format=format, columns=parse_column_map(column_map))
    catalog = open_catalog(db)
    try:
        total = len(list_sources(targets))
    except OSError as exc:
        fail(str(exc))
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("ingesting", total=total)

        def advance(done, _total, report, failure):
            name = (report.locator if report else failure.locator).rsplit("/", 1)[-1]
            bar.update(task, completed=done, description=f"ingesting {name[:40]}")

        from paperscope.ingest.base import SourceError

        try:
            run = ingest_targets(catalog, targets, options, progress=advance)
        except SourceError as exc:
            fail(str(exc))
    if as_json:
        print_json({"totals": run.totals(), "sources": [r.as_dict() for r in run.reports],
                    "failures": [{"source": f.locator, "problem": f.problem} for f in run.failures],
                    "index": run.index_message})
    else:
        _print_ingest_summary(run)
    if not run.anything_read:
        raise typer.Exit(1)


def _print_ingest_summary(run) -> None:
    for line in run.problem_lines():
        err_console.print(f"[yellow]{line}[/]", highlight=False, markup=True, soft_wrap=True)
    for report in run.reports:
        for note in report.notes:
            err_console.print(f"[cyan]{report.locator}:[/] {note}", highlight=False, soft_wrap=True)
    t = run.totals()
    console.print(
        f"{t['records']} records from {len(run.reports)} sources: {t['new_papers']} new papers, "
        f"{t['merged']} merged into known papers, {t['updated']} updated, {t['unchanged_sources']} sources unchanged, "
        f"{t['problems']} problems (see `paperscope quarantine`), {t['failed_sources']} unreadable sources.",
        highlight=False,
    )
    if run.index_message:
        console.print(run.index_message, highlight=False)


@app.command()
def show(
    paper_id: str = typer.Argument(..., help="Paper id, as printed by search."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """A paper with every appearance: venue, session, room, slot, badge, source."""
    catalog = open_catalog(db)
    paper = catalog.paper(paper_id)
    if paper is None:
        fail(f"no paper with id {paper_id!r} in {catalog.location} (try `paperscope search`)")
    if as_json:
        print_json(paper)
        return
    title = paper["title"] or "(title missing in the source)"
    console.print(f"[bold]{title}[/]  [dim]{paper['id']}[/]", highlight=False)
    if paper["authors"]:
        console.print(", ".join(paper["authors"]), highlight=False)
    if paper["flags"]:
        console.print(f"[yellow]flags: {', '.join(paper['flags'])}[/]")
    if paper["ids"]:
        console.print("ids: " + ", ".join(f"{k}:{v}" for k, v in paper["ids"].items()), highlight=False)
    table = Table("venue", "session", "room", "slot (UTC)", "type", "badge", "source", show_lines=False)
    for a in paper["appearances"]:
        venue = " ".join(str(x) for x in (a["venue"], a["year"]) if x)
        slot = f"{a['starts_at'][:16].replace('T', ' ')}–{(a['ends_at'] or '')[11:16]}" if a["starts_at"] else ""
        badge = " / ".join(x for x in (a["award"], a["decision"], a["mode"]) if x)
        where = f"{a['source'].rsplit('/', 1)[-1]}:{a['line']}" if a["line"] else a["source"].rsplit("/", 1)[-1]
        table.add_row(venue, a["session"] or a["track"] or "", a["room"] or "", slot, a["presentation"] or "", badge, where)
    console.print(table)
    if paper["abstract"]:
        console.print(paper["abstract"], highlight=False, markup=False)


@app.command()
def stats(db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """What the catalogue holds: papers, appearances, venues, and records flagged for attention."""
    data = open_catalog(db).stats()
    if as_json:
        print_json(data)
        return
    console.print(
        f"{data['papers']} papers, {data['appearances']} appearances, {data['authors']} authors, "
        f"{data['sources']} sources, {data['sessions']} sessions, {data['quarantined']} quarantined problems, "
        f"{data['embedded']} vectors — {data['catalogue']}", highlight=False)
    table = Table("venue", "year", "papers")
    for row in data["by_venue"]:
        table.add_row(str(row["venue"] or "—"), str(row["year"] or "—"), str(row["papers"]))
    console.print(table)
    if data["flagged"]:
        flagged = Table("id", "flags", "venue", "session", "slot", "source", title="Flagged papers")
        for f in data["flagged"]:
            where = f"{(f['source'] or '').rsplit('/', 1)[-1]}:{f['line']}" if f["line"] else (f["source"] or "")
            flagged.add_row(f["id"], ", ".join(f["flags"]), f["venue"] or "", f["session"] or "", f["slot"] or "", where)
        console.print(flagged)


@app.command()
def quarantine(
    db: Optional[str] = DbOption,
    limit: int = typer.Option(100, help="Show at most this many."),
    raw: bool = typer.Option(False, "--raw", help="Print each record's raw text."),
    as_json: bool = JsonOption,
) -> None:
    """Records that could not be read, with their file, line, problem and raw text."""
    rows = open_catalog(db).quarantined(limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("Nothing in quarantine.")
        return
    for row in rows:
        where = f"{row['source_locator']}:{row['line']}" if row["line"] is not None else row["source_locator"]
        console.print(f"{where}: {row['problem']}", highlight=False, markup=False)
        if raw and row["raw"]:
            console.print(row["raw"][:2000], style="dim", highlight=False, markup=False)


@app.command()
def formats(as_json: bool = JsonOption) -> None:
    """The source formats paperscope reads."""
    from paperscope.ingest import importers

    found = {name: imp.description for name, imp in importers().items()}
    if as_json:
        print_json(found)
        return
    for name, description in found.items():
        console.print(f"[bold]{name}[/]: {description}", highlight=False)
