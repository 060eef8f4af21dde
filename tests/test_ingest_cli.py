"""Ingest as a user runs it: the CLI over real sample pages and every kind of bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperscope.cli import app

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "samples" / "pages"
needs_shared = pytest.mark.skipif(not PAGES.is_dir(), reason="needs the sample pages in ../shared/samples/pages")

runner = CliRunner()
BATCH_TITLE = "Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach to Neural Network Training"


def run(*args: str, db: str):
    result = runner.invoke(app, [*args, "--db", db], catch_exceptions=False)
    return result


def run_json(*args: str, db: str):
    result = run(*args, "--json", db=db)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


@needs_shared
def test_the_five_sample_pages_give_374_papers_in_375_appearances(catalog_url):
    result, data = run_json("ingest", *sorted(str(p) for p in PAGES.glob("*.txt")), db=catalog_url)
    assert result.exit_code == 0, result.output
    assert data["totals"]["records"] == 375
    assert data["totals"]["failed_sources"] == 0
    _, stats = run_json("stats", db=catalog_url)
    assert stats["papers"] == 374
    assert stats["appearances"] == 375
    flagged = [f for f in stats["flagged"] if "missing_title" in f["flags"]]
    assert len(flagged) == 1 and flagged[0]["slot"].startswith("Tue 26 April 2:15")


@needs_shared
def test_the_paper_in_both_the_poster_session_and_the_feed_is_one_paper(catalog_url):
    run("ingest", str(PAGES / "iclr2023-poster-session-3.txt"), "--venue", "ICLR 2023", db=catalog_url)
    run("ingest", str(PAGES / "hf-papers-listing.txt"), db=catalog_url)
    _, found = run_json("search", f'title:"{BATCH_TITLE}"', db=catalog_url)
    assert found["total"] == 1
    _, paper = run_json("show", found["hits"][0]["id"], db=catalog_url)
    venues = sorted(a["venue"] for a in paper["appearances"])
    assert venues == ["Hugging Face Papers", "ICLR"]
    assert paper["appearances"][0]["year"] == 2023 or paper["appearances"][1]["year"] == 2023


@needs_shared
def test_reingest_is_idempotent(catalog_url):
    pages = [str(p) for p in sorted(PAGES.glob("*.txt"))]
    run("ingest", *pages, db=catalog_url)
    _, before = run_json("stats", db=catalog_url)
    result, again = run_json("ingest", *pages, db=catalog_url)
    assert again["totals"]["unchanged_sources"] == 5 and again["totals"]["new_papers"] == 0
    _, after = run_json("stats", db=catalog_url)
    assert before == after


@needs_shared
def test_year_is_inferred_from_weekday_and_date_and_reported(catalog_url):
    result, data = run_json("ingest", str(PAGES / "icml2022-session-deep-learning-hall-f.txt"), db=catalog_url)
    notes = " ".join(data["sources"][0]["notes"])
    assert "2022" in notes


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


@pytest.fixture
def bad_inputs(tmp_path) -> dict[str, str]:
    good = (PAGES / "icml2022-session-deep-learning-hall-f.txt").read_text(encoding="utf-8") if PAGES.is_dir() else ""
    return {
        "empty": write(tmp_path / "empty.txt", b""),
        "binary": write(tmp_path / "binary.txt", bytes(range(256)) * 64),
        "truncated": write(tmp_path / "truncated.txt", good[: len(good) // 3].encode()),
        "latin1": write(tmp_path / "latin1.txt", good.replace("Léon", "L\udce9on").encode("utf-8", "surrogateescape")),
        "html": write(tmp_path / "garbage.html", b"<html><body><div><<<>>> &&& </div><script>x</script>" * 50),
        "giant_line": write(tmp_path / "giant.txt", b"x" * (10 * 1024 * 1024)),
        "no_title_no_authors": write(tmp_path / "rows.csv", b"title,authors,abstract\n,,an orphan abstract\nA Real Title,Ada Lovelace,text\n"),
        "bad_gzip": write(tmp_path / "cut.json.gz", gzip.compress(b'[{"title": "A", "author": "B"}, {"title": "C"')[:-10]),
    }


@needs_shared
def test_every_bad_input_gives_a_clear_error_and_the_batch_still_lands(catalog_url, bad_inputs):
    good = str(PAGES / "icml2022-session-deep-learning-ballroom-1-2.txt")
    result = run("ingest", good, *bad_inputs.values(), db=catalog_url)
    assert result.exit_code == 0  # something could be read
    assert "Traceback" not in result.output
    err = result.stderr
    assert f"{bad_inputs['empty']}: the file is empty" in err
    assert f"{bad_inputs['binary']}: binary data" in err
    assert f"{bad_inputs['latin1']}:" in err and "UTF-8" in err
    assert f"{bad_inputs['no_title_no_authors']}:2:" in err
    _, stats = run_json("stats", db=catalog_url)
    assert stats["papers"] >= 15 + 1  # the good page and the good CSV row
    _, quarantined = run_json("quarantine", db=catalog_url)
    sources = {row["source_locator"] for row in quarantined}
    assert bad_inputs["empty"] in sources and bad_inputs["binary"] in sources
    assert any(row["raw"] for row in quarantined)


@needs_shared
def test_exit_status_is_nonzero_only_when_nothing_could_be_read(catalog_url, bad_inputs):
    result = run("ingest", bad_inputs["empty"], bad_inputs["binary"], db=catalog_url)
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_clear_error(catalog_url, tmp_path):
    result = run("ingest", str(tmp_path / "nope.txt"), db=catalog_url)
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr


def test_show_unknown_paper_is_a_clear_error(catalog_url):
    result = run("show", "doesnotexist", db=catalog_url)
    assert result.exit_code == 1
    assert "no paper with id" in result.stderr
