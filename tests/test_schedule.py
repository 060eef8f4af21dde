"""The program in the reader's time zone, the agenda and its clashes, on the CLI and on the web.

Times: a page's "Thu 21 July 12:30 - 12:35 PDT" is 19:30 UTC; Mini-Conf times are UTC; shown in
Europe/Berlin around the DST changes, items land on the right local day and hour. Clashes: touching
items do not clash, nested ones do, the same item twice is one item. The agenda is per user.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperscope.catalog.store import Catalog
from paperscope.model import Appearance, PaperRecord, SessionRecord
from paperscope.schedule import (
    TimedItem,
    build_program,
    clash_groups,
    clashing_with,
    day_bounds,
    find_clashes,
    load_program,
    local_day,
    overlaps,
    schedule_days,
    schedule_json,
    zone,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "samples" / "pages"
ICLR2020 = SHARED / "data" / "iclr2020_virtual_site"
BERLIN = zone("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------------------
# Times
# ------------------------------------------------------------------------------------------------


def test_a_pdt_slot_is_stored_and_scheduled_in_utc(catalog):
    from paperscope.ingest.slots import parse_slot

    slot = parse_slot("Thu 21 July 12:30 - 12:35 PDT", 2022)
    assert (slot.start, slot.end) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 19, 35))
    assert slot.tz_name == "America/Los_Angeles"
    catalog.ingest("mem:icml", "test", "h1", [PaperRecord(
        title="Convergence of Invariant Graph Networks", authors=["Chen Cai", "Yusu Wang"],
        appearance=Appearance(venue="ICML", year=2022, session="Deep Learning", room="Hall F", presentation="talk",
                              starts_at=slot.start, ends_at=slot.end, source_tz=slot.tz_name,
                              slot_text="Thu 21 July 12:30 - 12:35 PDT"))])
    program = load_program(catalog, "ICML", 2022)
    (entry,) = program.entries()
    assert (entry.starts_at, entry.ends_at) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 19, 35))
    data = schedule_json(program, zone("America/Los_Angeles"))
    assert data["days"][0]["day"] == "2022-07-21"
    assert data["days"][0]["tracks"][0]["sessions"][0]["entries"][0]["local"]["time"] == "12:30–12:35 PDT"
    in_berlin = schedule_json(program, BERLIN)["days"][0]["tracks"][0]["sessions"][0]
    assert in_berlin["local"]["start"] == "2022-07-21T21:30:00+02:00"


@pytest.mark.skipif(not PAGES.is_dir(), reason=f"sample pages not found at {PAGES}")
def test_the_icml_sample_pages_give_one_session_per_room_and_day(catalog):
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    ingest_targets(catalog, [str(p) for p in sorted(PAGES.glob("icml2022-*.txt"))], ImportOptions(venue="ICML 2022"),
                   update_index=False)
    program = load_program(catalog, "ICML", 2022)
    days = schedule_days(program, zone("America/Los_Angeles"))
    assert [(d.day, [t.room for t in d.tracks]) for d in days] == [
        (date(2022, 7, 20), ["Ballroom 1 & 2"]), (date(2022, 7, 21), ["Hall F"])]
    hall_f = days[1].tracks[0].sessions[0]
    assert hall_f.entries[0].starts_at == utc(2022, 7, 21, 19, 30)      # 12:30 PDT
    assert all(e.kind == "talk" for e in hall_f.entries)


@pytest.mark.skipif(not ICLR2020.is_dir(), reason=f"the ICLR 2020 Mini-Conf site is not at {ICLR2020}")
def test_mini_conf_times_are_utc_and_days_follow_the_chosen_zone(catalogues):
    pytest.importorskip("paperscope.ingest.miniconf", reason="the Mini-Conf importer is not installed")
    from iclr_catalogue import ingest_iclr_site

    with catalogues.copy("iclr2020-site", ingest_iclr_site) as url:
        catalog = Catalog.open(url)
        program = load_program(catalog, "ICLR", 2020)
        catalog.close()
    (mon1,) = program.find_sessions("Mon Session 1")
    assert (mon1.starts_at, mon1.ends_at) == (utc(2020, 4, 27, 5), utc(2020, 4, 27, 7))   # schedule.yml, UTC
    assert mon1.is_poster_session and len(mon1.entries) > 50
    # Mon Session 5 runs 20:00-22:00 UTC: 22:00-00:00 in Berlin (CEST) but 13:00-15:00 in Los Angeles.
    (mon5,) = program.find_sessions("Mon Session 5")
    assert local_day(mon5.starts_at, BERLIN) == date(2020, 4, 27)
    assert local_day(mon5.starts_at, zone("Asia/Tokyo")) == date(2020, 4, 28)      # 05:00 on Tuesday
    tokyo_days = schedule_days(program, zone("Asia/Tokyo"))
    assert any(s.name == "Mon Session 5" for s in tokyo_days[1].sessions)
    monday = schedule_days(program, BERLIN, date(2020, 4, 27))[0]
    assert [s.name for s in monday.sessions if s.is_poster_session] == [f"Mon Session {i}" for i in range(1, 6)]


def dst_program():
    """Sessions around Europe's 2021 DST changes (28 March: 02:00 CET -> 03:00 CEST; 31 October: 03:00 CEST -> 02:00 CET)."""
    starts = {
        "Sat late": utc(2021, 3, 27, 22, 30),     # 23:30 CET Sat 27 March
        "Sun night": utc(2021, 3, 27, 23, 30),    # 00:30 CET Sun 28 March
        "Before change": utc(2021, 3, 28, 0, 30),  # 01:30 CET
        "After change": utc(2021, 3, 28, 1, 30),   # 03:30 CEST (02:xx does not exist)
        "Oct Sat late": utc(2021, 10, 30, 21, 30),   # 23:30 CEST Sat 30 October
        "Oct Sun early": utc(2021, 10, 30, 22, 30),  # 00:30 CEST Sun 31 October (a fixed +01:00 says Saturday)
        "First 02:30": utc(2021, 10, 31, 0, 30),     # 02:30 CEST
        "Second 02:30": utc(2021, 10, 31, 1, 30),    # 02:30 CET, the repeated hour
    }
    sessions = [{"name": n, "venue": "DST", "year": 2021, "kind": "oral", "room": "Room A",
                 "starts_at": s.isoformat(), "ends_at": (s + timedelta(minutes=30)).isoformat()} for n, s in starts.items()]
    return build_program(sessions, [], venue="DST", year=2021)


