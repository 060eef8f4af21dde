"""Crash safety: real processes killed with SIGKILL, then the catalogue, index and vectors checked.

Two kinds of tests:

- kills at chosen moments: a child Python process runs the real ingest or embed code and kills
  itself with SIGKILL at one precise point (right after a given write), so each known hazard is
  hit every time;
- the crash loop of ``paperscope bench crash``: real ``paperscope ingest``, ``embed`` and
  ``reindex`` processes killed after seeded random delays on the real corpora. It kills each
  kind ``PAPERSCOPE_CRASH_RUNS`` times (5 by default, to keep the suite short; the benchmark's 50
  per kind run with ``paperscope bench crash``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from paperscope.bench.crash import KINDS, index_disagreements, run_crash_bench
from paperscope.catalog.store import Catalog
from paperscope.index.lexical import LexicalIndex
from paperscope.index.vectors import index_folder, load_vector_index, paper_doc, sentence_model, sentence_units
from paperscope.ingest.pipeline import ingest_targets
from paperscope.model import ImportOptions
from paperscope.search import SearchService

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "samples" / "pages"
ORAL = PAGES / "iclr2022-oral-2-understanding-deep-learning.txt"
needs_pages = pytest.mark.skipif(not PAGES.is_dir(), reason="needs the sample pages in ../shared/samples/pages")
CRASH_RUNS = int(os.environ.get("PAPERSCOPE_CRASH_RUNS", "5"))


def die_in_child(script: str) -> None:
    """Run ``script`` in a new Python process, which must end killed by SIGKILL (it kills itself on cue)."""
    prelude = "import os, signal\ndef die():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == -signal.SIGKILL, f"the child was not killed (status {done.returncode}): {done.stderr[-3000:]}"


def index_is_never_wrongly_complete(catalog: Catalog) -> None:
    if LexicalIndex.for_catalog(catalog).state(catalog).fresh:
        assert index_disagreements(catalog) == []


# ------------------------------------------------------------------------------------ ingest
def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["title,authors,venue,year,session"] + [f'"{t}","{a}",ICML,2022,"{s}"' for t, a, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PROGRAM = [("Sparse Mixtures of Experts at Scale", "Ada Lovelace; Alan Turing", ""),
           ("Contrastive Pretraining of Molecule Graphs", "Grace Hopper", ""),
           ("Calibrated Uncertainty for Tabular Models", "Edsger Dijkstra; Barbara Liskov", "")]


def test_an_ingest_killed_after_a_source_that_only_merges_still_gets_indexed(tmp_path):
    """A source whose papers all merge into known ones changes no count: the index must still catch up.

    The kill lands after the merging source is committed and before the index update; the re-run
    finds that source unchanged, so its papers are not among the ones it re-indexes.
    """
    program = write_csv(tmp_path / "program.csv", PROGRAM)
    sessions = write_csv(tmp_path / "sessions.csv", [(t, a, "Poster Session 7") for t, a, _ in PROGRAM])
    extra = write_csv(tmp_path / "extra.csv", [("Tiny Recursive Reasoners", "Donald Knuth", "Oral 1")])
    db = tmp_path / "c.sqlite"
    catalog = Catalog.open(str(db))
    ingest_targets(catalog, [str(program)], ImportOptions())
    SearchService(catalog)
    catalog.close()

    die_in_child(f"""
        from paperscope.catalog.store import Catalog
        from paperscope.ingest.pipeline import ingest_targets
        from paperscope.model import ImportOptions
        catalog = Catalog.open({str(db)!r})
        ingest_targets(catalog, [{str(sessions)!r}, {str(extra)!r}], ImportOptions(),
                       progress=lambda done, *_: die() if done == 1 else None)
    """)
    catalog = Catalog.open(str(db))
    index_is_never_wrongly_complete(catalog)
    ingest_targets(catalog, [str(sessions), str(extra)], ImportOptions())
    index_is_never_wrongly_complete(catalog)
    hits = SearchService(catalog).search('session:"Poster Session 7"').hits
    assert sorted(h.paper["title"] for h in hits) == sorted(t for t, _, _ in PROGRAM)
    catalog.close()


def test_an_ingest_that_changes_nothing_leaves_a_complete_index_complete(tmp_path):
    program = write_csv(tmp_path / "program.csv", PROGRAM)
    catalog = Catalog.open(str(tmp_path / "c.sqlite"))
    ingest_targets(catalog, [str(program)], ImportOptions())
    index = LexicalIndex.for_catalog(catalog)
    assert index.state(catalog).fresh
    run = ingest_targets(catalog, [str(program)], ImportOptions())
    assert run.totals()["unchanged_sources"] == 1
    assert index.state(catalog).fresh and not index.pending_updates()
    catalog.close()


# ------------------------------------------------------------------------------------ reindex
REBUILD_KILL_POINTS = {
    # half the documents added, nothing committed
    "while adding documents": """
        calls = []
        original = lexical.paper_document
        def document_then_die(paper):
            calls.append(paper)
            if len(calls) == 3:
                die()
            return original(paper)
        lexical.paper_document = document_then_die
    """,
    # the new commit is on disk, the manifest that vouches for it is not
    "between the commit and its manifest": "lexical.LexicalIndex._write_manifest = lambda *args: die()",
    # an index from another version is being deleted: part of its files are gone
    "while deleting an old index": """
        import json, shutil
        manifest = json.loads((index.path / "manifest.json").read_text())
        (index.path / "manifest.json").write_text(json.dumps(manifest | {"schema": -1}))
        def delete_some_then_die(path, **kwargs):
            for child in sorted(Path(path).iterdir())[::2]:
                child.unlink()
            die()
        shutil.rmtree = delete_some_then_die
    """,
}


@pytest.mark.parametrize("when", list(REBUILD_KILL_POINTS))
def test_a_rebuild_killed_anywhere_is_never_served_half_written(tmp_path, when):
    rows = PROGRAM + [(f"Paper number {i} on graph rewiring", "Ada Lovelace", "") for i in range(6)]
    db = tmp_path / "c.sqlite"
    catalog = Catalog.open(str(db))
    ingest_targets(catalog, [str(write_csv(tmp_path / "program.csv", rows))], ImportOptions())
    catalog.close()
    setup = textwrap.indent(textwrap.dedent(REBUILD_KILL_POINTS[when]), " " * 8)
    die_in_child(f"""
        from pathlib import Path
        from paperscope.catalog.store import Catalog
        from paperscope.index import lexical
        catalog = Catalog.open({str(db)!r})
        index = lexical.LexicalIndex.for_catalog(catalog)
{setup}
        index.rebuild(catalog)
    """)
    catalog = Catalog.open(str(db))
    index_is_never_wrongly_complete(catalog)
    hits = SearchService(catalog).search("graph rewiring", limit=50).hits
    assert len(hits) == 6
    assert LexicalIndex.for_catalog(catalog).state(catalog).fresh and index_disagreements(catalog) == []
    catalog.close()


# ------------------------------------------------------------------------------------ embed
def embedded_catalogue(tmp_path: Path) -> Path:
    db = tmp_path / "c.sqlite"
    catalog = Catalog.open(str(db))
    ingest_targets(catalog, [str(ORAL)], ImportOptions())
    catalog.close()
    return db


def embed_and_die(db: Path, when: str) -> None:
    """Run `paperscope embed` code in a child that SIGKILLs itself at the moment ``when`` sets up.

    ``when`` may wrap a catalogue method with ``after(method, matches)`` (die once a matching
    write is done) and may set ``progress`` (called after each stored batch).
    """
    die_in_child(f"""
        from paperscope.catalog.store import Catalog
        from paperscope.index.embedder import default_embedder
        from paperscope.index.vectors import embed_catalog
        catalog = Catalog.open({str(db)!r})
        progress = None
        def after(method, matches):
            original = getattr(catalog, method)
            def write_then_die(key, value, *args):
                original(key, value, *args)
                if matches(key):
                    die()
            setattr(catalog, method, write_then_die)
        {when}
        embed_catalog(catalog, default_embedder(), batch_size=2, progress=progress)
    """)


KILL_POINTS = {
    "after the first paper vectors": "after('store_vectors', lambda model: '#sentence' not in model)",
    "after the first sentence vectors": "after('store_vectors', lambda model: '#sentence' in model)",
    "after the last batch, before publishing": "progress = lambda p: die() if p.done == p.total else None",
    "after publishing": "after('set_meta', lambda key: key.endswith(':generation'))",
}


@needs_pages
@pytest.mark.parametrize("when", list(KILL_POINTS))
def test_an_embed_killed_anywhere_resumes_to_every_vector_and_sentence(tmp_path, when):
    from paperscope.index.embedder import default_embedder, text_key
    from paperscope.index.vectors import embed_catalog

    db = embedded_catalogue(tmp_path)
    embed_and_die(db, KILL_POINTS[when])
    catalog = Catalog.open(str(db))
    embedder = default_embedder()
    embed_catalog(catalog, embedder, batch_size=2)

    papers = catalog.paper_count()
    served = load_vector_index(catalog, embedder.name)
    assert served is not None and len(served) == papers == catalog.count_paper_vectors(embedder.name)
    rows = catalog.papers([pid for pid, _ in catalog.content_hashes()], with_appearances=False)
    keys = [text_key(u) for row in rows for u in sentence_units(paper_doc(row))]
    assert len(catalog.stored_vectors(sentence_model(embedder.name), keys)) == len(set(keys))
    assert catalog.get_meta(f"vectors:{sentence_model(embedder.name)}:complete") == "yes"
    catalog.close()


@needs_pages
def test_embedding_in_parts_with_limit_ends_with_sentence_vectors_marked_complete(tmp_path):
    from paperscope.index.embedder import default_embedder
    from paperscope.index.vectors import embed_catalog

    catalog = Catalog.open(str(embedded_catalogue(tmp_path)))
    embedder = default_embedder()
    embed_catalog(catalog, embedder, limit=3)
    embed_catalog(catalog, embedder)
    assert catalog.get_meta(f"vectors:{sentence_model(embedder.name)}:complete") == "yes"
    catalog.close()


@needs_pages
def test_sentences_asked_for_after_a_run_without_them_are_filled_in(tmp_path):
    from paperscope.index.embedder import default_embedder
    from paperscope.index.vectors import embed_catalog

    catalog = Catalog.open(str(embedded_catalogue(tmp_path)))
    embedder = default_embedder()
    embed_catalog(catalog, embedder, with_sentences=False)
    assert catalog.get_meta(f"vectors:{sentence_model(embedder.name)}:complete") == "no"
    result = embed_catalog(catalog, embedder)
    assert result["embedded_sentences"] > 0
    assert catalog.get_meta(f"vectors:{sentence_model(embedder.name)}:complete") == "yes"
    catalog.close()


def vector_catalogue(tmp_path: Path, papers: int = 5) -> Catalog:
    """A catalogue whose papers have (random, unit-length) vectors of a test model, published."""
    rows = [(f"Paper number {i} about topic {i}", "Ada Lovelace", "") for i in range(papers)]
    catalog = Catalog.open(str(tmp_path / "c.sqlite"))
    ingest_targets(catalog, [str(write_csv(tmp_path / "p.csv", rows))], ImportOptions(), update_index=False)
    rng = np.random.default_rng(0)
    vectors = {h: rng.standard_normal(384).astype(np.float32).tobytes() for _, h in catalog.content_hashes()}
    catalog.store_vectors("test-model", vectors)
    catalog.set_meta("vectors:test-model:generation", "1")
    return catalog


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_vector_matrix_on_disk_is_rebuilt_from_the_catalogue(tmp_path, monkeypatch, damage):
    from paperscope.index import vectors

    catalog = vector_catalogue(tmp_path)
    first = load_vector_index(catalog, "test-model")
    files = [p for p in index_folder(catalog).iterdir() if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": os.urandom(len(data))}[damage])
    monkeypatch.setattr(vectors, "_LOADED", {})  # as a new process would, read the files
    again = load_vector_index(catalog, "test-model")
    assert again.ids == first.ids and np.array_equal(again.matrix, first.matrix)
    catalog.close()


# ------------------------------------------------------------------------------------ the crash loop
needs_corpora = pytest.mark.skipif(not (SHARED / "data" / "paperlists").is_dir() or not PAGES.is_dir(),
                                   reason="needs the real corpora in ../shared (data/paperlists, samples/pages)")


@pytest.fixture(scope="module")
def crash_report(tmp_path_factory):
    """The crash loop over every kind on the small corpus, ``PAPERSCOPE_CRASH_RUNS`` kills each."""
    report = run_crash_bench(CRASH_RUNS, list(KINDS), shared=SHARED, size="small", seed=7,
                             workdir=tmp_path_factory.mktemp("crash"))
    print(json.dumps([{k: v for k, v in kind.items() if k != "details"} for kind in report["kinds"]], indent=1))
    return {kind["kind"]: kind for kind in report["kinds"]}


@needs_corpora
@pytest.mark.parametrize("kind", KINDS)
def test_killed_processes_lose_nothing_and_never_serve_a_half_written_index(crash_report, kind):
    result = crash_report[kind]
    assert result["runs"] == CRASH_RUNS  # each run is a real SIGKILL of a real process
    assert result["problems"] == [] and result["integrity_failures"] == 0, result["problems"]
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert all(r["recovery_s"] > 0 for r in result["details"])
