"""Coverage-guided fuzzing of the importers, the query language and slot parsing (atheris + libFuzzer).

Every importer promises that any bytes end in records, problems and notes, or in one clear
``SourceError``; the query parser promises that any text parses and runs. A target feeds the
fuzzer's bytes to one of them and checks that promise: anything else (another exception, a
malformed record, an input that runs longer than the per-input limit) is a finding.

Atheris's ``Fuzz()`` never returns, so each target runs in its own process::

    python -m paperscope.bench.fuzz <target> --artifacts DIR -- <libFuzzer flags> CORPUS_DIR

and ``run_target`` drives that process for a time budget and reads libFuzzer's figures from its
output. A Python exception does not stop the process: the target saves the input and its
traceback as ``crash-<signature>`` under the artifacts folder (one file per distinct failure,
the smallest input kept) and goes on. Hangs and out-of-memory stop the process (libFuzzer writes
``timeout-*`` / ``oom-*`` there); the runner starts it again with the time left, the corpus
folder keeping what was learnt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from paperscope.bench import fuzz_seeds as seeds

MAX_INPUT_BYTES = 8192
# A target process stopped this many times by hangs or memory is not restarted again.
MAX_FATAL_STOPS = 3


@dataclass(frozen=True)
class Limits:
    """What counts as a hang and as running out of memory, and the random seed."""

    hang_seconds: int = 10        # one input running longer is a hang
    rss_limit_mb: int = 2048      # a target process using more memory is a crash
    #: libFuzzer's random seed: 0 draws a new one each run (a campaign explores); a fixed one makes a
    #: run the same sequence of inputs on every machine, so the test suite's short runs are
    #: repeatable and anything they find reproduces
    seed: int = 0


@dataclass(frozen=True)
class TargetInfo:
    name: str
    description: str
    seeds: Callable[[], list[bytes]]


def _named_seeds(pairs: list[tuple[str, bytes]], names: tuple[str, ...] = seeds.FILE_NAMES) -> list[bytes]:
    return [seeds.with_name(name, content, names) for name, content in pairs]


TARGETS: dict[str, TargetInfo] = {t.name: t for t in (
    TargetInfo("session_page", "session page importer: sniff and parse", seeds.session_page_seeds),
    TargetInfo("poster_listing", "poster listing importer: sniff and parse", seeds.poster_listing_seeds),
    TargetInfo("paper_feed", "paper feed importer: sniff and parse", seeds.paper_feed_seeds),
    TargetInfo("paperlists", "paperlists JSON importer: sniff and parse", seeds.paperlists_seeds),
    TargetInfo("tabular", "CSV/TSV/JSON importer, under a file name the input chooses",
               lambda: _named_seeds(seeds.tabular_seeds())),
    TargetInfo("miniconf", "Mini-Conf site importer, on a site folder written from the input",
               lambda: _named_seeds(seeds.miniconf_seeds(), seeds.SITE_NAMES)),
    TargetInfo("sniff", "raw bytes to records: decompression, decoding, format sniffing, the chosen importer",
               lambda: _named_seeds(seeds.sniff_seeds())),
    TargetInfo("query", "query language: parse, canonical round trip, tantivy query, search", seeds.query_seeds),
    TargetInfo("slots", "time slots as pages print them, to UTC", seeds.slot_seeds),
)}


# =============================================================================================
# What a target accepts
# =============================================================================================

class BrokenPromise(AssertionError):
    """Output that breaks an importer's contract (a record of the wrong kind, an empty message)."""


def check_items(items: list) -> None:
    """Importer output is records, sessions, problems and notes, each well formed."""
    from paperscope.model import Note, PaperRecord, Problem, SessionRecord

    for item in items:
        if isinstance(item, (Problem, Note)):
            if not isinstance(item.message, str) or not item.message.strip():
                raise BrokenPromise(f"{type(item).__name__} without a message: {item!r}")
        elif isinstance(item, PaperRecord):
            if not isinstance(item.title, str) or not all(isinstance(a, str) and a for a in item.authors):
                raise BrokenPromise(f"malformed paper record: {item!r}")
            _check_times(item, item.appearance.starts_at, item.appearance.ends_at)
        elif isinstance(item, SessionRecord):
            if not isinstance(item.name, str) or not item.name:
                raise BrokenPromise(f"session without a name: {item!r}")
            _check_times(item, item.starts_at, item.ends_at)
        else:
            raise BrokenPromise(f"an importer yielded {type(item).__name__}: {item!r}")


