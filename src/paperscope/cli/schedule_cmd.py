"""`paperscope schedule`, `agenda`, `plan` and `export`: the conference planner on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json, resolve_db

agenda_app = typer.Typer(help="Your agenda: star talks, posters and sessions; find and resolve clashes.",
                         no_args_is_help=True)
export_app = typer.Typer(help="Export the agenda, a plan or papers: iCalendar, BibTeX, CSV.", no_args_is_help=True)
app.add_typer(agenda_app, name="agenda")
app.add_typer(export_app, name="export")

TzOption = typer.Option(None, "--tz", help="IANA time zone to show times in (default: this computer's zone), e.g. Europe/Berlin.")
VenueOption = typer.Option(None, "--venue", help='Venue, e.g. ICLR (or "ICLR 2020").')
YearOption = typer.Option(None, "--year", help="Year of the venue.")
DayOption = typer.Option(None, "--day", help="One day, YYYY-MM-DD, in the chosen time zone.")
USER = "local"  # laptop mode: one user


def _open(db: str | None):
    from paperscope.catalog.store import Catalog

    location = resolve_db(db)
    try:
        return Catalog.open(location)
    except Exception as exc:  # noqa: BLE001 - any failure to open is the user's to fix
        fail(f"cannot open the catalogue {location}: {str(exc).splitlines()[0]}")


def _tz(name: str | None):
    from paperscope.schedule import ScheduleError, local_zone_name, zone

    try:
        return zone(name or local_zone_name())
    except ScheduleError as exc:
        fail(str(exc))


def _venue_year(venue: str | None, year: int | None, required: bool = True) -> tuple[str | None, int | None]:
    """``--venue "ICLR 2020"`` is ``--venue ICLR --year 2020``."""
    import re

    if venue:
        m = re.match(r"^\s*(.*?)\s+((?:19|20)\d\d)\s*$", venue)
        if m and year is None:
            venue, year = m.group(1), int(m.group(2))
    if required and not venue:
        fail("which conference? give --venue (and --year), e.g. --venue ICLR --year 2020")
    return venue, year


def _guard(fn):
    """Run ``fn``; a ``ScheduleError`` becomes a one-line message, never a stack trace."""
    from paperscope.schedule import ScheduleError

    try:
        return fn()
    except ScheduleError as exc:
        fail(str(exc))


# =============================================================================================
# schedule
# =============================================================================================


@app.command()
def schedule(
    venue: Optional[str] = VenueOption,
    year: Optional[int] = YearOption,
    day: Optional[str] = DayOption,
    tz: Optional[str] = TzOption,
    brief: bool = typer.Option(False, "--brief", help="Sessions only, without their papers."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """A conference's schedule by day and room, each session with its papers, in your time zone."""
    from paperscope.schedule import load_program, parse_day, schedule_days, schedule_json

    venue, year = _venue_year(venue, year)
    zone = _tz(tz)
    the_day = _guard(lambda: parse_day(day))
    catalog = _open(db)
    program = _guard(lambda: load_program(catalog, venue, year))
    if as_json:
        print_json(schedule_json(program, zone, the_day, with_entries=not brief))
        return
    days = schedule_days(program, zone, the_day)
    if not days:
        from paperscope.schedule import program_days

        known = ", ".join(d.isoformat() for d in program_days(program, zone)) or "none"
        fail(f"nothing on {the_day} in {zone.key} at {venue} {year or ''}; days with a program: {known}")
    _print_schedule(days, program, zone, brief)


def _print_schedule(days, program, zone, brief: bool) -> None:
    from rich.markup import escape

    from paperscope.schedule import format_range, track_label

    title = f"{program.venue or ''} {program.year or ''}".strip()
    console.print(f"[bold]{escape(title)}[/] · times in [bold]{escape(zone.key)}[/]", highlight=False)
    for d in days:
        console.rule(f"[bold]{d.day:%A %d %B %Y}[/]")
        for s in d.sessions:
            span = format_range(s.starts_at, s.ends_at, zone, with_day=False)
            kind = "posters" if s.is_poster_session else (s.kind or "talks")
            console.print(f"[cyan]{escape(span)}[/]  [bold]{escape(s.name)}[/]  "
                          f"[dim]{escape(track_label(s))} · {escape(kind)} · {len(s.entries)} paper"
                          f"{'' if len(s.entries) == 1 else 's'}[/]", highlight=False)
            if brief:
                continue
            for e in s.entries:
                when = "" if e.kind == "poster" else format_range(e.starts_at, e.ends_at, zone, with_day=False).rsplit(" ", 1)[0]
                authors = ", ".join(e.authors[:4]) + (" et al." if len(e.authors) > 4 else "")
                marker = f"{when:>11}" if when else "          •"
                console.print(f"  [dim]{escape(marker)}[/] {escape(e.title)} [dim]— {escape(authors)} ({escape(e.paper_id)})[/]",
                              highlight=False, overflow="fold")
    if program.untimed:
        console.print(f"[dim]{len(program.untimed)} appearance(s) without a time are not shown "
                      f"(`--json` lists them as untimed).[/]", highlight=False)


