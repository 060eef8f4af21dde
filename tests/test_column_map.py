"""``paperscope ingest --map FIELD=COLUMN``: a table whose columns have names of its own."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from paperscope.cli import app
from paperscope.catalog.store import Catalog

TABLE = """Paper Name,Writers,Blurb,Title
Contrastive learning of things,Ann Lee; Bo Chen,We learn things contrastively.,a column that is not the title
Graph nets for stuff,Cy Dee,Graphs are great.,another
"""


def ingest(tmp_path, *args):
    table = tmp_path / "program.csv"
    table.write_text(TABLE)
    result = CliRunner().invoke(app, ["ingest", str(table), "--db", str(tmp_path / "c.sqlite"), "--json", *args])
    return result


def titles(tmp_path):
    catalog = Catalog.open(str(tmp_path / "c.sqlite"))
    return sorted(p["title"] for p in catalog.iter_papers()), catalog


def test_chosen_columns_win_over_the_automatic_mapping(tmp_path):
    result = ingest(tmp_path, "--map", "title=Paper Name", "--map", "authors=writers", "--map", "abstract=Blurb")
    assert result.exit_code == 0, result.output
    found, catalog = titles(tmp_path)
    assert found == ["Contrastive learning of things", "Graph nets for stuff"]
    paper = next(p for p in catalog.iter_papers() if p["title"].startswith("Contrastive"))
    assert paper["authors"] == ["Ann Lee", "Bo Chen"] and paper["abstract"] == "We learn things contrastively."


def test_without_a_map_the_title_column_is_used(tmp_path):
    assert ingest(tmp_path).exit_code == 0
    assert titles(tmp_path)[0] == ["a column that is not the title", "another"]


def test_a_new_map_re_reads_the_same_file(tmp_path):
    assert ingest(tmp_path).exit_code == 0
    again = json.loads(ingest(tmp_path, "--map", "title=Paper Name").stdout)
    assert again["totals"]["unchanged_sources"] == 0 and again["totals"]["records"] == 2


def test_a_missing_column_is_a_note_and_the_rest_lands(tmp_path):
    result = ingest(tmp_path, "--map", "venue=Conference Name")
    assert result.exit_code == 0
    notes = json.loads(result.stdout)["sources"][0]["notes"]
    assert any("no column 'Conference Name'" in n for n in notes)
    assert len(titles(tmp_path)[0]) == 2


def test_bad_map_values_are_refused_clearly(tmp_path):
    for bad, says in (("titel=Paper Name", "unknown field 'titel'"), ("title", "expected FIELD=COLUMN")):
        result = ingest(tmp_path, "--map", bad)
        assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
