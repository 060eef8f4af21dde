"""`paperscope bench crash`: SIGKILL real ingest, embed and reindex processes at random moments.

Each run copies a starting state, starts the real command (``paperscope ingest|embed|reindex
--db ...``) as its own process, kills it with SIGKILL after a seeded random delay, and checks what
the crash left:

- the SQLite file: ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``;
- the keyword index: either its manifest says it is complete and every document agrees with the
  catalogue (same papers, titles and appearances), or it is found stale, to be rebuilt before
  anything is served from it;
- the vectors (embed): every stored vector whole, and the matrix a search would serve equal, row
  for row, to the catalogue's vectors of the papers it lists.

Then it recovers the way a user would: runs the same command again to the end and opens a search.
The catalogue must then equal that of a reference run of the same command that was never killed:
no paper lost, none duplicated, the index and the vectors complete. Recovery time (the re-run and
the first search) is reported against the reference run's time, measured in the same process.
"""

from __future__ import annotations

import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

KINDS = ("ingest", "embed", "reindex")
CATALOGUE = "catalogue.sqlite"
# Papers per stored embedding batch: small, so that kills land between batches as well as inside them.
EMBED_BATCH = 4
# Kill between this fraction of the reference run's time and all of it (the first moments are imports).
KILL_WINDOW = (0.05, 1.0)

Progress = Callable[[str], None]


class CrashBenchError(RuntimeError):
    """The benchmark could not run (missing corpus, a reference run that failed)."""


# ------------------------------------------------------------------------------------ inputs
@dataclass
class Corpus:
    """What the crash runs work on, all real data from the shared folder."""

    ingest: list[Path]        # what the killed `paperscope ingest` reads, in this order
    base: list[Path]          # already in the catalogue (and indexed) for runs that start from one
    embed: list[Path]         # the catalogue `paperscope embed` runs on


def default_shared() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared"
        if (candidate / "data").is_dir():
            return candidate
    return Path("../shared")


def corpus_for(shared: Path, size: str) -> Corpus:
    """``full`` (the benchmark: ~2,000 papers, a run takes several seconds) or ``small`` (the tests)."""
    pages = shared / "samples" / "pages"
    data = shared / "data"
    iclr = data / "paperlists" / "head" / "iclr"
    oral = pages / "iclr2022-oral-2-understanding-deep-learning.txt"
    hall_f = pages / "icml2022-session-deep-learning-hall-f.txt"
    if size == "small":
        corpus = Corpus(
            ingest=[iclr / "iclr2013.json.gz", iclr / "iclr2014.json.gz", hall_f,
                    pages / "icml2022-session-deep-learning-ballroom-1-2.txt", oral],
            base=[hall_f], embed=[oral])
    elif size == "full":
        # The full ICLR 2020 Mini-Conf site comes first: every paper of it merges into the sample
        # site's papers already in a started catalogue, so a kill after it lands changes no count.
        corpus = Corpus(
            ingest=[data / "iclr2020_virtual_site", iclr / "iclr2018.json.gz", *sorted(pages.glob("*.txt")),
                    data / "miniconf_sample_iclr2020"],
            base=[data / "miniconf_sample_iclr2020", hall_f], embed=[oral, hall_f])
    else:
        raise CrashBenchError(f"unknown corpus size {size!r} (use full or small)")
    missing = [str(p) for p in {*corpus.ingest, *corpus.base, *corpus.embed} if not p.exists()]
    if missing:
        raise CrashBenchError(f"the shared data is incomplete: {', '.join(sorted(missing))} not found")
    return corpus


# ------------------------------------------------------------------------------------ processes
def paperscope_command() -> list[str]:
    """The installed `paperscope` beside this Python, else this Python running the package."""
    script = Path(sys.executable).with_name("paperscope")
    return [str(script)] if script.exists() else [sys.executable, "-m", "paperscope"]


