"""`paperscope migrate`: a catalogue copied from SQLite into PostgreSQL and back loses nothing.

The source holds every kind of row there is: papers, authors, appearances, sessions, quarantined
records, embeddings (raw float32 bytes), users with argon2 hashes, API tokens, sessions,
invitations, agenda items (with NULLs and floats), library entries, and text in many scripts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("argon2")

from typer.testing import CliRunner  # noqa: E402

from paperscope.catalog.copy import summarise, table_names  # noqa: E402
from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.cli import app as cli  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
PASSWORD = "correct horse battery"
MODEL = "test-model"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """A SQLite catalogue with rows in every table (SQLite on purpose: a laptop's catalogue is what migrate
    brings to a server, and what the other way brings back)."""
    from paperscope.accounts import Accounts
    from paperscope.catalog.agenda import add_agenda_item
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import Appearance, ImportOptions, PaperRecord, Problem

    folder = tmp_path_factory.mktemp("migrate")
    path = str(folder / "source.sqlite")
    catalog = Catalog.open(path)
    assert ingest_targets(catalog, [str(DEMO)], ImportOptions(venue="ICLR", year=2020)).anything_read
    catalog.ingest("handmade.txt", "tabular", "h1", [
        PaperRecord(title="Über die Größe: 大規模言語モデル and ∂-calculus 🚀", authors=["Zoë Ça", "李 雷"],
                    abstract="Ünïcödé with $\\alpha$ and a tab\there.", ids={"arxiv": "2401.00001"},
                    appearance=Appearance(venue="TestConf", year=2024, award="Outstanding Paper")),
        Problem("a record without a title", line=3, raw="title,\n,,,\x7f raw bytes ✓"),
    ])
    ids = [pid for pid, _ in catalog.content_hashes()]
    hashes = dict(catalog.content_hashes())
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((60, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    catalog.store_vectors(MODEL, {hashes[pid]: v.tobytes() for pid, v in zip(ids[:60], vectors)})
    catalog.set_meta(f"vectors:{MODEL}:generation", "1")
    accounts = Accounts(catalog)
    alice = accounts.create_user("alice", PASSWORD, "alice@example.org", is_admin=True)
    bob = accounts.create_user("bob", PASSWORD)
    accounts.create_token(bob, "feeds")
    accounts.start_session(alice, ip="127.0.0.1", user_agent="test")
    accounts.invite(alice, "carol@example.org", base_url="https://papers.example.org", send=False)
    accounts.set_signup_mode("open")
    for user, relevance in ((alice.id, 0.8125), (bob.id, None), ("local", 1e-9)):
        add_agenda_item(catalog, user, {"item_key": f"paper|{ids[0]}", "kind": "paper", "paper_id": ids[0],
                                        "title": "A starred talk", "authors": ["Zoë Ça"], "relevance": relevance,
                                        "starts_at": "2020-04-27T05:00:00+00:00", "venue": "ICLR", "year": 2020})
    try:
        from paperscope import library

        library.save(catalog, alice.id, ids[1], tags=["to read/later"], note="Notes — with ünicode")
    except ImportError:
        pass
    catalog.close()
    return path


def migrate(src: str, dst: str):
    return CliRunner().invoke(cli, ["migrate", src, dst, "--json"])


def test_sqlite_to_postgresql_and_back_is_identical(source, pg_url, tmp_path):
    there = migrate(source, pg_url)
    assert there.exit_code == 0, there.output
    report = json.loads(there.stdout)
    assert report["identical"] and "papers" in report["copied"] and report["copied"]["papers"] == 688
    assert all(t["same"] for t in report["tables"])
    by_table = {t["table"]: t for t in report["tables"]}
    for table in ("papers", "authors", "paper_authors", "appearances", "sessions", "sources", "quarantine",
                  "embeddings", "users", "api_tokens", "login_sessions", "invitations", "agenda_items", "meta"):
        assert by_table[table]["rows_src"] > 0, table
    assert report["vectors"][MODEL]["added"] == 60   # pgvector filled from the copied embeddings

    back_path = str(tmp_path / "back.sqlite")
    back = migrate(pg_url, back_path)
    assert back.exit_code == 0, back.output
    original = Catalog.open(source)
    returned = Catalog.open(back_path)
    names = table_names(original.engine)
    assert summarise(original.engine, names) == summarise(returned.engine, names)
    original.close()
    returned.close()


def test_the_copy_in_postgresql_works(source, pg_url):
    from paperscope.accounts import Accounts
    from paperscope.catalog.agenda import add_agenda_item, list_agenda
    from paperscope.index.pgvector import load_pg_vector_index
    from paperscope.search import SearchService

    assert migrate(source, pg_url).exit_code == 0
    catalog = Catalog.open(pg_url)
    assert catalog.paper_count() == 688
    hits = SearchService(catalog).search("Größe")
    assert [h.paper["title"] for h in hits.hits][:1] == ["Über die Größe: 大規模言語モデル and ∂-calculus 🚀"]
    accounts = Accounts(catalog)
    assert accounts.authenticate("alice", PASSWORD).is_admin
    assert accounts.signup_mode() == "open"
    bob = accounts.user_named("bob")
    # ids were copied: new rows must not collide with them (the sequences moved past them)
    accounts.create_token(bob, "another")
    add_agenda_item(catalog, bob.id, {"item_key": "session|x", "kind": "session", "title": "New"})
    assert len(list_agenda(catalog, bob.id)) == 2
    assert accounts.create_user("dave", PASSWORD).username == "dave"
    index = load_pg_vector_index(catalog, MODEL, wait=True)
    assert len(index) == 60
    first = index.ids[0]
    assert index.search(index.vector(first), 1)[0][0] == first
    catalog.close()


def test_a_changed_row_changes_the_checksum(source, tmp_path):
    import shutil

    from sqlalchemy import update

    from paperscope.catalog import schema as s

    copy = tmp_path / "copy.sqlite"
    shutil.copy(source, copy)
    a, b = Catalog.open(source), Catalog.open(str(copy))
    names = table_names(a.engine)
    assert summarise(a.engine, names) == summarise(b.engine, names)
    with b.engine.begin() as conn:
        conn.execute(update(s.papers).where(s.papers.c.id == b.content_hashes()[0][0]).values(year=1999))
    differ = [x.table for x, y in zip(summarise(a.engine, names), summarise(b.engine, names)) if x != y]
    assert differ == ["papers"]
    a.close()
    b.close()


def test_migrate_refuses_a_destination_that_holds_data(source, tmp_path):
    target = str(tmp_path / "full.sqlite")
    assert migrate(source, target).exit_code == 0
    again = migrate(source, target)
    assert again.exit_code != 0 and "not empty" in again.output and "Traceback" not in again.output
    missing = migrate(str(tmp_path / "nothing.sqlite"), str(tmp_path / "x.sqlite"))
    assert missing.exit_code != 0 and "no catalogue" in missing.output


def test_migrate_prints_counts_and_checksums(source, tmp_path):
    done = CliRunner().invoke(cli, ["migrate", source, str(tmp_path / "printed.sqlite")])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["table", "rows", "src"]
    papers = next(line for line in lines if line.startswith("papers "))
    parts = papers.split()
    assert parts[1] == parts[2] == "688" and parts[3] == parts[4] and parts[5] == "yes"
    assert "every table is identical" in done.stdout
