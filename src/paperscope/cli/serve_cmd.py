"""`paperscope serve`: the web app and REST API over a catalogue."""

from __future__ import annotations

from typing import Optional

import typer

from paperscope.cli.app import DbOption, app, err_console, fail, resolve_db


@app.command()
def serve(
    db: Optional[str] = DbOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to serve your network)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each opens the catalogue read-mostly)."),
    accounts: Optional[bool] = typer.Option(None, "--accounts/--no-accounts", envvar="PAPERSCOPE_ACCOUNTS",
                                            help="Server mode: sign-in and per-user data (default: on for PostgreSQL)."),
    public: bool = typer.Option(False, "--public", envvar="PAPERSCOPE_PUBLIC",
                                help="Server mode: visitors may read the catalogue without signing in."),
    forwarded_allow_ips: str = typer.Option("127.0.0.1", envvar="FORWARDED_ALLOW_IPS",
                                            help="Reverse proxies trusted for X-Forwarded-Proto/For (https cookies)."),
) -> None:
    """Serve the catalogue on the web: search, papers, authors, sessions, and the JSON API (/api/docs)."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from paperscope.web.app import create_app

    location = resolve_db(db)
    # called as a function (by `paperscope demo`), options keep their declared defaults
    accounts = accounts if isinstance(accounts, bool) else None
    public = public is True
    forwarded_allow_ips = forwarded_allow_ips if isinstance(forwarded_allow_ips, str) else "127.0.0.1"
    shown = _without_password(location)   # what goes to the terminal or the journal
    try:
        web_app = create_app(location, accounts=accounts, public=public)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the catalogue {shown}: {str(exc).splitlines()[0]}")
    if web_app.state.accounts is not None:
        who = "anyone may read the catalogue" if public else "every page needs signing in"
        err_console.print(f"Server mode: accounts on ({who}).", highlight=False)
        if not web_app.state.accounts.user_count():
            err_console.print("[yellow]No accounts yet: make an administrator with "
                              f"`paperscope users add NAME --admin --db {shown}`[/]", highlight=False)
    err_console.print(f"Opening the keyword index of {shown} (built now if missing or stale)…", highlight=False)
    try:
        web_app.state.searcher.warm_up()
    except Exception as exc:  # the pages without search still work; search explains its problem
        err_console.print(f"[yellow]search is unavailable: {exc}[/]", highlight=False)
    web_app.state.venues.get(web_app.state.catalog)  # count venues now, not on the first visitor's time
    from paperscope.limits import current

    head_bytes = current().request_head_bytes  # the longest parameters the app takes reach it
    err_console.print(f"paperscope on http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs; Ctrl+C stops)",
                      highlight=False)
    if workers > 1:
        import os

        os.environ["PAPERSCOPE_DB"] = location  # each worker process builds its app from it
        os.environ["PAPERSCOPE_ACCOUNTS"] = "1" if web_app.state.accounts is not None else "0"
        os.environ["PAPERSCOPE_PUBLIC"] = "1" if public else "0"
        uvicorn.run("paperscope.web.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", access_log=False, forwarded_allow_ips=forwarded_allow_ips,
                    h11_max_incomplete_event_size=head_bytes)
        return
    uvicorn.run(web_app, host=host, port=port, log_level="warning", access_log=False,
                forwarded_allow_ips=forwarded_allow_ips, h11_max_incomplete_event_size=head_bytes)


def _without_password(location: str) -> str:
    if "://" not in location:
        return location
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return location.split("@")[-1]