def test_berlin_days_and_hours_around_the_dst_changes():
    program = dst_program()
    days = schedule_days(program, BERLIN)
    by_day = {d.day.isoformat(): [s.name for s in d.sessions] for d in days}
    assert by_day == {
        "2021-03-27": ["Sat late"],
        "2021-03-28": ["Sun night", "Before change", "After change"],
        "2021-10-30": ["Oct Sat late"],
        "2021-10-31": ["Oct Sun early", "First 02:30", "Second 02:30"],
    }
    local = {s["name"]: s["local"] for d in schedule_json(program, BERLIN)["days"] for t in d["tracks"] for s in t["sessions"]}
    assert local["Before change"]["time"] == "01:30 CET–03:00 CEST"     # ends after the clocks jump
    assert local["After change"]["time"] == "03:30–04:00 CEST"
    assert local["First 02:30"]["start"] == "2021-10-31T02:30:00+02:00"
    assert local["Second 02:30"]["start"] == "2021-10-31T02:30:00+01:00"
    assert local["Oct Sun early"]["day"] == "2021-10-31"
    # A fixed offset would get it wrong: +01:00 puts 22:30 UTC on Saturday.
    assert utc(2021, 10, 30, 22, 30).astimezone(timezone(timedelta(hours=1))).date() == date(2021, 10, 30)
    # The change days are 23 and 25 hours long, and a day filter uses those bounds.
    lo, hi = day_bounds(date(2021, 3, 28), BERLIN)
    assert hi - lo == timedelta(hours=23)
    lo, hi = day_bounds(date(2021, 10, 31), BERLIN)
    assert hi - lo == timedelta(hours=25)
    assert [s.name for s in schedule_days(program, BERLIN, date(2021, 10, 31))[0].sessions] == [
        "Oct Sun early", "First 02:30", "Second 02:30"]


# ------------------------------------------------------------------------------------------------
# Clashes
# ------------------------------------------------------------------------------------------------


