"""`paperscope bench soak`: the web app under sustained load for minutes, while an ingest runs.

The server is the real one (uvicorn in a subprocess on 127.0.0.1, as `paperscope bench web` starts
it) over a copy of a catalogue, so the soak never changes the catalogue it starts from. For the
whole run, ``users`` client threads (each its own HTTP connection, no think time) do what readers do:
four keyword searches (search pages, every third one through the JSON API; a few words of a real
title, some narrowed by venue) for each save into the library. Meanwhile real paperlists dumps are
ingested into the same catalogue by `paperscope ingest` processes, one file each, paced by file size
to last the run, so searches are served while the catalogue and its keyword index change under them.

Reported per interval (a minute by default): requests per second, p50/p99 latency, errors, the
server's resident memory (RSS of the server process and its children; psutil, else
``/proc/<pid>/status``), and the papers ingested. At the end: totals, and a leak verdict from the
least-squares slope of the memory over the second half of the run (the first half includes warming
caches), in MB per minute, against a threshold: the slope of the whole RSS is reported, the verdict
follows its anonymous part (see :func:`leak_verdict`). The baseline, measured in the same process against
the same server before the load starts, is the latency of a trivial page (``/healthz``) with one
client: what HTTP, uvicorn and FastAPI cost alone.

Without ``--db``, the catalogue is the paperlists ``head/`` files (built once and kept in the bench
folder, like `bench ingest`'s) and the ingest during the run is ``fallback_older_commits/``: the
two are disjoint, so every file ingested brings new papers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from paperscope.bench.ingest_bench import BENCH_DIR
from paperscope.cli.bench_web_cmd import _percentile, measure, search_queries, start_server, stop_server, wait_ready

SOAK_BASE = BENCH_DIR / "soak-base.sqlite"
SAVE_EVERY = 5              # one save for four searches, as in `bench web --users`
API_EVERY = 3               # every third search through the JSON API
MEMORY_SAMPLE_S = 2.0
INGEST_SHARE = 0.85         # the paced ingest aims to finish by this share of the run
MIN_JUDGED_S = 120.0        # a shorter run's memory slope is warm-up, not a verdict

# progress(stage, done, total)
Progress = Callable[[str, float, "float | None"], None]


def _no_progress(stage: str, done: float, total: float | None) -> None:
    pass


# ------------------------------------------------------------------------------------ the catalogue
def default_sources() -> tuple[Path, Path]:
    """The paperlists folders the default soak starts from and ingests during the run."""
    from paperscope.bench.ingest_bench import default_corpus

    corpus = default_corpus()
    return corpus / "head", corpus / "fallback_older_commits"


def build_base(corpus: Path, path: Path, progress: Progress = _no_progress) -> None:
    """Ingest ``corpus`` into a new catalogue at ``path`` with its keyword index (once; it is kept).
    Built beside and renamed when complete, so an interrupted build is never taken for the base."""
    from paperscope.catalog.store import Catalog
    from paperscope.index.maintain import ensure_indexes, index_root
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    partial = path.with_name(path.name + ".partial")
    _remove_catalogue(partial)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.open(str(partial))
    try:
        ingest_targets(catalog, [str(corpus)], ImportOptions(), update_index=False,
                       progress=lambda done, total, *_: progress("building the soak catalogue", done, total))
        progress("indexing the soak catalogue", 0, None)
        ensure_indexes(catalog)
        partial_index = index_root(catalog)
    finally:
        catalog.close()
    _remove_catalogue(path)
    os.replace(partial_index, path.with_name(path.name + ".index"))
    os.replace(partial, path)


def _remove_catalogue(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".index"), ignore_errors=True)


def working_copy(base: Path, folder: Path, progress: Progress = _no_progress) -> str:
    """A copy of the catalogue ``base`` (and its keyword index, still fresh: the index is keyed by the
    catalogue's content) for the run to change."""
    from paperscope.catalog.backup import snapshot_sqlite

    target = folder / "soak.sqlite"
    snapshot_sqlite(base, target, progress=lambda stage, done, total: progress(f"copying the catalogue ({stage})", done, total))
    lexical = base.with_name(base.name + ".index") / "lexical"
    if lexical.is_dir():
        shutil.copytree(lexical, folder / "soak.sqlite.index" / "lexical",
                        ignore=shutil.ignore_patterns("*.lock", ".tantivy-*.lock"))
    return str(target)


def ingest_files(paths: list[Path]) -> list[Path]:
    from paperscope.ingest import expand_paths

    return [p for p in expand_paths(paths) if p.is_file()]


# ------------------------------------------------------------------------------------ measuring
@dataclass
class Recorder:
    """Every request's completion time, latency and outcome, from all client threads."""

    samples: list[tuple[float, float, str, bool]] = field(default_factory=list)   # (at, ms, kind, ok)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float, ms: float, kind: str, ok: bool, error: str = "") -> None:
        with self.lock:
            self.samples.append((at, ms, kind, ok))
            if not ok:
                self.error_count += 1
                if len(self.errors) < 20:
                    self.errors.append(error)


def process_tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, anonymous RSS) in MB of a process and its children (uvicorn workers)."""
    try:
        import psutil
    except ImportError:
        return _proc_status_memory(pid)
    try:
        root = psutil.Process(pid)
        rss = anon = 0
        for proc in [root, *root.children(recursive=True)]:
            info = proc.memory_info()
            rss += info.rss
            anon += info.rss - getattr(info, "shared", 0)
        return rss / 2**20, anon / 2**20
    except psutil.Error:
        return float("nan"), float("nan")


def _proc_status_memory(pid: int) -> tuple[float, float]:
    """VmRSS and RssAnon of one process from ``/proc`` (no psutil: its children are not counted)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")
    return values.get("VmRSS", float("nan")), values.get("RssAnon", float("nan"))


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, started: float, stop: threading.Event):
        super().__init__(daemon=True, name="soak-memory")
        self.pid, self.started, self.stop = pid, started, stop
        self.points: list[tuple[float, float, float]] = []   # (seconds into the run, rss MB, anon MB)

    def run(self) -> None:
        while True:
            rss, anon = process_tree_memory(self.pid)
            self.points.append((time.monotonic() - self.started, rss, anon))
            if self.stop.wait(MEMORY_SAMPLE_S):
                return


