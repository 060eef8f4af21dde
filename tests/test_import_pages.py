"""Saved-page importers (session pages, poster listing, paper feed) on the real sample pages.

The five sample pages hold 375 appearances of 374 distinct papers: 15 + 15 + 7 talks, 135
posters (11 top-5%, 27 top-25%) and 203 feed entries; one paper ("Learning Rates as a Function
of Batch Size ...") is both a poster and a feed entry.
"""

from __future__ import annotations

import importlib
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from paperscope.ingest import IMPORTER_MODULES
from paperscope.ingest.base import Source, SourceError, read_source, source_from_bytes
from paperscope.ingest.paper_feed import IMPORTER as FEED
from paperscope.ingest.poster_listing import IMPORTER as POSTERS
from paperscope.ingest.session_page import IMPORTER as SESSION
from paperscope.model import ImportOptions, Note, PaperRecord, Problem, SessionRecord
from paperscope.text import title_key

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "samples" / "pages"

HALL_F = "icml2022-session-deep-learning-hall-f.txt"
BALLROOM = "icml2022-session-deep-learning-ballroom-1-2.txt"
ORAL = "iclr2022-oral-2-understanding-deep-learning.txt"
POSTER_PAGE = "iclr2023-poster-session-3.txt"
FEED_PAGE = "hf-papers-listing.txt"
EXPECTED_FORMAT = {HALL_F: "session_page", BALLROOM: "session_page", ORAL: "session_page",
                   POSTER_PAGE: "poster_listing", FEED_PAGE: "paper_feed"}
MINE = {"session_page": SESSION, "poster_listing": POSTERS, "paper_feed": FEED}

needs_samples = pytest.mark.skipif(not PAGES.is_dir(), reason=f"sample pages not found at {PAGES} (shared folder absent)")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


_cache: dict[tuple, list] = {}


def parse(page: str, **options) -> list:
    key = (page, tuple(sorted(options.items())))
    if key not in _cache:
        importer = MINE[EXPECTED_FORMAT[page]]
        _cache[key] = list(importer.parse(read_source(PAGES / page), ImportOptions(**options)))
    return _cache[key]


def records(items) -> list[PaperRecord]:
    return [i for i in items if isinstance(i, PaperRecord)]


def of_kind(items, kind) -> list:
    return [i for i in items if isinstance(i, kind)]


def by_title(items, title: str) -> PaperRecord:
    found = [r for r in records(items) if r.title == title]
    assert len(found) == 1, f"{title!r}: {len(found)} records"
    return found[0]


def from_text(text: str | bytes, name: str = "page.txt") -> Source:
    return source_from_bytes(f"/tmp/{name}", text.encode("utf-8") if isinstance(text, str) else text)


def page_text(page: str) -> str:
    return (PAGES / page).read_text(encoding="utf-8")


# --- counts -------------------------------------------------------------------------------------

@needs_samples
def test_counts_per_page_and_distinct_papers_over_all_pages():
    counts = {page: len(records(parse(page))) for page in EXPECTED_FORMAT}
    assert counts == {HALL_F: 15, BALLROOM: 15, ORAL: 7, POSTER_PAGE: 135, FEED_PAGE: 203}
    assert sum(counts.values()) == 375
    every = [r for page in EXPECTED_FORMAT for r in records(parse(page))]
    distinct = {title_key(r.title) or r.key for r in every}
    assert len(distinct) == 374
    twice = [k for k, n in Counter(title_key(r.title) for r in every if r.title).items() if n > 1]
    assert twice == [title_key("Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach "
                               "to Neural Network Training")]


@needs_samples
def test_sample_pages_parse_without_problems_and_with_unique_keys():
    for page in EXPECTED_FORMAT:
        items = parse(page)
        assert of_kind(items, Problem) == [], page
        keys = [r.key for r in records(items)]
        assert all(keys) and len(set(keys)) == len(keys), page
        assert all(r.line and r.line >= 1 for r in records(items)), page
        lines = page_text(page).splitlines()
        for r in records(items):  # the line points at the record's first line (slot/presentation/title)
            assert lines[r.line - 1].strip(), (page, r.line)


@needs_samples
def test_keys_are_stable_between_parses():
    first = [r.key for r in records(SESSION.parse(read_source(PAGES / ORAL), ImportOptions()))]
    again = [r.key for r in records(SESSION.parse(read_source(PAGES / ORAL), ImportOptions()))]
    assert first == again