def item(key, start_min, end_min, kind="paper", session=None, venue="ICML"):
    base = utc(2022, 7, 20, 14, 0)
    return TimedItem(key=key, start=base + timedelta(minutes=start_min), end=base + timedelta(minutes=end_min),
                     label=key, kind=kind, session=session, venue=venue)


def keys(pairs):
    return sorted(tuple(sorted((a.key, b.key))) for a, b in pairs)


def test_touching_items_do_not_clash():
    assert not overlaps(*[item("a", 0, 5).start, item("a", 0, 5).end, item("b", 5, 10).start, item("b", 5, 10).end])
    assert find_clashes([item("a", 0, 5), item("b", 5, 10), item("c", 10, 15)]) == []


def test_overlapping_and_nested_items_clash():
    pairs = find_clashes([item("long", 0, 60), item("inside", 10, 20), item("tail", 55, 70), item("later", 70, 80)])
    assert keys(pairs) == [("inside", "long"), ("long", "tail")]
    assert [sorted(i.key for i in g) for g in clash_groups([item("long", 0, 60), item("inside", 10, 20),
                                                            item("tail", 55, 70), item("later", 70, 80)])] == [
        ["inside", "long", "tail"]]


def test_the_same_item_twice_is_one_item():
    assert find_clashes([item("a", 0, 30), item("a", 0, 30)]) == []
    assert keys(find_clashes([item("a", 0, 30), item("a", 0, 30), item("b", 10, 20)])) == [("a", "b")]


def test_a_talk_inside_its_own_starred_session_is_no_clash_but_one_in_another_session_is():
    session = item("session", 0, 90, kind="session", session="Deep Learning")
    own = item("talk", 10, 15, session="Deep Learning")
    other = item("other", 10, 15, session="Theory")
    assert keys(find_clashes([session, own, other])) == [("other", "session"), ("other", "talk")]


def test_resolving_keeps_one_and_drops_what_clashes_with_it():
    a, b, c, d = item("a", 0, 30), item("b", 20, 40), item("c", 35, 50), item("d", 50, 60)
    assert sorted(i.key for i in clashing_with(b, [a, c, d])) == ["a", "c"]
    assert clashing_with(d, [a, b, c]) == []


# ------------------------------------------------------------------------------------------------
# A small real catalogue: the agenda, the CLI, the web
# ------------------------------------------------------------------------------------------------

PDT = "America/Los_Angeles"


def icml_talk(title, start, minutes=5, session="Deep Learning", room="Hall F", abstract=""):
    return PaperRecord(
        title=title, authors=["Ada Lovelace", "Alan Turing"], abstract=abstract or f"We study {title.lower()}.", year=2022,
        appearance=Appearance(venue="ICML", year=2022, session=session, room=room, presentation="talk",
                              starts_at=start, ends_at=start + timedelta(minutes=minutes), source_tz=PDT),
    )


def build_catalogue(url: str) -> Catalog:
    catalog = Catalog.open(url)
    base = utc(2022, 7, 21, 19, 30)
    records = [
        icml_talk("Graph networks that count", base),
        icml_talk("Invariant graph networks", base + timedelta(minutes=5)),
        icml_talk("Robust momentum <b>tricks</b>", base + timedelta(minutes=10)),
        icml_talk("Bandits with knapsacks", base + timedelta(minutes=5), session="Theory", room="Room 310"),
        PaperRecord(title="A poster on exploration", authors=["Grace Hopper"], abstract="Exploration in RL.", year=2022,
                    appearance=Appearance(venue="ICML", year=2022, session="Poster Session 1", presentation="poster",
                                          starts_at=utc(2022, 7, 21, 23), ends_at=utc(2022, 7, 22, 1), source_tz=PDT)),
    ]
    sessions = [
        SessionRecord(name="Deep Learning", venue="ICML", year=2022, kind="oral", room="Hall F", starts_at=base,
                      ends_at=base + timedelta(minutes=90), source_tz=PDT),
        SessionRecord(name="Theory", venue="ICML", year=2022, kind="oral", room="Room 310", starts_at=base,
                      ends_at=base + timedelta(minutes=90), source_tz=PDT),
    ]
    catalog.ingest("mem:icml2022", "test", "h", records + sessions)
    return catalog