def command_args(kind: str, db: Path, corpus: Corpus) -> list[str]:
    if kind == "ingest":
        return ["ingest", *map(str, corpus.ingest), "--db", str(db), "--json"]
    if kind == "embed":
        return ["embed", "--db", str(db), "--batch-size", str(EMBED_BATCH), "--json"]
    if kind == "reindex":
        return ["reindex", "--db", str(db), "--json"]
    raise CrashBenchError(f"unknown kind {kind!r} (use {', '.join(KINDS)})")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def run_to_end(args: list[str], log: Path, timeout_s: float) -> float:
    """Run a command to its end; its seconds. A non-zero exit is an error naming the command and its message."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        try:
            code = subprocess.run(paperscope_command() + args, stdout=subprocess.DEVNULL, stderr=err,
                                  timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            raise CrashBenchError(f"`paperscope {args[0]}` did not finish in {timeout_s:.0f} s") from None
    if code != 0:
        raise CrashBenchError(f"`paperscope {args[0]}` exited with status {code}: {_last_line(log)}")
    return time.perf_counter() - started


def run_and_kill(args: list[str], delay_s: float, log: Path) -> tuple[bool, int | None]:
    """Start a command and SIGKILL it after ``delay_s``: (killed, exit status when it finished first)."""
    with open(log, "w", encoding="utf-8") as err:
        process = subprocess.Popen(paperscope_command() + args, stdout=subprocess.DEVNULL, stderr=err)
        try:
            return False, process.wait(timeout=delay_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True, None


# ------------------------------------------------------------------------------------ checks
def _open_as_left(db: Path):
    """The catalogue as the crash left it: no migration or repair runs on opening."""
    from sqlalchemy import create_engine

    from paperscope.catalog.store import Catalog

    return Catalog(create_engine(f"sqlite:///{db}", future=True), str(db))


def index_disagreements(catalog) -> list[str]:
    """How the keyword index's documents differ from the catalogue's papers (empty when they agree)."""
    from paperscope.catalog.integrity import appearance_counts, paper_titles
    from paperscope.index.lexical import LexicalIndex

    titles, appearances = paper_titles(catalog), appearance_counts(catalog)
    seen: Counter = Counter()
    differing = foreign = 0
    for paper in LexicalIndex.for_catalog(catalog).stored_papers():
        pid = paper.get("id")
        seen[pid] += 1
        if pid not in titles:
            foreign += 1
        elif paper.get("title") != titles[pid] or len(paper.get("appearances") or []) != appearances.get(pid, 0):
            differing += 1
    missing = len(set(titles) - set(seen))
    doubled = sum(n - 1 for n in seen.values())
    counts = {"missing": missing, "not in the catalogue": foreign, "out of date": differing, "indexed twice": doubled}
    return [f"keyword index: {n} papers {what}" for what, n in counts.items() if n]


def index_after_crash(catalog) -> tuple[str, list[str]]:
    """(what the index's state is, problems): a complete-looking index must agree with the catalogue."""
    from paperscope.index.lexical import LexicalIndex

    state = LexicalIndex.for_catalog(catalog).state(catalog)
    if not state.fresh:
        return f"index stale ({state.reason})", []
    found = index_disagreements(catalog)
    return "index complete", [f"served as complete, but {p}" for p in found]


def served_vector_problems(catalog, model: str) -> list[str]:
    """The matrix a search would serve must hold, for each id it lists, that paper's stored vector."""
    import numpy as np

    from paperscope.index.embedder import DIM
    from paperscope.index.vectors import from_blob, load_vector_index

    served = load_vector_index(catalog, model)
    if served is None:
        return []
    problems = []
    if served.matrix.ndim != 2 or served.matrix.shape != (len(served.ids), DIM):
        return [f"vectors: a {served.matrix.shape} matrix served for {len(served.ids)} ids"]
    if len(set(served.ids)) != len(served.ids):
        problems.append(f"vectors: {len(served.ids) - len(set(served.ids))} ids served twice")
    ids, blobs = catalog.paper_vectors(model)
    stored = dict(zip(ids, blobs))
    wrong = sum(1 for i, pid in enumerate(served.ids)
                if pid not in stored or not np.array_equal(served.matrix[i], from_blob(stored[pid])))
    if wrong:
        problems.append(f"vectors: {wrong} served rows are not their paper's stored vector")
    return problems


def vectors_after_crash(catalog, model: str) -> tuple[str, list[str]]:
    from paperscope.catalog.integrity import vector_problems
    from paperscope.index.embedder import DIM
    from paperscope.index.vectors import sentence_model

    problems = vector_problems(catalog, model, DIM) + vector_problems(catalog, sentence_model(model), DIM)
    problems += served_vector_problems(catalog, model)
    return f"{catalog.count_paper_vectors(model)} of {catalog.paper_count()} papers had vectors", problems


def inspect_after_kill(kind: str, db: Path, model: str | None) -> tuple[str, list[str]]:
    """What a killed process left: (a note on the state, problems found)."""
    from paperscope.catalog.integrity import missing_tables, storage_problems

    if not db.exists():
        return "killed before the catalogue existed", []
    catalog = _open_as_left(db)
    try:
        problems = storage_problems(catalog)
        absent = missing_tables(catalog)
        if absent:
            return f"killed while creating the catalogue ({len(absent)} tables missing)", problems
        notes = [f"{len(catalog.source_list())} sources in"]
        note, found = index_after_crash(catalog)
        notes.append(note)
        problems += found
        if kind == "embed" and model:
            note, found = vectors_after_crash(catalog, model)
            notes.append(note)
            problems += found
        return "; ".join(notes), problems
    finally:
        catalog.close()


# ------------------------------------------------------------------------------------ outcomes
@dataclass
class Outcome:
    """What a finished catalogue holds, to compare with the never-killed reference."""

    identities: Counter
    appearances: int
    sources: int
    paper_hashes: set[str] = field(default_factory=set)      # texts with a paper vector
    sentence_hashes: set[str] = field(default_factory=set)   # texts with a sentence vector
    served_vectors: int = 0
    sentences_complete: str | None = None


def outcome_of(db: Path, model: str | None) -> Outcome:
    from paperscope.catalog.integrity import embedded_hashes, paper_identities
    from paperscope.catalog.store import Catalog

    catalog = Catalog.open(str(db))
    try:
        stats = catalog.stats()
        outcome = Outcome(paper_identities(catalog), stats["appearances"], stats["sources"])
        if model:
            from paperscope.index.vectors import load_vector_index, sentence_model

            outcome.paper_hashes = embedded_hashes(catalog, model)
            outcome.sentence_hashes = embedded_hashes(catalog, sentence_model(model))
            outcome.served_vectors = len(load_vector_index(catalog, model) or ())
            outcome.sentences_complete = catalog.get_meta(f"vectors:{sentence_model(model)}:complete")
        return outcome
    finally:
        catalog.close()


def compare_outcomes(final: Outcome, reference: Outcome) -> tuple[int, int, list[str]]:
    """(papers lost, papers duplicated, other differences) of a recovered catalogue against the reference."""
    lost = sum((reference.identities - final.identities).values())
    duplicated = sum((final.identities - reference.identities).values())
    problems = []
    if final.appearances != reference.appearances:
        problems.append(f"{final.appearances} appearances, the reference has {reference.appearances}")
    if final.sources != reference.sources:
        problems.append(f"{final.sources} sources, the reference has {reference.sources}")
    lost += len(reference.paper_hashes - final.paper_hashes)
    if reference.sentence_hashes - final.sentence_hashes:
        problems.append(f"{len(reference.sentence_hashes - final.sentence_hashes)} sentence vectors missing")
    if final.served_vectors != reference.served_vectors:
        problems.append(f"{final.served_vectors} papers served by meaning, the reference serves {reference.served_vectors}")
    if final.sentences_complete != reference.sentences_complete:
        problems.append(f"sentence vectors marked complete={final.sentences_complete}, "
                        f"the reference says {reference.sentences_complete}")
    return lost, duplicated, problems


def serve_check(db: Path) -> list[str]:
    """Open a search on the catalogue, as `paperscope search` and the web app do, then check what it serves."""
    from paperscope.catalog.integrity import storage_problems
    from paperscope.catalog.store import Catalog
    from paperscope.index.lexical import LexicalIndex
    from paperscope.search import SearchService

    catalog = Catalog.open(str(db))
    try:
        SearchService(catalog)  # rebuilds a stale index before serving it
        problems = storage_problems(catalog)
        state = LexicalIndex.for_catalog(catalog).state(catalog)
        if not state.fresh:
            problems.append(f"after a search opened, the keyword index is still stale: {state.reason}")
        return problems + index_disagreements(catalog)
    finally:
        catalog.close()


# ------------------------------------------------------------------------------------ the loop
@dataclass
class RunRecord:
    start: str
    kill_after_s: float
    killed: bool
    at_kill: str
    problems: list[str]
    lost: int = 0
    duplicated: int = 0
    recovery_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "kill_after_s": round(self.kill_after_s, 3), "killed": self.killed,
                "at_kill": self.at_kill, "problems": self.problems, "lost": self.lost,
                "duplicated": self.duplicated, "recovery_s": round(self.recovery_s, 2)}