def _check_times(item, *moments) -> None:
    from datetime import datetime

    for moment in moments:
        if moment is not None and (not isinstance(moment, datetime) or moment.utcoffset() is None):
            raise BrokenPromise(f"a time that is not timezone-aware: {moment!r} in {item!r}")


def check_source_error(exc: Exception) -> None:
    if not str(exc).strip():
        raise BrokenPromise(f"{type(exc).__name__} without a message")


def check_parse(source_of: Callable[[], object], importer_of: Callable[[object], object]) -> None:
    """Parse one input: records and problems that keep their promises, or a clear ``SourceError``."""
    from paperscope.ingest.base import SourceError
    from paperscope.model import ImportOptions

    try:
        source = source_of()
        importer = importer_of(source)
        items = list(importer.parse(source, ImportOptions()))
    except SourceError as exc:
        check_source_error(exc)
        return
    check_items(items + source.problems)


def sniffed_by(importer) -> Callable[[object], object]:
    """``importer`` itself, once its sniff confidence for the source is checked to lie in [0, 1]."""

    def sniff(source):
        score = importer.sniff(source)
        if not 0.0 <= score <= 1.0:
            raise BrokenPromise(f"sniff confidence {score!r} outside [0, 1]")
        return importer

    return sniff


def importer_runner(format_name: str, file_name: str | None = None) -> Callable[[bytes], None]:
    """Sniff and parse one input as ``format_name``: records or a clear ``SourceError``."""
    from paperscope.ingest import importers
    from paperscope.ingest.base import source_from_bytes

    importer = importers()[format_name]

    def run(data: bytes) -> None:
        name, content = seeds.split_name(data) if file_name is None else (file_name, data)
        check_parse(lambda: source_from_bytes(f"/fuzz/{name}", content), sniffed_by(importer))

    return run


def sniff_runner() -> Callable[[bytes], None]:
    """What ``paperscope ingest`` does with a file's bytes, without the safety net that turns an
    importer's exception into a reported problem (that net hides exactly what fuzzing looks for)."""
    from paperscope.ingest import importers, sniff
    from paperscope.ingest.base import source_from_bytes

    importers()  # imported now, while instrumentation is on

    def run(data: bytes) -> None:
        name, content = seeds.split_name(data)
        check_parse(lambda: source_from_bytes(f"/fuzz/{name}", content), lambda source: sniff(source)[0])

    return run


def miniconf_runner(scratch: Path) -> Callable[[bytes], None]:
    """The Mini-Conf importer on a site folder (under ``scratch``) holding the files packed in the input."""
    from paperscope.ingest import importers
    from paperscope.ingest.base import Source

    importer = importers()["miniconf"]
    workdir = scratch / "site"

    def site_of(data: bytes) -> Source:
        name, packed = seeds.split_name(data, seeds.SITE_NAMES)
        root = workdir / name
        shutil.rmtree(workdir, ignore_errors=True)
        (root / "sitedata").mkdir(parents=True)
        for file_name, content in seeds.unpack_site(packed).items():
            (root / "sitedata" / file_name).write_bytes(content)
        return Source(locator=str(root), path=root, is_dir=True)

    def run(data: bytes) -> None:
        check_parse(lambda: site_of(data), sniffed_by(importer))

    return run


def query_runner(scratch: Path) -> Callable[[bytes], None]:
    """Any text is a query: it parses, its canonical form parses back to it, and it runs (on a small
    catalogue under ``scratch``)."""
    from paperscope.catalog.store import Catalog
    from paperscope.index.lexical import LexicalIndex
    from paperscope.search import QueryBuilder, SearchService, parse_query

    catalog = Catalog.open(str(scratch / "catalogue.sqlite"))
    catalog.ingest("fuzz", "test", "fuzz", _query_corpus())
    index = LexicalIndex.for_catalog(catalog)
    index.rebuild(catalog)
    service = SearchService(catalog, index=index)
    searcher = index.searcher()

    def run(data: bytes) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        parsed = parse_query(text)
        again = parse_query(parsed.canonical())
        if again != parsed:
            raise BrokenPromise(f"canonical form {parsed.canonical()!r} parses to {again!r}, not {parsed!r}")
        builder = QueryBuilder(index, searcher)
        for any_group in (False, True):
            query, _ = builder.build(parsed, any_group=any_group)
            searcher.search(query, 5, count=True)
        service.search(text, mode="keyword", limit=5)

    return run