@pytest.fixture
def catalogue(catalog_url):
    catalog = build_catalogue(catalog_url)
    yield catalog
    catalog.close()


def paper_id(catalog, title):
    return next(r["paper_id"] for r in catalog.appearances_where(venue="ICML") if r["title"].startswith(title))


def test_the_agenda_belongs_to_its_user(catalogue):
    from paperscope.catalog.agenda import add_agenda_item, list_agenda, remove_agenda_items
    from paperscope.schedule import entry_agenda_row

    program = load_program(catalogue, "ICML", 2022)
    first, second = program.entries()[:2]
    item_a, created = add_agenda_item(catalogue, "local", entry_agenda_row(first))
    assert created
    again, created = add_agenda_item(catalogue, "local", entry_agenda_row(first))
    assert not created and again.id == item_a.id
    add_agenda_item(catalogue, "alice", entry_agenda_row(second))
    assert [i.paper_id for i in list_agenda(catalogue, "local")] == [first.paper_id]
    assert [i.paper_id for i in list_agenda(catalogue, "alice")] == [second.paper_id]
    # One user cannot remove another's item, even by its number.
    alice_item = list_agenda(catalogue, "alice")[0]
    assert remove_agenda_items(catalogue, "local", ids=[alice_item.id]) == 0
    assert remove_agenda_items(catalogue, "alice", ids=[alice_item.id]) == 1
    assert list_agenda(catalogue, "alice") == []


def test_the_agenda_table_appears_in_a_catalogue_opened_before_the_module(catalog):
    from sqlalchemy import text

    from paperscope.catalog import agenda

    with catalog.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS agenda_items"))

    agenda._READY.discard(id(catalog.engine))
    assert agenda.list_agenda(catalog, "local") == []


def run_cli(args, db):
    from paperscope.cli import app

    result = CliRunner().invoke(app, [*args, "--db", str(db)], catch_exceptions=False)
    return result


def test_starring_on_the_command_line_finds_clashes_and_resolves_them(catalogue):
    db = catalogue.location
    count = paper_id(catalogue, "Graph networks")
    invariant = paper_id(catalogue, "Invariant")
    bandits = paper_id(catalogue, "Bandits")
    r = run_cli(["agenda", "add", count, "--tz", "America/Los_Angeles"], db)
    assert r.exit_code == 0 and "Starred" in r.output and "12:30" in r.output
    r = run_cli(["agenda", "add", invariant, "--json"], db)
    assert json.loads(r.output)["clashes"] == []                   # touching: 12:35 starts when 12:30 ends
    r = run_cli(["agenda", "add", bandits, "--tz", "UTC"], db)
    assert "clashes with" in r.output and "Invariant graph networks" in r.output
    r = run_cli(["agenda", "add", "--session", "Deep Learning", "--venue", "ICML 2022", "--json"], db)
    session_clashes = json.loads(r.output)["clashes"]
    assert [c["title"] for c in session_clashes] == ["Bandits with knapsacks"]   # its own talks do not clash
    r = run_cli(["agenda", "clashes", "--json"], db)
    pairs = json.loads(r.output)["clashes"]
    assert sorted(sorted((p["a"]["title"], p["b"]["title"])) for p in pairs) == [
        ["Bandits with knapsacks", "Deep Learning"], ["Bandits with knapsacks", "Invariant graph networks"]]
    r = run_cli(["agenda", "resolve", "--keep", bandits, "--json"], db)
    assert sorted(i["title"] for i in json.loads(r.output)["removed"]) == ["Deep Learning", "Invariant graph networks"]
    r = run_cli(["agenda", "list", "--json"], db)
    listed = json.loads(r.output)["items"]
    assert [i["title"] for i in listed] == ["Graph networks that count", "Bandits with knapsacks"]
    assert not any(i["clash"] for i in listed)
    r = run_cli(["agenda", "remove", bandits], db)
    assert "Removed 1 item" in r.output
    r = run_cli(["agenda", "remove", "#999"], db)
    assert r.exit_code == 1