@dataclass
class IngestEvent:
    file: str
    finished_s: float          # seconds into the run
    seconds: float
    records: int = 0
    new_papers: int = 0
    error: str = ""


class IngestFeeder(threading.Thread):
    """`paperscope ingest` processes, one per file, started on a schedule spread over the run by size."""

    def __init__(self, db: str, files: list[Path], started: float, duration_s: float, stop: threading.Event):
        super().__init__(daemon=True, name="soak-ingest")
        self.db, self.files, self.started, self.duration_s, self.stop = db, files, started, duration_s, stop
        self.events: list[IngestEvent] = []

    def _schedule(self) -> list[float]:
        sizes = [f.stat().st_size for f in self.files]
        total = sum(sizes) or 1
        before = [sum(sizes[:i]) for i in range(len(sizes))]
        return [self.duration_s * INGEST_SHARE * b / total for b in before]

    def run(self) -> None:
        for path, start_at in zip(self.files, self._schedule()):
            wait = self.started + start_at - time.monotonic()
            if (wait > 0 and self.stop.wait(wait)) or self.stop.is_set():
                return
            self.events.append(self._ingest(path))

    def _ingest(self, path: Path) -> IngestEvent:
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "paperscope", "ingest", "--db", self.db, "--json", str(path)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(600.0, self.duration_s))
        except subprocess.TimeoutExpired:
            return IngestEvent(str(path), time.monotonic() - self.started, time.monotonic() - t0,
                               error=f"{path.name}: the ingest did not finish")
        event = IngestEvent(str(path), time.monotonic() - self.started, time.monotonic() - t0)
        try:
            report = json.loads(done.stdout)
            event.records, event.new_papers = report["totals"]["records"], report["totals"]["new_papers"]
            failures = report.get("failures") or []
        except (ValueError, KeyError, TypeError):
            failures = ["no report"]
        if done.returncode != 0 or failures:
            tail = (done.stderr.strip().splitlines() or [""])[-1]
            event.error = f"{path.name}: ingest exit status {done.returncode}: {failures[:1] or tail}"
        return event