@dataclass
class KindResult:
    kind: str
    reference_s: float
    records: list[RunRecord] = field(default_factory=list)

    @property
    def kills(self) -> list[RunRecord]:
        return [r for r in self.records if r.killed]

    def as_dict(self) -> dict[str, Any]:
        kills = self.kills
        recovery = [r.recovery_s for r in self.records]
        points = sorted(r.kill_after_s for r in kills)
        median_recovery = statistics.median(recovery) if recovery else 0.0
        return {
            "kind": self.kind,
            "runs": len(kills),
            "finished_before_kill": len(self.records) - len(kills),
            "kill_points_s": [round(p, 2) for p in points],
            "stale_index_detected": sum("index stale" in r.at_kill for r in kills),
            "integrity_failures": sum(bool(r.problems) for r in self.records),
            "lost": sum(r.lost for r in self.records),
            "duplicated": sum(r.duplicated for r in self.records),
            "reference_s": round(self.reference_s, 2),
            "recovery_median_s": round(median_recovery, 2),
            "recovery_max_s": round(max(recovery, default=0.0), 2),
            "recovery_vs_reference": round(median_recovery / self.reference_s, 2) if self.reference_s else None,
            "problems": sorted({p for r in self.records for p in r.problems})[:20],
            "details": [r.as_dict() for r in self.records],
        }


