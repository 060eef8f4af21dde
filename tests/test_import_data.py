"""Importers for real data: paperlists JSON, Mini-Conf sites, and tables (CSV / TSV / JSON Lines / JSON).

The real corpora live in the shared folder next to the repository (see shared/data/README.md);
tests that need them skip with a reason when it is absent. Small odd cases are written here.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from paperscope.ingest import expand_paths, sniff
from paperscope.ingest.base import Source, SourceError, read_source, source_from_bytes
from paperscope.ingest.miniconf import IMPORTER as MINICONF
from paperscope.ingest.paperlists import IMPORTER as PAPERLISTS
from paperscope.ingest.paperlists import arxiv_id, doi_from, map_status, split_names
from paperscope.ingest.tabular import IMPORTER as TABULAR
from paperscope.model import ImportOptions, Note, PaperRecord, Problem, SessionRecord

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"
PAGES = SHARED / "samples" / "pages"
PAPERLISTS_DIR = DATA / "paperlists"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared corpora not found at {DATA}")


def parse(importer, source, **options):
    return list(importer.parse(source, ImportOptions(**options)))


def split(items):
    papers = [i for i in items if isinstance(i, PaperRecord)]
    sessions = [i for i in items if isinstance(i, SessionRecord)]
    problems = [i for i in items if isinstance(i, Problem)]
    notes = [i for i in items if isinstance(i, Note)]
    return papers, sessions, problems, notes


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


# =========================================================================== paperlists

@pytest.fixture(scope="module")
def index():
    path = PAPERLISTS_DIR / "INDEX.tsv"
    if not path.is_file():
        pytest.skip(f"paperlists INDEX.tsv not found at {path}")
    with path.open(newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def paperlist(name: str) -> Source:
    path = PAPERLISTS_DIR / f"{name}.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return read_source(path)


INDEX_FILES = [
    "head/iclr/iclr2018.json",
    "fallback_older_commits/iclr/iclr2023.json",
    "head/nips/nips2018.json",
    "head/cvpr/cvpr2019.json",
    "head/acl/acl2021.json",
    "fallback_older_commits/icml/icml2022.json",
    "head/siggraphasia/siggraphasia2021.json",
]


@needs_data
@pytest.mark.parametrize("name", INDEX_FILES)
def test_paperlists_counts_agree_with_index(index, name):
    row = index[name]
    papers, sessions, problems, notes = split(parse(PAPERLISTS, paperlist(name)))
    # Every record is either a paper or a Problem: nothing is dropped silently.
    assert len(papers) + len(problems) == int(row["records"])
    assert sum(1 for p in papers if p.abstract) == int(row["with_abstract"])
    assert sum(1 for p in papers if p.authors) == int(row["with_authors"])
    assert sum(1 for p in papers if p.keywords) == int(row["with_keywords"])
    # The status histogram survives as decisions (Withdraw/Reject reworded, the rest as written).
    expected = Counter()
    for part in row["status"].split(";"):
        status, count = part.rsplit(":", 1)
        expected[map_status(status)[1]] += int(count)
    got = Counter(p.appearance.decision for p in papers) + Counter(
        map_status(json.loads(pr.raw).get("status", ""))[1] for pr in problems)
    assert got == expected
    venue, year = row["venue"], int(row["year"])
    assert {p.appearance.year for p in papers} == {year}
    assert {p.appearance.venue.lower().replace(" ", "").replace("neurips", "nips") for p in papers} == {venue}
    assert not notes and not sessions


@needs_data
def test_siggraphasia2021_records_without_title_or_authors_are_problems_naming_the_record(index):
    papers, _, problems, _ = split(parse(PAPERLISTS, paperlist("head/siggraphasia/siggraphasia2021.json")))
    assert len(problems) == 87 and len(papers) == 5
    first = problems[0]
    assert first.line == 1 and first.message.startswith("record 1: no title and no authors")
    assert json.loads(first.raw)["ssid"] == "papers_173"  # the raw record is kept
    assert all(p.appearance.session for p in papers)  # "sess" -> session
    # A record with authors but no title is kept and flagged, never dropped.
    papers, _, problems, _ = split(parse(PAPERLISTS, paperlist("head/siggraph/siggraph2021.json")))
    untitled = [p for p in papers if not p.title]
    assert len(untitled) == 1 and not problems
    assert untitled[0].flags == ["missing_title"] and untitled[0].authors[0] == "Pierre Ecormier-Nocca"


@needs_data
def test_paperlists_fields_of_real_records():
    papers = {p.ids.get("openreview"): p for p in split(parse(PAPERLISTS, paperlist("head/iclr/iclr2018.json")))[0]}
    rec = papers["B11bwYgfM"]
    assert rec.title == "Robust Task Clustering for Deep and Diverse Multi-Task and Few-Shot Learning"
    assert rec.authors[:2] == ["Mo Yu", "Xiaoxiao Guo"] and len(rec.authors) == 8
    assert rec.keywords == ["task clustering", "matrix completion", "multi-task learning", "few-shot learning"]
    assert rec.tldr.startswith("We propose a matrix-completion based task clustering algorithm")
    assert rec.abstract.startswith("We investigate task clustering for deep learning-based multi-task")
    app = rec.appearance
    assert (app.venue, app.year, app.track) == ("ICLR", 2018, "main")
    assert app.presentation is None and app.decision == "Withdrawn"  # kept, but never a "poster"
    assert app.url == "https://openreview.net/forum?id=B11bwYgfM"
    assert rec.key == "id:B11bwYgfM" and rec.line == 1

    nips = {p.title: p for p in split(parse(PAPERLISTS, paperlist("head/nips/nips2018.json")))[0]}
    concave = nips["(Probably) Concave Graph Matching"]
    assert concave.authors == ["Haggai Maron", "Yaron Lipman"]
    assert (concave.appearance.venue, concave.appearance.presentation, concave.appearance.decision) == (
        "NeurIPS", "spotlight", "Spotlight")
    assert "\\cite{zaslavskiy2009path,Vestner2017}" in concave.abstract  # raw LaTeX kept
    assert "openreview" not in concave.ids  # numeric site ids are not OpenReview ids

    iclr23 = {p.ids.get("openreview"): p for p in split(parse(
        PAPERLISTS, paperlist("fallback_older_commits/iclr/iclr2023.json")))[0]}
    top5 = iclr23["067CGykiZTS"]  # no link in the record: the id itself is the forum id
    assert top5.title == "Scaling Up Probabilistic Circuits by Latent Variable Distillation"
    assert top5.authors == ["Anji Liu", "Honghua Zhang", "Guy Van den Broeck"]  # "authors", comma-joined
    assert (top5.appearance.presentation, top5.appearance.decision) == ("oral", "Top-5%")


@needs_data
def test_paperlists_ids_from_links_arxiv_and_doi():
    cvpr = split(parse(PAPERLISTS, paperlist("fallback_older_commits/cvpr/cvpr2020.json")))[0]
    with_arxiv = [p for p in cvpr if "arxiv" in p.ids]
    assert len(with_arxiv) > 500
    assert all("v" not in p.ids["arxiv"] and ":" not in p.ids["arxiv"] for p in with_arxiv)
    aaai = split(parse(PAPERLISTS, paperlist("fallback_older_commits/aaai/aaai2021.json")))[0]
    assert sum(1 for p in aaai if p.ids.get("doi", "").startswith("10.1609/aaai.v35i")) > 1500
    icml24 = split(parse(PAPERLISTS, paperlist("fallback_older_commits/icml/icml2024.json")))[0]
    assert all(p.ids.get("openreview") for p in icml24)  # from the "openreview" link field


def test_status_mapping():
    assert map_status("Oral") == ("oral", "Oral")
    assert map_status("Talk") == ("oral", "Talk")
    assert map_status("Top-5%") == ("oral", "Top-5%")
    assert map_status("Top-25%") == ("spotlight", "Top-25%")
    assert map_status("Spotlight") == ("spotlight", "Spotlight")
    assert map_status("Highlight") == ("spotlight", "Highlight")
    assert map_status("Poster") == ("poster", "Poster")
    assert map_status("Workshop") == ("poster", "Workshop")
    assert map_status("Reject") == (None, "Rejected")
    assert map_status("Desk Reject") == (None, "Desk rejected")
    assert map_status("Withdraw") == (None, "Withdrawn")
    assert map_status("Active") == (None, "No decision")
    assert map_status("Technical Paper") == ("paper", "Technical Paper")
    assert map_status("Long Findings") == ("paper", "Long Findings")
    assert map_status("Accept (Oral)") == ("oral", "Accept (Oral)")
    assert map_status("Accept: notable-top-25%") == ("spotlight", "Accept: notable-top-25%")
    assert map_status("None") == (None, None) and map_status("") == (None, None)


def test_id_and_name_helpers():
    assert arxiv_id("arXiv:1802.09232") == "1802.09232"
    assert arxiv_id("2004.03327v3") == "2004.03327"
    assert arxiv_id("https://arxiv.org/pdf/2101.00001v2.pdf") == "2101.00001"
    assert arxiv_id("hep-th/9901001") == "hep-th/9901001"
    assert doi_from("https://link.springer.com/chapter/10.1007/978-3-031-19836-6 _31") == "10.1007/978-3-031-19836-6_31"
    assert doi_from("https://doi.org/10.1145/1778765.1778796") == "10.1145/1778765.1778796"
    assert split_names("Yosef Gandelsman;  Assaf Shocher;  Michal Irani") == ["Yosef Gandelsman", "Assaf Shocher",
                                                                              "Michal Irani"]
    assert split_names("Girma Alemneh, Andreas Rauber and Solomon Atnafu") == ["Girma Alemneh", "Andreas Rauber",
                                                                              "Solomon Atnafu"]
    assert split_names("A B|C D") == ["A B", "C D"]
    assert split_names(["A B", {"name": "C D"}]) == ["A B", "C D"]


@needs_data
def test_truncated_gzip_keeps_the_records_before_the_cut():
    raw = (PAPERLISTS_DIR / "head/iclr/iclr2018.json.gz").read_bytes()
    full = split(parse(PAPERLISTS, source_from_bytes("/x/iclr2018.json.gz", raw)))[0]
    cut = source_from_bytes("/x/iclr2018.json.gz", raw[: len(raw) // 2])
    papers, _, problems, _ = split(parse(PAPERLISTS, cut))
    assert 0 < len(papers) < len(full)
    assert [p.title for p in papers] == [p.title for p in full[: len(papers)]]
    assert len(problems) == 1
    message = problems[0].message
    assert message.startswith(f"the data ends inside record {len(papers) + 1}, which starts at line ")
    assert "column" in message and f"the {len(papers)} records before it were read" in message
    assert not cut.problems  # a cut inside a multi-byte character is not an encoding problem


def test_truncated_json_text_and_multibyte_cut():
    records = [{"title": f"Paper {i} — ünïcode", "author": "A B;C D", "status": "Poster", "track": "main"}
               for i in range(5)]
    data = json.dumps(records, indent=2, ensure_ascii=False).encode()
    cut_at = data.index("ünïcode".encode(), data.index(b"Paper 3")) + 1  # inside "ü"
    source = source_from_bytes("/x/iclr2020.json", gzip.compress(data)[: len(gzip.compress(data))])
    assert len(split(parse(PAPERLISTS, source))[0]) == 5
    cut = source_from_bytes("/x/iclr2020.json", data[:cut_at])
    papers, _, problems, _ = split(parse(PAPERLISTS, cut))
    assert [p.title for p in papers] == [f"Paper {i} — ünïcode" for i in range(3)]
    assert len(problems) == 1 and "inside record 4" in problems[0].message
    assert not cut.problems


def test_paperlists_bad_records_and_unreadable_sources():
    data = json.dumps([{"title": "Good", "status": "Oral", "track": "main"}, 42, {"status": "Poster"},
                       {"title": "", "author": "Only Author"}]).encode()
    papers, _, problems, _ = split(parse(PAPERLISTS, source_from_bytes("/x/icml2019.json", data)))
    assert [p.title for p in papers] == ["Good", ""]
    assert papers[1].flags == ["missing_title"] and papers[1].line == 4
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(2, "record 2"), (3, "record 3")]
    assert "expected a JSON object, found a number" in problems[0].message
    with pytest.raises(SourceError, match="not a JSON list"):
        parse(PAPERLISTS, source_from_bytes("/x/a.json", b"this is not json"))
    with pytest.raises(SourceError, match="expected a JSON list"):
        parse(PAPERLISTS, source_from_bytes("/x/a.json", b'{"title": "x"}'))
    with pytest.raises(SourceError, match="no record could be read"):
        parse(PAPERLISTS, source_from_bytes("/x/a.json", b'[{"title": "cut'))


def test_paperlists_venue_and_year_options_override_the_file_name():
    data = json.dumps([{"title": "T", "author": "A B", "status": "Poster", "track": "main"}]).encode()
    papers = split(parse(PAPERLISTS, source_from_bytes("/x/iclr2018.json", data), venue="ICLR Workshop", year=2019))[0]
    assert (papers[0].appearance.venue, papers[0].appearance.year, papers[0].year) == ("ICLR Workshop", 2019, 2019)
    items = parse(PAPERLISTS, source_from_bytes("/x/list.json", data))
    assert any(isinstance(i, Note) and "--venue/--year" in i.message for i in items)


# =========================================================================== sniffing

@needs_data
def test_sniffing_recognises_each_format_with_a_margin():
    others = {"paperlists": (TABULAR, MINICONF), "tabular": (PAPERLISTS, MINICONF), "miniconf": (PAPERLISTS, TABULAR)}
    cases = [
        (paperlist("head/iclr/iclr2018.json"), PAPERLISTS),
        (paperlist("fallback_older_commits/iclr/iclr2023.json"), PAPERLISTS),
        (read_source(DATA / "iclr2021_openreview_evanzd" / "paperlist.tsv"), TABULAR),
        (read_source(DATA / "neurips_1987_2019_akshaypithadiya" / "papers" / "2019.json"), TABULAR),
        (read_source(DATA / "iclr2020_virtual_site"), MINICONF),
        (read_source(DATA / "emnlp2020_virtual_site"), MINICONF),
        (read_source(DATA / "acl2020_virtual_site"), MINICONF),
        (read_source(DATA / "miniconf_sample_iclr2020"), MINICONF),
    ]
    for source, importer in cases:
        score = importer.sniff(source)
        assert score >= 0.5, source.locator
        for other in others[importer.name]:
            assert other.sniff(source) <= score - 0.15, (source.locator, other.name)
        assert sniff(source)[0].name == importer.name, source.locator


@pytest.mark.skipif(not PAGES.is_dir(), reason=f"sample pages not found at {PAGES}")
def test_saved_pages_are_not_claimed():
    pages = sorted(PAGES.glob("*.txt"))
    assert pages
    for path in pages:
        source = read_source(path)
        for importer in (PAPERLISTS, TABULAR, MINICONF):
            assert importer.sniff(source) < 0.5, (path.name, importer.name)


@needs_data
def test_a_site_folder_is_one_source_and_other_folders_are_walked():
    assert list(expand_paths([DATA / "iclr2020_virtual_site"])) == [DATA / "iclr2020_virtual_site"]
    assert MINICONF.sniff(read_source(PAPERLISTS_DIR / "head" / "iclr")) == 0.0
    walked = list(expand_paths([PAPERLISTS_DIR / "head" / "iclr"]))
    assert [p.name for p in walked] == ["iclr2013.json.gz", "iclr2014.json.gz", "iclr2017.json.gz", "iclr2018.json.gz"]


# =========================================================================== Mini-Conf

def site(name: str) -> Source:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return read_source(path)


@pytest.fixture(scope="module")
def iclr2020():
    return split(parse(MINICONF, site("iclr2020_virtual_site")))


@needs_data
def test_iclr2020_site_papers_and_poster_sessions(iclr2020):
    papers, sessions, problems, notes = iclr2020
    assert not problems and not notes
    forums = {p.ids["openreview"] for p in papers}
    assert len(forums) == 687
    posters = [p for p in papers if p.appearance.presentation == "poster"]
    assert len(posters) == 1374  # every paper in two poster sessions
    assert Counter(p.ids["openreview"] for p in posters) == Counter({f: 2 for f in forums})
    assert len({p.key for p in papers}) == len(papers)  # distinct keys per appearance
    assert all(p.appearance.starts_at.tzinfo == timezone.utc and p.appearance.mode == "virtual" for p in posters)
    assert {(p.appearance.venue, p.appearance.year) for p in papers} == {("ICLR", 2020)}
    poster_sessions = [s for s in sessions if s.kind == "poster"]
    assert len(poster_sessions) == 20
    assert all(s.starts_at and s.ends_at and s.ends_at - s.starts_at == (utc(2020, 1, 1, 7) - utc(2020, 1, 1, 5))
               for s in poster_sessions)
    talks = [p for p in papers if p.appearance.presentation == "talk"]
    assert len({p.ids["openreview"] for p in talks}) == 155  # ICLR's oral schedule, untimed
    assert all(p.appearance.starts_at is None and p.appearance.session.startswith("Orals ") for p in talks)
    keynotes = {s.name: s for s in sessions if s.kind == "keynote"}
    assert len(keynotes) == 8
    bengio = keynotes["Live QA: Yoshua Bengio / Yann LeCun"]
    assert (bengio.starts_at, bengio.ends_at) == (utc(2020, 4, 30, 16, 0), utc(2020, 4, 30, 16, 30))
    assert {s.kind for s in sessions} == {"poster", "keynote", "expo", "social"}


@needs_data
def test_iclr2020_session_times_match_the_raw_schedule(iclr2020):
    yaml = pytest.importorskip("yaml")
    sitedata = DATA / "iclr2020_virtual_site" / "sitedata"
    schedule = yaml.safe_load((sitedata / "schedule.yml").read_text())
    posters = yaml.safe_load((sitedata / "poster_schedule.yml").read_text())
    slots = {k: [datetime.strptime(v.strip(), "%I:%M %p").time() for v in pair]
             for k, pair in schedule["time_slots"].items()}
    times = {}
    for day in schedule["conference"]:
        date = datetime.strptime(day["day"], "%Y-%m-%d").date()
        for event in day["events"]:
            if event.get("type") == "poster":
                times[(date.strftime("%a"), int(event["short"].split("S")[1]))] = (
                    datetime.combine(date, slots[event["slot"]][0], tzinfo=timezone.utc),
                    datetime.combine(date, slots[event["slot"]][1], tzinfo=timezone.utc))
    expected: dict[str, set] = {}
    for entry in posters:
        weekday, _, n = entry["name"].split()
        for poster in entry["posters"]:
            expected.setdefault(poster["id"], set()).add((entry["name"], *times[(weekday[:3], int(n))]))
    papers = iclr2020[0]
    got: dict[str, set] = {}
    for p in papers:
        if p.appearance.presentation == "poster":
            got.setdefault(p.ids["openreview"], set()).add(
                (p.appearance.session, p.appearance.starts_at, p.appearance.ends_at))
    assert got == expected
    # Spot checks against the raw files, by hand: "Mon Session 1" is P1S1, 05:00-07:00 UTC on 27 April.
    assert ("Mon Session 1", utc(2020, 4, 27, 5), utc(2020, 4, 27, 7)) in got["B1e9Y2NYvS"]
    assert ("Thurs Session 5", utc(2020, 4, 30, 20), utc(2020, 4, 30, 22)) in set().union(*got.values())


@needs_data
def test_iclr2020_paper_fields(iclr2020):
    rec = next(p for p in iclr2020[0] if p.ids["openreview"] == "rkgt0REKwS")
    assert rec.title == "Curriculum Loss: Robust Learning and Generalization  against Label Corruption".replace("  ", " ")
    assert rec.authors == ["Yueming Lyu", "Ivor W. Tsang"]
    assert rec.keywords[:2] == ["curriculum learning", "expressive power"]
    assert rec.tldr == "A novel loss bridges curriculum learning and robust learning"
    assert rec.abstract.startswith("Deep neural networks (DNNs) have great expressive power")
    assert rec.appearance.url == "https://openreview.net/forum?id=rkgt0REKwS"


@needs_data
def test_emnlp2020_site():
    papers, sessions, problems, notes = split(parse(MINICONF, site("emnlp2020_virtual_site")))
    assert not problems and not notes
    assert len(papers) == 781 + 447 + 29 + 814  # main, findings, demo, workshop papers; each in <= 1 session
    timed = [p for p in papers if p.appearance.starts_at]
    assert len(timed) == 810
    s1a = [p for p in timed if p.key.endswith("@z1A")]
    assert {p.key.split("@")[0] for p in s1a} == {"main.438", "main.440", "main.2688", "main.2996"}
    assert all((p.appearance.starts_at, p.appearance.ends_at) == (utc(2020, 11, 16, 16), utc(2020, 11, 16, 17))
               and p.appearance.presentation == "talk" for p in s1a)
    assert s1a[0].appearance.session == ("Zoom Q&A Session 1A: Sentiment Analysis, Stylistic Analysis, "
                                         "and Argument Mining")
    findings = [p for p in papers if p.appearance.track == "Findings"]
    assert len(findings) == 447 and all(p.appearance.decision == "Findings" for p in findings)
    kinds = Counter(s.kind for s in sessions)
    assert kinds["qa"] == 62 and kinds["poster"] == 53 and kinds["keynote"] == 3
    cardie = next(s for s in sessions if s.kind == "keynote" and "Information Extraction" in s.name)
    assert cardie.starts_at == utc(2020, 11, 16, 15)
    # Workshop times given at UTC-5 are stored in UTC.
    conll = next(s for s in sessions if s.name.startswith("CoNLL 2020: Shared Task"))
    assert conll.kind == "workshop" and conll.starts_at == utc(2020, 11, 19, 10, 45)
    assert all(s.starts_at.tzinfo == timezone.utc for s in sessions)
    assert not any(s.name.lower().startswith(("coffee break", "conll 2020: coffee break")) for s in sessions)


@needs_data
def test_acl2020_site():
    papers, sessions, problems, notes = split(parse(MINICONF, site("acl2020_virtual_site")))
    assert not problems and not notes
    assert {(p.appearance.venue, p.appearance.year) for p in papers} == {("ACL", 2020)}
    main = [p for p in papers if p.key.startswith("main.")]
    assert len(main) == 2 * 778  # every main paper in two Q&A sessions
    first = sorted((p for p in main if p.key.split("@")[0] == "main.1"), key=lambda p: p.appearance.starts_at)[0]
    assert first.appearance.session == "QA Session 1A"
    assert (first.appearance.starts_at, first.appearance.ends_at) == (utc(2020, 7, 6, 5), utc(2020, 7, 6, 6))
    demo = [s for s in sessions if s.kind == "demo"]
    assert len(demo) == 44 and all(s.ends_at - s.starts_at == utc(2020, 1, 1, 0, 45) - utc(2020, 1, 1) for s in demo)
    assert Counter(s.kind for s in sessions)["qa"] == 30
    # Workshop files number their papers from 1 each: keys stay distinct.
    workshop = [p for p in papers if p.key.startswith("w")]
    assert len(workshop) == 418 and len({p.key for p in workshop}) == 418
    assert next(p for p in workshop if p.key == "w1.1").appearance.track == "W1: WiNLP 2020 Workshop"
    assert next(p for p in workshop if p.key == "w1.1").authors == [
        "Girma Neshir Alemneh", "Andreas Rauber", "Solomon Atnafu"]
    keynote = next(s for s in sessions if s.name == "Keynote by Prof. Kathleen R. McKeown")
    assert keynote.kind == "keynote" and keynote.starts_at == utc(2020, 7, 6, 14, 30)


@needs_data
def test_miniconf_template_sample():
    papers, sessions, problems, notes = split(parse(MINICONF, site("miniconf_sample_iclr2020")))
    assert not problems and not notes
    assert len({p.ids["openreview"] for p in papers}) == 687
    assert {(p.appearance.venue, p.appearance.year) for p in papers} == {("ICLR", 2020)}
    demo = sorted((p for p in papers if p.ids["openreview"] == "B1xSperKvH"), key=lambda p: p.appearance.starts_at)
    assert [(p.appearance.session, p.appearance.starts_at) for p in demo] == [
        ("Mon Session 1", utc(2020, 4, 27, 5)), ("Tues Session 1", utc(2020, 4, 28, 5))]
    assert len(sessions) == 56  # every calendar entry
    assert Counter(s.kind for s in sessions)["poster"] == 20


def test_miniconf_broken_files_give_problems_and_the_rest_lands(tmp_path):
    pytest.importorskip("yaml")
    sitedata = tmp_path / "conf2021_site" / "sitedata"
    sitedata.mkdir(parents=True)
    (sitedata / "papers.csv").write_text(
        "UID,title,authors,abstract,keywords,sessions\n"
        "p1,First Paper,A One|B Two,Abstract one,kw1|kw2,Mon Session 1\n"
        'p2,,C Three,"no title here",,\n'
        "p3,Third Paper,D Four,,,\n", encoding="utf-8")
    (sitedata / "main_calendar.json").write_text(json.dumps([
        {"title": "Poster Day 1 Session 1 (P1S1)", "start": "2021-05-03T05:00:00+00:00",
         "end": "2021-05-03T07:00:00+00:00", "link": "papers.html?session=Mon+Session+1", "calendarId": "---"},
        {"title": "Keynote: Someone", "start": "2021-05-03T09:00:00Z", "end": "2021-05-03T10:00:00Z"},
    ]))
    (sitedata / "poster_schedule.yml").write_text("- name: Mon Session 1\n  posters: [ {id: p3\n")  # broken
    (sitedata / "config.yml").write_text("name: MiniConf\n")
    source = read_source(tmp_path / "conf2021_site")
    assert MINICONF.sniff(source) > 0.5
    papers, sessions, problems, notes = split(parse(MINICONF, source, venue="CONF"))
    assert sorted(p.title for p in papers) == ["First Paper", "Third Paper"]
    messages = [p.message for p in problems]
    assert any(m.startswith("sitedata/papers.csv line 3: no title") for m in messages)
    assert any(m.startswith("sitedata/poster_schedule.yml") and "not valid YAML" in m for m in messages)
    first = next(p for p in papers if p.title == "First Paper")
    assert (first.appearance.session, first.appearance.starts_at) == ("Mon Session 1", utc(2021, 5, 3, 5))
    assert first.appearance.venue == "CONF" and first.appearance.year == 2021  # year from the dates
    assert {s.kind for s in sessions} == {"poster", "keynote"}
    assert any("year 2021" in n.message for n in notes)


def one_paper_site(tmp_path: Path, posters: str) -> Path:
    """A Mini-Conf site at ``tmp_path/iclr2020_site`` with paper p1 and one poster session whose
    ``posters`` value is written as given; its sitedata folder."""
    sitedata = tmp_path / "iclr2020_site" / "sitedata"
    sitedata.mkdir(parents=True)
    (sitedata / "papers.csv").write_text("UID,title,authors\np1,First Paper,A One\n", encoding="utf-8")
    (sitedata / "poster_schedule.yml").write_text(f"- name: Mon Session 1\n  posters: {posters}\n")
    return sitedata


def test_miniconf_values_of_the_wrong_shape_are_problems_and_the_rest_lands(tmp_path):
    # Found by the property tests: each of these files stopped the import with a TypeError,
    # AttributeError or OverflowError, or gave a session without a name.
    pytest.importorskip("yaml")
    sitedata = one_paper_site(tmp_path, posters="1")
    (sitedata / "schedule.yml").write_text(
        "time_slots: [1, 2]\nconference:\n- day: '9999-12-31'\n  events: {slot: 1}\n")
    (sitedata / "paper_sessions.yml").write_text("1A: {name: Session 1A, papers: true}\n")
    (sitedata / "plenary_sessions.yml").write_text(
        "- title: null\n  sessions: [{name: Live, start_time: '2020-07-06 05:00:00'}]\n")
    (sitedata / "main_calendar.json").write_text(json.dumps([
        {"title": "Before time", "start": "0001-01-01T00:00:00+05:00", "end": "0001-01-01T01:00:00+05:00"}]))
    papers, sessions, problems, _ = split(parse(MINICONF, read_source(tmp_path / "iclr2020_site")))
    assert [p.title for p in papers] == ["First Paper"]
    assert all(s.name for s in sessions)
    messages = [p.message for p in problems]
    assert "sitedata/schedule.yml: 'time_slots' should be a mapping, found a list; skipped" in messages
    assert "sitedata/schedule.yml: the events of 9999-12-31 should be a list, found a mapping; skipped" in messages
    assert "sitedata/paper_sessions.yml: the papers of session 'Session 1A' should be a list, found true/false; " \
           "skipped" in messages
    assert any(m.startswith("sitedata/plenary_sessions.yml: a session of the plenary sessions without a title")
               for m in messages)


def test_miniconf_an_impossible_yaml_date_is_a_problem_with_its_line_and_the_rest_lands(tmp_path):
    # Found by the coverage-guided fuzzer: PyYAML raised "month must be in 1..12" out of the import.
    pytest.importorskip("yaml")
    sitedata = one_paper_site(tmp_path, posters="p1")
    (sitedata / "overall_calendar.yml").write_text(
        "- title: Opening\n  start: 2020-04-26 08:00:00\n  end: 2020-04-26 09:00:00\n"
        "- title: Typo\n  start: 2020-13-01 10:00:00\n  end: 2020-04-27 11:00:00\n")
    papers, _, problems, _ = split(parse(MINICONF, read_source(tmp_path / "iclr2020_site")))
    assert [(p.title, p.appearance.session) for p in papers] == [("First Paper", "Mon Session 1")]
    assert any(p.message.startswith("sitedata/overall_calendar.yml line 5: impossible date or time "
                                    "'2020-13-01 10:00:00' (month must be in 1..12)") for p in problems), problems


def test_miniconf_a_lone_id_where_a_list_belongs_is_that_id(tmp_path):
    pytest.importorskip("yaml")
    one_paper_site(tmp_path, posters="p1")
    papers, _, problems, _ = split(parse(MINICONF, read_source(tmp_path / "iclr2020_site")))
    assert not problems
    assert [(p.title, p.appearance.session) for p in papers] == [("First Paper", "Mon Session 1")]


def test_miniconf_rejects_a_folder_without_papers(tmp_path):
    (tmp_path / "sitedata").mkdir()
    (tmp_path / "sitedata" / "config.yml").write_text("name: X\n")
    source = read_source(tmp_path)
    assert MINICONF.sniff(source) == 0.0
    with pytest.raises(SourceError):
        parse(MINICONF, source)


# =========================================================================== tables

@needs_data
def test_openreview_tsv_with_decisions():
    folder = DATA / "iclr2021_openreview_evanzd"
    papers, _, problems, notes = split(parse(TABULAR, read_source(folder / "paperlist.tsv")))
    assert len(papers) == 2966 and not problems
    assert all(p.ids.get("openreview") and p.abstract for p in papers)
    assert Counter(p.appearance.decision for p in papers) == Counter(
        {"Accept (Poster)": 693, "Rejected": 1755, None: 351, "Accept (Spotlight)": 114, "Accept (Oral)": 53})
    assert Counter(p.appearance.presentation for p in papers)["oral"] == 53
    first = papers[0]
    assert first.ids["openreview"] == "1Fqg133qRaI" and first.line == 2
    assert first.title == "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis"
    assert first.keywords[:3] == ["deep learning", "generative model", "image synthesis"]
    assert (first.appearance.venue, first.appearance.year) == ("ICLR", 2021)
    assert first.appearance.decision == "Accept (Poster)"
    assert any("joined from ratings.tsv" in n.message for n in notes)
    # The decisions table alone imports nothing and says why.
    papers, _, problems, notes = split(parse(TABULAR, read_source(folder / "ratings.tsv")))
    assert not papers and not problems and "no title column" in notes[0].message


@needs_data
def test_neurips_json_list_with_placeholder_abstracts():
    folder = DATA / "neurips_1987_2019_akshaypithadiya" / "papers"
    papers, _, problems, notes = split(parse(TABULAR, read_source(folder / "2008.json")))
    assert len(papers) == 250 and not problems
    assert sum(1 for p in papers if p.abstract) == 222  # "Abstract Missing" is no abstract
    assert {(p.appearance.venue, p.appearance.year) for p in papers} == {("NeurIPS", 2008)}
    assert papers[0].line == 2 and papers[1].line > papers[0].line  # real line numbers in the file


def test_csv_odd_cases_and_line_numbers():
    text = ("\ufeffTitle,Authors,Abstract,Session,Start,End,Type,Decision,DOI,arXiv\n"
            '"Attention, Please: A Study",Ann Lee; Bob Roe,"Line one\nline two, with comma",Oral 1,'
            "2022-07-21 12:30 PDT,12:35,Oral,Accept,https://doi.org/10.1145/123.456,arXiv:2101.00001v2\n"
            ",Carol Poe,An abstract without a title,,,,,,,\n"
            "\n"
            'Second Paper,"Dan Moe, Eve Zoe and Finn Ray",,Poster 2,2022-07-22T10:00:00Z,2022-07-22T12:00:00Z,'
            "poster,Reject,,\n"
            "Bad,Row,with,too,many,fields,x,y,z,w,EXTRA\n"
            "Naive Time,A B,,S,2022-07-22 10:00,,,,,\n")
    source = source_from_bytes("/tmp/program.csv", text.encode("utf-8-sig"))
    assert TABULAR.sniff(source) >= 0.8
    papers, _, problems, notes = split(parse(TABULAR, source, venue="ICML", year=2022))
    assert [p.title for p in papers] == ["Attention, Please: A Study", "Second Paper", "Naive Time"]
    first, second, naive = papers
    assert first.line == 2 and second.line == 6 and naive.line == 8
    assert first.authors == ["Ann Lee", "Bob Roe"]
    assert first.abstract == "Line one\nline two, with comma"
    assert first.ids == {"arxiv": "2101.00001", "doi": "10.1145/123.456"}
    a = first.appearance
    assert (a.session, a.presentation, a.decision, a.source_tz) == ("Oral 1", "oral", "Accept", "America/Los_Angeles")
    assert (a.starts_at, a.ends_at) == (utc(2022, 7, 21, 19, 30), utc(2022, 7, 21, 19, 35))
    assert second.authors == ["Dan Moe", "Eve Zoe", "Finn Ray"]
    assert (second.appearance.presentation, second.appearance.decision) == ("poster", "Rejected")
    assert naive.appearance.starts_at == utc(2022, 7, 22, 10)
    # The title-less row starts on line 4 (the quoted abstract above spans lines 2-3).
    assert [(p.line, p.message) for p in problems][0] == (4, "line 4: no title")
    assert problems[0].raw == ",Carol Poe,An abstract without a title,,,,,,,"
    assert problems[1].line == 7 and "11 fields but the header (line 1) has 10" in problems[1].message
    assert any("read as UTC" in n.message for n in notes)


def test_times_outside_the_range_of_dates_and_impossible_offsets_are_problems():
    # Found by fuzzing the importers: these stopped the import with OverflowError / ValueError.
    text = ("title,start,end\n"
            "Before Time,0001-01-01 00:00 +05:00,\n"
            "Odd Offset,2022-07-21 12:30 +99,\n"
            "Zone Folder,2022-07-21 12:30 America/Indiana,\n"
            "After Time,9999-12-31 23:30,0:30\n"
            "Fine,2022-07-21 12:30 +02:00,13:00\n")
    papers, _, problems, _ = split(parse(TABULAR, source_from_bytes("/tmp/times.csv", text.encode())))
    assert [p.title for p in papers] == ["Fine"]
    assert [(p.line, p.message) for p in problems] == [
        (2, "line 2: start 0001-01-01 00:00 +05:00 is outside the range of dates"),
        (3, "line 3: start unknown time zone '+99'"),
        (4, "line 4: start unknown time zone 'America/Indiana'"),
        (5, "line 5: end '0:30' falls after the last representable date"),
    ]


def test_semicolon_csv_and_tsv():
    source = source_from_bytes("/tmp/list.csv", "title;authors;year\nA Paper;X Y, Z W;2019\n".encode())
    papers = split(parse(TABULAR, source))[0]
    assert papers[0].authors == ["X Y", "Z W"] and papers[0].year == 2019
    source = source_from_bytes("/tmp/list.tsv", "Paper Title\tSpeakers\tRoom\nB\tP Q | R S\tHall F\n".encode())
    papers = split(parse(TABULAR, source))[0]
    assert papers[0].authors == ["P Q", "R S"] and papers[0].appearance.room == "Hall F"


def test_json_lines_and_json_objects():
    lines = ('{"title": "A", "authors": ["X Y", "Z W"], "year": 2021}\n'
             "{broken\n"
             "\n"
             '{"authors": "Q R"}\n'
             '{"paper_title": "B", "author": "M N | O P", "openreview": "https://openreview.net/forum?id=AbCdEf123",'
             ' "start": "2021-05-04T10:00:00+02:00", "end": "2021-05-04T11:00:00+02:00"}\n')
    source = source_from_bytes("/tmp/feed.jsonl", lines.encode())
    assert TABULAR.sniff(source) >= 0.5
    papers, _, problems, _ = split(parse(TABULAR, source))
    assert [(p.title, p.line) for p in papers] == [("A", 1), ("B", 5)]
    assert papers[1].ids == {"openreview": "AbCdEf123"}
    assert papers[1].appearance.starts_at == utc(2021, 5, 4, 8)
    assert [p.line for p in problems] == [2, 4]
    assert problems[0].raw == "{broken"
    # OpenReview-style notes keyed by id, with content/value wrappers.
    notes = {"n1": {"id": "n1", "content": {"title": {"value": "Wrapped"}, "authors": {"value": ["A B"]}}}}
    papers = split(parse(TABULAR, source_from_bytes("/tmp/notes.json", json.dumps(notes).encode())))[0]
    assert (papers[0].title, papers[0].authors, papers[0].key) == ("Wrapped", ["A B"], "id:n1")
    with pytest.raises(SourceError):
        parse(TABULAR, source_from_bytes("/tmp/x.json", b'{"config": 1}'))
    # A list of calendar events has titles but is not a list of papers.
    events = [{"title": "Live Q&A", "start": "2020-04-29T11:00:00+00:00", "end": "2020-04-29T11:30:00+00:00",
               "link": "https://example.org/speaker_5.html", "calendarId": "qa", "type": "QA Sessions"}]
    assert TABULAR.sniff(source_from_bytes("/tmp/main_calendar.json", json.dumps(events).encode())) < 0.2
