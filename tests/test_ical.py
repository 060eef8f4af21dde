"""Exports: the agenda (or a plan) as an iCalendar file that real calendar software reads, and CSV/BibTeX.

The .ics parses back with ``icalendar``, follows RFC 5545 on the wire (CRLF, lines folded at 75
octets, commas and semicolons escaped, times in UTC) and keeps each item's UID from one export to
the next; then Debian's ``khal`` (apt package ``khal``) imports it into a fresh calendar and lists the
events at the right times.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from paperscope.calendar_export import events_from_agenda, events_from_plan, to_csv, to_ical
from paperscope.catalog.agenda import add_agenda_item, list_agenda
from paperscope.model import Appearance, PaperRecord, SessionRecord
from paperscope.schedule import Interest, entry_agenda_row, load_program, make_plan, session_agenda_row, zone

PDT = "America/Los_Angeles"
HOSTILE = "Commas, semicolons; and a\nnew line: Ünïcödé titles that run long enough to need folding at 75 octets"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def talk(title, start, minutes, session, room, authors, ids=None, abstract=""):
    return PaperRecord(title=title, authors=authors, abstract=abstract or f"About {title}.", year=2022, ids=ids or {},
                       appearance=Appearance(venue="ICML", year=2022, session=session, room=room, presentation="talk",
                                             starts_at=start, ends_at=start + timedelta(minutes=minutes), source_tz=PDT))


@pytest.fixture
def catalogue(catalog):
    base = utc(2022, 7, 21, 19, 30)
    catalog.ingest("mem:icml", "test", "h", [
        talk("Convergence of Invariant Graph Networks", base, 5, "Deep Learning", "Hall F", ["Chen Cai", "Yusu Wang"],
             {"openreview": "abc123XYZ"}, "Invariant graph networks converge; graph neural networks."),
        talk(HOSTILE, base + timedelta(minutes=5), 5, "Deep Learning", "Hall F", ["Zoë Ångström", "Jean-Luc Picard"]),
        talk("Bandits with knapsacks", base + timedelta(minutes=30), 15, "Theory", "Room 310; East", ["Ada Lovelace"],
             abstract="Bandits and exploration with budgets."),
        SessionRecord(name="Deep Learning", venue="ICML", year=2022, kind="oral", room="Hall F", starts_at=base,
                      ends_at=base + timedelta(minutes=90), source_tz=PDT),
    ])
    program = load_program(catalog, "ICML", 2022)
    for e in program.entries():
        add_agenda_item(catalog, "local", entry_agenda_row(e))
    return catalog


def export(catalog) -> bytes:
    items = list_agenda(catalog, "local")
    papers = {p["id"]: p for p in catalog.papers([i.paper_id for i in items if i.paper_id])}
    return to_ical(events_from_agenda(items, papers))


def parse(data: bytes):
    from icalendar import Calendar

    return Calendar.from_ical(data)


def test_the_agenda_parses_back_with_one_event_per_item(catalogue):
    data = export(catalogue)
    cal = parse(data)
    assert str(cal["VERSION"]) == "2.0" and "paperscope" in str(cal["PRODID"])
    events = cal.walk("VEVENT")
    assert len(events) == 3
    by_title = {str(e["SUMMARY"]): e for e in events}
    graph = by_title["Convergence of Invariant Graph Networks"]
    assert graph.decoded("DTSTART") == utc(2022, 7, 21, 19, 30)
    assert graph.decoded("DTEND") == utc(2022, 7, 21, 19, 35)
    assert str(graph["LOCATION"]) == "Hall F"
    description = str(graph["DESCRIPTION"])
    assert "Chen Cai, Yusu Wang" in description and "https://openreview.net/forum?id=abc123XYZ" in description
    hostile = by_title[HOSTILE]                       # escaping round-trips the text exactly
    assert "Zoë Ångström" in str(hostile["DESCRIPTION"])
    assert str(by_title["Bandits with knapsacks"]["LOCATION"]) == "Room 310; East"
    assert len({str(e["UID"]) for e in events}) == 3


def test_the_file_follows_rfc_5545_on_the_wire(catalogue):
    data = export(catalogue)
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.endswith(b"END:VCALENDAR\r\n")
    lines = data.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines), "lines must be folded at 75 octets"
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert any(line.startswith(b" ") for line in lines), "the long title is folded"
    unfolded = data.replace(b"\r\n ", b"")
    assert b"SUMMARY:Commas\\, semicolons\\; and a\\nnew line" in unfolded
    assert b"DTSTART:20220721T193000Z" in unfolded and b"DTEND:20220721T193500Z" in unfolded
    assert b"LOCATION:Room 310\\; East" in unfolded
    for required in (b"PRODID:", b"VERSION:2.0", b"DTSTAMP:", b"UID:"):
        assert required in unfolded


def test_uids_are_stable_across_exports_and_a_starred_session_holds_its_talks(catalogue):
    first = {str(e["SUMMARY"]): str(e["UID"]) for e in parse(export(catalogue)).walk("VEVENT")}
    program = load_program(catalogue, "ICML", 2022)
    (dl,) = program.find_sessions("Deep Learning")
    add_agenda_item(catalogue, "local", session_agenda_row(dl))
    events = parse(export(catalogue)).walk("VEVENT")
    titles = sorted(str(e["SUMMARY"]) for e in events)
    assert titles == ["Bandits with knapsacks", "Deep Learning"]      # its two talks became lines of the session
    session = next(e for e in events if str(e["SUMMARY"]) == "Deep Learning")
    assert "Convergence of Invariant Graph Networks" in str(session["DESCRIPTION"])
    bandits = next(e for e in events if str(e["SUMMARY"]) == "Bandits with knapsacks")
    assert str(bandits["UID"]) == first["Bandits with knapsacks"]


def test_a_plan_exports_as_a_calendar_with_its_reasons(catalogue):
    plan = make_plan(catalogue, "ICML", 2022, [Interest("graph networks", "graph neural networks")], tz=zone("UTC"),
                     method="tfidf", threshold=0.0)
    events = parse(to_ical(events_from_plan(plan))).walk("VEVENT")
    assert events and "Convergence of Invariant Graph Networks" in [str(e["SUMMARY"]) for e in events]
    assert all("why:" in str(e["DESCRIPTION"]) for e in events)


def test_csv_has_utc_and_local_times(catalogue):
    rows = list(csv.DictReader(io.StringIO(to_csv([i.as_dict() for i in list_agenda(catalogue, "local")], zone(PDT)))))
    assert len(rows) == 3
    first = rows[0]
    assert first["starts_at_utc"] == "2022-07-21T19:30:00+00:00" and first["local_start"] == "2022-07-21T12:30:00-07:00"
    assert first["authors"] == "Chen Cai; Yusu Wang" and first["time_zone"] == PDT


def test_the_export_commands_write_files(catalogue, tmp_path):
    from typer.testing import CliRunner

    from paperscope.cli import app

    runner = CliRunner()
    out = tmp_path / "agenda.ics"
    r = runner.invoke(app, ["export", "ical", "--agenda", "-o", str(out), "--db", catalogue.location])
    assert r.exit_code == 0, r.output
    assert len(parse(out.read_bytes()).walk("VEVENT")) == 3
    ids = [i.paper_id for i in list_agenda(catalogue, "local")]
    r = runner.invoke(app, ["export", "bibtex", "--ids", ",".join(ids[:2]), "--db", catalogue.location])
    assert r.exit_code == 0 and r.output.count("@inproceedings{") == 2
    r = runner.invoke(app, ["export", "csv", "--agenda", "--tz", "Europe/Berlin", "--db", catalogue.location])
    assert r.exit_code == 0 and "2022-07-21T21:30:00+02:00" in r.output
    plan_out = tmp_path / "plan.ics"
    r = runner.invoke(app, ["export", "ical", "--plan", "ICML 2022", "--text", "bandits exploration", "-o", str(plan_out),
                            "--db", catalogue.location])
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------------------------------------
# A real calendar client: khal (Debian package "khal")
# ------------------------------------------------------------------------------------------------

KHAL = shutil.which("khal")


@pytest.mark.skipif(KHAL is None, reason="khal is not installed (apt-get install -y khal): the import into a real calendar client is not checked")
def test_khal_imports_the_agenda_into_a_fresh_calendar(catalogue, tmp_path):
    ics = tmp_path / "agenda.ics"
    ics.write_bytes(export(catalogue))
    cal_dir = tmp_path / "calendars" / "paperscope"
    cal_dir.mkdir(parents=True)
    config = tmp_path / "khal.conf"
    config.write_text(f"""[calendars]
