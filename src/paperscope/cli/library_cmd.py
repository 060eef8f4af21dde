"""``paperscope library ...``, ``recommend``, ``feedback`` and ``digest``: your library and what it recommends."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, console, err_console, fail, print_json, resolve_db

library_app = typer.Typer(help="Your library: saved papers in tags (folders), with notes and read state; "
                               "import from BibTeX / CSL JSON (Zotero), export, \"these are my papers\".",
                          no_args_is_help=True)
app.add_typer(library_app, name="library")

UserOption = typer.Option("local", "--user", envvar="PAPERSCOPE_USER", help="Whose library (a server has many users).")
TagOption = typer.Option(None, "--tag", "-t", help="A tag (folder); 'a/b' nests b in a.")


def _open(db: str | None):
    from paperscope.catalog.store import Catalog

    location = resolve_db(db)
    try:
        return Catalog.open(location)
    except Exception as exc:  # noqa: BLE001 - any failure to open is the user's to fix
        fail(f"cannot open the catalogue {location}: {str(exc).splitlines()[0]}")


def _guard(fn):
    """Run ``fn``; the library's own errors become one line, never a stack trace."""
    from paperscope.digest import DigestError
    from paperscope.library import LibraryError
    from paperscope.recommend import RecommendError

    try:
        return fn()
    except (LibraryError, RecommendError, DigestError) as exc:
        fail(str(exc))


def _entry_line(e) -> str:
    state = {"read": "✓", "reading": "…", "unread": " "}[e.read_state]
    where = e.paper_id or "profile-only"
    tags = f"  [{', '.join(e.tags)}]" if e.tags else ""
    year = f" ({e.year})" if e.year else ""
    return f"#{e.id:<4} {state} {e.title}{year}  [dim]{where}[/]{tags}"


def _print_entries(entries, as_json: bool) -> None:
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    for e in entries:
        console.print(_entry_line(e), highlight=False)
        if e.note:
            console.print(f"       [italic]{e.note.splitlines()[0][:100]}[/]", highlight=False)


# =============================================================================================
# library
# =============================================================================================