def _query_corpus() -> list:
    from paperscope.model import Appearance, PaperRecord

    return [
        PaperRecord(title="Attention Is All You Need", authors=["Ashish Vaswani", "Noam Shazeer"],
                    abstract="The dominant sequence transduction models are based on recurrent networks.",
                    appearance=Appearance(venue="NeurIPS", year=2017, presentation="oral", session="Oral 1",
                                          award="Best Paper", decision="Accept (Oral)")),
        PaperRecord(title="Deep Residual Learning for Image Recognition", authors=["Kaiming He", "Jian Sun"],
                    abstract="Deeper neural networks are more difficult to train.",
                    appearance=Appearance(venue="CVPR", year=2016, presentation="poster",
                                          session="Poster Session 3")),
        PaperRecord(title="Contrastive Learning with Hard Negative Samples", authors=["Joshua Robinson"],
                    abstract="How can you sample good negative examples for contrastive learning?",
                    appearance=Appearance(venue="ICLR", year=2021, presentation="spotlight", decision="top 5%")),
    ]


def slots_runner() -> Callable[[bytes], None]:
    """A printed slot becomes UTC times, or a ``SlotError`` saying why not."""
    from paperscope.ingest.slots import SlotError, abbreviation_mismatch, parse_slot, split_slot, weekday_mismatch

    def run(data: bytes) -> None:
        text = data.decode("utf-8", errors="replace")
        try:
            parts = split_slot(text)
            weekday_mismatch(parts, 2022)
            slot = parse_slot(text, 2022, default_tz="UTC")
        except SlotError as exc:
            check_source_error(exc)
            return
        if slot.start.utcoffset() is None or slot.end.utcoffset() is None:
            raise BrokenPromise(f"naive times from {text!r}")
        if slot.end < slot.start:
            raise BrokenPromise(f"{text!r} ends before it starts: {slot}")
        abbreviation_mismatch(parts.tz, slot)

    return run


# Target name -> the factory of its runner, given a scratch folder the runner may write to.
RUNNERS: dict[str, Callable[[Path], Callable[[bytes], None]]] = {
    "session_page": lambda scratch: importer_runner("session_page", "page.txt"),
    "poster_listing": lambda scratch: importer_runner("poster_listing", "page.txt"),
    "paper_feed": lambda scratch: importer_runner("paper_feed", "page.txt"),
    "paperlists": lambda scratch: importer_runner("paperlists", "iclr2023.json"),
    "tabular": lambda scratch: importer_runner("tabular"),
    "miniconf": miniconf_runner,
    "sniff": lambda scratch: sniff_runner(),
    "query": query_runner,
    "slots": lambda scratch: slots_runner(),
}


# =============================================================================================
# The target process
# =============================================================================================

def failure_signature(exc: BaseException) -> str:
    """What tells two failures apart: the exception type and the innermost paperscope line."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "paperscope" in f.filename and not f.filename.endswith(("fuzz.py",))]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(exc).__name__} at {place}"


class CrashRecorder:
    """Saves each distinct failure once: the smallest input that shows it, and its traceback."""

    def __init__(self, folder: Path, target: str):
        self.folder = folder
        self.target = target
        self.smallest: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def record(self, data: bytes, exc: BaseException) -> None:
        signature = failure_signature(exc)
        digest = hashlib.sha1(signature.encode()).hexdigest()[:12]
        with open(self.folder / "crashes.log", "a", encoding="utf-8") as log:
            log.write(f"{digest}\t{signature}\n")
        if signature in self.smallest and self.smallest[signature] <= len(data):
            return
        self.smallest[signature] = len(data)
        path = self.folder / f"crash-{digest}"
        path.write_bytes(data)
        details = "".join(traceback.format_exception(exc))
        path.with_suffix(".txt").write_text(
            f"target: {self.target}\nsignature: {signature}\ninput: {path} ({len(data)} bytes)\n"
            f"reproduce: python -m paperscope.bench.fuzz {self.target} --reproduce {path}\n\n{details}",
            encoding="utf-8")


def guarded(run: Callable[[bytes], None], recorder: CrashRecorder) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        try:
            run(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - every other escape is a finding, recorded
            recorder.record(data, exc)

    return one_input


def _instrumented_runner(target: str, scratch: Path) -> Callable[[bytes], None]:
    """The target's runner, the paperscope modules it imports instrumented for coverage."""
    import atheris

    atheris.enabled_hooks.add("str")  # startswith/endswith comparisons guide the mutations
    with atheris.instrument_imports(include=["paperscope"], exclude=["paperscope.bench"]):
        return RUNNERS[target](scratch)


