"""``paperscope search`` and ``paperscope reindex``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, err_console, fail, print_json, resolve_db

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog
    from paperscope.search import SearchResult


def open_existing_catalog(db: str | None) -> "Catalog":
    """The user's catalogue; a clear error (not a new empty file) when there is none."""
    from paperscope.catalog.store import Catalog

    location = resolve_db(db)
    if "://" not in location and not Path(location).expanduser().exists():
        fail(f"no catalogue at {location}: import papers first (paperscope ingest SOURCE), or pass --db PATH")
    try:
        return Catalog.open(location)
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever the driver raised
        fail(f"cannot open the catalogue at {location}: {_one_line(exc)}")
        raise  # unreachable: fail() exits


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def index_progress(description: str, enabled: bool = True) -> Iterator[Any]:
    """A Rich progress bar on stderr (stdout stays clean for --json); yields progress(done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not enabled:
        yield lambda done, total: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield update


def open_search_service(catalog: "Catalog", show_progress: bool = True):
    """A SearchService on ``catalog``, building its keyword index first (with a progress bar) if needed."""
    from paperscope.index.lexical import IndexBusy, LexicalIndex
    from paperscope.search import SearchService

    index = LexicalIndex.for_catalog(catalog)
    state = index.state(catalog)
    try:
        if state.fresh:
            return SearchService(catalog, index=index, ensure=False)
        with index_progress(f"Building the keyword index ({state.reason})", show_progress) as progress:
            return SearchService(catalog, index=index, progress=progress)
    except IndexBusy as exc:
        fail(f"{exc}; try again when it has finished")
    except KeyboardInterrupt:
        fail("interrupted; the keyword index will be rebuilt by the next search", 130)


@app.command("search")
def search_command(
    query: Optional[list[str]] = typer.Argument(
        None, help='What to search: words, "phrases", -excluded, OR, and filters such as author:, venue:, '
                   'year:2020..2022, type:oral, award:any, session:"Poster Session 3", title:. '
                   "Put -- before a query that starts with '-'."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid (keywords and meaning fused), keyword, or semantic. "
                             "Without vectors (`paperscope embed`) search uses keywords and says so."),
    limit: int = typer.Option(20, "--limit", "-n", help="Results per page."),
    offset: int = typer.Option(0, "--offset", help="Skip this many results (paging)."),
    sort: str = typer.Option("relevance", "--sort", help="relevance, or date (newest first)."),
    json_out: bool = JsonOption,
    db: Optional[str] = DbOption,
) -> None:
    """Search the catalogue: ranked, filtered, with facet counts."""
    from paperscope.search import MAX_LIMIT, MODES, SORTS

    if mode not in MODES:
        fail(f"unknown --mode '{mode}': use one of {', '.join(MODES)}")
    if sort not in SORTS:
        fail(f"unknown --sort '{sort}': use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        fail(f"--limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        fail("--offset cannot be negative")
    text = " ".join(query or [])
    from paperscope.limits import LimitExceeded, current

    try:
        current().check_query(text)
    except LimitExceeded as exc:
        fail(str(exc))
    catalog = open_existing_catalog(db)
    try:
        service = open_search_service(catalog, show_progress=True)
        result = service.search(text, mode=mode, limit=limit, offset=offset, sort=sort)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        fail(f"search failed: {_one_line(exc)}")
    finally:
        catalog.close()
    if json_out:
        print_json(result.as_dict())
    else:
        render_result(result)


def _badges(paper: dict[str, Any]) -> list[tuple[str, str]]:
    badges: list[tuple[str, str]] = []
    seen: set[str] = set()
    for app_ in paper.get("appearances") or []:
        for label, style in ((app_.get("presentation"), "cyan"), (app_.get("award"), "bold magenta")):
            if label and label.lower() not in seen and label.lower() != "paper":
                seen.add(label.lower())
                badges.append((label, style))
    return badges


def _venue_year(paper: dict[str, Any]) -> str:
    seen: list[str] = []
    for app_ in paper.get("appearances") or []:
        label = " ".join(str(x) for x in (app_.get("venue"), app_.get("year")) if x)
        if label and label not in seen:
            seen.append(label)
    if not seen and paper.get("year"):
        seen.append(str(paper["year"]))
    return "\n".join(seen)


def _session_slot(paper: dict[str, Any]) -> str:
    for app_ in paper.get("appearances") or []:
        if app_.get("session") or app_.get("slot_text") or app_.get("starts_at"):
            slot = app_.get("slot_text") or (app_.get("starts_at") or "")[:16].replace("T", " ")
            return "\n".join(x for x in (app_.get("session"), slot) if x)
    return ""


def _authors(paper: dict[str, Any], shown: int = 3) -> str:
    names = paper.get("authors") or []
    return ", ".join(names[:shown]) + (" et al." if len(names) > shown else "")


def render_result(result: "SearchResult") -> None:
    """The result as a Rich table. Text from papers is added as plain Text: never read as markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if result.message:
        err_console.print(Text(result.message, style="yellow"))
    if not result.hits:
        console.print(Text("No results." if result.total == 0 else f"No results on this page ({result.total} in all)."))
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("Paper", ratio=5)
    table.add_column("Venue", ratio=1)
    table.add_column("Session / slot", ratio=2)
    table.add_column("", ratio=1)
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        paper = hit.paper or {"title": hit.paper_id}
        cell = Text(paper.get("title") or "(untitled)", style="bold")
        authors = _authors(paper)
        if authors:
            cell.append("\n" + authors, style="dim")
        if hit.snippet:
            cell.append("\n")
            for fragment, is_match in hit.snippet:
                cell.append(fragment, style="bold yellow" if is_match else "")
        badges = Text()
        for label, style in _badges(paper):
            badges.append(f"{label}\n", style=style)
        table.add_row(str(rank), cell, Text(_venue_year(paper)), Text(_session_slot(paper)), badges)
    console.print(table)
    last = result.offset + len(result.hits)
    console.print(Text(f"{result.offset + 1}–{last} of {result.total} · {result.mode}, by {result.sort} · "
                       f"{result.took_ms:.0f} ms", style="dim"))
    for name in ("venue", "year", "type", "award"):
        buckets = result.facets.get(name) or []
        if buckets:
            line = Text(f"{name}: ", style="dim")
            line.append(" · ".join(f"{b['value']} {b['count']}" for b in buckets[:8]))
            console.print(line)


