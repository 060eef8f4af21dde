"""The Typer applications every command module registers on.

Command modules live beside this file (``cli/*.py``) and are imported by ``cli/__init__.py``;
each adds its commands to ``app`` or to one of the sub-apps below. Heavy libraries (ONNX Runtime,
tantivy, FastAPI) are imported inside the command functions so that ``paperscope --help`` stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="paperscope",
    help="Search, explore and plan machine-learning conferences and paper feeds, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: speed and memory, reported against a baseline run in the same process.", no_args_is_help=True)
eval_app = typer.Typer(help="Ranking quality on the labelled benchmarks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(eval_app, name="eval")

console = Console()
err_console = Console(stderr=True)

DbOption = typer.Option(None, "--db", envvar="PAPERSCOPE_DB", help="Catalogue file (SQLite) or database URL.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def default_db_path() -> Path:
    """The catalogue used when neither --db nor PAPERSCOPE_DB is given: the user's data dir."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("paperscope")) / "catalogue.sqlite"


def resolve_db(db: str | None) -> str:
    return db or os.environ.get("PAPERSCOPE_DB") or str(default_db_path())


def print_json(data: Any) -> None:
    """JSON on stdout, unmangled by Rich (no wrapping, no markup)."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 1) -> None:
    """A clear one-line error for the user, never a stack trace."""
    from rich.markup import escape

    # the message is text, not markup ("[limits]" stays), and one line however long (logs, grep)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)
