"""Time slots as conference pages print them, read into UTC.

A page prints wall-clock times with a zone abbreviation and (often) no year::

    Thu 21 July 12:30 - 12:35 PDT      ->  2022-07-21 19:30 - 19:35 UTC, America/Los_Angeles

Abbreviations are mapped to an IANA zone (``TZ_ABBREVIATIONS``) and converted with ``zoneinfo``,
never with a fixed offset, so the zone's own DST rules decide the offset of each date. Some
abbreviations are ambiguous; the table takes the reading most common on ML conference pages:
``IST`` is India, ``CST`` is US Central, ``BST`` is British Summer Time. ``AoE`` (Anywhere on
Earth) is UTC-12.

Times are read literally: ``1:00 - 1:15`` without a.m./p.m. is 01:00-01:15 on a 24-hour clock.
``a.m.``/``p.m.``/``am``/``pm``, ``noon`` and ``midnight`` are understood, and a range whose end is
before its start (``23:30 - 0:30``) ends on the next day.

The conference planner reuses these functions; importers turn ``SlotError`` into a ``Problem``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Abbreviation (upper case) -> IANA zone.
TZ_ABBREVIATIONS: dict[str, str] = {
    # Universal
    "UTC": "UTC", "GMT": "UTC", "Z": "UTC", "ZULU": "UTC",
    "AOE": "Etc/GMT+12",  # Anywhere on Earth, UTC-12 (POSIX sign: Etc/GMT+12 is UTC-12)
    # North America
    "PT": "America/Los_Angeles", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "MT": "America/Denver", "MST": "America/Denver", "MDT": "America/Denver",
    "CT": "America/Chicago", "CST": "America/Chicago", "CDT": "America/Chicago",
    "ET": "America/New_York", "EST": "America/New_York", "EDT": "America/New_York",
    "AT": "America/Halifax", "AST": "America/Halifax", "ADT": "America/Halifax",
    "NST": "America/St_Johns", "NDT": "America/St_Johns",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage",
    "HST": "Pacific/Honolulu",
    # South America
    "BRT": "America/Sao_Paulo", "ART": "America/Argentina/Buenos_Aires",
    # Europe
    "WET": "Europe/Lisbon", "WEST": "Europe/Lisbon",
    "BST": "Europe/London",
    "CET": "Europe/Berlin", "CEST": "Europe/Berlin", "MEZ": "Europe/Berlin", "MESZ": "Europe/Berlin",
    "EET": "Europe/Athens", "EEST": "Europe/Athens",
    "MSK": "Europe/Moscow",
    # Africa and the Middle East
    "WAT": "Africa/Lagos", "CAT": "Africa/Maputo", "EAT": "Africa/Nairobi", "SAST": "Africa/Johannesburg",
    "IDT": "Asia/Jerusalem", "GST": "Asia/Dubai",
    # Asia and the Pacific
    "IST": "Asia/Kolkata", "PKT": "Asia/Karachi",
    "ICT": "Asia/Bangkok", "WIB": "Asia/Jakarta",
    "SGT": "Asia/Singapore", "HKT": "Asia/Hong_Kong", "PHT": "Asia/Manila",
    "JST": "Asia/Tokyo", "KST": "Asia/Seoul",
    "AWST": "Australia/Perth",
    "ACST": "Australia/Adelaide", "ACDT": "Australia/Adelaide",
    "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
    "NZST": "Pacific/Auckland", "NZDT": "Pacific/Auckland",
}

WEEKDAYS: dict[str, int] = {
    "mon": 0, "monday": 0,
    "tue": 1, "tues": 1, "tuesday": 1,
    "wed": 2, "weds": 2, "wednesday": 2,
    "thu": 3, "thur": 3, "thurs": 3, "thursday": 3,
    "fri": 4, "friday": 4,
    "sat": 5, "saturday": 5,
    "sun": 6, "sunday": 6,
}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

MONTHS: dict[str, int] = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
    "dec": 12, "december": 12,
}

_DATE = (
    r"(?:(?P<wd>[A-Za-z]{3,9})\.?,?\s+)?"
    r"(?:(?P<d1>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?P<m1>[A-Za-z]{3,9})\.?"
    r"|(?P<m2>[A-Za-z]{3,9})\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?)"
    r"(?:,?\s+(?P<y>(?:19|20)\d\d))?"
)
# Not followed by a letter: the "Am" of "America/Sao_Paulo" is the zone, not "a.m.".
_MERIDIEM = r"(?:[AaPp]\.?\s?[Mm]\.?)(?![A-Za-z])"
_TIME = rf"(?:\d{{1,2}}(?:[:.hH]\d{{2}})?(?:\s*{_MERIDIEM})?|[Nn]oon|[Mm]idnight)"
_RANGE = rf"(?P<t1>{_TIME})\s*(?:-|–|—|to)\s*(?P<t2>{_TIME})"
_TZ = r"(?P<tz>[A-Za-z][A-Za-z_/]*(?:[+-]\d{1,2}(?::?\d{2})?)?)"
SLOT_RE = re.compile(rf"^\s*{_DATE}\s*(?:,|@|at)?\s+{_RANGE}(?:\s*\(?{_TZ}\)?)?\s*$")

_CLOCK_RE = re.compile(r"^(?P<h>\d{1,2})(?:[:.hH](?P<m>\d{2}))?\s*(?P<mer>[AaPp])?(?:\.?\s?[Mm]\.?)?$")
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?$", re.IGNORECASE)


class SlotError(ValueError):
    """A slot that cannot be turned into times; the message says why, for a ``Problem``."""


class Slot(NamedTuple):
    start: datetime     # timezone-aware, UTC
    end: datetime       # timezone-aware, UTC
    tz_name: str        # IANA zone the page's wall-clock times are in


@dataclass
class SlotParts:
    """A slot split into what the page printed, before any conversion."""

    weekday: int | None          # 0 = Monday, as ``date.weekday()``
    day: int
    month: int
    year: int | None
    start: tuple[int, int]       # (hour, minute), 24-hour clock
    end: tuple[int, int]
    tz: str | None               # the zone token as printed ("PDT", "UTC+2", "Europe/Berlin")
    text: str

    @property
    def date_text(self) -> str:
        """The date part as a person would quote it: "Thu 21 July"."""
        m = SLOT_RE.match(self.text)
        if not m:
            return self.text
        return self.text[m.start(): m.start("t1")].strip().rstrip(",@").strip().removesuffix(" at")


def looks_like_slot(line: str) -> bool:
    """Whether a line is a printed time slot (valid date and clock words), whatever its zone."""
    try:
        split_slot(line)
    except SlotError:
        return False
    return True


def split_slot(text: str) -> SlotParts:
    """Split a printed slot into its parts. Raises ``SlotError`` when it is not a slot."""
    if len(text) > 200:
        raise SlotError("too long to be a time slot")
    m = SLOT_RE.match(text)
    if not m:
        raise SlotError(f"not a time slot: {text.strip()[:80]!r}")
    weekday = None
    if m.group("wd"):
        weekday = WEEKDAYS.get(m.group("wd").lower())
        if weekday is None:
            raise SlotError(f"unknown weekday {m.group('wd')!r}")
    month_word = m.group("m1") or m.group("m2")
    month = MONTHS.get(month_word.lower())
    if month is None:
        raise SlotError(f"unknown month {month_word!r}")
    day = int(m.group("d1") or m.group("d2"))
    if not 1 <= day <= 31:
        raise SlotError(f"day {day} out of range")
    year = int(m.group("y")) if m.group("y") else None
    start, end = parse_time_range(m.group("t1"), m.group("t2"))
    return SlotParts(weekday=weekday, day=day, month=month, year=year, start=start, end=end,
                     tz=m.group("tz"), text=text.strip())


def parse_clock(text: str) -> tuple[int, int, str | None]:
    """(hour, minute, "am"/"pm"/None) of a printed clock time; hour as printed."""
    t = text.strip().lower()
    if t == "noon":
        return 12, 0, "pm"
    if t == "midnight":
        return 12, 0, "am"
    m = _CLOCK_RE.match(t)
    if not m:
        raise SlotError(f"not a clock time: {text!r}")
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    meridiem = {"a": "am", "p": "pm"}.get(m.group("mer") or "")
    if minute > 59:
        raise SlotError(f"minute out of range in {text!r}")
    if meridiem and not 1 <= hour <= 12:
        raise SlotError(f"hour out of range for a 12-hour clock in {text!r}")
    if not meridiem and (hour > 24 or hour == 24 and minute):
        raise SlotError(f"hour out of range in {text!r}")
    return hour, minute, meridiem


def _has_minutes(text: str) -> bool:
    return bool(re.search(r"[:.hH]\d{2}", text)) or text.strip().lower() in ("noon", "midnight")


def _to_24h(hour: int, meridiem: str | None) -> int:
    if meridiem == "am":
        return hour % 12
    if meridiem == "pm":
        return hour % 12 + 12
    return hour


def parse_time_range(start_text: str, end_text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Start and end (hour, minute) on a 24-hour clock.

    Without a.m./p.m. the times are literal 24-hour times. When only one end says a.m. or p.m.,
    the other takes the same one unless that would put the start after the end ("11:00 - 1:00 pm"
    is 11:00-13:00). The end may be before the start: the range then crosses midnight.
    """
    h1, m1, mer1 = parse_clock(start_text)
    h2, m2, mer2 = parse_clock(end_text)
    if mer1 is None and mer2 is None and not (_has_minutes(start_text) and _has_minutes(end_text)):
        raise SlotError(f"bare hours without minutes or a.m./p.m. are not clock times: {start_text!r} - {end_text!r}")
    if mer1 is None and mer2 is not None:
        if h1 > 12:
            mer1 = None
        else:
            mer1 = mer2
            if (_to_24h(h1, mer1), m1) > (_to_24h(h2, mer2), m2):
                mer1 = "am" if mer2 == "pm" else "pm"
    elif mer2 is None and mer1 is not None:
        if h2 > 12:
            mer2 = None
        else:
            mer2 = mer1
            if (_to_24h(h2, mer2), m2) < (_to_24h(h1, mer1), m1):
                mer2 = "am" if mer1 == "pm" else "pm"
    start = (_to_24h(h1, mer1) % 24, m1)
    end = (_to_24h(h2, mer2), m2)
    if end == (24, 0):
        end = (0, 0)
    return start, end