@library_app.command("add")
def library_add(
    paper_ids: List[str] = typer.Argument(..., help="Catalogue paper ids (see `paperscope search`)."),
    tag: Optional[List[str]] = TagOption,
    note: Optional[str] = typer.Option(None, "--note", help="A note to keep with the paper."),
    read: Optional[str] = typer.Option(None, "--state", help="unread, reading or read."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Save papers to your library (saving again adds tags and keeps the rest)."""
    from paperscope import library as lib

    catalog = _open(db)
    out = [_guard(lambda pid=pid: lib.save(catalog, user, pid, tags=tag or [], note=note, read_state=read)) for pid in paper_ids]
    if as_json:
        print_json([{"entry": e.as_dict(), "new": new} for e, new in out])
        return
    for e, new in out:
        console.print(("saved   " if new else "updated ") + _entry_line(e), highlight=False)


@library_app.command("remove")
def library_remove(
    refs: List[str] = typer.Argument(..., help="Entry numbers (#12) or paper ids."),
    user: str = UserOption, db: Optional[str] = DbOption,
) -> None:
    """Remove papers from your library."""
    from paperscope import library as lib

    catalog = _open(db)
    n = _guard(lambda: lib.remove(catalog, user, refs))
    console.print(f"removed {n} entr{'y' if n == 1 else 'ies'}")


@library_app.command("tag")
def library_tag(
    refs: List[str] = typer.Argument(..., help="Entry numbers (#12) or paper ids."),
    add: Optional[List[str]] = typer.Option(None, "--add", "-a", help="Tag to add (repeat for more)."),
    remove: Optional[List[str]] = typer.Option(None, "--remove", "-r", help="Tag to take off."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Add or remove tags (tags nest like folders: 'rl/offline' is inside 'rl')."""
    from paperscope import library as lib

    if not add and not remove:
        fail("give --add TAG and/or --remove TAG")
    catalog = _open(db)
    _print_entries(_guard(lambda: lib.tag(catalog, user, refs, add or [], remove or [])), as_json)


@library_app.command("tags")
def library_tags(user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """Your tags with their number of papers."""
    from paperscope import library as lib

    counts = lib.tags(_open(db), user)
    if as_json:
        print_json([{"tag": t, "papers": n} for t, n in counts])
        return
    for t, n in counts:
        console.print(f"{n:5}  {t}", highlight=False)
    if not counts:
        console.print("no tags yet: `paperscope library tag #ID --add TAG`")


@library_app.command("rename-tag")
def library_rename_tag(old: str, new: str, user: str = UserOption, db: Optional[str] = DbOption) -> None:
    """Rename a tag and everything under it (moves a folder)."""
    from paperscope.catalog.library import rename_tag
    from paperscope.library import clean_tag

    if not clean_tag(new):
        fail("the new tag is empty")
    n = rename_tag(_open(db), user, clean_tag(old), clean_tag(new))
    console.print(f"renamed {n} tag{'s' if n != 1 else ''}")


@library_app.command("note")
def library_note(
    ref: str = typer.Argument(..., help="Entry number (#12) or paper id."),
    text: str = typer.Argument(..., help="The note ('-' reads it from standard input; '' clears it)."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Keep a note with a paper (replaces its note)."""
    from paperscope import library as lib

    if text == "-":
        text = sys.stdin.read().strip()
    _print_entries(_guard(lambda: lib.set_note(_open(db), user, [ref], text)), as_json)


@library_app.command("read")
def library_read(
    refs: List[str] = typer.Argument(..., help="Entry numbers (#12) or paper ids."),
    state: str = typer.Option("read", "--state", help="read, reading or unread."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Mark papers read (or reading, or unread)."""
    from paperscope import library as lib

    _print_entries(_guard(lambda: lib.set_read(_open(db), user, refs, state)), as_json)


@library_app.command("list")
def library_list(
    tag: Optional[str] = TagOption,
    state: Optional[str] = typer.Option(None, "--state", help="Only unread, reading or read."),
    query: Optional[str] = typer.Option(None, "--query", "-q", help="Words in the title, authors or note."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Your library, newest first (a tag includes its sub-tags)."""
    from paperscope import library as lib

    found = _guard(lambda: lib.entries(_open(db), user, tag=tag, read_state=state, query=query))
    _print_entries(found, as_json)
    if not found and not as_json:
        console.print("nothing here yet: `paperscope library add ID`, `library import FILE.bib` or `library mine \"Your Name\"`")


@library_app.command("import")
def library_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="BibTeX (.bib), CSL JSON (Zotero) or a paperscope library export (.json)."),
    tag: Optional[List[str]] = TagOption,
    no_file_tags: bool = typer.Option(False, "--no-file-tags", help="Ignore the file's keywords/groups as tags."),
    fmt: Optional[str] = typer.Option(None, "--format", help="bibtex, csl-json or paperscope-json (default: recognised)."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Import a reference manager's library: entries are matched to catalogue papers (DOI, arXiv,
    OpenReview id, then title + authors) or kept as profile-only papers; the report says which."""
    from paperscope import library as lib

    catalog = _open(db)
    report = _guard(lambda: lib.import_file(catalog, user, file, tags=tag or [], use_file_tags=not no_file_tags, fmt=fmt))
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    console.print(f"{file.name}: {data['entries']} entries ({data['new']} new) — {data['matched']} matched to the catalogue "
                  f"{data['matched_by'] or ''}, {data['profile_only']} kept as profile-only papers", highlight=False)
    for m in report.matched:
        console.print(f"  [green]matched[/] by {m['how']:<28} {m['title'][:80]}  [dim]{m['paper_id']}[/]", highlight=False)
    for p in report.profile_only:
        console.print(f"  [yellow]profile-only[/] {p['title'][:90]}", highlight=False)
    for p in report.problems:
        console.print(f"  [red]{file.name}:{p['line'] or '?'}[/]: {p['problem']}", highlight=False)
    if report.feedback:
        console.print(f"  {report.feedback} \"not relevant\" mark(s) restored")


@library_app.command("export")
def library_export(
    fmt: str = typer.Option("json", "--format", "-f", help="json (everything, for re-import) or bibtex."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Only this tag (BibTeX only)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of standard output."),
    user: str = UserOption, db: Optional[str] = DbOption,
) -> None:
    """Export the library; `paperscope library import` reads both formats back."""
    import json

    from paperscope import library as lib

    catalog = _open(db)
    if fmt == "json":
        if tag:
            fail("--tag works with --format bibtex; the JSON export is the whole library")
        text = json.dumps(lib.export_library(catalog, user), ensure_ascii=False, indent=1) + "\n"
    elif fmt in ("bibtex", "bib"):
        text = lib.export_bibtex(catalog, user, tag)
    else:
        fail("--format is json or bibtex")
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}", highlight=False)


@library_app.command("mine")
def library_mine(
    name: str = typer.Argument(..., help="Your name as it appears on your papers."),
    tag: str = typer.Option("mine", "--tag", "-t", help="Tag to put them in."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be added."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """"These are my papers": add an author's papers to the library as a profile, in one step."""
    from paperscope import library as lib

    result = _guard(lambda: lib.add_my_papers(_open(db), user, name, tag, dry_run))
    if as_json:
        print_json(result.as_dict() | {"dry_run": dry_run})
        return
    verb = "would add" if dry_run else "added"
    console.print(f"{len(result.found)} papers by {name}; {verb} {sum(p['new'] for p in result.found)} new, tagged '{result.tag}'",
                  highlight=False)
    for p in result.found:
        console.print(f"  {'+' if p['new'] else '='} {p['title']} ({p['year'] or '?'})  [dim]{p['id']}[/]", highlight=False)


@library_app.command("seen")
def library_seen(
    paper_ids: List[str] = typer.Argument(None, help="Papers you have seen (recommendations hide them)."),
    clear: bool = typer.Option(False, "--clear", help="Forget every seen paper."),
    user: str = UserOption, db: Optional[str] = DbOption,
) -> None:
    """Mark papers seen, so recommendations stop showing them."""
    from paperscope.catalog import library as store

    catalog = _open(db)
    if clear:
        console.print(f"forgot {store.clear_seen(catalog, user)} seen papers")
        return
    if not paper_ids:
        fail("give paper ids, or --clear")
    console.print(f"marked {store.mark_seen(catalog, user, paper_ids, 'marked')} papers seen")


# =============================================================================================
# recommend, feedback
# =============================================================================================


@app.command()
def recommend(
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Recommend for this tag of your library (default: all of it)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only papers added to the catalogue since this date (YYYY-MM-DD)."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many."),
    mark_seen: bool = typer.Option(False, "--mark-seen", help="Mark the papers shown as seen (hidden next time)."),
    show_seen: bool = typer.Option(False, "--show-seen", help="Include papers already seen."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Papers for you, from your library: each with its reason (the library papers it is closest to,
    the key terms they share). Saved, seen and "not relevant" papers are left out."""
    from paperscope import recommend as rec
    from paperscope.catalog import library as store

    if limit < 1:
        fail("--limit must be at least 1")
    catalog = _open(db)
    result = _guard(lambda: rec.recommend(catalog, user, tag=tag, since=since, limit=limit, hide_seen=not show_seen))
    if mark_seen:
        store.mark_seen(catalog, user, [r.paper["id"] for r in result.items], "recommend")
    if as_json:
        print_json(result.as_dict())
        return
    if result.message:
        err_console.print(f"[dim]{result.message}[/]", highlight=False)
    for n, r in enumerate(result.items, 1):
        d = r.as_dict()
        console.print(f"[bold]{n:2}. {d['title']}[/] ({d['venue'] or ''} {d['year'] or ''})  [dim]{d['id']}[/]", highlight=False)
        if r.closest:
            console.print("    close to: " + "; ".join(c["title"][:70] for c in r.closest), highlight=False)
        if r.terms:
            console.print("    shares: " + ", ".join(r.terms), highlight=False)
    if result.items:
        err_console.print("[dim]not for you? `paperscope feedback PAPER_ID` demotes papers like it[/]")


@app.command()
def feedback(
    paper_id: Optional[str] = typer.Argument(None, help="A recommended paper that is not relevant to you."),
    undo: bool = typer.Option(False, "--undo", help="Take the mark back."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="The tag's list it came from (kept for the record)."),
    list_: bool = typer.Option(False, "--list", help="List your \"not relevant\" marks."),
    user: str = UserOption, db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """Mark a paper "not relevant": it is hidden, and papers like it are demoted from now on."""
    from paperscope import recommend as rec
    from paperscope.catalog import library as store

    catalog = _open(db)
    if list_ or not paper_id:
        marks = store.list_feedback(catalog, user)
        if as_json:
            print_json(marks)
        else:
            for m in marks:
                console.print(f"{m['created_at'][:10]}  {m['title'][:90]}  [dim]{m['paper_id']}[/]", highlight=False)
            if not marks:
                console.print("no \"not relevant\" marks")
        return
    if undo:
        n = rec.undo_not_relevant(catalog, user, paper_id)
        console.print("mark removed" if n else "that paper had no mark")
        return
    new = _guard(lambda: rec.mark_not_relevant(catalog, user, paper_id, tag))
    console.print("marked not relevant: papers like it will be demoted" if new else "already marked")


# =============================================================================================
# digest
# =============================================================================================


@app.command()
def digest(
    send: bool = typer.Option(False, "--send", help="Send the digest by email and record it (nothing is sent twice)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send and record nothing (the default)."),
    tag: Optional[str] = typer.Option(None, "--tag", "-t", help="Digest of one tag (default: the whole library)."),
    to: Optional[str] = typer.Option(None, "--to", help="Recipient (or PAPERSCOPE_DIGEST_TO; on a server, each user's own address)."),
    limit: int = typer.Option(20, "--limit", "-n", help="Papers per digest."),
    days: int = typer.Option(7, "--days", help="How far the first digest looks back."),
    since: Optional[str] = typer.Option(None, "--since", help="New since this date instead of since the last digest."),
    send_empty: bool = typer.Option(False, "--send-empty", help="Send even when nothing is new."),
    smtp_host: Optional[str] = typer.Option(None, "--smtp-host", help="SMTP server (or PAPERSCOPE_SMTP_HOST)."),
    smtp_port: Optional[int] = typer.Option(None, "--smtp-port", help="SMTP port (or PAPERSCOPE_SMTP_PORT)."),
    smtp_security: Optional[str] = typer.Option(None, "--smtp-security", help="starttls, ssl or none (or PAPERSCOPE_SMTP_SECURITY)."),
    smtp_user: Optional[str] = typer.Option(None, "--smtp-user", help="Login (or PAPERSCOPE_SMTP_USER; the password only from PAPERSCOPE_SMTP_PASSWORD or the config file)."),
    sender: Optional[str] = typer.Option(None, "--from", help="Sender address (or PAPERSCOPE_SMTP_FROM)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Where `paperscope serve` is reachable, for links (or PAPERSCOPE_BASE_URL)."),
    feed_url: bool = typer.Option(False, "--feed-url", help="Print the private Atom feed URL of the tag instead."),
    revoke_feed: bool = typer.Option(False, "--revoke-feed", help="Revoke the tag's feed URL (a new one is made on next use)."),
    history: bool = typer.Option(False, "--history", help="List the digests sent."),
    user: Optional[str] = typer.Option(None, "--user", envvar="PAPERSCOPE_USER",
                                       help="One user's digest (default: every user with a library; on a laptop, its one user)."),
    db: Optional[str] = DbOption, as_json: bool = JsonOption,
) -> None:
    """New papers since the last digest, ranked for each reader's library: by email (--send), or shown (--dry-run).

    On a server, one run covers every user with a library, each at their own address.
    Daily from cron: 0 7 * * *  PAPERSCOPE_SMTP_HOST=... paperscope digest --send
    """
    from paperscope import digest as dg
    from paperscope.recommend import _since_iso

    if send and dry_run:
        fail("--send or --dry-run, not both")
    catalog = _open(db)
    overrides = {"host": smtp_host, "port": smtp_port, "security": smtp_security, "user": smtp_user,
                 "from": sender, "to": to, "base_url": base_url}
    settings = _guard(lambda: dg.load_settings(overrides))
    people = _guard(lambda: dg.readers(catalog, user))
    if to and len(people) > 1:
        fail("--to names one recipient, and this run is for several users (each gets their own address): "
             "add --user NAME")
    if history:
        return _digest_history(catalog, people, as_json)
    if feed_url or revoke_feed:
        if len(people) > 1:
            fail("a feed belongs to one user: add --user NAME")
        return _digest_feed(catalog, people[0], tag, settings, revoke_feed, as_json)
    if since:
        _guard(lambda: _since_iso(since))     # a bad date is said once, before any reader's digest
    options = {"tag": tag, "limit": limit, "days": days, "since": since}
    if send:
        runs = dg.send_digests(catalog, people, settings, to, send_empty, **options)
    else:
        runs = _guard(lambda: dg.preview_digests(catalog, people, settings, to, **options))
    _print_digest_runs(runs, settings, send, as_json, several=user is None and any(r.account for r in people))
    failed = [r for r in runs if r.error]
    if failed:
        fail(failed[0].error if len(runs) == 1 else f"{len(failed)} of {len(runs)} digests were not sent")


def _digest_history(catalog, people, as_json: bool) -> None:
    from paperscope.catalog import library as store

    rows = [r | {"username": p.name} for p in people for r in store.digest_history(catalog, p.id)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['sent_at']}  {r['username']}  {r['channel']}  {r['tag'] or '(library)'}  "
                      f"{r['papers']} papers → {r['recipient']}", highlight=False)


def _digest_feed(catalog, reader, tag: str | None, settings, revoke: bool, as_json: bool) -> None:
    from paperscope import digest as dg
    from paperscope.catalog import library as store

    if revoke:
        n = store.revoke_feed_token(catalog, reader.id, tag or "")
        console.print("feed URL revoked" if n else "that feed had no URL yet")
        return
    url = dg.feed_url(catalog, reader.id, tag, settings.base_url)
    print_json({"tag": tag, "feed": url}) if as_json else console.print(url, highlight=False, soft_wrap=True)


def _print_digest_runs(runs, settings, sent_mode: bool, as_json: bool, several: bool) -> None:
    """One reader (a laptop, or --user): the digest itself; a server's whole run: one part per reader."""
    from paperscope import digest as dg

    if as_json:
        parts = [_digest_json(r, settings, sent_mode) for r in runs]
        print_json({"digests": parts} if several else parts[0])
        return
    for run in runs:
        prefix = f"{run.reader.name}: " if several else ""
        if sent_mode:
            if run.error:
                if several:     # (one reader's error is the command's own, said once by fail())
                    err_console.print(f"{prefix}not sent: {run.error}", highlight=False)
            elif run.sent:
                console.print(f"{prefix}sent {len(run.digest.items)} papers to {run.to}", highlight=False)
            else:
                console.print(f"{prefix}nothing sent: {run.digest.message or 'nothing new for you'}", highlight=False)
            continue
        result = run.digest
        console.print(f"[bold]dry run[/] — {prefix}to {run.to or '(no recipient set)'} via "
                      f"{settings.host or '(no SMTP server set)'}:{settings.effective_port} ({settings.security})", highlight=False)
        console.print(f"window {result.window_start} → {result.window_end}: {result.new_papers} new papers", highlight=False)
        if not result.items:
            console.print(f"nothing would be sent: {result.message or 'nothing new for you'}", highlight=False)
            continue
        console.print(f"Subject: {dg.subject(result)}\n", highlight=False)
        console.print(dg.render_text(result, settings.base_url), highlight=False, markup=False)


def _digest_json(run, settings, sent_mode: bool) -> dict:
    from paperscope import digest as dg

    out = run.as_dict()
    if not sent_mode and run.digest is not None:
        out |= {"dry_run": True, "subject": dg.subject(run.digest), "smtp": settings.public() | {"to": run.to},
                "text": dg.render_text(run.digest, settings.base_url) if run.digest.items else None}
    return out
