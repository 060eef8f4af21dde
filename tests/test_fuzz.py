"""Coverage-guided fuzzing (atheris + libFuzzer): every target runs a few seconds from its real seeds
without a crash or a hang, and the harness reports what it finds.

Each target runs in its own process, as ``paperscope bench fuzz`` runs it. The default is a short
run per target (``PAPERSCOPE_FUZZ_SECONDS``, 3 s) so the file takes about a minute; set it higher
for a longer campaign, or run ``paperscope bench fuzz --seconds 60``. Runs here use a fixed libFuzzer
seed (``PAPERSCOPE_FUZZ_SEED``, 1): every machine tries the same inputs in the same order, so a
finding reproduces and the suite does not fail by the luck of the draw; campaigns draw new seeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris (test extra) is needed for the fuzz targets")

from paperscope.bench import fuzz  # noqa: E402
from paperscope.bench.fuzz_seeds import SITE_NAMES, split_name, unpack_site  # noqa: E402

SECONDS = int(os.environ.get("PAPERSCOPE_FUZZ_SECONDS", "3"))
SEED = int(os.environ.get("PAPERSCOPE_FUZZ_SEED", "1"))
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REPO = Path(__file__).resolve().parents[1]


def findings_text(result: fuzz.TargetResult) -> str:
    """The findings with their tracebacks, for an assertion message that says what broke."""
    parts = []
    for finding in result.findings:
        details = Path(f"{finding['input']}.txt") if finding["input"] else None
        parts.append(details.read_text() if details and details.is_file() else json.dumps(finding))
    return "\n\n".join(parts) or f"no finding recorded; see {result.log}"


@pytest.mark.parametrize("target", list(fuzz.TARGETS))
def test_every_target_runs_from_its_seeds_without_a_crash_or_a_hang(target, tmp_path):
    result = fuzz.run_target(target, SECONDS, tmp_path / "artifacts", tmp_path / "corpus", fuzz.Limits(seed=SEED))
    assert result.executions > 0, f"no input ran; see {result.log}"
    assert result.coverage > 0 and result.features >= result.coverage
    assert (result.crashes, result.hangs) == (0, 0), findings_text(result)


def test_a_target_over_its_memory_limit_is_reported_with_its_input(tmp_path):
    result = fuzz.run_target("slots", 2, tmp_path / "artifacts", tmp_path / "corpus", fuzz.Limits(rss_limit_mb=1))
    assert not result.ok
    assert result.crashes >= 1 and result.restarts <= fuzz.MAX_FATAL_STOPS
    finding = result.findings[0]
    assert (finding["kind"], finding["signature"]) == ("crash", "libFuzzer: out-of-memory")
    assert Path(finding["input"]).is_file()


def test_a_target_started_from_a_large_process_counts_only_its_own_memory():
    # Linux passes a parent's peak RSS to the child it starts; libFuzzer reads that figure, so a test
    # run or server past the limit made every target "out of memory" on its first input.
    ballast = bytearray(600 * 1024 * 1024)
    ballast[:: 4096] = b"\x01" * len(range(0, len(ballast), 4096))
    report_peak = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    output, status = fuzz.run_with_own_peak_memory([sys.executable, "-c", report_peak], dict(os.environ), timeout=60)
    assert status == 0, output
    assert int(output.split()[-1]) < 300, f"the child's peak memory includes the parent's: {output}"
    del ballast


def test_a_target_that_stops_answering_is_killed_with_the_shell_above_it():
    output, status = fuzz.run_with_own_peak_memory(["sleep", "30"], dict(os.environ), timeout=1)
    assert status == -9 and "timeout" in output


def test_an_exception_is_saved_once_per_failure_with_its_smallest_input(tmp_path):
    recorder = fuzz.CrashRecorder(tmp_path, "tabular")

    def parse(data: bytes) -> None:
        if data.startswith(b"boom"):
            raise KeyError(data.decode())

    one_input = fuzz.guarded(parse, recorder)
    for data in (b"fine", b"boom-long-input", b"boom", b"boom-again"):
        one_input(data)
    [details] = tmp_path.glob("crash-*.txt")
    assert details.with_suffix("").read_bytes() == b"boom"
    text = details.read_text()
    assert "signature: KeyError at" in text and "python -m paperscope.bench.fuzz tabular --reproduce" in text
    assert len((tmp_path / "crashes.log").read_text().splitlines()) == 3


def test_a_broken_promise_is_a_finding():
    from paperscope.model import Problem

    with pytest.raises(fuzz.BrokenPromise, match="without a message"):
        fuzz.check_items([Problem(message="  ")])
    with pytest.raises(fuzz.BrokenPromise, match="yielded str"):
        fuzz.check_items(["a string"])


def test_reproduce_replays_one_input_in_a_process_of_its_own(tmp_path):
    saved = tmp_path / "input"
    saved.write_bytes(b"\x00title,authors\nA Paper,A B\n")  # first byte: the file name (papers.csv)
    done = subprocess.run([sys.executable, "-m", "paperscope.bench.fuzz", "tabular", "--reproduce", str(saved)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "no failure" in done.stdout


def test_packed_inputs_name_their_files_and_sites():
    assert split_name(b"\x01abc") == ("papers.tsv", b"abc")
    name, packed = split_name(fuzz.TARGETS["miniconf"].seeds()[0], SITE_NAMES)
    assert name in SITE_NAMES and "papers.csv" in unpack_site(packed)
    assert unpack_site(b"\n##> ../../etc/passwd\nx\n##> config.yml\nname: X") == {"config.yml": b"name: X"}


@pytest.mark.skipif(not (SHARED / "samples" / "pages").is_dir(), reason=f"shared samples not found at {SHARED}")
def test_seeds_are_slices_of_the_real_pages_dumps_and_sites():
    sizes = {name: [len(s) for s in info.seeds()] for name, info in fuzz.TARGETS.items()}
    assert all(len(found) >= 4 for name, found in sizes.items() if name not in ("query", "slots")), sizes
    assert all(size <= fuzz.MAX_INPUT_BYTES for found in sizes.values() for size in found)
    page = fuzz.TARGETS["session_page"].seeds()[1].decode()
    assert "·" in page and "PDT" in page


def test_the_command_reports_every_target_and_exits_zero_without_findings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "paperscope", "bench", "fuzz", "--seconds", "1", "--targets", "slots,paper_feed",
         "--artifacts", str(tmp_path / "a"), "--corpus", str(tmp_path / "c"), "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [t["target"] for t in report["targets"]] == ["slots", "paper_feed"]
    assert all(t["executions"] > 0 for t in report["targets"]) and report["crashes"] == report["hangs"] == 0


def test_the_command_says_clearly_what_is_wrong(tmp_path):
    done = subprocess.run([sys.executable, "-m", "paperscope", "bench", "fuzz", "--targets", "nope"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "unknown fuzz target(s) nope" in done.stderr
    without_atheris = ("import sys; sys.modules['atheris'] = None; from paperscope.cli import main; "
                       "sys.argv = ['paperscope', 'bench', 'fuzz', '--seconds', '1']; main()")
    done = subprocess.run([sys.executable, "-c", without_atheris], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "atheris is not installed" in done.stderr