# --- ICML session pages -------------------------------------------------------------------------

@needs_samples
def test_icml_hall_f_session_fields():
    items = parse(HALL_F)
    first = records(items)[0]
    assert first.title == "Convergence of Invariant Graph Networks"
    assert first.authors == ["Chen Cai", "Yusu Wang"]
    assert "$k$-IGN" in first.abstract and "\\citet{keriven2020convergence}" in first.abstract  # raw LaTeX kept
    a = first.appearance
    assert (a.starts_at, a.ends_at) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 19, 35))
    assert a.source_tz == "America/Los_Angeles"
    assert a.slot_text == "Thu 21 July 12:30 - 12:35 PDT"
    assert (a.session, a.track, a.room, a.moderator) == ("Deep Learning", "Deep Learning", "Hall F", "Robin Walters")
    assert a.presentation == "talk" and a.award is None and a.venue is None
    assert a.year == first.year == 2022
    assert first.line == 12 and first.flags == []

    rich = by_title(items, "Rich Feature Construction for the Optimization-Generalization Dilemma")
    assert rich.authors == ["Jianyu Zhang", "David Lopez-Paz", "Léon Bottou"]
    assert rich.appearance.starts_at == utc(2022, 7, 21, 19, 35)

    soups = by_title(items, "Model soups: averaging weights of multiple fine-tuned models improves accuracy "
                            "without increasing inference time")
    assert soups.authors == ["Mitchell Wortsman", "Gabriel Ilharco", "Samir Gadre", "Rebecca Roelofs",
                             "Raphael Gontijo Lopes", "Ari Morcos", "Hongseok Namkoong", "Ali Farhadi",
                             "Yair Carmon", "Simon Kornblith", "Ludwig Schmidt"]

    long_talk = by_title(items, "Do More Negative Samples Necessarily Hurt In Contrastive Learning?")
    assert (long_talk.appearance.starts_at, long_talk.appearance.ends_at) == (utc(2022, 7, 21, 20, 5),
                                                                            utc(2022, 7, 21, 20, 25))
    assert long_talk.authors == ["Pranjal Awasthi", "Nishanth Dikkala", "Pritish Kamath"]

    last = records(items)[-1]
    assert last.title == "Exploring the Gap between Collapsed & Whitened Features in Self-Supervised Learning"
    assert last.authors == ["Bobby He", "Mete Ozay"]
    assert last.appearance.ends_at == utc(2022, 7, 21, 21, 0)

    (session,) = of_kind(items, SessionRecord)
    assert (session.name, session.room, session.year, session.source_tz) == ("Deep Learning", "Hall F", 2022,
                                                                              "America/Los_Angeles")
    assert (session.starts_at, session.ends_at) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 21, 0))


@needs_samples
def test_icml_ballroom_session_fields():
    items = parse(BALLROOM)
    first = records(items)[0]
    assert first.title == "Towards understanding how momentum improves generalization in deep learning"
    assert first.authors == ["Samy Jelassi", "Yuanzhi Li"]
    assert (first.appearance.room, first.appearance.moderator) == ("Ballroom 1 & 2", "Grigorios Chrysos")
    assert (first.appearance.starts_at, first.appearance.ends_at) == (utc(2022, 7, 20, 14, 30),
                                                                      utc(2022, 7, 20, 14, 35))
    local = by_title(items, "Local Augmentation for Graph Neural Networks")
    assert local.authors == ["Songtao Liu", "Rex (Zhitao) Ying", "Hanze Dong", "Lanqing Li", "Tingyang Xu",
                             "Yu Rong", "Peilin Zhao", "Junzhou Huang", "Dinghao Wu"]
    adam = by_title(items, "Adaptive Inertia: Disentangling the Effects of Adaptive Learning Rate and Momentum")
    assert (adam.appearance.starts_at, adam.appearance.ends_at) == (utc(2022, 7, 20, 15, 5), utc(2022, 7, 20, 15, 25))
    last = records(items)[-1]
    assert last.title == "Score-Guided Intermediate Level Optimization: Fast Langevin Mixing for Inverse Problems"
    assert last.authors == ["Giannis Daras", "Yuval Dagan", "Alexandros Dimakis", "Constantinos Daskalakis"]
    assert (last.appearance.starts_at, last.appearance.ends_at) == (utc(2022, 7, 20, 15, 55), utc(2022, 7, 20, 16, 0))
    (session,) = of_kind(items, SessionRecord)
    assert session.room == "Ballroom 1 & 2" and session.key != of_kind(parse(HALL_F), SessionRecord)[0].key