def test_the_schedule_command_shows_days_in_the_chosen_zone(catalogue):
    r = run_cli(["schedule", "--venue", "ICML", "--year", "2022", "--tz", "Europe/Berlin", "--json"], catalogue.location)
    data = json.loads(r.output)
    assert data["tz"] == "Europe/Berlin"
    assert [d["day"] for d in data["days"]] == ["2022-07-21", "2022-07-22"]   # the 23:00 UTC poster session is Friday 01:00 in Berlin
    rooms = [t["room"] for t in data["days"][0]["tracks"]]
    assert sorted(rooms) == ["Hall F", "Room 310"]
    r = run_cli(["schedule", "--venue", "ICML", "--year", "2022", "--tz", "America/Los_Angeles", "--day", "2022-07-21"],
                catalogue.location)
    assert r.exit_code == 0 and "Poster Session 1" in r.output and "12:30–14:00 PDT" in r.output
    r = run_cli(["schedule", "--venue", "ICML", "--year", "2022", "--tz", "Mars/Olympus"], catalogue.location)
    assert r.exit_code == 1 and "unknown time zone" in r.output
    r = run_cli(["schedule", "--venue", "NeurIPS", "--year", "2022"], catalogue.location)
    assert r.exit_code == 1 and "no program" in r.output


# ------------------------------------------------------------------------------------------------
# The web pages
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def client(catalogue):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from backends import single_user_app

    from paperscope.web import schedule_routes

    app = single_user_app(catalogue)
    if not any(getattr(r, "path", None) == "/agenda" for r in app.routes):
        app.include_router(schedule_routes.router)
    with TestClient(app) as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def test_the_schedule_page_and_its_json_twin(client):
    page = client.get("/schedule", params={"venue": "ICML", "year": "2022", "tz": "America/Los_Angeles"})
    assert page.status_code == 200
    assert "Graph networks that count" in page.text and "12:30–12:35 PDT" in page.text
    assert "<b>tricks</b>" not in page.text and "&lt;b&gt;tricks&lt;/b&gt;" in page.text     # titles are text, never HTML
    twin = client.get("/schedule", params={"venue": "ICML", "year": "2022", "tz": "Europe/Berlin", "format": "json"}).json()
    assert twin["tz"] == "Europe/Berlin" and twin["day"] == "2022-07-21"
    api = client.get("/api/schedule", params={"venue": "ICML", "year": "2022", "day": "all"}).json()
    assert len(api["all_days"]) >= 1
    assert client.get("/schedule", params={"venue": "Nowhere"}).status_code == 404