[[paperscope]]
path = {cal_dir}
type = calendar

[locale]
local_timezone = America/Los_Angeles
default_timezone = America/Los_Angeles
timeformat = %H:%M
dateformat = %Y-%m-%d
longdateformat = %Y-%m-%d
datetimeformat = %Y-%m-%d %H:%M
longdatetimeformat = %Y-%m-%d %H:%M

[default]
default_calendar = paperscope

[sqlite]
path = {tmp_path / 'khal.db'}
""")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    def khal(*args):
        done = subprocess.run([KHAL, "-c", str(config), *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, f"khal {' '.join(args)} failed: {done.stderr or done.stdout}"
        return done.stdout

    khal("import", "--batch", "-a", "paperscope", str(ics))
    stored = list(cal_dir.glob("*.ics"))
    assert len(stored) == 3
    listing = khal("list", "--format", "{start-time}-{end-time} {title} @ {location}", "2022-07-21", "2d")
    assert "12:30-12:35 Convergence of Invariant Graph Networks @ Hall F" in listing   # 19:30 UTC is 12:30 PDT
    assert "13:00-13:15 Bandits with knapsacks @ Room 310; East" in listing
    found = khal("search", "Bandits")
    assert "Bandits with knapsacks" in found
    # Importing the same export again updates the events (same UIDs) instead of adding copies.
    khal("import", "--batch", "-a", "paperscope", str(ics))
    assert len(list(cal_dir.glob("*.ics"))) == 3
