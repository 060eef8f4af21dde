"""`paperscope dev-postgres start|stop|status|url`: a local PostgreSQL with pgvector for development."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from paperscope.cli.app import JsonOption, app, console, err_console, fail, print_json

dev_postgres_app = typer.Typer(
    help="A local PostgreSQL with pgvector for development and tests (127.0.0.1, a free port, not for deployment).",
    no_args_is_help=True,
)
app.add_typer(dev_postgres_app, name="dev-postgres")

DirOption = typer.Option(None, "--dir", help="Folder of the cluster (default: /var/lib/paperscope/dev-postgres as root, "
                                            "else your data folder).")


def _cluster(folder: Optional[Path]):
    from paperscope.devpg import DevPostgres, default_root

    return DevPostgres(folder or default_root())


@dev_postgres_app.command("start")
def start(
    folder: Optional[Path] = DirOption,
    port: Optional[int] = typer.Option(None, help="Port (default: the last one if free, else a free one)."),
    as_json: bool = JsonOption,
) -> None:
    """Initialise (first time) and start the cluster; print the database URL for --db / PAPERSCOPE_DB."""
    from paperscope.devpg import DevPostgresError

    cluster = _cluster(folder)
    try:
        url = cluster.start(port=port)
    except DevPostgresError as exc:
        fail(str(exc))
    if as_json:
        print_json(cluster.status())
        return
    err_console.print(f"PostgreSQL with pgvector runs in {cluster.root} (stop: paperscope dev-postgres stop)", highlight=False)
    typer.echo(url)


@dev_postgres_app.command("stop")
def stop(folder: Optional[Path] = DirOption) -> None:
    """Stop the cluster (its data stays for the next start)."""
    cluster = _cluster(folder)
    if cluster.stop():
        console.print(f"stopped the PostgreSQL in {cluster.root}", highlight=False)
    else:
        console.print(f"no PostgreSQL was running in {cluster.root}", highlight=False)


@dev_postgres_app.command("status")
def status(folder: Optional[Path] = DirOption, as_json: bool = JsonOption) -> None:
    """Whether the cluster runs, where, and its URLs."""
    info = _cluster(folder).status()
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:15} {value}")
    if not info["running"]:
        raise typer.Exit(3)


@dev_postgres_app.command("url")
def url(folder: Optional[Path] = DirOption,
        superuser: bool = typer.Option(False, "--superuser", help="The postgres superuser's URL instead of the app's.")) -> None:
    """Print the database URL (for `export PAPERSCOPE_DB=$(paperscope dev-postgres url)`)."""
    from paperscope.devpg import DevPostgresError

    cluster = _cluster(folder)
    try:
        typer.echo(cluster.url("postgres" if superuser else "paperscope", superuser=superuser))
    except DevPostgresError as exc:
        fail(str(exc))
