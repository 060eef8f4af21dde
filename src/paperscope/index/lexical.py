"""The keyword index: BM25 over titles, authors, keywords and abstracts, with filter and facet fields.

The index is *derived* from the catalogue and lives beside it (``<catalogue>.index/lexical/``, or a
folder in the user cache dir for a database URL). It can always be rebuilt from the catalogue;
:func:`paperscope.index.maintain.ensure_indexes` does so whenever it cannot prove the index is in
step with the catalogue.

Crash safety rests on two facts:

- a tantivy commit is atomic (readers see the previous commit or the new one, never a mix), and a
  rebuild or an update is always *one* commit;
- ``manifest.json`` is written (atomically, by rename) only *after* a commit succeeds, and records
  that commit's opstamp, the document count and a fingerprint of the catalogue.

So an index whose last commit is not the one its manifest names (a crash between commit and
manifest), whose manifest is missing or from another schema, or whose document count differs from
the catalogue's paper count, is stale and is rebuilt, never served as if complete.

An ingest also leaves a mark (``lexical.pending/``) from before its first change to the catalogue
until the manifest of its index update is written, so an ingest or update that crashed, was
interrupted or found the index busy makes the index stale too, even when the paper count still
agrees (a changed title, or a source whose papers all merged into known ones). Writers take ``lexical.lock``
(an OS file lock) so that one process at a time changes the folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

try:
    import fcntl
except ImportError:  # Windows: tantivy's own writer lock is the only guard there
    fcntl = None  # type: ignore[assignment]

from paperscope.text import clean_markup, name_key, strip_accents

if TYPE_CHECKING:  # tantivy is imported lazily so that the CLI starts fast
    import tantivy

    from paperscope.catalog.store import Catalog

# Bump when fields or analyzers change: an index with another version is rebuilt from scratch.
SCHEMA_VERSION = 3
MANIFEST = "manifest.json"

# Writer tuning for a 2-core laptop: one indexing thread (the other core builds documents in
# Python) and a heap large enough that 100k abstracts need only a few internal flushes.
WRITER_HEAP_BYTES = 96_000_000
WRITER_THREADS = 1
WRITER_LOCK_WAIT_S = 30.0
BATCH_SIZE = 1000

# Plain words must occur in TEXT_FIELD (title, authors, keywords and abstract, one value each, so a
# phrase never spans two of them); words also found in the title add TITLE_BOOST x their title BM25.
TEXT_FIELD = "text"
TITLE_BOOST = 2.0
# Facets and the raw fast text field each is counted on (case kept for display, one value per distinct key).
FACET_FIELDS = {"venue": "venue", "year": "year_facet", "type": "type", "award": "award", "session": "session"}
# Catalogue fields not stored with the document (the abstract is stored in its own field).
_NOT_STORED = ("abstract", "abstract_raw", "provenance")

ProgressCallback = Callable[[int, int], None]  # (done, total)

_VENUE_ALIASES = {"nips": "neurips"}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# year * 1e11 + seconds since the epoch: one integer that sorts by year, then by slot.
_YEAR_FACTOR = 100_000_000_000


class IndexBusy(RuntimeError):
    """Another process is writing the index (it holds the index's writer lock)."""


@functools.lru_cache(maxsize=4096)
def venue_key(venue: str) -> str:
    """Key venues are matched on: case, accents, spaces and punctuation folded ("NeurIPS" == "neurips" == "NIPS")."""
    key = _NON_ALNUM.sub("", strip_accents(venue or "").lower())
    return _VENUE_ALIASES.get(key, key)


def text_analyzer() -> "tantivy.TextAnalyzer":
    """Words: split on non-alphanumerics, lower-cased, accents folded; not stemmed.

    A stemmer (Porter/Snowball) conflates words that ML titles keep apart ("transformer" and
    "transforming", "generative" and "generalization"); singular and plural are matched at query
    time instead (``search.word_forms``). The same analyzer tokenizes the user's words, so
    queries never go through tantivy's query parser.
    """
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(64))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def build_schema() -> "tantivy.Schema":
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field(TEXT_FIELD, tokenizer_name="en")         # everything a plain word may match
    sb.add_text_field("title", tokenizer_name="en")
    sb.add_text_field("authors", tokenizer_name="en")          # one value per author (no phrase spans two names)
    # stored for snippets; indexed without frequencies or positions (the text field is what is
    # searched): the snippet generator and more-like-this only need its terms
    sb.add_text_field("abstract", stored=True, tokenizer_name="en", index_option="basic")
    sb.add_text_field("author_key", tokenizer_name="raw")      # text.name_key of each author
    sb.add_text_field("venue", tokenizer_name="raw", fast=True)  # as printed, for facets
    sb.add_text_field("venue_key", tokenizer_name="raw")       # venue_key(), for venue:
    sb.add_integer_field("year", indexed=True, fast=True)   # for year: and ranges
    sb.add_text_field("year_facet", tokenizer_name="raw", fast=True)  # the same years as text, for facets
    sb.add_text_field("type", tokenizer_name="raw", fast=True)  # presentation, lower-case
    sb.add_text_field("award", tokenizer_name="raw", fast=True)
    sb.add_text_field("award_text", tokenizer_name="en")
    sb.add_text_field("session", tokenizer_name="raw", fast=True)
    sb.add_text_field("session_text", tokenizer_name="en")
    sb.add_text_field("decision_text", tokenizer_name="en")
    sb.add_text_field("flag", tokenizer_name="raw")            # "award": has any award
    sb.add_integer_field("date", fast=True)                    # newest appearance: year, then slot
    # The paper as the catalogue gave it (without its abstract, stored above), so a page of results
    # is shown without a round trip to the database (which costs more than the search itself).
    sb.add_bytes_field("paper", stored=True)
    return sb.build()