def child_main(argv: list[str]) -> None:
    """``python -m paperscope.bench.fuzz TARGET --artifacts DIR --scratch DIR -- FLAGS...``, or
    ``python -m paperscope.bench.fuzz TARGET --reproduce FILE`` to run one input (a traceback if it fails)."""
    target, rest = argv[0], argv[1:]
    libfuzzer_args = rest[rest.index("--") + 1:] if "--" in rest else []
    options = rest[:rest.index("--")] if "--" in rest else rest
    reproduce = _option(options, "--reproduce")
    if reproduce:
        with tempfile.TemporaryDirectory(prefix="paperscope-fuzz-") as scratch:
            RUNNERS[target](Path(scratch))(Path(reproduce).read_bytes())
        print("no failure: the input is read as promised")
        return
    import atheris

    recorder = CrashRecorder(Path(_option(options, "--artifacts") or "."), target)
    one_input = guarded(_instrumented_runner(target, Path(_option(options, "--scratch") or tempfile.mkdtemp())),
                        recorder)
    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def _option(options: list[str], name: str) -> str | None:
    return options[options.index(name) + 1] if name in options and options.index(name) + 1 < len(options) else None


# =============================================================================================
# Driving a target process
# =============================================================================================

@dataclass
class TargetResult:
    target: str
    seconds: float = 0.0              # wall time of the target processes
    fuzz_seconds: float = 0.0         # time spent running inputs (without start-up), from libFuzzer's rate
    executions: int = 0
    exec_per_s: float = 0.0
    coverage: int = 0                 # libFuzzer "cov": instrumented edges reached
    features: int = 0                 # libFuzzer "ft": coverage features (edges with hit counts)
    corpus: int = 0                   # inputs kept for the coverage they add
    crashes: int = 0                  # distinct failures (Python exceptions, broken promises, native crashes, OOM)
    hangs: int = 0                    # inputs over the per-input time limit
    restarts: int = 0
    findings: list[dict] = field(default_factory=list)  # {"kind", "signature", "input"} per crash or hang
    log: str = ""

    @property
    def ok(self) -> bool:
        return not self.crashes and not self.hangs and self.executions > 0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["exec_per_s"] = round(self.exec_per_s, 1)
        out["seconds"] = round(self.seconds, 1)
        out["fuzz_seconds"] = round(self.fuzz_seconds, 1)
        return out


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_PULSE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+))?", re.M)
_FATAL = re.compile(r"ERROR: libFuzzer: (timeout|out-of-memory|deadly signal|fuzz target exited|[\w -]+)")
_WRITTEN = re.compile(r"Test unit written to (\S+)")
_NO_ATHERIS = "atheris is not installed (pip install 'paperscope[test]', or pip install atheris)"


class FuzzUnavailable(RuntimeError):
    """Fuzzing cannot run here; the message says why."""


def ensure_atheris() -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        raise FuzzUnavailable(_NO_ATHERIS) from None


def write_seeds(target: str, corpus: Path) -> int:
    """The target's seeds as files of its corpus folder (named by content, so rewriting is a no-op)."""
    corpus.mkdir(parents=True, exist_ok=True)
    written = 0
    for data in TARGETS[target].seeds():
        data = data[:MAX_INPUT_BYTES]
        path = corpus / f"seed-{hashlib.sha1(data).hexdigest()[:16]}"
        if not path.exists():
            path.write_bytes(data)
        written += 1
    return written


def run_target(target: str, seconds: int, artifacts: Path, corpus: Path, limits: Limits = Limits()) -> TargetResult:
    """Fuzz one target for ``seconds`` of libFuzzer time (restarting it after a hang or OOM)."""
    if target not in TARGETS:
        raise FuzzUnavailable(f"unknown fuzz target {target!r}; targets: {', '.join(TARGETS)}")
    ensure_atheris()
    folder = artifacts / target
    folder.mkdir(parents=True, exist_ok=True)
    write_seeds(target, corpus)
    result = TargetResult(target=target)
    logs: list[str] = []
    started = time.monotonic()
    fatal_stops = 0
    while fatal_stops < MAX_FATAL_STOPS:
        left = int(round(seconds - result.seconds))
        if left < 1:
            break
        output, rc = _run_once(target, left, limits, folder, corpus)
        result.seconds = time.monotonic() - started
        logs.append(output)
        fatal = _read_run(output, result)
        if fatal is None and rc == 0:
            break
        fatal_stops += 1
        result.restarts += 1
        if fatal is None:  # a process that died without libFuzzer's report
            result.crashes += 1
            result.findings.append({"kind": "crash", "signature": f"the target process exited with status {rc}",
                                    "input": None})
    _collect_crashes(folder, result)
    log_path = folder / "fuzz.log"
    log_path.write_text("\n".join(logs), encoding="utf-8", errors="replace")
    result.log = str(log_path)
    result.exec_per_s = result.executions / (result.fuzz_seconds or result.seconds or 1.0)
    return result