def _client(i: int, base: str, queries: list[dict[str, str]], paper_ids: list[str], deadline: list[float],
            recorder: Recorder, ready: threading.Barrier) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=120) as client:
        ready.wait(timeout=600)
        k = 0
        while time.monotonic() < deadline[0]:
            k += 1
            kind, t0 = "search", time.perf_counter()
            try:
                if k % SAVE_EVERY == 0:
                    kind = "save"
                    response = client.post("/api/library", json={"paper_id": paper_ids[(i * 11 + k) % len(paper_ids)],
                                                                  "tags": ["soak"]})
                else:
                    params = dict(queries[(i * 37 + k) % len(queries)], mode="keyword")
                    response = client.get("/api/search" if k % API_EVERY == 0 else "/search", params=params)
                ok, error = response.status_code == 200, f"{kind}: {response.status_code} {response.text[:120]}"
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                ok, error = False, f"{kind}: {type(exc).__name__}: {exc}"
            recorder.add(time.monotonic(), (time.perf_counter() - t0) * 1000, kind, ok, "" if ok else error)


# ------------------------------------------------------------------------------------ the report
def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    points = [(t, v) for t, v in points if v == v]     # NaN: a sample the server was not there for
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 60


def leak_verdict(memory: list[tuple[float, float, float]], duration_s: float, threshold_mb_per_min: float) -> dict[str, Any]:
    """The verdict follows the anonymous part of the RSS (the heap, where a leak accumulates). The rest
    is file pages mapped by the server (the keyword index's segments), which grow with the papers the
    ingest adds and which the kernel reclaims under pressure: a 10-minute soak adding 30k papers to 95k
    grew them ~2 MB/min while the heap stayed within 0.2 MB/min."""
    second_half = [p for p in memory if p[0] >= duration_s / 2]
    rss_slope = slope_per_minute([(t, rss) for t, rss, _ in second_half])
    anon_slope = slope_per_minute([(t, anon) for t, _, anon in second_half])
    if duration_s < MIN_JUDGED_S or anon_slope is None:
        verdict = f"not judged: the run is shorter than {MIN_JUDGED_S / 60:.0f} minutes"
    else:
        verdict = "flat" if anon_slope <= threshold_mb_per_min else "growing: a leak is likely"
    return {"rss_slope_mb_per_min_second_half": None if rss_slope is None else round(rss_slope, 3),
            "anon_slope_mb_per_min_second_half": None if anon_slope is None else round(anon_slope, 3),
            "threshold_mb_per_min": threshold_mb_per_min, "verdict": verdict,
            "leak": verdict.startswith("growing")}


def _window_stats(samples: list[tuple[float, float, str, bool]], seconds: float) -> dict[str, Any]:
    latencies = [ms for _, ms, _, ok in samples if ok]
    return {"requests": len(samples), "req_per_s": round(len(samples) / seconds, 1) if seconds > 0 else None,
            "p50_ms": round(_percentile(latencies, 0.5), 1) if latencies else None,
            "p99_ms": round(_percentile(latencies, 0.99), 1) if latencies else None,
            "searches": sum(kind == "search" for _, _, kind, _ in samples),
            "saves": sum(kind == "save" for _, _, kind, _ in samples),
            "errors": sum(not ok for *_, ok in samples)}