def _rebuild_recommend_features(catalog: "Catalog", show: bool) -> dict[str, Any]:
    from paperscope.index.features import rebuild_features

    try:
        with index_progress("Rebuilding the recommendation features", show) as progress:
            return rebuild_features(catalog, progress)
    except KeyboardInterrupt:
        fail("interrupted; the keyword index is rebuilt, and recommendations compute what they lack on demand", 130)
        raise


@app.command("reindex")
def reindex_command(json_out: bool = JsonOption, db: Optional[str] = DbOption) -> None:
    """Rebuild the search indexes from the catalogue (they are derived; nothing is lost)."""
    from paperscope.index.lexical import IndexBusy, LexicalIndex
    from paperscope.index.maintain import rebuild_indexes

    catalog = open_existing_catalog(db)
    started = time.perf_counter()
    try:
        with index_progress("Rebuilding the keyword index", not json_out) as progress:
            report = rebuild_indexes(catalog, progress=lambda _name, done, total: progress(done, total))
    except IndexBusy as exc:
        fail(f"{exc}; try again when it has finished")
    except KeyboardInterrupt:
        fail("interrupted; the keyword index will be rebuilt by the next search", 130)
    except Exception as exc:  # noqa: BLE001
        fail(f"reindex failed: {_one_line(exc)}")
    report["recommend_features"] = _rebuild_recommend_features(catalog, not json_out)
    index = LexicalIndex.for_catalog(catalog)
    seconds = time.perf_counter() - started
    summary = {"catalogue": catalog.location, "indexes": report, "seconds": round(seconds, 2),
               "lexical_path": str(index.path), "lexical_bytes": index.size_bytes()}
    catalog.close()
    if json_out:
        print_json(summary)
    else:
        from rich.text import Text

        from paperscope.cli.app import console

        console.print(Text(f"Keyword index rebuilt: {report.get('lexical', 0)} papers in {seconds:.1f} s "
                           f"({summary['lexical_bytes'] / 1e6:.1f} MB) at {index.path}"))