def catalogue_fingerprint(catalog: "Catalog") -> str:
    """A cheap fingerprint of the catalogue's content: its sources' versions and its paper count.

    Every ingest that changes papers rewrites its source row (content hash, time), so a catalogue
    changed behind the index's back (by a crash between ingest and index update, or by an older
    tool) gets a new fingerprint.
    """
    h = hashlib.sha1()
    for src in catalog.source_list():
        h.update(f"{src['locator']}\x1f{src['content_hash']}\x1f{src['ingested_at']}\x1e".encode("utf-8", "surrogatepass"))
    h.update(str(catalog.paper_count()).encode())
    return h.hexdigest()


@dataclass
class IndexState:
    """Whether the index on disk can be served for the catalogue, and why not."""

    fresh: bool
    reason: str = ""
    docs: int = 0
    exists: bool = False   # a complete earlier commit exists and can be served while a rebuild waits


def _epoch(value: Any) -> int:
    if not value:
        return 0
    try:
        return int(datetime.fromisoformat(str(value)).timestamp())
    except ValueError:
        return 0


_MARKUP_CHARS = re.compile(r"[\\$<>&{}~]")


def _clean_title(title: str) -> str:
    # clean_markup is ~50 us a title; most titles have no markup at all
    return clean_markup(title) if _MARKUP_CHARS.search(title) else title


def _author_key(name: str) -> str:
    """``text.name_key``, with a fast path for ASCII names (same result: NFKD changes no ASCII)."""
    if name.isascii():
        return " ".join(_NON_ALNUM.sub(" ", name.lower()).split())
    return name_key(name)