def per_interval(recorder: Recorder, memory, ingests: list[IngestEvent], started: float, duration_s: float,
                 interval_s: float) -> list[dict[str, Any]]:
    """The run cut into intervals; what finished after the deadline counts in the last one."""
    count = max(1, int(round(duration_s / interval_s)))

    def bucket(seconds: float) -> int:
        return min(count - 1, max(0, int(seconds // interval_s)))

    requests: list[list] = [[] for _ in range(count)]
    rss: list[list[float]] = [[] for _ in range(count)]
    heap: list[list[float]] = [[] for _ in range(count)]
    done: list[list[IngestEvent]] = [[] for _ in range(count)]
    for sample in recorder.samples:
        requests[bucket(sample[0] - started)].append(sample)
    for seconds, value, anon in memory:
        if value == value:
            rss[bucket(seconds)].append(value)
            heap[bucket(seconds)].append(anon)
    for event in ingests:
        done[bucket(event.finished_s)].append(event)
    rows = []
    for k in range(count):
        lo, hi = k * interval_s, duration_s if k == count - 1 else (k + 1) * interval_s
        rows.append({"interval": k + 1, "from_s": round(lo, 1), "to_s": round(hi, 1),
                     **_window_stats(requests[k], hi - lo),
                     "rss_mb": round(rss[k][-1], 1) if rss[k] else None,
                     "rss_max_mb": round(max(rss[k]), 1) if rss[k] else None,
                     "heap_mb": round(heap[k][-1], 1) if heap[k] else None,
                     "ingested_files": len(done[k]), "ingested_papers": sum(e.new_papers for e in done[k]),
                     "ingest_errors": sum(bool(e.error) for e in done[k])})
    return rows


# ------------------------------------------------------------------------------------ the run
@dataclass
class SoakOptions:
    minutes: float = 10.0
    users: int = 8
    interval_s: float = 60.0
    workers: int = 1
    seed: int = 7
    leak_threshold_mb_per_min: float = 2.0


@dataclass
class Run:
    """What one soak measured."""

    duration_s: float
    files: list[Path]
    recorder: Recorder = field(default_factory=Recorder)
    memory: list[tuple[float, float, float]] = field(default_factory=list)
    ingests: list[IngestEvent] = field(default_factory=list)
    started: float = 0.0
    elapsed: float = 0.0
    baseline: dict[str, Any] = field(default_factory=dict)
    papers_before: int = 0
    papers_after: int = 0
    server_died: bool = False
    server_log: str = ""


def run_soak(db: str, ingest: list[Path], options: SoakOptions, progress: Progress = _no_progress) -> dict[str, Any]:
    """Copy ``db`` (a SQLite catalogue), serve the copy and soak it; ``ingest`` is fed in during the run."""
    run = Run(options.minutes * 60, ingest_files(ingest))
    folder = Path(tempfile.mkdtemp(prefix="soak-", dir=_scratch_dir()))
    try:
        work = working_copy(Path(db), folder, progress)
        queries, paper_ids = _prepare(work, db, run, options.seed, progress)
        try:
            with _served(work, options.workers, folder / "server.log", run) as (proc, base):
                _measure_baseline(base, proc, queries, run)
                _load(proc, base, work, queries, paper_ids, options, run, progress)
        except RuntimeError as exc:     # the server did not come up: its log says why
            raise RuntimeError(f"{exc} {run.server_log[-2000:]}".strip()) from None
        run.papers_after = _paper_count(work)
        return _report(db, options, run)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _scratch_dir() -> Path:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)   # on disk, not a memory-backed /tmp that would blur the RSS
    return BENCH_DIR


def _paper_count(db: str) -> int:
    from paperscope.catalog.store import Catalog

    catalog = Catalog.open(db)
    try:
        return catalog.paper_count()
    finally:
        catalog.close()


def _prepare(work: str, origin: str, run: Run, seed: int, progress: Progress) -> tuple[list[dict[str, str]], list[str]]:
    """The keyword index made fresh before the server starts (not on the timed server), and the queries."""
    from paperscope.catalog.store import Catalog
    from paperscope.index.maintain import ensure_indexes

    catalog = Catalog.open(work)
    try:
        run.papers_before = catalog.paper_count()
        progress("indexing", 0, None)
        ensure_indexes(catalog)
    finally:
        catalog.close()
    queries, paper_ids = search_queries(work, 400, seed)
    if not queries:
        raise RuntimeError(f"{origin}: the catalogue has no titles to build queries from")
    return queries, paper_ids


@contextmanager
def _served(work: str, workers: int, log_path: Path, run: Run) -> Iterator[tuple[subprocess.Popen, str]]:
    """The real server over ``work`` for the block; its log and whether it died go into ``run``."""
    with open(log_path, "w+") as log:
        proc, base = start_server(work, workers=workers, log=log)
        try:
            yield proc, base
            run.server_died = proc.poll() is not None
        finally:
            stop_server(proc)
            log.seek(0)
            run.server_log = log.read()


def _measure_baseline(base: str, proc: subprocess.Popen, queries: list[dict[str, str]], run: Run) -> None:
    import httpx

    with httpx.Client(timeout=120) as probe:
        wait_ready(probe, base, proc)
        measure(probe, base, [("/search", dict(q, mode="keyword")) for q in queries[:20]])   # warm-up
        run.baseline = measure(probe, base, [("/healthz", None)] * 200)


def _load(proc: subprocess.Popen, base: str, work: str, queries: list[dict[str, str]], paper_ids: list[str],
          options: SoakOptions, run: Run, progress: Progress) -> None:
    """Clients, the memory sampler and the paced ingest, together until the deadline."""
    stop = threading.Event()
    ready = threading.Barrier(options.users + 1)
    deadline = [float("inf")]
    clients = [threading.Thread(target=_client, args=(i, base, queries, paper_ids, deadline, run.recorder, ready),
                                daemon=True) for i in range(options.users)]
    for t in clients:
        t.start()
    ready.wait(timeout=600)
    run.started = time.monotonic()
    deadline[0] = run.started + run.duration_s
    memory = MemorySampler(proc.pid, run.started, stop)
    feeder = IngestFeeder(work, run.files, run.started, run.duration_s, stop)
    memory.start()
    feeder.start()
    try:
        _wait(deadline[0], run.started, run.duration_s, proc, progress)
    finally:
        stop.set()
        deadline[0] = 0.0
    for t in clients:
        t.join(180)
    run.elapsed = time.monotonic() - run.started
    feeder.join(max(600.0, run.duration_s))     # the file being ingested finishes; no new one starts
    memory.join(10)
    run.memory, run.ingests = memory.points, feeder.events


def _wait(deadline: float, started: float, duration_s: float, proc: subprocess.Popen, progress: Progress) -> None:
    while time.monotonic() < deadline and proc.poll() is None:
        progress("soaking", min(duration_s, time.monotonic() - started), duration_s)
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    progress("soaking", duration_s, duration_s)


def _report(origin: str, options: SoakOptions, run: Run) -> dict[str, Any]:
    ingest_errors = [e.error for e in run.ingests if e.error]
    errors = run.recorder.error_count + len(ingest_errors) + int(run.server_died)
    overall = _window_stats(run.recorder.samples, run.elapsed)
    rss = [r for _, r, _ in run.memory if r == r]
    baseline = run.baseline
    return {
        "catalogue": origin, "setup": f"uvicorn --workers {options.workers} (local mode) on 127.0.0.1 over a copy; "
                                      f"{options.users} clients without think time, {SAVE_EVERY - 1} keyword searches "
                                      f"per library save; `paperscope ingest` of {len(run.files)} files paced over the run",
        "minutes": options.minutes, "users": options.users, "duration_s": round(run.elapsed, 1), "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "papers_before": run.papers_before, "papers_after": run.papers_after,
        "baseline_healthz": {"p50_ms": baseline["p50_ms"], "p99_ms": baseline["p99_ms"]},
        "ratio_p50_to_baseline": round(overall["p50_ms"] / baseline["p50_ms"], 1)
        if overall["p50_ms"] and baseline["p50_ms"] else None,
        "intervals": per_interval(run.recorder, run.memory, run.ingests, run.started, run.duration_s, options.interval_s),
        "total": overall,
        "by_kind": {kind: _window_stats([x for x in run.recorder.samples if x[2] == kind], run.elapsed)
                    for kind in ("search", "save")},
        "ingest": {"files": len(run.ingests), "files_planned": len(run.files),
                   "records": sum(e.records for e in run.ingests), "new_papers": sum(e.new_papers for e in run.ingests),
                   "seconds": round(sum(e.seconds for e in run.ingests), 1), "errors": len(ingest_errors)},
        "memory": {"rss_start_mb": round(rss[0], 1) if rss else None, "rss_end_mb": round(rss[-1], 1) if rss else None,
                   "rss_max_mb": round(max(rss), 1) if rss else None,
                   **leak_verdict(run.memory, run.duration_s, options.leak_threshold_mb_per_min)},
        "errors": errors, "server_exited": run.server_died,
        "error_samples": (run.recorder.errors + ingest_errors)[:10]
        + (["the server exited during the run"] if run.server_died else []),
        "server_log_tail": run.server_log[-3000:] if errors else "",
    }
