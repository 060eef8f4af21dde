"""Printed time slots -> UTC: zone abbreviations through IANA zones, DST edges, midnight, year inference."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from paperscope.ingest.slots import (
    TZ_ABBREVIATIONS,
    SlotError,
    abbreviation_mismatch,
    infer_year,
    looks_like_slot,
    parse_clock,
    parse_slot,
    parse_time_range,
    split_slot,
    weekday_mismatch,
    year_candidates,
    zone_for,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_icml_slot_in_pdt_is_seven_hours_behind_utc():
    start, end, tz = parse_slot("Thu 21 July 12:30 - 12:35 PDT", 2022)
    assert (start, end, tz) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 19, 35), "America/Los_Angeles")
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)


def test_times_without_am_pm_are_read_literally_on_a_24_hour_clock():
    # The ICLR 2022 oral page prints "1:00 - 1:15 PDT": 01:00 in Los Angeles, 08:00 UTC.
    start, end, _ = parse_slot("Tue 26 April 1:00 - 1:15 PDT", 2022)
    assert (start, end) == (utc(2022, 4, 26, 8, 0), utc(2022, 4, 26, 8, 15))
    start, end, _ = parse_slot("Thu 21 July 13:05 - 13:25 PDT", 2022)
    assert (start, end) == (utc(2022, 7, 21, 20, 5), utc(2022, 7, 21, 20, 25))


def test_pacific_zone_follows_dst_pst_in_january_pdt_in_july():
    winter = parse_slot("Mon 15 January 9:00 - 10:00 PST", 2024)
    summer = parse_slot("Mon 15 July 9:00 - 10:00 PDT", 2024)
    assert winter.start == utc(2024, 1, 15, 17, 0)   # UTC-8
    assert summer.start == utc(2024, 7, 15, 16, 0)   # UTC-7
    assert winter.tz_name == summer.tz_name == "America/Los_Angeles"


def test_daylight_abbreviation_on_a_winter_date_is_read_as_zone_wall_time_and_reported():
    slot = parse_slot("Mon 15 January 9:00 - 10:00 PDT", 2024)
    assert slot.start == utc(2024, 1, 15, 17, 0)  # the zone's rules, never a fixed -7 offset
    warning = abbreviation_mismatch("PDT", slot)
    assert warning and "PST" in warning
    assert abbreviation_mismatch("PST", slot) is None


def test_europe_berlin_around_the_last_sunday_of_march():
    # 2024: clocks go from 02:00 CET to 03:00 CEST on Sunday 31 March.
    before = parse_slot("Sat 30 March 10:00 - 11:00 CET", 2024)
    after = parse_slot("Sun 31 March 10:00 - 11:00 CEST", 2024)
    assert before.tz_name == after.tz_name == "Europe/Berlin"
    assert before.start == utc(2024, 3, 30, 9, 0)    # UTC+1
    assert after.start == utc(2024, 3, 31, 8, 0)     # UTC+2
    # A range across the change lasts one hour of real time, not two.
    across = parse_slot("Sun 31 March 1:30 - 3:30 CET", 2024)
    assert across.start == utc(2024, 3, 31, 0, 30)
    assert across.end == utc(2024, 3, 31, 1, 30)
    assert across.end - across.start == timedelta(hours=1)


def test_fall_back_in_new_york():
    # 3 November 2024: EDT (UTC-4) until 02:00, then EST (UTC-5).
    assert parse_slot("Sat 2 November 9:00 - 10:00 EDT", 2024).start == utc(2024, 11, 2, 13, 0)
    assert parse_slot("Mon 4 November 9:00 - 10:00 EST", 2024).start == utc(2024, 11, 4, 14, 0)


@pytest.mark.parametrize("abbr, zone", [
    ("PDT", "America/Los_Angeles"), ("PST", "America/Los_Angeles"), ("EDT", "America/New_York"),
    ("EST", "America/New_York"), ("CEST", "Europe/Berlin"), ("CET", "Europe/Berlin"), ("BST", "Europe/London"),
    ("UTC", "UTC"), ("GMT", "UTC"), ("JST", "Asia/Tokyo"), ("IST", "Asia/Kolkata"), ("AEST", "Australia/Sydney"),
    ("KST", "Asia/Seoul"), ("AoE", "Etc/GMT+12"),
])
def test_abbreviations_map_to_iana_zones(abbr, zone):
    assert zone_for(abbr) == zone
    assert zone_for(abbr.lower()) == zone


def test_every_abbreviation_in_the_table_is_a_real_zone():
    from zoneinfo import ZoneInfo

    for zone in set(TZ_ABBREVIATIONS.values()):
        ZoneInfo(zone)


@pytest.mark.parametrize("text, expected", [
    ("Wed 20 July 10:00 - 11:00 JST", utc(2022, 7, 20, 1, 0)),
    ("Wed 20 July 10:00 - 11:00 IST", utc(2022, 7, 20, 4, 30)),
    ("Wed 20 July 10:00 - 11:00 BST", utc(2022, 7, 20, 9, 0)),
    ("Wed 20 July 10:00 - 11:00 UTC", utc(2022, 7, 20, 10, 0)),
    ("Wed 20 July 10:00 - 11:00 GMT", utc(2022, 7, 20, 10, 0)),
    ("Wed 20 July 10:00 - 11:00 UTC+2", utc(2022, 7, 20, 8, 0)),
    ("Wed 20 July 10:00 - 11:00 Europe/Paris", utc(2022, 7, 20, 8, 0)),
    ("Wed 20 July 10:00 - 11:00 (EDT)", utc(2022, 7, 20, 14, 0)),
])
def test_other_zones(text, expected):
    assert parse_slot(text, 2022).start == expected


def test_a_zone_starting_like_am_or_pm_is_the_zone_not_a_meridiem():
    # Found by the property tests: "13:00 America/..." was read as "13:00 Am" + zone "erica/...".
    assert parse_slot("Wed 20 July 12:00 - 13:00 America/Sao_Paulo", 2022) == (
        utc(2022, 7, 20, 15, 0), utc(2022, 7, 20, 16, 0), "America/Sao_Paulo")
    assert parse_slot("Wed 20 July 0:00 - 00:01 America/New_York", 2022).end == utc(2022, 7, 20, 4, 1)
    assert parse_slot("Wed 20 July 11:00 am - 1:00 pm America/New_York", 2022).start == utc(2022, 7, 20, 15, 0)


def test_a_year_at_the_ends_of_the_calendar_is_a_slot_error_not_a_crash():
    # Found by the property tests: `ingest --year 9999` stopped on OverflowError.
    with pytest.raises(SlotError, match="outside the range of dates"):
        parse_slot("Dec 31 23:00 - 1:00 UTC", 9999)
    with pytest.raises(SlotError, match="outside the range of dates"):
        parse_slot("Jan 1 0:00 - 1:00 UTC+5", 1)


def test_offsets_no_clock_uses_and_folders_of_zones_are_slot_errors():
    # Found by `paperscope bench fuzz` (slots): "UTC-14" asked zoneinfo for Etc/GMT+14, which does
    # not exist, and "America/Indiana" is a folder of zones; both raised instead of a SlotError.
    with pytest.raises(SlotError, match="UTC-12 to UTC\\+14"):
        parse_slot("Jul 6 2-noonUTC-14", 2022)
    with pytest.raises(SlotError, match="unknown time zone 'America/Indiana'"):
        parse_slot("Wed 20 July 10:00 - 11:00 America/Indiana", 2022)
    assert parse_slot("Wed 20 July 10:00 - 11:00 UTC+14", 2022).start == utc(2022, 7, 19, 20, 0)
    assert parse_slot("Wed 20 July 10:00 - 11:00 UTC-12", 2022).start == utc(2022, 7, 20, 22, 0)


def test_unknown_abbreviation_is_a_slot_error_naming_it():
    with pytest.raises(SlotError, match="XYZ"):
        parse_slot("Thu 21 July 12:30 - 12:35 XYZ", 2022)
    # ... but the line is still recognised as a slot, so an importer keeps the talk.
    assert looks_like_slot("Thu 21 July 12:30 - 12:35 XYZ")


def test_slot_without_zone_needs_a_default():
    with pytest.raises(SlotError, match="no time zone"):
        parse_slot("Thu 21 July 12:30 - 12:35", 2022)
    assert parse_slot("Thu 21 July 12:30 - 12:35", 2022, default_tz="PDT").start == utc(2022, 7, 21, 19, 30)


def test_range_crossing_midnight_ends_next_day():
    start, end, _ = parse_slot("Fri 22 July 23:30 - 0:30 UTC", 2022)
    assert (start, end) == (utc(2022, 7, 22, 23, 30), utc(2022, 7, 23, 0, 30))
    start, end, _ = parse_slot("Fri 22 July 10:00 pm - midnight UTC", 2022)
    assert (start, end) == (utc(2022, 7, 22, 22, 0), utc(2022, 7, 23, 0, 0))
    start, end, _ = parse_slot("Fri 22 July 23:00 - 24:00 UTC", 2022)
    assert (start, end) == (utc(2022, 7, 22, 23, 0), utc(2022, 7, 23, 0, 0))
    start, end, _ = parse_slot("Fri 22 July 0:00 - 24:00 UTC", 2022)
    assert end - start == timedelta(days=1)
    # Across midnight in a zone: 23:30 PDT is already the next day in UTC.
    start, end, _ = parse_slot("Fri 22 July 23:30 - 0:15 PDT", 2022)
    assert (start, end) == (utc(2022, 7, 23, 6, 30), utc(2022, 7, 23, 7, 15))


def test_am_pm_noon_and_mixed_forms():
    assert parse_time_range("11:30 a.m.", "noon") == ((11, 30), (12, 0))
    assert parse_time_range("11:00", "1:00 pm") == ((11, 0), (13, 0))
    assert parse_time_range("9", "10 am") == ((9, 0), (10, 0))
    assert parse_time_range("1:00 PM", "2:30") == ((13, 0), (14, 30))
    assert parse_time_range("12:00 am", "12:30 AM") == ((0, 0), (0, 30))
    assert parse_clock("7:05 p.m.") == (7, 5, "pm")
    start, end, _ = parse_slot("Mon, Jan 15, 2024, 9:00 am - 10:15 am PST")
    assert (start, end) == (utc(2024, 1, 15, 17, 0), utc(2024, 1, 15, 18, 15))


def test_printed_year_wins_and_missing_year_is_an_error():
    assert parse_slot("Thu 21 July 2022 12:30 - 12:35 PDT", 1999).start.year == 2022
    with pytest.raises(SlotError, match="no year"):
        parse_slot("Thu 21 July 12:30 - 12:35 PDT")


@pytest.mark.parametrize("text", [
    "Thu 21 July 25:00 - 26:00 PDT", "Thu 32 July 12:30 - 12:35 PDT", "Thu 21 Juley 12:30 - 12:35 PDT",
    "Thx 21 July 12:30 - 12:35 PDT", "Thu 21 July 9 - 10 PDT", "hello world", "", "x" * 10_000,
])
def test_not_slots(text):
    assert not looks_like_slot(text)
    with pytest.raises(SlotError):
        parse_slot(text, 2022)


def test_impossible_date_is_a_slot_error():
    with pytest.raises(SlotError, match="not a date"):
        parse_slot("31 February 10:00 - 11:00 UTC", 2022)


def test_split_slot_keeps_what_was_printed():
    parts = split_slot("Thu 21 July 12:30 - 12:35 PDT")
    assert (parts.weekday, parts.day, parts.month, parts.year, parts.tz) == (3, 21, 7, None, "PDT")
    assert parts.date_text == "Thu 21 July"
    assert split_slot("Tue, April 26 1:00 - 1:15 PDT").date_text == "Tue, April 26"


def test_infer_year_most_recent_matching_year_not_in_the_future():
    today = date(2026, 5, 1)
    assert year_candidates("Thu", 21, "July", today=today) == [2022, 2016, 2011]
    assert infer_year("Thu", 21, "July", today=today) == 2022
    assert infer_year("Tue", 26, "April", today=today) == 2022
    assert infer_year(2, 20, 7, today=today) == 2022          # Wednesday 20 July
    # Before the date comes round, the earlier matching year is taken...
    assert infer_year("Sun", 21, "July", today=date(2024, 7, 20)) == 2019
    # ... and on the day it is that year.
    assert infer_year("Sun", 21, "July", today=date(2024, 7, 21)) == 2024


def test_infer_year_future_only_and_impossible():
    # Wednesday 21 July is 2027 and 2021 ... with a short span only next year fits.
    assert infer_year("Wed", 21, "July", today=date(2026, 5, 1), span=3) == 2027
    assert infer_year("Mon", 30, "February", today=date(2026, 5, 1)) is None
    # 29 February: only leap years count.
    assert infer_year("Thu", 29, "February", today=date(2026, 5, 1)) == 2024


def test_weekday_mismatch_is_reported():
    parts = split_slot("Thu 21 July 12:30 - 12:35 PDT")
    assert weekday_mismatch(parts, 2022) is None
    message = weekday_mismatch(parts, 2023)
    assert message and "Thursday" in message and "Friday" in message
