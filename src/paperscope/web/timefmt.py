"""Slots in the reader's time zone.

The catalogue keeps times in UTC (ISO-8601 text). Pages show them in the zone the reader asked for
(``?tz=``), else the one their browser reported (the ``tz`` cookie set by ``app.js``), else UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_NAME = "UTC"


@dataclass(frozen=True)
class ViewerZone:
    name: str                 # the IANA name used
    source: str               # "param", "cookie" or "default"
    problem: str | None = None  # why a requested zone was not used

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.name)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _valid(name: str | None) -> bool:
    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return False
    try:
        _zone(name)
        return True
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False


def resolve_zone(param: str | None, cookie: str | None) -> ViewerZone:
    """The zone to show times in, and why; an unknown zone is reported, never an error."""
    param = (param or "").strip()
    cookie = (cookie or "").strip()
    if param:
        if _valid(param):
            return ViewerZone(param, "param")
        fallback = cookie if _valid(cookie) else UTC_NAME
        return ViewerZone(fallback, "cookie" if fallback == cookie else "default",
                          problem=f"Unknown time zone {param!r}; times are shown in {fallback}.")
    if _valid(cookie):
        return ViewerZone(cookie, "cookie")
    return ViewerZone(UTC_NAME, "default")


def parse_utc(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def format_slot(starts_at: str | None, ends_at: str | None, zone: ViewerZone) -> str | None:
    """``Thu 21 Jul 2022, 12:30–12:35 PDT`` in the viewer's zone (None when the slot has no time)."""
    start = parse_utc(starts_at)
    if start is None:
        return None
    tz = zone.zone
    local = start.astimezone(tz)
    text = f"{local:%a %d %b %Y, %H:%M}"
    end = parse_utc(ends_at)
    if end is not None:
        local_end = end.astimezone(tz)
        text += f"–{local_end:%H:%M}" if local_end.date() == local.date() else f" – {local_end:%a %d %b, %H:%M}"
    return f"{text} {local.tzname() or zone.name}"


def local_iso(starts_at: str | None, zone: ViewerZone) -> str | None:
    start = parse_utc(starts_at)
    return start.astimezone(zone.zone).isoformat() if start else None


# A short list for the zone picker; any IANA name works in ?tz=.
COMMON_ZONES = (
    "UTC", "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York",
    "America/Sao_Paulo", "Europe/London", "Europe/Paris", "Europe/Berlin", "Africa/Kigali",
    "Asia/Jerusalem", "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Seoul",
    "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)