@needs_samples
def test_year_inference_note_and_user_given_year_or_venue():
    notes = [n.message for n in of_kind(parse(HALL_F), Note)]
    assert any(m.startswith("year 2022 inferred from 'Thu 21 July'") for m in notes), notes
    assert any("year 2022 inferred from 'Tue 26 April'" in n.message for n in of_kind(parse(ORAL), Note))

    given = parse(HALL_F, venue="ICML 2022")
    assert of_kind(given, Note) == []
    rec = records(given)[0]
    assert (rec.appearance.venue, rec.appearance.year) == ("ICML", 2022)
    assert rec.appearance.starts_at == utc(2022, 7, 21, 19, 30)
    assert of_kind(given, SessionRecord)[0].venue == "ICML"

    by_year = parse(HALL_F, year=2022)
    assert of_kind(by_year, Note) == [] and records(by_year)[0].appearance.venue is None

    # A year that does not fit the printed weekdays is used, and the user is told.
    wrong = parse(HALL_F, venue="ICML 2023")
    rec = records(wrong)[0]
    assert rec.appearance.year == 2023 and rec.appearance.starts_at == utc(2023, 7, 21, 19, 30)
    assert any("not a Thursday in 2023" in n.message for n in of_kind(wrong, Note))

    named = parse(HALL_F, session="ICML Deep Learning, Thursday")
    assert records(named)[0].appearance.session == "ICML Deep Learning, Thursday"


# --- ICLR oral page -----------------------------------------------------------------------------

@needs_samples
def test_iclr_oral_page_fields_awards_and_missing_title_kept():
    items = parse(ORAL)
    talks = records(items)
    assert len(talks) == 7
    assert all(t.appearance.presentation == "oral" for t in talks)
    assert all(t.appearance.session == "Oral 2: Understanding Deep Learning" for t in talks)
    assert all(t.appearance.track == "Understanding Deep Learning" for t in talks)
    assert all(t.appearance.room is None and t.appearance.moderator is None for t in talks)
    assert [t.appearance.award for t in talks] == ["Outstanding Paper"] * 3 + [None] * 4

    first = talks[0]
    assert first.title == "Expressiveness and Approximation Properties of Graph Neural Networks"
    assert first.authors == ["Floris Geerts", "Juan L. Reutter"]
    assert (first.appearance.starts_at, first.appearance.ends_at) == (utc(2022, 4, 26, 8, 0), utc(2022, 4, 26, 8, 15))
    collapse = by_title(items, "Neural Collapse Under MSE Loss: Proximity to and Dynamics on the Central Path")
    assert collapse.authors == ["X.Y. Han", "Vardan Papyan", "David Donoho"]
    strides = by_title(items, "Learning Strides in Convolutional Neural Networks")
    assert strides.authors == ["Rachid Riad", "Olivier Teboul", "David Grangier", "Neil Zeghidour"]

    untitled = [t for t in talks if not t.title]
    assert len(untitled) == 1
    (missing,) = untitled
    assert missing.flags == ["missing_title"]
    assert missing.authors == ["Huiqi Deng", "Qihan Ren", "Hao Zhang", "Quanshi Zhang"]
    assert missing.abstract.startswith("This paper explores the bottleneck of feature representations")
    assert missing.appearance.slot_text == "Tue 26 April 2:15 - 2:30 PDT"
    assert (missing.appearance.starts_at, missing.appearance.ends_at) == (utc(2022, 4, 26, 9, 15),
                                                                          utc(2022, 4, 26, 9, 30))
    assert missing.key and missing.line == 52

    (session,) = of_kind(items, SessionRecord)
    assert (session.name, session.kind, session.room) == ("Oral 2: Understanding Deep Learning", "oral", None)
    assert (session.starts_at, session.ends_at) == (utc(2022, 4, 26, 8, 0), utc(2022, 4, 26, 9, 45))


# --- ICLR 2023 poster listing -------------------------------------------------------------------

