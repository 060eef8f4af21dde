"""Resource limits on input, in one place: how large a source, an upload or a request body may be, how
long a search query may be, and how long and how much a URL fetch may take.

Each limit has a default, which the ``[limits]`` table of the config file
(``~/.config/paperscope/config.toml``, or ``$PAPERSCOPE_CONFIG``) overrides, which an environment
variable overrides in turn::

    [limits]                 # environment variable
    max_source_mb = 512      # PAPERSCOPE_MAX_SOURCE_MB    a file or page to ingest (decompressed)
    max_upload_mb = 64       # PAPERSCOPE_MAX_UPLOAD_MB    an upload to the web app (a multipart request)
    max_body_kb = 1024       # PAPERSCOPE_MAX_BODY_KB      any other request body (JSON, forms)
    max_query_chars = 2000   # PAPERSCOPE_MAX_QUERY_CHARS  a search query (CLI, web page, API)
    fetch_max_mb = 64        # PAPERSCOPE_FETCH_MAX_MB     a fetched URL's body
    fetch_connect_s = 10     # PAPERSCOPE_FETCH_CONNECT_S  connecting to a server
    fetch_read_s = 20        # PAPERSCOPE_FETCH_READ_S     waiting for the next bytes
    fetch_total_s = 120      # PAPERSCOPE_FETCH_TOTAL_S    a whole fetch, redirects and body included

Every refusal names the limit and the setting that changes it (``LimitExceeded``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MB = 1024 * 1024
KB = 1024


class LimitsError(ValueError):
    """A limit setting that cannot be read (the message names the variable or the file)."""


class LimitExceeded(ValueError):
    """An input over one of the limits. ``status`` is the HTTP status the web app answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Setting:
    key: str          # the key in the config file's [limits] table
    env: str          # the environment variable
    default: float
    unit: int = 1     # bytes per unit for sizes (MB, KB); 1 for counts and seconds
    minimum: float = 1


SETTINGS = {
    "max_source_bytes": Setting("max_source_mb", "PAPERSCOPE_MAX_SOURCE_MB", 512, MB),
    "max_upload_bytes": Setting("max_upload_mb", "PAPERSCOPE_MAX_UPLOAD_MB", 64, MB),
    "max_body_bytes": Setting("max_body_kb", "PAPERSCOPE_MAX_BODY_KB", 1024, KB),
    "max_query_chars": Setting("max_query_chars", "PAPERSCOPE_MAX_QUERY_CHARS", 2000),
    "fetch_max_bytes": Setting("fetch_max_mb", "PAPERSCOPE_FETCH_MAX_MB", 64, MB),
    "fetch_connect_s": Setting("fetch_connect_s", "PAPERSCOPE_FETCH_CONNECT_S", 10, minimum=0.01),
    "fetch_read_s": Setting("fetch_read_s", "PAPERSCOPE_FETCH_READ_S", 20, minimum=0.01),
    "fetch_total_s": Setting("fetch_total_s", "PAPERSCOPE_FETCH_TOTAL_S", 120, minimum=0.01),
}


@dataclass(frozen=True)
class Limits:
    max_source_bytes: int
    max_upload_bytes: int
    max_body_bytes: int
    max_query_chars: int
    fetch_max_bytes: int
    fetch_connect_s: float
    fetch_read_s: float
    fetch_total_s: float

    @property
    def request_head_bytes(self) -> int:
        """Room for a request line and headers: every parameter the API takes fits, percent-encoded (up
        to 12 bytes a character; a plan's interests are 20,000 characters), so that the app, not the
        HTTP server's bare "Invalid HTTP request", answers a request whose parameters are too long."""
        return max(MB, 16 * self.max_query_chars + 16 * KB)

    def check_query(self, query: str) -> None:
        """Refuse a search query longer than ``max_query_chars``."""
        if len(query) > self.max_query_chars:
            raise LimitExceeded(
                f"The query is {len(query):,} characters long; the limit is {self.max_query_chars:,} "
                f"({SETTINGS['max_query_chars'].env}). Shorten it, or search for its key words.")


def current() -> Limits:
    """The limits in force now (the config file is read again only when it or the environment changes)."""
    path = _config_path()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return _load(str(path), stamp, tuple(os.environ.get(s.env) for s in SETTINGS.values()))


def setting_name(field: str) -> str:
    """The environment variable that sets ``field`` (for messages)."""
    return SETTINGS[field].env


def size_text(n: int) -> str:
    """A byte count as people read it: 25 MB, 1.5 MB, 800 KB, 12 bytes."""
    if n >= MB:
        return f"{n / MB:.1f}".removesuffix(".0") + " MB"
    if n >= KB:
        return f"{n / KB:.0f} KB"
    return f"{n} bytes"


def _config_path() -> Path:
    from paperscope.digest import config_path  # the file the SMTP settings come from

    return config_path()


@lru_cache(maxsize=8)
def _load(path: str, stamp: int | None, env_values: tuple[str | None, ...]) -> Limits:
    table = _config_table(Path(path)) if stamp is not None else {}
    values = {}
    for (field, setting), env_value in zip(SETTINGS.items(), env_values):
        raw, where = setting.default, None
        if setting.key in table:
            raw, where = table[setting.key], f"{setting.key} in the [limits] table of {path}"
        if env_value not in (None, ""):
            raw, where = env_value, setting.env
        values[field] = _value(setting, raw, where)
    return Limits(**values)


def _config_table(path: Path) -> dict:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LimitsError(f"cannot read the config file {path}: {exc}") from None
    table = data.get("limits") or {}
    if not isinstance(table, dict):
        raise LimitsError(f"{path}: [limits] must be a table")
    unknown = sorted(set(table) - {s.key for s in SETTINGS.values()})
    if unknown:
        raise LimitsError(f"{path}: unknown setting(s) in [limits]: {', '.join(unknown)} "
                          f"(known: {', '.join(s.key for s in SETTINGS.values())})")
    return table


def _value(setting: Setting, raw: object, where: str | None) -> float | int:
    try:
        number = float(raw) if not isinstance(raw, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not number >= setting.minimum or number == float("inf"):
        raise LimitsError(f"{where}: {raw!r} is not a number of at least {setting.minimum:g}")
    if setting.key.endswith("_s"):
        return number
    return int(number * setting.unit)
