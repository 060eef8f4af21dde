"""`paperscope backup` / `restore`: a catalogue backed up while it is written, restored elsewhere,
is the same table for table and searchable; damaged backups and occupied targets are refused.

Everything is real: SQLite files, the demo's ICLR 2020 papers, a writer thread ingesting through the
catalogue during the backup, pg_dump/pg_restore against the test PostgreSQL, the `paperscope` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paperscope.catalog.backup import BackupError, backup_catalogue, manifest_path, restore_catalogue
from paperscope.catalog.copy import summarise
from paperscope.catalog.store import Catalog
from paperscope.cli import app as cli
from paperscope.index.lexical import LexicalIndex
from paperscope.model import Appearance, ImportOptions, PaperRecord
from paperscope.search import SearchService

DEMO = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
MODEL = "test-model"
VECTORS = 40


@pytest.fixture(autouse=True)
def quiet_server_checks(monkeypatch):
    monkeypatch.setenv("PAPERSCOPE_INDEX_CHECK_S", "0")


def _fill(db: str) -> None:
    """The demo's papers, a library entry and paper vectors: rows in the tables that matter."""
    from paperscope import library
    from paperscope.ingest.pipeline import ingest_targets

    catalog = Catalog.open(db)
    try:
        assert ingest_targets(catalog, [str(DEMO)], ImportOptions(venue="ICLR", year=2020)).anything_read
        hashes = dict(catalog.content_hashes())
        ids = sorted(hashes)[:VECTORS]
        vectors = np.random.default_rng(3).standard_normal((VECTORS, 384)).astype(np.float32)
        catalog.store_vectors(MODEL, {hashes[pid]: v.tobytes() for pid, v in zip(ids, vectors)})
        catalog.set_meta(f"vectors:{MODEL}:generation", "1")
        library.save(catalog, "local", ids[0], tags=["reading"], note="backed up — with ünicode")
    finally:
        catalog.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("backup") / "source.sqlite")
    _fill(path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    """The real `paperscope` command in its own process."""
    return subprocess.run([sys.executable, "-m", "paperscope", *args], capture_output=True, text=True, timeout=600)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _sums(db: str) -> dict[str, tuple[int, str]]:
    catalog = Catalog.open(db)
    try:
        return {t.table: (t.rows, t.checksum) for t in summarise(catalog.engine)}
    finally:
        catalog.close()


def _searchable(db: str) -> None:
    """The restored catalogue answers a keyword search from the index restore rebuilt (not a new one)."""
    catalog = Catalog.open(db)
    try:
        assert LexicalIndex.for_catalog(catalog).state(catalog).fresh
        paper = catalog.papers([sorted(pid for pid, _ in catalog.content_hashes())[5]])[0]
        result = SearchService(catalog, ensure=False).search(f'title:"{paper["title"]}"', limit=5)
        assert paper["id"] in [h.paper_id for h in result.hits]
    finally:
        catalog.close()


# ------------------------------------------------------------------------------------ SQLite
class Writer(threading.Thread):
    """Ingests one small source after another (each its own transaction) until stopped."""

    def __init__(self, db: str):
        super().__init__(daemon=True)
        self.catalog = Catalog.open(db)
        self.committed = 0
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                n = self.committed
                record = PaperRecord(title=f"Written during the backup number {n}", authors=[f"Writer {n}"],
                                     abstract="A paper the writer thread adds.", appearance=Appearance(venue="Soak", year=2024))
                self.catalog.ingest(f"writer-{n}.csv", "tabular", f"writer-{n}", [record])
                self.committed += 1
        except Exception as exc:  # noqa: BLE001 - the test reports it
            self.error = exc
        finally:
            self.catalog.close()

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        deadline = threading.Event()
        for _ in range(int(timeout_s * 20)):
            if self.committed >= count or self.error:
                return
            deadline.wait(0.05)
        raise AssertionError(f"the writer committed only {self.committed} sources in {timeout_s} s")


def _writer_sources(db: str) -> list[int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT locator FROM sources WHERE locator LIKE 'writer-%'").fetchall()
        papers = conn.execute("SELECT count(*) FROM appearances WHERE venue = 'Soak'").fetchone()[0]
    finally:
        conn.close()
    numbers = sorted(int(r[0].split("-")[1].split(".")[0]) for r in rows)
    assert papers == len(numbers), "a writer's source is in the copy without its paper (or the reverse)"
    return numbers


def test_backup_while_a_writer_inserts_then_restore_is_identical_and_searchable(filled, tmp_path):
    live = str(tmp_path / "live.sqlite")
    backup_catalogue(filled, tmp_path / "seed.sqlite")
    restore_catalogue(tmp_path / "seed.sqlite", live)          # a live copy the writer may change
    writer = Writer(live)
    writer.start()
    writer.wait_for(3)
    seen_at_steps: list[int] = []

    def between_steps(stage: str, done: int, total) -> None:
        if stage == "copying pages" and total and done < total and len(seen_at_steps) < 3:
            seen_at_steps.append(writer.committed)
            writer.wait_for(writer.committed + 2)     # writes land while the copy is half made

    try:
        path, manifest = backup_catalogue(live, tmp_path / "during.sqlite", progress=between_steps, step_pages=16)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None, writer.error
    assert len(seen_at_steps) >= 3, "the copy was made in one step: nothing was written during it"
    copied = _writer_sources(str(path))
    # one instant's catalogue: writer sources 0..k-1, all complete, none from after the copy began
    assert copied == list(range(len(copied))) and 3 <= len(copied) <= seen_at_steps[0]
    assert len(_writer_sources(live)) >= len(copied) + 2 * len(seen_at_steps)
    assert {t.table: t.rows for t in manifest.tables}["library_entries"] == 1

    restored = str(tmp_path / "elsewhere" / "restored.sqlite")
    done = _run("restore", str(path), "--db", restored, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] is True and report["verified_against"] == "manifest"
    assert report["derived"]["vectors"] == {MODEL: VECTORS}
    expected = {t.table: (t.rows, t.checksum) for t in manifest.tables}
    assert _sums(restored) == expected
    _searchable(restored)


def test_backup_prints_counts_and_checksums_and_restore_checks_without_a_manifest(filled, tmp_path):
    done = _run("backup", str(tmp_path / "b.sqlite"), "--db", filled)
    assert done.returncode == 0, done.stderr
    assert "papers" in done.stdout and "687" in done.stdout and "sha256" in done.stdout
    manifest = json.loads(manifest_path(tmp_path / "b.sqlite").read_text())
    manifest_path(tmp_path / "b.sqlite").unlink()       # a backup file alone still restores, checked against itself
    report = restore_catalogue(tmp_path / "b.sqlite", str(tmp_path / "r.sqlite"))
    assert report.identical is True and report.verified_against == "backup file"
    assert {t["table"]: t["checksum"] for t in report.tables} == {t["table"]: t["checksum"] for t in manifest["tables"]}


def test_backup_into_a_folder_names_the_file_and_never_overwrites_without_force(filled, tmp_path):
    first = CliRunner().invoke(cli, ["backup", str(tmp_path), "--db", filled, "--json"])
    assert first.exit_code == 0, first.output
    path = Path(json.loads(first.stdout)["backup"])
    assert path.parent == tmp_path and path.name.startswith("source-") and path.suffix == ".sqlite"
    again = CliRunner().invoke(cli, ["backup", str(path), "--db", filled])
    assert again.exit_code == 1 and "already exists" in _flat(again.output) and "Traceback" not in again.output
    assert CliRunner().invoke(cli, ["backup", str(path), "--db", filled, "--force"]).exit_code == 0
    missing = CliRunner().invoke(cli, ["backup", str(tmp_path / "x.sqlite"), "--db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "no catalogue at" in _flat(missing.output)
    assert not (tmp_path / "none.sqlite").exists() and not (tmp_path / "x.sqlite").exists()


def test_restore_refuses_a_catalogue_with_papers_unless_forced(filled, tmp_path):
    backup_catalogue(filled, tmp_path / "b.sqlite")
    target = str(tmp_path / "target.sqlite")
    catalog = Catalog.open(target)
    catalog.ingest("other.csv", "tabular", "o1", [PaperRecord(title="A paper that would be lost", authors=["Ann Other"])])
    catalog.close()
    refused = _run("restore", str(tmp_path / "b.sqlite"), "--db", target)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{target} is not empty (1 papers" in _flat(refused.stderr) and "--force" in refused.stderr
    assert _sums(target)["papers"][0] == 1                   # untouched
    itself = CliRunner().invoke(cli, ["restore", target, "--db", target, "--force"])
    assert itself.exit_code == 1 and "both the backup and the catalogue" in _flat(itself.output)
    forced = CliRunner().invoke(cli, ["restore", str(tmp_path / "b.sqlite"), "--db", target, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "every table is identical to the manifest" in _flat(forced.output)
    assert _sums(target) == _sums(filled)
    _searchable(target)


def test_restore_into_an_opened_but_empty_catalogue_needs_no_force(filled, tmp_path):
    backup_catalogue(filled, tmp_path / "b.sqlite")
    target = str(tmp_path / "empty.sqlite")
    Catalog.open(target).close()
    assert restore_catalogue(tmp_path / "b.sqlite", target).identical is True


def _damage(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(data)


@pytest.mark.parametrize("case, message", [
    ("missing", "no backup at"),
    ("not a backup", "not a paperscope backup"),
    ("truncated", "bytes where its manifest says"),
    ("a changed byte", "SHA-256 differs from its manifest"),
    ("truncated, no manifest", "not a readable SQLite database"),
    ("a broken page, no manifest", "integrity check failed"),
    ("a manifest of junk", "not a readable backup manifest"),
    ("not a catalogue, no manifest", "not a paperscope catalogue"),
    ("from a newer paperscope, no manifest", "made by a newer paperscope (schema revision 9999"),
])
def test_restore_refuses_a_damaged_backup_and_says_why(filled, tmp_path, case, message):
    import sqlite3

    backup = tmp_path / "b.sqlite"
    backup_catalogue(filled, backup)
    size = backup.stat().st_size
    if case == "missing":
        backup = tmp_path / "gone.sqlite"
    elif case == "not a backup":
        backup.write_text("title,authors\nA,B\n")
        manifest_path(backup).unlink()
    elif case.startswith("truncated"):
        with open(backup, "r+b") as fh:
            fh.truncate(size // 3)
    elif case == "a changed byte":
        _damage(backup, size // 2, b"\xff")
    elif case == "a broken page, no manifest":
        conn = sqlite3.connect(backup)
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'papers'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        _damage(backup, (root - 1) * page, b"\x00" * 16)    # the papers table's root page header
    elif case == "a manifest of junk":
        manifest_path(backup).write_text("{not json")
    elif case == "not a catalogue, no manifest":
        backup.unlink()
        conn = sqlite3.connect(backup)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    elif case == "from a newer paperscope, no manifest":
        conn = sqlite3.connect(backup)
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
        conn.commit()
        conn.close()
    if "no manifest" in case:
        manifest_path(backup).unlink()
    target = tmp_path / "target.sqlite"
    done = CliRunner().invoke(cli, ["restore", str(backup), "--db", str(target)])
    assert done.exit_code == 1, done.output
    assert message in _flat(done.output) and str(backup.name) in done.output and "Traceback" not in done.output
    assert not target.exists() or _sums(str(target))["papers"][0] == 0


# ------------------------------------------------------------------------------------ PostgreSQL
def test_postgresql_round_trip_is_identical_and_searchable(pg_server, tmp_path):
    source = pg_server.new_database()
    _fill(source)
    dump = tmp_path / "catalogue.dump"
    done = CliRunner().invoke(cli, ["backup", str(dump), "--db", source, "--json"])
    assert done.exit_code == 0, done.output
    made = json.loads(done.stdout)
    assert made["kind"] == "postgresql" and dump.read_bytes()[:5] == b"PGDMP"
    assert "***" in made["catalogue"] and source.split("@")[0].split(":")[-1] not in done.stdout  # no password
    expected = {t["table"]: (t["rows"], t["checksum"]) for t in made["tables"]}
    assert expected == _sums(source) and expected["papers"][0] == 687

    target = pg_server.new_database()             # at the schema's head, tables empty
    restored = CliRunner().invoke(cli, ["restore", str(dump), "--db", target, "--json"])
    assert restored.exit_code == 0, restored.output
    report = json.loads(restored.stdout)
    assert report["identical"] is True and report["verified_against"] == "manifest"
    assert report["derived"]["vectors"] == {MODEL: VECTORS}
    assert _sums(target) == expected
    _searchable(target)

    again = CliRunner().invoke(cli, ["restore", str(dump), "--db", target])
    assert again.exit_code == 1 and "is not empty (687 papers" in _flat(again.output)
    assert CliRunner().invoke(cli, ["restore", str(dump), "--db", target, "--force"]).exit_code == 0
    assert _sums(target) == expected


def test_postgresql_restore_of_a_broken_dump_changes_nothing(pg_server, tmp_path):
    source = pg_server.new_database()
    _fill(source)
    dump = tmp_path / "catalogue.dump"
    backup_catalogue(source, dump)
    with open(dump, "r+b") as fh:
        fh.truncate(dump.stat().st_size * 2 // 3)
    target = pg_server.new_database()
    with pytest.raises(BackupError, match="truncated or was changed"):
        restore_catalogue(dump, target)
    manifest_path(dump).unlink()                   # no manifest: pg_restore finds the damage, in one transaction
    with pytest.raises(BackupError, match="pg_restore failed|not a readable pg_dump archive") as caught:
        restore_catalogue(dump, target)
    assert str(dump.name) in str(caught.value) or "pg_restore" in str(caught.value)
    assert _sums(target)["papers"][0] == 0


def test_a_backup_restores_only_into_its_own_kind_of_catalogue(filled, pg_server, tmp_path):
    backup_catalogue(filled, tmp_path / "b.sqlite")
    done = CliRunner().invoke(cli, ["restore", str(tmp_path / "b.sqlite"), "--db", pg_server.new_database()])
    assert done.exit_code == 1 and "paperscope migrate" in _flat(done.output)