@needs_samples
def test_poster_listing_counts_and_fields():
    items = parse(POSTER_PAGE)
    posters = records(items)
    assert len(posters) == 135
    decisions = Counter(p.appearance.decision for p in posters)
    assert decisions == {"poster accept": 97, "top 25%": 27, "top 5%": 11}
    assert Counter(p.appearance.mode for p in posters) == {"in-person": 134, "virtual": 1}
    assert all(p.appearance.presentation == "poster" for p in posters)
    assert all(p.appearance.session == "Poster Session 3" for p in posters)
    assert all(p.appearance.starts_at is None for p in posters)
    assert all(p.authors and p.title and p.abstract and not p.flags for p in posters)

    first = posters[0]
    assert first.title == "Few-shot Backdoor Attacks via Neural Tangent Kernels"
    assert first.authors == ["Jonathan Hayase", "Sewoong Oh"]
    assert (first.appearance.mode, first.appearance.decision) == ("virtual", "poster accept")
    assert first.line == 3

    gnn = by_title(items, "Rethinking the Expressive Power of GNNs via Graph Biconnectivity")
    assert gnn.authors == ["Bohang Zhang", "Shengjie Luo", "Liwei Wang", "Di He"]
    assert (gnn.appearance.award, gnn.appearance.decision, gnn.appearance.mode) == ("Outstanding Paper", "top 5%",
                                                                                     "in-person")
    duality = by_title(items, "On the duality between contrastive and non-contrastive self-supervised learning")
    assert (duality.appearance.award, duality.appearance.decision) == ("Honorable Mention", "top 5%")
    assert duality.authors[0] == "Quentin Garrido"
    assert Counter(p.appearance.award for p in posters) == {None: 133, "Outstanding Paper": 1, "Honorable Mention": 1}

    margin = by_title(items, "The Asymmetric Maximum Margin Bias of Quasi-Homogeneous Neural Networks")
    assert margin.authors == ["Daniel Kunin", "Atsushi Yamamura", "Chao Ma", "Surya Ganguli"]
    assert margin.appearance.decision == "top 25%"

    mgsm = by_title(items, "Language models are multilingual chain-of-thought reasoners")
    assert mgsm.authors == ["Freda Shi", "Mirac Suzgun", "Markus Freitag", "Xuezhi Wang", "Suraj Srivats",
                            "Soroush Vosoughi", "Hyung Won Chung", "Yi Tay", "Sebastian Ruder", "Denny Zhou",
                            "Dipanjan Das", "Jason Wei"]
    # Single authors have no " · " to find them by.
    assert by_title(items, "Limitless Stability for Graph Convolutional Networks").authors == ["Christian Koke"]
    kmeans = by_title(items, "Mini-batch $k$-means terminates within $O(d/\\epsilon)$ iterations")
    assert kmeans.authors == ["Gregory Schwartzman"]

    (session,) = of_kind(items, SessionRecord)
    assert (session.name, session.kind) == ("Poster Session 3", "poster")


@needs_samples
def test_poster_listing_takes_venue_and_year_from_options():
    rec = records(parse(POSTER_PAGE, venue="ICLR 2023"))[0]
    assert (rec.appearance.venue, rec.appearance.year, rec.year) == ("ICLR", 2023, 2023)
    rec = records(parse(POSTER_PAGE))[0]
    assert (rec.appearance.venue, rec.appearance.year) == (None, None)


# --- Hugging Face Papers feed -------------------------------------------------------------------

@needs_samples
def test_feed_entries_banner_stripped():
    items = parse(FEED_PAGE)
    papers = records(items)
    assert len(papers) == 203
    first = papers[0]
    assert first.title == "Visualizing Deep Networks by Optimizing with Integrated Gradients"
    assert first.abstract.startswith("Understanding and interpreting the decisions made by deep learning models")
    assert first.line == 3
    assert not any("trending papers" in p.title.lower() or p.title.startswith("Subscribe") for p in papers)
    assert all(p.authors == [] and p.abstract and p.flags == [] for p in papers)
    assert all(p.appearance.venue == "Hugging Face Papers" and p.appearance.presentation == "paper" for p in papers)
    assert all(p.appearance.starts_at is None and p.year is None for p in papers)
    second = papers[1]
    assert second.title == ("Learning More with Less: A Dynamic Dual-Level Down-Sampling Framework for "
                            "Efficient Policy Optimization")
    assert second.line == 5
    last = papers[-1]
    assert last.title == "A Statistical Theory of Contrastive Learning via Approximate Sufficient Statistics"
    assert last.abstract.startswith("Contrastive learning -- a modern approach")
    assert last.line == 407
    lr = by_title(items, "Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach to Neural "
                         "Network Training")
    assert lr.line == 253
    assert of_kind(items, SessionRecord) == []