def _run_once(target: str, seconds: int, limits: Limits, folder: Path, corpus: Path) -> tuple[str, int]:
    """One target process for ``seconds``: (its output, its exit status)."""
    # libFuzzer ends the process with exit(), so the runner's scratch files are removed from here.
    with tempfile.TemporaryDirectory(prefix="paperscope-fuzz-") as scratch:
        command = [
            sys.executable, "-m", "paperscope.bench.fuzz", target, "--artifacts", str(folder), "--scratch", scratch,
            "--", f"-max_total_time={seconds}", f"-timeout={limits.hang_seconds}", f"-seed={limits.seed}",
            f"-rss_limit_mb={limits.rss_limit_mb}", f"-max_len={MAX_INPUT_BYTES}", "-print_final_stats=1",
            f"-artifact_prefix={folder}/", str(corpus),
        ]
        env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
        return run_with_own_peak_memory(command, env, timeout=seconds + limits.hang_seconds + 120)


def run_with_own_peak_memory(command: list[str], env: dict[str, str], timeout: float) -> tuple[str, int]:
    """Run ``command`` so that its peak-memory figure counts only its own memory: (output, exit status).

    Linux carries a process's peak RSS (``ru_maxrss``, which libFuzzer's -rss_limit_mb reads) into the
    child it forks and across exec. Started straight from a test run or a server that has grown past
    the limit, every target would be "out of memory" on its first input. A shell in between, which
    forks the target instead of exec'ing it, gives the target a fresh figure.
    """
    via_shell = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command]
    process = subprocess.Popen(via_shell, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", env=env, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the shell and the target under it
        output, _ = process.communicate()
        stopped = "\nERROR: libFuzzer: timeout (the target process stopped answering and was killed)\n"
        return _text(output) + stopped, -9
    return output, process.returncode


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return output or ""


def _read_run(output: str, result: TargetResult) -> str | None:
    """Add one process's figures to ``result``; the fatal stop it ended with, if any."""
    stats = {k: int(v) for k, v in _STAT.findall(output)}
    pulses = _PULSE.findall(output)
    executions = stats.get("number_of_executed_units") or (int(pulses[-1][0]) if pulses else 0)
    result.executions += executions
    if stats.get("average_exec_per_sec"):
        result.fuzz_seconds += executions / stats["average_exec_per_sec"]
    if pulses:
        result.coverage = max(result.coverage, int(pulses[-1][1]))
        result.features = max(result.features, int(pulses[-1][2]))
        result.corpus = max(result.corpus, int(pulses[-1][3] or 0))
    fatal = _FATAL.search(output)
    if fatal is None:
        return None
    kind = fatal.group(1)
    written = _WRITTEN.findall(output)
    if kind == "timeout":
        result.hangs += 1
    else:
        result.crashes += 1
    result.findings.append({"kind": "hang" if kind == "timeout" else "crash", "signature": f"libFuzzer: {kind}",
                            "input": written[-1] if written else None})
    return kind


def _collect_crashes(folder: Path, result: TargetResult) -> None:
    for details in sorted(folder.glob("crash-*.txt")):
        signature = next((line.split(": ", 1)[1] for line in details.read_text(encoding="utf-8").splitlines()
                          if line.startswith("signature: ")), details.stem)
        result.crashes += 1
        result.findings.append({"kind": "crash", "signature": signature, "input": str(details.with_suffix(""))})


def default_workdir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("paperscope")) / "fuzz"


def run_campaign(targets: list[str], seconds: int, artifacts: Path | None = None, corpus_root: Path | None = None,
                 limits: Limits = Limits(), progress: Callable[[TargetResult], None] | None = None,
                 ) -> list[TargetResult]:
    """Fuzz each target in turn; crash inputs go to ``artifacts/<run stamp>/<target>/``."""
    ensure_atheris()
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise FuzzUnavailable(f"unknown fuzz target(s) {', '.join(unknown)}; targets: {', '.join(TARGETS)}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    artifacts = (artifacts or default_workdir() / "artifacts") / stamp
    corpus_root = corpus_root or default_workdir() / "corpus"
    results = []
    for target in targets:
        result = run_target(target, seconds, artifacts, corpus_root / target, limits)
        results.append(result)
        if progress:
            progress(result)
    return results


if __name__ == "__main__":
    child_main(sys.argv[1:])