# =============================================================================================
# agenda
# =============================================================================================


def _agenda_row_text(item, zone) -> str:
    from paperscope.schedule import format_range, parse_utc

    when = format_range(parse_utc(item.starts_at), parse_utc(item.ends_at), zone)
    where = " · ".join(x for x in (item.session if item.kind == "paper" else None, item.room) if x)
    kind = "session" if item.kind == "session" else "paper"
    origin = " [plan]" if item.origin == "plan" else ""
    return f"#{item.id} {when}  {item.title}  ({kind}{', ' + where if where else ''}){origin}"


@agenda_app.command("add")
def agenda_add(
    paper_id: Optional[str] = typer.Argument(None, help="Paper id (see `paperscope search` / `show`)."),
    session: Optional[str] = typer.Option(None, "--session", help="Star a whole session by name (or, with a paper id, choose the paper's appearance in this session)."),
    venue: Optional[str] = VenueOption,
    year: Optional[int] = YearOption,
    room: Optional[str] = typer.Option(None, "--room", help="Room of the session, when sessions of that name run in several rooms."),
    tz: Optional[str] = TzOption,
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Star a talk or poster (PAPER_ID) or a whole session (--session NAME --venue V --year Y)."""
    from paperscope.catalog.agenda import add_agenda_item, list_agenda
    from paperscope.schedule import (agenda_timed, choose_entry, clashing_with, entry_agenda_row, entry_timed,
                                     format_range, load_program, paper_entries, session_agenda_row, session_timed)

    venue, year = _venue_year(venue, year, required=False)
    zone = _tz(tz)
    catalog = _open(db)
    current = agenda_timed(list_agenda(catalog, USER))
    alternatives = []
    if paper_id:
        entries = _guard(lambda: paper_entries(catalog, paper_id, venue, year, session))
        if not entries:
            fail(f"{paper_id} has no appearance" + (f" in session {session!r}" if session else "") +
                 (f" at {venue} {year or ''}" if venue else "") + " to star")
        entry = choose_entry(entries, current)
        alternatives = [e for e in entries if e.key != entry.key]
        row, timed = entry_agenda_row(entry), entry_timed(entry) if entry.starts_at else None
    elif session:
        if not venue:
            fail("which conference is the session at? give --venue (and --year)")
        program = _guard(lambda: load_program(catalog, venue, year))
        found = program.find_sessions(session, room)
        if not found:
            names = sorted({s.name for s in program.sessions})
            hint = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
            fail(f"no session named {session!r} at {venue} {year or ''}; sessions: {hint}")
        if len(found) > 1:
            choices = "; ".join(f"{s.room or '?'} at {format_range(s.starts_at, s.ends_at, zone)}" for s in found)
            fail(f"{len(found)} sessions are named {session!r} ({choices}): choose one with --room")
        s = found[0]
        row, timed = session_agenda_row(s), session_timed(s) if s.starts_at else None
    else:
        fail("what to star? give a PAPER_ID, or --session NAME with --venue")
    item, created = add_agenda_item(catalog, USER, row)
    clashes = clashing_with(timed, current) if timed else []
    if as_json:
        print_json({"item": item.as_dict(), "created": created,
                    "clashes": [c.ref.as_dict() for c in clashes],
                    "other_appearances": [e.as_dict(zone) for e in alternatives]})
        return
    verb = "Starred" if created else "Already starred"
    console.print(f"{verb}: {_agenda_row_text(item, zone)}", highlight=False, markup=False)
    for c in clashes:
        console.print(f"  clashes with: {_agenda_row_text(c.ref, zone)}", style="yellow", highlight=False, markup=False)
    if clashes:
        console.print(f"  keep one with `paperscope agenda resolve --keep {item.id}` (or --keep the other's #)",
                      highlight=False, markup=False)
    for e in alternatives:
        console.print(f"  also presented: {e.session or ''} {format_range(e.starts_at, e.ends_at, zone)} "
                      f"(star that one with --session \"{e.session}\")", style="dim", highlight=False, markup=False)


@agenda_app.command("list")
def agenda_list(
    venue: Optional[str] = VenueOption,
    year: Optional[int] = YearOption,
    tz: Optional[str] = TzOption,
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Your starred items in time order, clashes marked."""
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import agenda_timed, find_clashes, local_day, parse_utc

    venue, year = _venue_year(venue, year, required=False)
    zone = _tz(tz)
    catalog = _open(db)
    items = list_agenda(catalog, USER, venue, year)
    clashing = {k for a, b in find_clashes(agenda_timed(items)) for k in (a.key, b.key)}
    if as_json:
        print_json({"tz": zone.key, "items": [i.as_dict() | {"clash": i.item_key in clashing} for i in items]})
        return
    if not items:
        console.print("Your agenda is empty: star talks with `paperscope agenda add PAPER_ID`, or accept a plan "
                      "(`paperscope plan ... --accept`).", highlight=False)
        return
    last_day = None
    for it in items:
        start = parse_utc(it.starts_at)
        d = local_day(start, zone) if start else None
        if d != last_day:
            console.rule(f"{d:%A %d %B %Y}" if d else "no time given")
            last_day = d
        mark = "⚠ " if it.item_key in clashing else "  "
        console.print(mark + _agenda_row_text(it, zone), style="yellow" if mark.strip() else None,
                      highlight=False, markup=False)
    if clashing:
        console.print(f"{len(clashing)} items clash: see `paperscope agenda clashes`.", highlight=False)


def _resolve_ref(catalog, ref: str):
    """An agenda item from ``#12``/``12`` (its number), a paper id, or a session name."""
    from paperscope.catalog.agenda import list_agenda

    items = list_agenda(catalog, USER)
    text = ref.strip().lstrip("#")
    if text.isdigit():
        found = [i for i in items if i.id == int(text)]
    else:
        found = [i for i in items if i.paper_id == ref or i.item_key == ref] or \
                [i for i in items if i.kind == "session" and i.title.lower() == ref.lower()]
    if not found:
        fail(f"{ref!r} is not in your agenda (see `paperscope agenda list` for the item numbers)")
    return found


@agenda_app.command("remove")
def agenda_remove(
    items: List[str] = typer.Argument(..., help="Item numbers (#3 or 3), paper ids, or session names."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Unstar items."""
    from paperscope.catalog.agenda import remove_agenda_items

    catalog = _open(db)
    ids = [i.id for ref in items for i in _resolve_ref(catalog, ref)]
    n = remove_agenda_items(catalog, USER, ids=ids)
    if as_json:
        print_json({"removed": n})
        return
    console.print(f"Removed {n} item{'' if n == 1 else 's'}.", highlight=False)


@agenda_app.command("clashes")
def agenda_clashes(
    tz: Optional[str] = TzOption,
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Starred items that overlap in time, shown in pairs, with a one-step way to keep one."""
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import agenda_timed, find_clashes

    zone = _tz(tz)
    catalog = _open(db)
    pairs = find_clashes(agenda_timed(list_agenda(catalog, USER)))
    if as_json:
        print_json({"tz": zone.key, "clashes": [{"a": a.ref.as_dict(), "b": b.ref.as_dict()} for a, b in pairs]})
        return
    if not pairs:
        console.print("No clashes in your agenda.", highlight=False)
        return
    for a, b in pairs:
        console.print(f"[yellow]clash[/]", highlight=False)
        console.print(f"  {_agenda_row_text(a.ref, zone)}", highlight=False, markup=False)
        console.print(f"  {_agenda_row_text(b.ref, zone)}", highlight=False, markup=False)
        console.print(f"  keep one: paperscope agenda resolve --keep {a.ref.id}   |   --keep {b.ref.id}",
                      style="dim", highlight=False, markup=False)


@agenda_app.command("resolve")
def agenda_resolve(
    keep: str = typer.Option(..., "--keep", help="The item to keep (number, paper id or session name); what clashes with it is unstarred."),
    tz: Optional[str] = TzOption,
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Keep one item and unstar everything that clashes with it."""
    from paperscope.catalog.agenda import list_agenda, remove_agenda_items
    from paperscope.schedule import agenda_timed, clashing_with

    zone = _tz(tz)
    catalog = _open(db)
    chosen = _resolve_ref(catalog, keep)
    if len(chosen) > 1:
        fail(f"{keep!r} matches {len(chosen)} items: keep one by its number ({', '.join('#' + str(i.id) for i in chosen)})")
    timed = agenda_timed(list_agenda(catalog, USER))
    mine = next((t for t in timed if t.key == chosen[0].item_key), None)
    drop = clashing_with(mine, [t for t in timed if t.key != mine.key]) if mine else []
    n = remove_agenda_items(catalog, USER, ids=[d.ref.id for d in drop])
    if as_json:
        print_json({"kept": chosen[0].as_dict(), "removed": [d.ref.as_dict() for d in drop]})
        return
    console.print(f"Kept {_agenda_row_text(chosen[0], zone)}", highlight=False, markup=False)
    for d in drop:
        console.print(f"  unstarred {_agenda_row_text(d.ref, zone)}", style="dim", highlight=False, markup=False)
    if not n:
        console.print("  nothing clashed with it.", highlight=False)


# =============================================================================================
# plan
# =============================================================================================


def _interests(catalog, interests: Path | None, text: str | None, library: bool):
    from paperscope.schedule import Interest, ScheduleError, read_interests

    given = sum(x is not None and x is not False for x in (interests, text, library or None))
    if given == 0:
        fail("what are you interested in? give --interests FILE (paper ids, titles or BibTeX), --text \"...\" or --library")
    out = []
    try:
        if interests is not None:
            out += read_interests(interests, catalog)
        if text:
            out += [Interest(label=t.strip(), title=t.strip()) for t in text.split("\n") if t.strip()]
        if library:
            out += _library_interests(catalog)
    except ScheduleError as exc:
        fail(str(exc))
    return out


def _library_interests(catalog):
    """The user's library. Until paperscope has libraries, the papers starred in the agenda stand for it."""
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import interests_from_lines

    try:  # a library module, when there is one
        from paperscope import library as lib  # type: ignore[attr-defined]

        ids = list(lib.library_paper_ids(catalog, USER))
    except Exception:  # noqa: BLE001
        ids = [i.paper_id for i in list_agenda(catalog, USER) if i.paper_id]
        if ids:
            err_console.print("[dim]--library: using the papers starred in your agenda as your library[/]", highlight=False)
    if not ids:
        fail("your library is empty: star papers (`paperscope agenda add PAPER_ID`) or use --interests / --text")
    return interests_from_lines(list(dict.fromkeys(ids)), catalog)


@app.command()
def plan(
    venue: Optional[str] = VenueOption,
    year: Optional[int] = YearOption,
    interests: Optional[Path] = typer.Option(None, "--interests", exists=True, dir_okay=False,
                                             help="A file: paper ids or titles, one per line, or a BibTeX file."),
    text: Optional[str] = typer.Option(None, "--text", help="Your interests in a few words or sentences."),
    library: bool = typer.Option(False, "--library", help="Plan for the papers in your library."),
    day: Optional[str] = DayOption,
    minutes_per_poster: float = typer.Option(5.0, "--minutes-per-poster", min=0.5, help="Time to give each poster visited."),
    tz: Optional[str] = TzOption,
    method: str = typer.Option("auto", "--method", help="Relevance: auto (embeddings, else tf-idf), embedding or tfidf."),
    threshold: float = typer.Option(1.0, "--threshold", help="Only papers this many spreads above the venue's typical paper count."),
    around_agenda: bool = typer.Option(False, "--around-agenda", help="Keep the times already in your agenda free."),
    accept: bool = typer.Option(False, "--accept", help="Write the plan into your agenda (replacing an earlier accepted plan for the same venue and day)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """The best set of non-overlapping talks and poster visits for your interests, each with its reason."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from paperscope.catalog.agenda import add_agenda_item, list_agenda, remove_plan_items
    from paperscope.schedule import agenda_timed, day_bounds, iso_utc, make_plan, parse_day, plan_agenda_rows

    venue, year = _venue_year(venue, year)
    if method not in ("auto", "embedding", "tfidf"):
        fail("--method is auto, embedding or tfidf")
    zone = _tz(tz)
    the_day = _guard(lambda: parse_day(day))
    catalog = _open(db)
    wanted = _interests(catalog, interests, text, library)
    blocked = []
    if around_agenda:
        blocked = [(t.start, t.end) for t in agenda_timed(list_agenda(catalog, USER))]

    with Progress(TextColumn("embedding papers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=as_json or not err_console.is_terminal) as bar:
        task = bar.add_task("embed", total=None)
        result = _guard(lambda: make_plan(
            catalog, venue, year, wanted, tz=zone, day=the_day, minutes_per_poster=minutes_per_poster,
            method=method, threshold=threshold, blocked=blocked,
            progress=lambda n: bar.advance(task, n), on_total=lambda n: bar.update(task, total=n)))

    accepted = None
    if accept:
        lo, hi = day_bounds(the_day, zone) if the_day else (None, None)
        removed = remove_plan_items(catalog, USER, venue, year, iso_utc(lo), iso_utc(hi))
        rows = plan_agenda_rows(result)
        for row in rows:
            add_agenda_item(catalog, USER, row)
        accepted = {"starred": len(rows), "replaced": removed}
    if as_json:
        print_json(result.as_dict() | ({"accepted": accepted} if accepted else {}))
        return
    _print_plan(result, accepted)


def _print_plan(result, accepted) -> None:
    from rich.markup import escape

    data = result.as_dict()
    where = f"{data['venue'] or ''} {data['year'] or ''}".strip()
    console.print(f"[bold]Plan for {escape(where)}[/]{' on ' + data['day'] if data['day'] else ''} · times in "
                  f"{escape(data['tz'])} · relevance by {escape(data['relevance_method'])}", highlight=False)
    if data["relevance_note"]:
        console.print(f"[yellow]{escape(data['relevance_note'])}[/]", highlight=False)
    if not data["items"]:
        console.print("Nothing in this program stands out for these interests (try --threshold 0.5, or other interests).",
                      highlight=False)
    last_day = None
    for it in data["items"]:
        loc = it["local"]
        if loc["day"] != last_day:
            console.rule(loc["day"])
            last_day = loc["day"]
        span = loc["text"]
        if it["kind"] == "talk":
            console.print(f"[cyan]{escape(span)}[/]  [bold]{escape(it['title'])}[/]  [dim]{escape(it['session'] or '')}"
                          f"{' · ' + escape(it['room']) if it['room'] else ''} · {escape(it['paper_id'])}[/]", highlight=False)
            console.print(f"    [green]why:[/] {escape(it['reason'])}", highlight=False)
        else:
            console.print(f"[cyan]{escape(span)}[/]  [bold]{escape(it['title'])}[/]  [dim]{len(it['posters'])} of "
                          f"{it['posters_in_session']} posters (room for {it['capacity']}) · relevance {it['relevance']:.2f}[/]",
                          highlight=False)
            for p in it["posters"]:
                console.print(f"    • {escape(p['title'])} [dim]({escape(p['paper_id'])})[/]", highlight=False)
                console.print(f"      [green]why:[/] [dim]{escape(p['reason'])}[/]", highlight=False)
    status = "optimal" if data["proven_optimal"] else f"upper bound {data['upper_bound']:.2f}"
    console.print(f"total relevance {data['total_relevance']:.2f} ({status}) from {data['candidates']} talks and poster "
                  f"sessions in {data['seconds']:.1f} s", style="dim", highlight=False)
    if accepted:
        console.print(f"Starred {accepted['starred']} items in your agenda"
                      f"{' (replacing ' + str(accepted['replaced']) + ' from an earlier plan)' if accepted['replaced'] else ''}"
                      "; edit with `paperscope agenda`.", highlight=False)
    else:
        console.print("Add --accept to put this plan in your agenda; export it with `paperscope export ical --agenda -o plan.ics`.",
                      style="dim", highlight=False)


# =============================================================================================
# export
# =============================================================================================


def _write(data: str | bytes, output: Path | None, what: str) -> None:
    if output is None or str(output) == "-":
        if isinstance(data, bytes):
            import sys

            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            typer.echo(data, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        (output.write_bytes if isinstance(data, bytes) else lambda d: output.write_text(d, encoding="utf-8"))(data)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    err_console.print(f"Wrote {what} to {output}", highlight=False)


def _ids(ids: list[str] | None) -> list[str]:
    return [i.strip() for chunk in (ids or []) for i in chunk.split(",") if i.strip()]


@export_app.command("ical")
def export_ical(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="The .ics file to write (default: stdout)."),
    agenda: bool = typer.Option(False, "--agenda", help="Export your agenda (the default)."),
    plan_venue: Optional[str] = typer.Option(None, "--plan", help='Export a fresh plan for this venue instead, e.g. --plan "ICLR 2020" (with --text/--interests).'),
    year: Optional[int] = YearOption,
    text: Optional[str] = typer.Option(None, "--text", help="With --plan: your interests."),
    interests: Optional[Path] = typer.Option(None, "--interests", exists=True, dir_okay=False, help="With --plan: an interests file."),
    day: Optional[str] = DayOption,
    minutes_per_poster: float = typer.Option(5.0, "--minutes-per-poster", min=0.5),
    venue: Optional[str] = typer.Option(None, "--venue", help="Only this venue's agenda items."),
    db: Optional[str] = DbOption,
) -> None:
    """Your agenda (or a plan) as an iCalendar file for any calendar application."""
    from paperscope.calendar_export import events_from_agenda, events_from_plan, to_ical
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import local_zone_name, make_plan, parse_day, zone

    catalog = _open(db)
    if plan_venue:
        v, y = _venue_year(plan_venue, year)
        wanted = _interests(catalog, interests, text, False)
        result = _guard(lambda: make_plan(catalog, v, y, wanted, tz=zone(local_zone_name()), day=parse_day(day),
                                          minutes_per_poster=minutes_per_poster))
        data = to_ical(events_from_plan(result), name=f"paperscope plan: {v} {y or ''}".strip())
    else:
        v, y = _venue_year(venue, year, required=False)
        items = list_agenda(catalog, USER, v, y)
        papers = {p["id"]: p for p in catalog.papers([i.paper_id for i in items if i.paper_id])}
        events = events_from_agenda(items, papers)
        if not events:
            fail("your agenda has no timed items to export (star some with `paperscope agenda add`)")
        data = to_ical(events, name="paperscope agenda")
    _write(data, output, "the calendar")


@export_app.command("bibtex")
def export_bibtex(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="The .bib file to write (default: stdout)."),
    agenda: bool = typer.Option(False, "--agenda", help="The papers of your agenda (the default)."),
    ids: Optional[List[str]] = typer.Option(None, "--ids", help="Paper ids (repeat, or comma-separated)."),
    db: Optional[str] = DbOption,
) -> None:
    """BibTeX entries of your agenda's papers, or of the papers given with --ids."""
    from paperscope.catalog.agenda import list_agenda
    from paperscope.export import to_bibtex

    catalog = _open(db)
    wanted = _ids(ids) or list(dict.fromkeys(i.paper_id for i in list_agenda(catalog, USER) if i.paper_id))
    if not wanted:
        fail("no papers to export: give --ids, or star papers in your agenda")
    found = catalog.papers(wanted)
    missing = [i for i in wanted if i not in {p["id"] for p in found}]
    for m in missing:
        err_console.print(f"[yellow]no paper {m!r} in this catalogue; skipped[/]", highlight=False)
    _write("\n".join(to_bibtex(p) for p in found), output, f"{len(found)} BibTeX entries")


@export_app.command("csv")
def export_csv(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="The .csv file to write (default: stdout)."),
    agenda: bool = typer.Option(False, "--agenda", help="Your agenda (the default)."),
    ids: Optional[List[str]] = typer.Option(None, "--ids", help="Paper ids (repeat, or comma-separated): their timed appearances."),
    tz: Optional[str] = TzOption,
    db: Optional[str] = DbOption,
) -> None:
    """Your agenda (or the appearances of --ids papers) as CSV, times in UTC and in your zone."""
    from paperscope.calendar_export import to_csv
    from paperscope.catalog.agenda import list_agenda
    from paperscope.schedule import paper_entries

    zone = _tz(tz)
    catalog = _open(db)
    wanted = _ids(ids)
    if wanted:
        rows = []
        for pid in wanted:
            entries = _guard(lambda: paper_entries(catalog, pid))
            rows += [e.as_dict() for e in entries] or [{"kind": "paper", "paper_id": pid,
                                                        "title": (catalog.paper(pid) or {}).get("title", "")}]
    else:
        rows = [i.as_dict() for i in list_agenda(catalog, USER)]
        if not rows:
            fail("your agenda is empty: give --ids, or star papers first")
    _write(to_csv(rows, zone), output, f"{len(rows)} rows")