@needs_samples
def test_feed_venue_from_options():
    rec = records(parse(FEED_PAGE, venue="My Reading List"))[0]
    assert rec.appearance.venue == "My Reading List"


def test_feed_recovers_from_a_missing_abstract_and_an_orphan_abstract():
    long = "We study things. " * 30
    text = "\n".join(["First Title", long, "Title Without Abstract", "Third Title", long, long, "Last Title", long])
    items = list(FEED.parse(from_text(text), ImportOptions()))
    papers = records(items)
    assert [p.title for p in papers] == ["First Title", "Title Without Abstract", "Third Title", "Last Title"]
    assert [bool(p.abstract) for p in papers] == [True, False, True, True]
    (problem,) = of_kind(items, Problem)
    assert problem.line == 6 and "no title" in problem.message


# --- sniffing -----------------------------------------------------------------------------------

def _available_importers():
    found = {}
    for name in IMPORTER_MODULES:
        try:
            module = importlib.import_module(f"paperscope.ingest.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"paperscope.ingest.{name}":
                continue  # not written yet
            raise
        found[module.IMPORTER.name] = module.IMPORTER
    return found


@needs_samples
@pytest.mark.parametrize("page", sorted(EXPECTED_FORMAT))
def test_sniff_picks_the_right_importer_with_a_clear_margin(page):
    source = read_source(PAGES / page)
    scores = {name: importer.sniff(source) for name, importer in _available_importers().items()}
    best = max(scores, key=scores.get)
    assert best == EXPECTED_FORMAT[page], scores
    runner_up = max((s for n, s in scores.items() if n != best), default=0.0)
    assert scores[best] >= 0.8 and scores[best] - runner_up >= 0.3, scores


def _random_texts() -> dict[str, str]:
    readme = (SHARED / "samples" / "README.md")
    csv_rows = ["title,authors,venue,year"] + [f"Paper {i},Author {i} · Other {i},ICLR,2023" for i in range(50)]
    json_text = '{"papers": [' + ", ".join(f'{{"title": "Paper {i}", "abstract": "Text {i}."}}' for i in range(50)) + "]}"
    markdown = "\n".join(f"## Section {i}\n" + "This is a long paragraph of prose about the project. " * 6
                         for i in range(8))
    return {
        "readme": readme.read_text(encoding="utf-8") if readme.is_file() else "# Project\n\nSome prose.\n",
        "csv": "\n".join(csv_rows),
        "json": json_text,
        "markdown": markdown,
        "html": HTML_GARBAGE,
        "log": "\n".join(f"2022-07-21 12:{i:02d}:00 INFO request served in {i} ms" for i in range(60)),
    }


HTML_GARBAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ICML 2022</title>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script>
<style>.card { margin: 0; padding: 4px; } .hidden { display: none; }</style>
</head><body>
<div class="container"><div class="row"><a href="/virtual/2022/session/20000">Deep Learning</a></div>
<span class="badge">Outstanding Paper</span> <div class="author">Chen Cai · Yusu Wang</div>
</div></body></html>
"""


@pytest.mark.parametrize("kind", ["readme", "csv", "json", "markdown", "html", "log"])
def test_sniffers_do_not_claim_other_text(kind):
    source = from_text(_random_texts()[kind], f"other.{kind}")
    for name, importer in MINE.items():
        assert importer.sniff(source) < 0.5, (name, kind)


# --- bad input ----------------------------------------------------------------------------------

def parse_all(source: Source) -> dict[str, list]:
    return {name: list(importer.parse(source, ImportOptions())) for name, importer in MINE.items()}


def test_html_garbage_gives_problems_not_records():
    for name, items in parse_all(from_text(HTML_GARBAGE, "garbage.html")).items():
        assert records(items) == [], name
        assert of_kind(items, Problem), name
        assert all(p.message and p.line for p in of_kind(items, Problem)), name


def test_binary_bytes_are_a_source_error():
    blob = bytes(range(256)) * 64
    source = source_from_bytes("/tmp/blob.bin", blob)
    for importer in MINE.values():
        with pytest.raises(SourceError):
            importer.sniff(source)
        with pytest.raises(SourceError):
            list(importer.parse(source, ImportOptions()))


def test_empty_and_whitespace_sources_are_source_errors():
    for raw in (b"", b"   \n\n\t\n"):
        with pytest.raises(SourceError):
            source_from_bytes("/tmp/empty.txt", raw)
    for importer in (SESSION, POSTERS):
        items = list(importer.parse(Source(locator="/tmp/x", data=b"x"), ImportOptions()))
        assert records(items) == [] and of_kind(items, Problem)


def test_folder_is_not_claimed(tmp_path):
    source = Source(locator=str(tmp_path), path=tmp_path, is_dir=True)
    for importer in MINE.values():
        assert importer.sniff(source) == 0.0
        with pytest.raises(SourceError):
            list(importer.parse(source, ImportOptions()))


def test_ten_megabyte_single_line_is_a_problem_not_a_crash():
    source = from_text("A" * 10_000_000, "huge.txt")
    for importer in MINE.values():
        assert importer.sniff(source) < 0.5
    for name, items in parse_all(source).items():
        problems = of_kind(items, Problem)
        assert records(items) == [], name
        assert any(p.line == 1 and "10,000,000 characters" in p.message for p in problems), name
        assert all(len(p.raw) <= 2000 for p in problems), name


@needs_samples
def test_overlong_line_inside_a_page_costs_only_that_line():
    lines = page_text(ORAL).splitlines()
    lines.insert(2, "<div>" + "x" * 2_000_000 + "</div>")
    items = list(SESSION.parse(from_text("\n".join(lines)), ImportOptions()))
    assert len(records(items)) == 7
    (problem,) = of_kind(items, Problem)
    assert problem.line == 3
    assert records(items)[0].line == 10  # numbering unchanged after the skipped line


@needs_samples
def test_truncated_session_page_keeps_what_is_there():
    text = page_text(ORAL)
    cut_after_slot = text[: text.index("Tue 26 April 2:30 - 2:45 PDT") + len("Tue 26 April 2:30 - 2:45 PDT")]
    items = list(SESSION.parse(from_text(cut_after_slot), ImportOptions()))
    assert len(records(items)) == 6
    (problem,) = of_kind(items, Problem)
    assert problem.line == 59 and "no talk under it" in problem.message

    cut_in_title = text[: text.index("Representational Continuity") + len("Representational Contin")]
    items = list(SESSION.parse(from_text(cut_in_title), ImportOptions()))
    talks = records(items)
    assert len(talks) == 7 and talks[-1].title == "Representational Contin"
    assert talks[-1].flags == ["missing_authors"]

    half = page_text(HALL_F)[: len(page_text(HALL_F)) // 2]
    talks = records(SESSION.parse(from_text(half), ImportOptions()))
    assert 5 <= len(talks) < 15
    assert all(t.title and t.appearance.starts_at for t in talks)


@needs_samples
def test_truncated_poster_listing_and_feed():
    text = page_text(POSTER_PAGE)
    items = list(POSTERS.parse(from_text(text[: len(text) // 3]), ImportOptions()))
    assert 30 <= len(records(items)) < 135
    assert all(isinstance(i, (PaperRecord, Problem, SessionRecord)) for i in items)

    cut = text[: text.index("In-Person Poster presentation / top 25% paper") + 45]
    items = list(POSTERS.parse(from_text(cut), ImportOptions()))
    assert of_kind(items, Problem)[-1].message.startswith("a presentation line with no poster")

    feed = page_text(FEED_PAGE)
    papers = records(FEED.parse(from_text(feed[: len(feed) // 2]), ImportOptions()))
    assert 90 <= len(papers) <= 110
    assert papers[0].title == "Visualizing Deep Networks by Optimizing with Integrated Gradients"


@needs_samples
def test_wrongly_encoded_page_is_read_with_a_problem():
    # The page saved as Windows-1252: "·" and "é" are single bytes, invalid as UTF-8.
    raw = page_text(HALL_F).encode("cp1252")
    source = source_from_bytes("/tmp/hall-f-cp1252.txt", raw)
    items = list(SESSION.parse(source, ImportOptions()))
    talks = records(items)
    assert len(talks) == 15
    assert by_title(items, "Rich Feature Construction for the Optimization-Generalization Dilemma").authors == [
        "Jianyu Zhang", "David Lopez-Paz", "Léon Bottou"]
    # The decoding problem is on the source (the pipeline adds it to the items), naming the line.
    assert len(source.problems) == 1 and "UTF-8" in source.problems[0].message
    assert source.problems[0].line == 16  # first author line with "·"

    # UTF-16 (with BOM) is decoded without a problem.
    source = source_from_bytes("/tmp/oral-utf16.txt", page_text(ORAL).encode("utf-16"))
    assert len(records(SESSION.parse(source, ImportOptions()))) == 7 and source.problems == []


@needs_samples
def test_one_bad_byte_does_not_garble_the_valid_utf8_around_it():
    raw = page_text(HALL_F).replace("Léon", "L\udce9on").encode("utf-8", "surrogateescape")
    source = source_from_bytes("/tmp/hall-f-mixed.txt", raw)
    talks = records(SESSION.parse(source, ImportOptions()))
    assert len(talks) == 15 and source.problems
    assert talks[0].authors == ["Chen Cai", "Yusu Wang"]


@needs_samples
def test_stray_bad_bytes_inside_a_feed():
    raw = page_text(FEED_PAGE).encode("utf-8").replace(b"Integrated Gradients", b"Integrated \xff\xfe Gradients", 1)
    source = source_from_bytes("/tmp/feed-bad.txt", raw)
    papers = records(FEED.parse(source, ImportOptions()))
    assert len(papers) == 203 and source.problems and source.problems[0].line == 3


def test_unknown_zone_keeps_the_talk_without_a_time():
    text = "\n".join([
        "Deep Learning", "Hall F", "Moderator: Robin Walters",
        "Thu 21 July 12:30 - 12:35 XYZ", "A Talk Title", "Ada Lovelace · Alan Turing", "An abstract.",
        "Thu 21 July 12:35 - 12:40 PDT", "Another Talk", "Grace Hopper · Edsger Dijkstra", "Another abstract.",
    ])
    items = list(SESSION.parse(from_text(text), ImportOptions(year=2022)))
    talks = records(items)
    assert [t.title for t in talks] == ["A Talk Title", "Another Talk"]
    assert talks[0].appearance.starts_at is None and talks[0].appearance.slot_text.endswith("XYZ")
    assert talks[1].appearance.starts_at == utc(2022, 7, 21, 19, 35)
    (problem,) = of_kind(items, Problem)
    assert problem.line == 4 and "XYZ" in problem.message and "kept" in problem.message


def test_talk_with_neither_title_nor_authors_is_a_problem():
    text = "\n".join([
        "Session A",
        "Thu 21 July 12:30 - 12:35 PDT", "Outstanding Paper",
        "Thu 21 July 12:35 - 12:40 PDT", "Real Title", "Ada Lovelace · Alan Turing", "Abstract.",
        "Thu 21 July 12:40 - 12:45 PDT", "<div class='talk'><span>broken</span></div>", "<p>x</p>",
    ])
    items = list(SESSION.parse(from_text(text), ImportOptions(year=2022)))
    assert [t.title for t in records(items)] == ["Real Title"]
    problems = of_kind(items, Problem)
    assert [p.line for p in problems] == [2, 8]
    assert "neither a title nor authors" in problems[0].message and "Outstanding Paper" in problems[0].raw
    assert "markup" in problems[1].message


def test_spotlight_badge_and_plain_session_types():
    text = "\n".join([
        "Spotlight Session: Vision", "Room 101",
        "Mon 10 June 9:00 am - 9:10 am CEST", "Spotlight", "Seeing Things", "Ann Example · Bob Example", "Abs.",
        "Mon 10 June 9:10 am - 9:20 am CEST", "Oral", "Seeing More", "Cy Example · Di Example", "Abs.",
    ])
    items = list(SESSION.parse(from_text(text), ImportOptions(venue="CVPR 2024")))
    talks = records(items)
    assert [t.appearance.presentation for t in talks] == ["spotlight", "oral"]
    assert talks[0].appearance.track == "Vision" and talks[0].appearance.room == "Room 101"
    assert talks[0].appearance.starts_at == utc(2024, 6, 10, 7, 0)
    assert (talks[0].appearance.venue, talks[0].year) == ("CVPR", 2024)