def zone_for(token: str) -> str:
    """IANA zone name for a printed zone token: an abbreviation, ``UTC+2``, or an IANA name.

    Raises ``SlotError`` for an unknown token.
    """
    t = token.strip().strip("()")
    if t.upper() in TZ_ABBREVIATIONS:
        return TZ_ABBREVIATIONS[t.upper()]
    m = _OFFSET_RE.match(t)
    if m:
        hours, minutes = int(m.group("h")), int(m.group("m") or 0)
        if minutes:
            raise SlotError(f"time-zone offset {t!r} has no IANA zone (only whole hours are supported)")
        # Clocks run from UTC-12 (Baker Island) to UTC+14 (Kiribati): there is no Etc/GMT+13 or +14.
        if hours > (14 if m.group("sign") == "+" else 12):
            raise SlotError(f"time-zone offset {t!r} is not one any place uses (UTC-12 to UTC+14)")
        if hours == 0:
            return "UTC"
        # POSIX-style Etc names have the sign inverted: UTC+2 is Etc/GMT-2.
        return f"Etc/GMT{'-' if m.group('sign') == '+' else '+'}{hours}"
    if "/" in t:
        try:
            ZoneInfo(t)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America/Indiana")
            raise SlotError(f"unknown time zone {t!r}") from None
        return t
    raise SlotError(f"unknown time-zone abbreviation {t!r}")