class CrashLoop:
    """Prepared starting states and references, and the kill-check-recover loop over them."""

    def __init__(self, corpus: Corpus, workdir: Path, seed: int = 0, progress: Progress | None = None):
        self.corpus = corpus
        self.workdir = workdir
        self.seed = seed
        self.say = progress or (lambda _message: None)
        self.model: str | None = None
        self.starts: dict[str, dict[str, Path]] = {}      # kind -> start name -> state folder
        self.references: dict[str, dict[str, Outcome]] = {}
        self.reference_s: dict[str, dict[str, float]] = {}

    # ----------------------------------------------------------------- states
    def _state(self, name: str) -> Path:
        folder = self.workdir / "states" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _timeout(self, reference_s: float = 60.0) -> float:
        return max(300.0, 20 * reference_s)

    def _ingest(self, folder: Path, targets: list[Path]) -> float:
        args = ["ingest", *map(str, targets), "--db", str(folder / CATALOGUE), "--json"]
        return run_to_end(args, folder / "ingest.log", self._timeout())

    def _copy(self, source: Path, name: str) -> Path:
        target = self.workdir / "states" / name
        shutil.copytree(source, target)
        return target

    def _reference(self, kind: str, start: str, folder: Path) -> None:
        """Run the kind's command to its end on a copy of a start state: the outcome every recovery must reach."""
        done = self._copy(folder, f"{kind}-{start}-reference")
        seconds = run_to_end(command_args(kind, done / CATALOGUE, self.corpus), done / "reference.log",
                             self._timeout())
        if kind == "embed" and self.model is None:
            self.model = self._model_of(done / CATALOGUE)
        self.references.setdefault(kind, {})[start] = outcome_of(done / CATALOGUE, self.model if kind == "embed" else None)
        self.reference_s.setdefault(kind, {})[start] = seconds

    @staticmethod
    def _model_of(db: Path) -> str:
        from paperscope.catalog.store import Catalog

        catalog = Catalog.open(str(db))
        try:
            generations = catalog.get_meta_prefix("vectors:")
        finally:
            catalog.close()
        models = [k[len("vectors:"):-len(":generation")] for k in generations if k.endswith(":generation")]
        if not models:
            raise CrashBenchError("the reference `paperscope embed` stored no vectors")
        return models[0]

    def prepare(self, kinds: list[str]) -> None:
        self.say("preparing the starting states and the reference runs")
        if "ingest" in kinds or "reindex" in kinds:
            fresh = self._state("ingest-fresh")
            existing = self._state("ingest-existing")
            self._ingest(existing, self.corpus.base)
            self.starts["ingest"] = {"fresh": fresh, "existing": existing}
            self._reference("ingest", "fresh", fresh)
            self._reference("ingest", "existing", existing)
        if "reindex" in kinds:
            indexed = self.workdir / "states" / "ingest-fresh-reference"
            unindexed = self._copy(indexed, "reindex-unindexed")
            shutil.rmtree(unindexed / f"{CATALOGUE}.index")
            self.starts["reindex"] = {"indexed": indexed, "unindexed": unindexed}
            self._reference("reindex", "indexed", indexed)
            self.references["reindex"]["unindexed"] = self.references["reindex"]["indexed"]
            self.reference_s["reindex"]["unindexed"] = self.reference_s["reindex"]["indexed"]
        if "embed" in kinds:
            bare = self._state("embed-bare")
            self._ingest(bare, self.corpus.embed)
            self._reference("embed", "bare", bare)
            half = self._copy(bare, "embed-half")
            papers = sum(self.references["embed"]["bare"].identities.values())
            run_to_end(["embed", "--db", str(half / CATALOGUE), "--limit", str(max(1, papers // 2)), "--json"],
                       half / "embed.log", self._timeout())
            self.starts["embed"] = {"bare": bare, "half": half}
            self.references["embed"]["half"] = self.references["embed"]["bare"]
            self.reference_s["embed"]["half"] = self.reference_s["embed"]["bare"]

    # ----------------------------------------------------------------- one run
    def crash_once(self, kind: str, start: str, delay_s: float, number: int) -> RunRecord:
        folder = self._copy(self.starts[kind][start], f"run-{kind}-{number}")
        db = folder / CATALOGUE
        args = command_args(kind, db, self.corpus)
        model = self.model if kind == "embed" else None
        try:
            killed, code = run_and_kill(args, delay_s, folder / "killed.log")
            if not killed and code != 0:
                at_kill, problems = "finished before the kill", [f"exited with status {code}: {_last_line(folder / 'killed.log')}"]
            else:
                at_kill, problems = inspect_after_kill(kind, db, model)
            record = RunRecord(start, delay_s, killed, at_kill, problems)
            self._recover(record, kind, args, db, model)
            return record
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _recover(self, record: RunRecord, kind: str, args: list[str], db: Path, model: str | None) -> None:
        reference_s = self.reference_s[kind][record.start]
        started = time.perf_counter()
        try:
            run_to_end(args, db.parent / "rerun.log", self._timeout(reference_s))
            record.problems += serve_check(db)
        except CrashBenchError as exc:
            record.problems.append(f"recovery failed: {exc}")
            return
        record.recovery_s = time.perf_counter() - started
        lost, duplicated, differences = compare_outcomes(outcome_of(db, model), self.references[kind][record.start])
        record.lost, record.duplicated = lost, duplicated
        record.problems += differences

    def run_kind(self, kind: str, runs: int) -> KindResult:
        """``runs`` kills of ``kind`` (runs where the process finished before its kill are checked too, and retried)."""
        rng = random.Random(f"{self.seed}:{kind}")
        starts = list(self.starts[kind])
        result = KindResult(kind, self.reference_s[kind][starts[0]])
        attempt = 0
        while len(result.kills) < runs and attempt < 3 * runs:
            start = starts[attempt % len(starts)]
            delay = rng.uniform(*KILL_WINDOW) * self.reference_s[kind][start]
            record = self.crash_once(kind, start, delay, attempt)
            result.records.append(record)
            attempt += 1
            verdict = "ok" if not record.problems and not record.lost and not record.duplicated else "FAILED"
            self.say(f"{kind} {len(result.kills)}/{runs}: {'killed' if record.killed else 'not killed'} at "
                     f"{delay:.2f} s ({record.at_kill}); recovered in {record.recovery_s:.1f} s: {verdict}")
        return result


def run_crash_bench(runs: int, kinds: list[str], shared: Path | None = None, size: str = "full", seed: int = 0,
                    progress: Progress | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Kill each kind's process ``runs`` times; per kind, what the crashes left and how recovery went."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise CrashBenchError(f"unknown kind {', '.join(unknown)} (use {', '.join(KINDS)})")
    corpus = corpus_for(shared or default_shared(), size)
    with tempfile.TemporaryDirectory(prefix="paperscope-crash-", dir=workdir) as tmp:
        loop = CrashLoop(corpus, Path(tmp), seed, progress)
        loop.prepare(kinds)
        results = [loop.run_kind(kind, runs).as_dict() for kind in kinds]
    return {"seed": seed, "corpus": size, "kinds": results}
