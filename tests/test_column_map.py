"""``paperscope ingest --map FIELD=COLUMN``: a table whose columns have names of its own."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from paperscope.cli import app
from paperscope.catalog.store import Catalog

TABLE = """Paper Name,Writers,Blurb,Title
Contrastive learning of things,Ann Lee; Bo Chen,We learn things contrastively.,a column that is not the title
Graph nets for stuff,Cy Dee,Graphs are great.,another
"""


@pytest.fixture
def ingest(catalog_url, tmp_path):
    """`paperscope ingest` of the table into the test's catalogue, with more arguments."""
    def run(*args):
        table = tmp_path / "program.csv"
        table.write_text(TABLE)
        return CliRunner().invoke(app, ["ingest", str(table), "--db", catalog_url, "--json", *args])
    return run


def titles(catalog: Catalog) -> list[str]:
    return sorted(p["title"] for p in catalog.iter_papers())


def test_chosen_columns_win_over_the_automatic_mapping(ingest, catalog):
    result = ingest("--map", "title=Paper Name", "--map", "authors=writers", "--map", "abstract=Blurb")
    assert result.exit_code == 0, result.output
    assert titles(catalog) == ["Contrastive learning of things", "Graph nets for stuff"]
    paper = next(p for p in catalog.iter_papers() if p["title"].startswith("Contrastive"))
    assert paper["authors"] == ["Ann Lee", "Bo Chen"] and paper["abstract"] == "We learn things contrastively."


def test_without_a_map_the_title_column_is_used(ingest, catalog):
    assert ingest().exit_code == 0
    assert titles(catalog) == ["a column that is not the title", "another"]


def test_a_new_map_re_reads_the_same_file(ingest):
    assert ingest().exit_code == 0
    again = json.loads(ingest("--map", "title=Paper Name").stdout)
    assert again["totals"]["unchanged_sources"] == 0 and again["totals"]["records"] == 2


def test_a_missing_column_is_a_note_and_the_rest_lands(ingest, catalog):
    result = ingest("--map", "venue=Conference Name")
    assert result.exit_code == 0
    notes = json.loads(result.stdout)["sources"][0]["notes"]
    assert any("no column 'Conference Name'" in n for n in notes)
    assert len(titles(catalog)) == 2


def test_bad_map_values_are_refused_clearly(ingest):
    for bad, says in (("titel=Paper Name", "unknown field 'titel'"), ("title", "expected FIELD=COLUMN")):
        result = ingest("--map", bad)
        assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