def to_utc(day: date, hour: int, minute: int, tz_name: str) -> datetime:
    """A wall-clock time in a zone, as an aware UTC datetime (the zone's DST rules apply).

    A time that does not exist (skipped at a spring-forward change) is read with the offset in
    force before the change; an ambiguous one (repeated at a fall-back change) as the first one.
    """
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz_name))
    return local.astimezone(timezone.utc)


def parse_slot(text: str, year: int | None = None, *, default_tz: str | None = None) -> Slot:
    """(start, end, IANA zone) of a printed slot, the times as aware UTC datetimes.

    ``year`` is used when the slot prints none (a year printed in the slot wins). ``default_tz``
    (an abbreviation or IANA name) is used when the slot prints no zone. Raises ``SlotError``.
    """
    parts = split_slot(text)
    return slot_from_parts(parts, year, default_tz=default_tz)


def slot_from_parts(parts: SlotParts, year: int | None = None, *, default_tz: str | None = None) -> Slot:
    year = parts.year or year
    if year is None:
        raise SlotError(f"{parts.date_text!r} has no year and none was given")
    token = parts.tz or default_tz
    if not token:
        raise SlotError(f"the slot {parts.text!r} gives no time zone")
    tz_name = zone_for(token)
    try:
        day = date(year, parts.month, parts.day)
    except ValueError:
        raise SlotError(f"{parts.date_text!r} is not a date in {year}") from None
    # An end before the start crosses midnight; "0:00 - 24:00" (or "midnight - midnight") is the whole day.
    crosses = parts.end < parts.start or parts.end == parts.start == (0, 0)
    try:
        start = to_utc(day, *parts.start, tz_name)
        end = to_utc(day + timedelta(days=1) if crosses else day, *parts.end, tz_name)
    except OverflowError:  # --year 9999 and a slot past midnight, or year 1 east of Greenwich
        raise SlotError(f"{parts.date_text!r} in {year} is outside the range of dates") from None
    return Slot(start, end, tz_name)