def test_starring_on_the_web_needs_the_page_token(client, catalogue):
    page = client.get("/schedule", params={"venue": "ICML", "year": "2022", "tz": "UTC"})
    token = csrf_of(page.text)
    key = re.search(r'name="key" value="(paper\|[^"]+)"', page.text).group(1).replace("&amp;", "&")
    forged = client.post("/agenda/add", data={"key": key, "venue": "ICML", "year": "2022", "csrf": "0" * 48},
                         follow_redirects=False)
    assert forged.status_code == 403
    other_site = client.post("/agenda/add", data={"key": key, "venue": "ICML", "year": "2022", "csrf": token},
                             headers={"origin": "https://evil.example"}, follow_redirects=False)
    assert other_site.status_code == 403
    ok = client.post("/agenda/add", data={"key": key, "venue": "ICML", "year": "2022", "csrf": token,
                                          "next": "/schedule?venue=ICML&year=2022"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/schedule?venue=ICML&year=2022"
    evil_next = client.post("/agenda/add", data={"key": key, "venue": "ICML", "year": "2022", "csrf": token,
                                                 "next": "//evil.example/"}, follow_redirects=False)
    assert evil_next.headers["location"] == "/agenda"
    agenda = client.get("/agenda", params={"format": "json"}).json()
    assert [i["item_key"] for i in agenda["items"]] == [key]
    starred = client.get("/schedule", params={"venue": "ICML", "year": "2022", "tz": "UTC"})
    assert "★ Starred" in starred.text


def test_the_agenda_page_shows_clashes_and_keeps_one_in_one_step(client, catalogue):
    from paperscope.catalog.agenda import add_agenda_item
    from paperscope.schedule import entry_agenda_row

    program = load_program(catalogue, "ICML", 2022)
    for e in program.entries():
        if e.title.startswith(("Invariant", "Bandits")):
            add_agenda_item(catalogue, "local", entry_agenda_row(e))
    page = client.get("/agenda", params={"tz": "America/Los_Angeles"})
    assert "1 clash" in page.text and "Keep “Bandits with knapsacks”" in page.text
    data = client.get("/agenda", params={"format": "json"}).json()
    assert len(data["clashes"]) == 1
    keep = next(i for i in data["items"] if i["title"].startswith("Bandits"))
    r = client.post("/agenda/resolve", data={"keep": str(keep["id"]), "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    after = client.get("/api/agenda").json()
    assert [i["title"] for i in after["items"]] == ["Bandits with knapsacks"] and after["clashes"] == []
    printable = client.get("/agenda/print")
    assert printable.status_code == 200 and "Bandits with knapsacks" in printable.text
    ics = client.get("/agenda.ics")
    assert ics.headers["content-type"].startswith("text/calendar") and b"BEGIN:VEVENT" in ics.content
    assert "Bandits with knapsacks" in client.get("/agenda.csv").text
    assert "@inproceedings" in client.get("/agenda.bib").text


def test_the_json_write_api_takes_only_json(client, catalogue):
    program = load_program(catalogue, "ICML", 2022)
    key = program.entries()[0].key
    assert client.post("/api/agenda", content=f"key={key}", headers={"content-type": "text/plain"}).status_code in (400, 415, 422)
    r = client.post("/api/agenda", json={"key": key, "venue": "ICML", "year": 2022})
    assert r.status_code == 200 and r.json()["created"]
    item_id = r.json()["item"]["id"]
    assert client.delete(f"/api/agenda/{item_id}").json() == {"removed": 1}
    assert client.delete(f"/api/agenda/{item_id}").status_code == 404


# ------------------------------------------------------------------------------------------------
# In a real browser: star, see the clash, keep one, plan, accept, download the calendar
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def live_server(catalogue):
    from browser_fixture import require_browser, served

    require_browser(allow_module_level=False)
    from backends import single_user_app

    from paperscope.web import schedule_routes

    app = single_user_app(catalogue)
    if not any(getattr(r, "path", None) == "/agenda" for r in app.routes):
        app.include_router(schedule_routes.router)
    with served(app) as url:
        yield url


def test_in_a_browser_star_resolve_plan_accept_and_download(live_server, tmp_path):
    from browser_fixture import chromium, shot

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/Los_Angeles",
                                      accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{live_server}/schedule?venue=ICML&year=2022&tz=America/Los_Angeles")
        assert page.locator("h1").inner_text() == "ICML 2022 schedule"
        for title in ("Invariant graph networks", "Bandits with knapsacks"):
            page.get_by_role("button", name=f"Star {title}").click()
            page.wait_for_load_state()
            assert page.get_by_role("button", name=f"Unstar {title}").is_visible()
        shot(page, "planner-schedule")

        page.goto(f"{live_server}/agenda")
        assert "1 clash" in page.locator("#clash-title").inner_text()
        assert page.locator("li.clash").count() == 2
        shot(page, "planner-agenda-clash")
        page.get_by_role("button", name="Keep Bandits with knapsacks and remove what clashes with it").click()
        page.wait_for_url("**/agenda")
        assert page.locator("#clash-title").count() == 0
        assert page.locator("li.planner-row .program-title").all_inner_texts() == ["Bandits with knapsacks"]

        page.goto(f"{live_server}/plan?tz=America/Los_Angeles")
        page.locator("#plan-text").fill("graph networks")
        page.locator("input[name=year]").fill("2022")
        page.get_by_role("button", name="Plan", exact=True).click()
        page.wait_for_url("**/plan?**")
        assert "Why:" in page.locator("main").inner_text()
        shot(page, "planner-plan")
        page.get_by_role("button", name="Put this plan in my agenda").click()
        page.wait_for_url("**/agenda")
        titles = page.locator("li.planner-row .program-title").all_inner_texts()
        assert "Bandits with knapsacks" in titles and any("graph" in t.lower() for t in titles)

        with page.expect_download() as info:
            page.get_by_role("link", name="Add to calendar (.ics)").click()
        ics = tmp_path / "agenda.ics"
        info.value.save_as(ics)
        from icalendar import Calendar

        events = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
        assert len(events) == len(titles)
        assert not errors, errors