def paper_document(paper: dict[str, Any]) -> "tantivy.Document":
    """The index document of a catalogue paper (as returned by ``Catalog.papers``)."""
    import tantivy

    doc = tantivy.Document()
    doc.add_text("id", paper["id"])
    title = _clean_title(paper.get("title") or "")
    abstract = paper.get("abstract") or ""
    doc.add_text("title", title)
    doc.add_text(TEXT_FIELD, title)
    for name in paper.get("authors") or []:
        doc.add_text("authors", name)
        doc.add_text(TEXT_FIELD, name)
        key = _author_key(name)
        if key:
            doc.add_text("author_key", key)
    for keyword in paper.get("keywords") or []:
        doc.add_text(TEXT_FIELD, keyword)
    doc.add_text("abstract", abstract)
    doc.add_text(TEXT_FIELD, abstract)

    apps = paper.get("appearances") or []
    venues: dict[str, str] = {}
    years: set[int] = {paper["year"]} if paper.get("year") else set()
    types: set[str] = set()
    awards: dict[str, str] = {}
    sessions: dict[str, str] = {}
    decisions: set[str] = set()
    date = (paper.get("year") or 0) * _YEAR_FACTOR
    for app in apps:
        if app.get("venue"):
            venues.setdefault(venue_key(app["venue"]), app["venue"].strip())
        if app.get("year"):
            years.add(int(app["year"]))
        if app.get("presentation"):
            types.add(app["presentation"].strip().lower())
        if app.get("award"):
            awards.setdefault(app["award"].strip().lower(), app["award"].strip())
        if app.get("session"):
            sessions.setdefault(app["session"].strip().lower(), app["session"].strip())
        if app.get("decision"):
            decisions.add(app["decision"].strip())
        year = app.get("year") or paper.get("year") or 0
        date = max(date, year * _YEAR_FACTOR + max(0, _epoch(app.get("starts_at"))) % _YEAR_FACTOR)
    for key, venue in venues.items():
        if key:
            doc.add_text("venue", venue)
            doc.add_text("venue_key", key)
    for year in sorted(years):
        doc.add_integer("year", year)
        doc.add_text("year_facet", str(year))
    for value in sorted(types):
        doc.add_text("type", value)
    for award in awards.values():
        doc.add_text("award", award)
        doc.add_text("award_text", award)
    if awards:
        doc.add_text("flag", "award")
    for session in sessions.values():
        doc.add_text("session", session)
        doc.add_text("session_text", session)
    for decision in sorted(decisions):
        doc.add_text("decision_text", decision)
    doc.add_integer("date", date)
    doc.add_bytes("paper", json.dumps(
        {k: v for k, v in paper.items() if k not in _NOT_STORED}, ensure_ascii=False, default=str).encode("utf-8"))
    return doc


def stored_paper(doc: "tantivy.Document") -> dict[str, Any]:
    """The paper dict (as ``Catalog.papers`` gives it, less the raw abstract and provenance) of an index document."""
    paper = json.loads(doc.get_first("paper") or b"{}")
    paper["abstract"] = doc.get_first("abstract") or ""
    return paper