def abbreviation_mismatch(token: str | None, slot: Slot) -> str | None:
    """A warning when a daylight/standard abbreviation does not fit the date ("PDT" in January).

    The times are still read as wall-clock times of the zone; this only tells the user.
    """
    if not token or token.upper() not in TZ_ABBREVIATIONS:
        return None
    zone = ZoneInfo(slot.tz_name)
    actual = slot.start.astimezone(zone).tzname()
    printed = token.upper()
    if actual and actual != printed and TZ_ABBREVIATIONS.get(actual) == slot.tz_name:
        return (f"{token!r} is printed for a date when {slot.tz_name} is on {actual}; "
                f"the times were read as wall-clock times in {slot.tz_name}")
    return None


def weekday_mismatch(parts: SlotParts, year: int) -> str | None:
    """A warning when the printed weekday does not fit the date in ``year`` ("Thu 21 July" in 2023)."""
    if parts.weekday is None or parts.year is not None:
        return None
    try:
        actual = date(year, parts.month, parts.day).weekday()
    except ValueError:
        return None
    if actual == parts.weekday:
        return None
    return (f"{parts.date_text!r} is not a {WEEKDAY_NAMES[parts.weekday]} in {year} "
            f"(it is a {WEEKDAY_NAMES[actual]}); the printed day and month were used with year {year}")


def weekday_number(weekday: int | str) -> int:
    if isinstance(weekday, int):
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday} out of range 0..6")
        return weekday
    number = WEEKDAYS.get(weekday.strip().rstrip(".,").lower())
    if number is None:
        raise ValueError(f"unknown weekday {weekday!r}")
    return number


def month_number(month: int | str) -> int:
    if isinstance(month, int):
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} out of range 1..12")
        return month
    number = MONTHS.get(month.strip().rstrip(".,").lower())
    if number is None:
        raise ValueError(f"unknown month {month!r}")
    return number


def year_candidates(weekday: int | str, day: int, month: int | str, *, today: date | None = None,
                    span: int = 15) -> list[int]:
    """Years from next year back ``span`` years in which the date falls on the weekday, newest first."""
    today = today or date.today()
    wd, mo = weekday_number(weekday), month_number(month)
    found = []
    for year in range(today.year + 1, today.year - span - 1, -1):
        try:
            if date(year, mo, day).weekday() == wd:
                found.append(year)
        except ValueError:  # 29 February, 31 April
            continue
    return found


def infer_year(weekday: int | str, day: int, month: int | str, *, today: date | None = None,
               span: int = 15) -> int | None:
    """The year a page without one means by "Thu 21 July": the most recent year, not in the
    future, in which 21 July is a Thursday (searching ``span`` years back). When no such past
    year exists, the nearest future one (next year at most); ``None`` when the weekday never fits.
    """
    today = today or date.today()
    candidates = year_candidates(weekday, day, month, today=today, span=span)
    mo = month_number(month)
    past = [y for y in candidates if date(y, mo, day) <= today]
    if past:
        return past[0]
    return candidates[-1] if candidates else None

