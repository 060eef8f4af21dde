"""`paperscope bench ingest`: how fast the paperlists corpus lands in a fresh catalogue.

The baseline, measured in the same run on the same parsed rows, is the least any importer
must do: one plain ``executemany`` of the rows into a fresh SQLite table in one transaction.
Our figure includes everything the product does: merging, authors, appearances, provenance,
and the keyword index.
"""

from __future__ import annotations

import resource
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paperscope.model import ImportOptions, PaperRecord

BENCH_DIR = Path.home() / ".cache" / "paperscope" / "bench"
BENCH_CATALOGUE = BENCH_DIR / "paperlists.sqlite"


@dataclass
class ParsedFile:
    locator: str
    fingerprint: str
    records: list[PaperRecord]


def default_corpus() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / "paperlists"
        if candidate.is_dir():
            return candidate
    return Path("../shared/data/paperlists")


def parse_corpus(corpus: Path, with_abstract_only: bool, progress: Callable[[int, int], None] | None = None) -> list[ParsedFile]:
    from paperscope.ingest import expand_paths
    from paperscope.ingest.base import SourceError, read_source
    from paperscope.ingest.paperlists import IMPORTER
    from paperscope.ingest.pipeline import source_fingerprint

    files = [p for p in expand_paths([corpus]) if p.name.endswith((".json", ".json.gz"))]
    parsed = []
    options = ImportOptions()
    for done, path in enumerate(files, start=1):
        try:
            source = read_source(path)
        except SourceError:
            continue
        records = [r for r in IMPORTER.parse(source, options) if isinstance(r, PaperRecord)]
        if with_abstract_only:
            records = [r for r in records if r.abstract.strip()]
        parsed.append(ParsedFile(source.locator, source_fingerprint(source, IMPORTER.name, options), records))
        if progress:
            progress(done, len(files))
    return parsed


def plain_executemany(parsed: list[ParsedFile], folder: Path) -> float:
    """Seconds to insert the same rows with one executemany into a fresh SQLite file."""
    path = folder / "baseline.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE papers (title TEXT, authors TEXT, abstract TEXT, venue TEXT, year INT, status TEXT)")
    rows = [(r.title, ";".join(r.authors), r.abstract, r.appearance.venue, r.appearance.year, r.appearance.decision)
            for f in parsed for r in f.records]
    start = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bare_text_index(parsed: list[ParsedFile], folder: Path, threads: int = 2) -> float:
    """Seconds for the least a keyword index over the same papers must do: title and abstract in one
    tokenized field of a fresh tantivy index, nothing stored but an id, one commit.

    It bounds the ratio any importer can reach "indexing included": even with a free catalogue,
    ratio_to_baseline cannot exceed baseline / this.
    """
    import tantivy

    schema_builder = tantivy.SchemaBuilder()
    schema_builder.add_text_field("id", stored=True, tokenizer_name="raw")
    schema_builder.add_text_field("text")
    index_dir = folder / "bare-index"
    index_dir.mkdir()
    index = tantivy.Index(schema_builder.build(), path=str(index_dir))
    writer = index.writer(heap_size=256_000_000, num_threads=threads)
    start = time.perf_counter()
    for number, record in enumerate((r for f in parsed for r in f.records)):
        writer.add_document(tantivy.Document(id=str(number), text=f"{record.title} {record.abstract}"))
    writer.commit()
    writer.wait_merging_threads()
    return time.perf_counter() - start


def paperscope_ingest(parsed: list[ParsedFile], db_path: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    from paperscope.catalog.store import Catalog
    from paperscope.index.maintain import rebuild_indexes, update_indexes

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    catalog = Catalog.open(str(db_path))
    rebuild_indexes(catalog)  # start from an empty, consistent index like a fresh install
    touched: set[str] = set()
    start = time.perf_counter()
    for done, f in enumerate(parsed, start=1):
        report = catalog.ingest(f.locator, "paperlists", f.fingerprint, list(f.records))
        touched |= report.touched_paper_ids
        if progress:
            progress(done, len(parsed))
    catalogue_seconds = time.perf_counter() - start
    start = time.perf_counter()
    update_indexes(catalog, touched, set())
    index_seconds = time.perf_counter() - start
    papers = catalog.paper_count()
    catalog.close()
    return {"catalogue_seconds": catalogue_seconds, "index_seconds": index_seconds, "papers": papers}


def run_ingest_bench(corpus: Path, with_abstract_only: bool = True, keep: bool = True,
                     progress: Callable[[str, int, int], None] | None = None) -> dict:
    start = time.perf_counter()
    parsed = parse_corpus(corpus, with_abstract_only, (lambda d, t: progress("parse", d, t)) if progress else None)
    parse_seconds = time.perf_counter() - start
    records = sum(len(f.records) for f in parsed)
    with tempfile.TemporaryDirectory() as tmp:
        baseline_seconds = plain_executemany(parsed, Path(tmp))
        floor_seconds = bare_text_index(parsed, Path(tmp))
        target = BENCH_CATALOGUE if keep else Path(tmp) / "catalogue.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        ours = paperscope_ingest(parsed, target, (lambda d, t: progress("ingest", d, t)) if progress else None)
    ours_seconds = ours["catalogue_seconds"] + ours["index_seconds"]
    return {
        "corpus": str(corpus),
        "files": len(parsed),
        "records": records,
        "papers": ours["papers"],
        "parse_seconds": round(parse_seconds, 2),
        "baseline_executemany_seconds": round(baseline_seconds, 2),
        "baseline_records_per_s": round(records / baseline_seconds),
        "paperscope_catalogue_seconds": round(ours["catalogue_seconds"], 2),
        "paperscope_index_seconds": round(ours["index_seconds"], 2),
        "paperscope_records_per_s": round(records / ours_seconds),
        "ratio_to_baseline": round(baseline_seconds / ours_seconds, 3),
        "bare_text_index_seconds": round(floor_seconds, 2),
        "best_possible_ratio": round(baseline_seconds / floor_seconds, 3),
        "end_to_end_records_per_s": round(records / (ours_seconds + parse_seconds)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "catalogue": str(BENCH_CATALOGUE) if keep else None,
    }