class LexicalIndex:
    """A tantivy index in a folder, with the manifest that says which catalogue state it holds."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._index: "tantivy.Index | None" = None
        self._schema: "tantivy.Schema | None" = None
        self._analyzer: "tantivy.TextAnalyzer | None" = None
        self._manifest_mtime: float | None = None

    @classmethod
    def for_catalog(cls, catalog: "Catalog") -> "LexicalIndex":
        from paperscope.index.maintain import index_root

        return cls(index_root(catalog) / "lexical")

    # ------------------------------------------------------------------ opening
    @property
    def schema(self) -> "tantivy.Schema":
        if self._schema is None:
            self._schema = build_schema()
        return self._schema

    @property
    def analyzer(self) -> "tantivy.TextAnalyzer":
        if self._analyzer is None:
            self._analyzer = text_analyzer()
        return self._analyzer

    def analyze(self, text: str) -> list[str]:
        """The index terms of ``text`` (what a word typed by the user must be looked up as)."""
        return self.analyzer.analyze(text) if text else []

    @property
    def index(self) -> "tantivy.Index":
        if self._index is None:
            self._index = self._open(create=False)
        return self._index

    def _open(self, create: bool) -> "tantivy.Index":
        import tantivy

        if not create and not (self.path / "meta.json").exists():
            raise FileNotFoundError(f"no keyword index at {self.path}")
        self.path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        index.register_tokenizer("en", self.analyzer)
        return index

    def searcher(self) -> "tantivy.Searcher":
        """A searcher on the latest complete commit (picks up commits made by other processes)."""
        mtime = self._manifest_stat()
        if mtime != self._manifest_mtime:
            self._manifest_mtime = mtime
            self.index.reload()
        return self.index.searcher()

    @property
    def generation(self) -> Any:
        """Changes whenever a new commit is published (the manifest is rewritten)."""
        return self._manifest_mtime

    def _manifest_stat(self) -> float | None:
        try:
            return (self.path / MANIFEST).stat().st_mtime_ns
        except OSError:
            return None

    def stored_papers(self) -> Iterator[dict[str, Any]]:
        """Every document of the served commit as its stored paper (for checking the index against the catalogue)."""
        import tantivy

        searcher = self.searcher()
        if not searcher.num_docs:
            return
        for _score, address in searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs).hits:
            yield stored_paper(searcher.doc(address))

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def _committed_opstamp(self) -> int | None:
        try:
            return int(json.loads((self.path / "meta.json").read_text("utf-8"))["opstamp"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def state(self, catalog: "Catalog") -> IndexState:
        """Can this index be served for ``catalog`` as it is now?"""
        manifest = self.read_manifest()
        if manifest is None:
            return IndexState(False, "no keyword index yet" if not self.path.exists() else "the index has no manifest (interrupted build)")
        if manifest.get("schema") != SCHEMA_VERSION:
            return IndexState(False, "the index was built by another version of paperscope")
        complete = manifest.get("opstamp") == self._committed_opstamp()
        if not complete:
            return IndexState(False, "the index was changed after its manifest was written (interrupted update)")
        try:
            docs = self.searcher().num_docs
        except Exception as exc:  # a damaged index folder: rebuild it
            return IndexState(False, f"the index cannot be read ({exc})")
        if docs != manifest.get("docs"):
            return IndexState(False, "the index holds another number of papers than its manifest says", docs, True)
        if docs != catalog.paper_count():
            return IndexState(False, "the catalogue has another number of papers than the index", docs, True)
        if manifest.get("catalogue") != catalogue_fingerprint(catalog):
            return IndexState(False, "the catalogue changed since the index was built", docs, True)
        if self.pending_updates():
            return IndexState(False, "an index update has not finished", docs, True)
        return IndexState(True, "", docs, True)

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _exclusive(self, wait_s: float) -> Iterator[None]:
        """One writer at a time, across processes, around every step that changes the folder.

        tantivy's own writer lock lives inside the index folder, which a rebuild may have to
        delete; this lock file lives beside it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path.parent / f"{self.path.name}.lock", "a+")
        try:
            if fcntl is not None:
                deadline = time.monotonic() + wait_s
                while True:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise IndexBusy(f"another process is writing the keyword index at {self.path}") from None
                        time.sleep(0.1)
            yield
        finally:
            handle.close()  # releases the lock

    def _writer(self, index: "tantivy.Index") -> "tantivy.IndexWriter":
        try:
            return index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS)
        except ValueError as exc:  # tantivy's lock: a writer without our lock file (an older paperscope)
            if "lock" in str(exc).lower():
                raise IndexBusy(f"another process is writing the keyword index at {self.path}") from exc
            raise

    @property
    def _pending_dir(self) -> Path:
        return self.path.parent / f"{self.path.name}.pending"

    def mark_pending(self) -> Path:
        """Record, before the catalogue changes, that changes wait to be indexed.

        The mark goes when they are committed (by the update given this mark, or by a rebuild that
        started after it). An ingest or update that fails, is killed or finds the index busy leaves
        it, and the index is then stale until rebuilt: the changes it made are never forgotten,
        even those a re-run finds already in the catalogue and so does not list again.
        """
        self._pending_dir.mkdir(parents=True, exist_ok=True)
        mark = self._pending_dir / f"{time.time_ns()}-{os.getpid()}-{os.urandom(4).hex()}"
        mark.touch()
        return mark

    def pending_updates(self) -> list[Path]:
        try:
            return sorted(self._pending_dir.iterdir())
        except OSError:
            return []

    def _write_manifest(self, opstamp: int, docs: int, fingerprint: str) -> None:
        data = {"schema": SCHEMA_VERSION, "opstamp": opstamp, "docs": docs, "catalogue": fingerprint,
                "written_at": datetime.now().astimezone().isoformat(timespec="seconds")}
        tmp = self.path / f".{MANIFEST}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / MANIFEST)
        self._manifest_mtime = None

    def _drop_manifest(self) -> None:
        try:
            (self.path / MANIFEST).unlink()
        except FileNotFoundError:
            pass

    def _manifest_valid(self) -> bool:
        manifest = self.read_manifest()
        return (manifest is not None and manifest.get("schema") == SCHEMA_VERSION
                and manifest.get("opstamp") == self._committed_opstamp())

    def rebuild(self, catalog: "Catalog", progress: ProgressCallback | None = None,
                wait_s: float | None = None) -> int:
        """Index every paper of the catalogue in one commit; returns the number of documents.

        Raises :class:`IndexBusy` when another process keeps the index for more than ``wait_s``
        seconds (default ``WRITER_LOCK_WAIT_S``).
        """
        with self._exclusive(WRITER_LOCK_WAIT_S if wait_s is None else wait_s):
            return self._rebuild_locked(catalog, progress)

    def _rebuild_locked(self, catalog: "Catalog", progress: ProgressCallback | None) -> int:
        covered = self.pending_updates()  # their changes are in the catalogue already: this read includes them
        fingerprint = catalogue_fingerprint(catalog)  # taken first: a concurrent ingest leaves it stale, never wrongly fresh
        total = catalog.paper_count()
        manifest = self.read_manifest()
        if manifest is None or manifest.get("schema") != SCHEMA_VERSION:
            self._reset_folder()
        try:
            index = self._open(create=True)
        except (OSError, ValueError):  # damaged beyond opening: start again
            self._reset_folder()
            index = self._open(create=True)
        writer = self._writer(index)
        done = 0
        try:
            writer.delete_all_documents()
            for paper in catalog.iter_papers(BATCH_SIZE):
                writer.add_document(paper_document(paper))
                done += 1
                if progress and done % BATCH_SIZE == 0:
                    progress(done, total)
            opstamp = writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            _rollback(writer)
            raise
        self._index = index
        self._write_manifest(opstamp, done, fingerprint)
        for mark in covered:
            mark.unlink(missing_ok=True)
        if progress:
            progress(done, max(total, done))
        return done

    def update(self, catalog: "Catalog", touched_ids: Iterable[str], removed_ids: Iterable[str] = (),
               progress: ProgressCallback | None = None, wait_s: float | None = None,
               mark: Path | None = None) -> int:
        """Re-index the papers an ingest touched and drop the ones it removed, in one commit.

        The caller promises these are all the catalogue changes since the index's last commit, or
        since ``mark`` (from :meth:`mark_pending`, made before its first change) when it gives one.
        An index that is not complete (no manifest, interrupted, an earlier update that did not
        finish) is rebuilt instead. Returns the number of documents (re-)indexed.
        """
        touched = sorted(set(touched_ids))
        removed = sorted(set(removed_ids) - set(touched))
        mark = mark or self.mark_pending()
        with self._exclusive(WRITER_LOCK_WAIT_S if wait_s is None else wait_s):
            earlier = [m for m in self.pending_updates() if m != mark]
            if earlier or not self._manifest_valid():
                return self._rebuild_locked(catalog, progress)
            fingerprint = catalogue_fingerprint(catalog)
            index = self.index
            done = 0
            if touched or removed:
                writer = self._writer(index)
                try:
                    for pid in (*touched, *removed):
                        writer.delete_documents_by_term("id", pid)
                    for paper in catalog.iter_papers(BATCH_SIZE, paper_ids=touched):
                        writer.add_document(paper_document(paper))
                        done += 1
                        if progress and done % BATCH_SIZE == 0:
                            progress(done, len(touched))
                    opstamp = writer.commit()
                    writer.wait_merging_threads()
                except BaseException:
                    _rollback(writer)
                    raise
            else:  # an ingest that changed nothing indexable (e.g. only sessions): record the new state
                opstamp = self.read_manifest()["opstamp"]
            index.reload()
            docs = index.searcher().num_docs
            if docs != catalog.paper_count():
                # the promise did not hold (changes the caller did not list): rebuild rather than serve a gap
                return self._rebuild_locked(catalog, progress)
            self._write_manifest(opstamp, docs, fingerprint)
            mark.unlink(missing_ok=True)
        if progress:
            progress(done, len(touched))
        return done

    def _reset_folder(self) -> None:
        self._index = None
        self._drop_manifest()  # first: a half-deleted folder must never look complete
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.glob("*") if p.is_file()) if self.path.exists() else 0


def _rollback(writer: "tantivy.IndexWriter") -> None:
    try:
        writer.rollback()
    except Exception:  # the writer may already be unusable; the manifest was not written either way
        pass
