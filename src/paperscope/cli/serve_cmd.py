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
) -> None:
    """Serve the catalogue on the web: search, papers, authors, sessions, and the JSON API (/api/docs)."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from paperscope.web.app import create_app

    location = resolve_db(db)
    try:
        web_app = create_app(location)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the catalogue {location}: {str(exc).splitlines()[0]}")
    err_console.print(f"Opening the keyword index of {location} (built now if missing or stale)…", highlight=False)
    try:
        web_app.state.searcher.warm_up()
    except Exception as exc:  # the pages without search still work; search explains its problem
        err_console.print(f"[yellow]search is unavailable: {exc}[/]", highlight=False)
    web_app.state.venues.get(web_app.state.catalog)  # count venues now, not on the first visitor's time
    err_console.print(f"paperscope on http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs; Ctrl+C stops)",
                      highlight=False)
    if workers > 1:
        import os

        os.environ["PAPERSCOPE_DB"] = location  # each worker process builds its app from it
        uvicorn.run("paperscope.web.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", access_log=False)
        return
    uvicorn.run(web_app, host=host, port=port, log_level="warning", access_log=False)
