"""The catalogue keeps one record per real paper, with provenance, idempotently."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from paperscope.catalog.store import Catalog
from paperscope.model import Appearance, Note, PaperRecord, Problem, SessionRecord

TITLE = "Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach to Neural Network Training"


def poster(title=TITLE, authors=("Diego Granziol", "Stefan Zohren", "Stephen Roberts"), **ids):
    return PaperRecord(title=title, authors=list(authors), abstract="We study $\\eta$ and \\citet{x} batch size.",
                       ids=ids, appearance=Appearance(venue="ICLR", year=2023, presentation="poster",
                                                      session="Poster Session 3", decision="poster accept"))


def feed_entry(title=TITLE):
    return PaperRecord(title=title, abstract="Feed abstract.", appearance=Appearance(venue="Hugging Face Papers"))


def test_title_match_without_authors_on_one_side_merges_into_one_paper(catalog):
    catalog.ingest("poster.txt", "poster_listing", "h1", [poster()])
    report = catalog.ingest("feed.txt", "paper_feed", "h2", [feed_entry(TITLE.upper() + "!")])
    assert report.merged == 1 and report.new_papers == 0
    assert catalog.paper_count() == 1
    paper = catalog.papers(list(report.touched_paper_ids))[0]
    assert {a["venue"] for a in paper["appearances"]} == {"ICLR", "Hugging Face Papers"}
    # The first source's abstract stays; the feed only filled what was empty.
    assert paper["provenance"]["abstract_raw"] == "poster.txt"
    assert paper["abstract"] == "We study η and batch size."
    assert "$" in paper["abstract_raw"]


def test_same_title_with_different_authors_stays_two_papers(catalog):
    catalog.ingest("a", "x", "h1", [poster(title="Attention Is All You Need", authors=["Ashish Vaswani", "Noam Shazeer"])])
    report = catalog.ingest("b", "x", "h2", [poster(title="Attention is all you need", authors=["Jane Doe", "John Roe"])])
    assert report.new_papers == 1
    assert catalog.paper_count() == 2


def test_strong_id_merges_even_when_titles_differ(catalog):
    catalog.ingest("a", "x", "h1", [poster(title="Old title", openreview="abc123")])
    report = catalog.ingest("b", "x", "h2", [poster(title="A renamed camera-ready title", openreview="abc123")])
    assert report.merged == 1 and catalog.paper_count() == 1


def test_conflicting_strong_ids_never_merge_on_title(catalog):
    catalog.ingest("a", "x", "h1", [poster(openreview="one")])
    catalog.ingest("b", "x", "h2", [poster(openreview="two")])
    assert catalog.paper_count() == 2


def test_reingesting_the_same_source_changes_nothing(catalog):
    first = catalog.ingest("a", "x", "h1", [poster(), Problem("bad record", line=7, raw="???")])
    before = catalog.stats()
    again = catalog.ingest("a", "x", "h1", [poster(), Problem("bad record", line=7, raw="???")])
    assert again.unchanged and first.new_papers == 1
    assert catalog.stats() == before


def test_a_newer_version_of_a_source_updates_in_place_and_drops_what_it_no_longer_lists(catalog):
    other = poster(title="Another Paper", authors=["Ada Lovelace"])
    catalog.ingest("a", "x", "v1", [poster(), other])
    [pid] = catalog.author_papers("Ada Lovelace")
    fixed = poster()
    fixed.abstract = "Corrected abstract."
    report = catalog.ingest("a", "x", "v2", [fixed])
    assert report.updated == 1 and report.removed_appearances == 1
    assert report.removed_paper_ids == {pid}
    assert catalog.paper(pid) is None
    assert catalog.paper_count() == 1
    [paper] = catalog.papers(list(report.touched_paper_ids))
    assert paper["abstract"] == "Corrected abstract."
    assert len(paper["appearances"]) == 1


def test_missing_title_is_kept_flagged_and_never_merged_by_title(catalog):
    rec = PaperRecord(title="", authors=["Huiqi Deng", "Quanshi Zhang"], abstract="This paper explores...",
                      flags=["missing_title"], appearance=Appearance(venue="ICLR", year=2022, session="Oral 2"))
    rec2 = PaperRecord(title="", authors=["Someone Else"], flags=["missing_title"], appearance=Appearance(venue="ICLR"))
    catalog.ingest("oral.txt", "session_page", "h", [rec, rec2])
    stats = catalog.stats()
    assert stats["papers"] == 2
    assert [f["flags"] for f in stats["flagged"]] == [["missing_title"], ["missing_title"]]


def test_problems_are_quarantined_once_with_their_raw_text(catalog):
    catalog.ingest("a", "x", "h1", [Problem("no title and no authors", line=12, raw="garbage"), Note("inferred")])
    catalog.ingest("a", "x", "h2", [Problem("no title and no authors", line=12, raw="garbage")])
    rows = catalog.quarantined()
    assert len(rows) == 1
    assert rows[0]["line"] == 12 and rows[0]["raw"] == "garbage"


def test_times_are_stored_in_utc_and_sessions_kept(catalog):
    start = datetime(2022, 7, 21, 19, 30, tzinfo=timezone.utc)
    rec = poster()
    rec.appearance.starts_at = start
    rec.appearance.source_tz = "America/Los_Angeles"
    session = SessionRecord(name="Deep Learning", room="Hall F", starts_at=start, venue="ICML", year=2022)
    catalog.ingest("s", "x", "h", [rec, session])
    paper = catalog.papers(catalog.author_papers("Diego Granziol"))[0]
    assert paper["appearances"][0]["starts_at"] == "2022-07-21T19:30:00+00:00"
    assert catalog.sessions(venue="icml")[0]["room"] == "Hall F"


def test_author_lookup_folds_accents_and_case(catalog):
    catalog.ingest("a", "x", "h", [poster(title="Rich Feature Construction", authors=["Léon Bottou"])])
    assert catalog.author_papers("leon bottou") == catalog.author_papers("Léon Bottou") != []


def test_catalogue_file_is_sound_sqlite(tmp_path):
    # SQLite only: PRAGMA checks of the file itself
    catalog = Catalog.open(str(tmp_path / "catalogue.sqlite"))
    catalog.ingest("a", "x", "h", [poster()])
    catalog.close()
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
