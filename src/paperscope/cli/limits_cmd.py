"""``paperscope limits``: the resource limits in force, and where each is set (see ``paperscope.limits``).

Every command first reads the limits, so a setting that cannot be read stops it with one line naming
the variable or the config file, rather than failing later in the middle of an ingest.
"""

from __future__ import annotations

from paperscope.cli.app import JsonOption, app, console, fail, print_json


@app.callback()
def check_limits() -> None:
    """Search, explore and plan machine-learning conferences and paper feeds, offline."""
    from paperscope.limits import LimitsError, current

    try:
        current()
    except LimitsError as exc:
        fail(str(exc))


@app.command("limits")
def limits_command(json_out: bool = JsonOption) -> None:
    """The limits on input in force: sizes of sources, uploads and request bodies, query length, URL fetches."""
    from rich.table import Table

    from paperscope.limits import SETTINGS, current, size_text

    values = current()
    rows = []
    for field, setting in SETTINGS.items():
        value = getattr(values, field)
        shown = size_text(value) if field.endswith("_bytes") else (f"{value:g} s" if field.endswith("_s") else f"{value:,}")
        rows.append({"limit": field, "value": value, "shown": shown, "env": setting.env, "config": setting.key})
    if json_out:
        print_json(rows)
        return
    table = Table("limit", "value", "environment variable", "config file [limits]")
    for row in rows:
        table.add_row(row["limit"], row["shown"], row["env"], row["config"])
    console.print(table)
