"""`paperscope bench soak`, run for seconds: the real server, clients searching and saving, and
`paperscope ingest` processes feeding real paperlists dumps in meanwhile; the report's shape, zero
errors, and the leak verdict's arithmetic. The ten-minute run is `paperscope bench soak --minutes 10`.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from paperscope.bench.soak import IngestFeeder, leak_verdict, slope_per_minute
from paperscope.catalog.store import Catalog
from paperscope.model import ImportOptions

DEMO = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
PAPERLISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "paperlists" / "head"
SMALL_DUMPS = ["acml/acml2010.json.gz", "acml/acml2011.json.gz", "alt/alt2025.json.gz"]


@pytest.fixture(scope="module")
def demo_catalogue(tmp_path_factory) -> str:
    from paperscope.ingest.pipeline import ingest_targets

    path = str(tmp_path_factory.mktemp("soak") / "demo.sqlite")
    catalog = Catalog.open(path)
    try:
        assert ingest_targets(catalog, [str(DEMO)], ImportOptions(venue="ICLR", year=2020)).anything_read
    finally:
        catalog.close()
    return path


@pytest.fixture
def dumps() -> list[str]:
    files = [PAPERLISTS / name for name in SMALL_DUMPS]
    if not all(f.is_file() for f in files):
        pytest.skip(f"the soak ingests real paperlists dumps: {PAPERLISTS} is not there (../shared)")
    return [str(f) for f in files]


def test_a_short_soak_reports_every_interval_and_no_errors(demo_catalogue, dumps):
    before = Path(demo_catalogue).stat().st_mtime_ns
    args = ["bench", "soak", "--db", demo_catalogue, "--minutes", "0.15", "--interval", "3", "--users", "2", "--json"]
    for dump in dumps:
        args += ["--ingest", dump]
    done = subprocess.run([sys.executable, "-m", "paperscope", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["errors"] == 0 and report["error_samples"] == [] and not report["server_exited"]
    assert [row["interval"] for row in report["intervals"]] == [1, 2, 3]
    for row in report["intervals"]:
        assert row["requests"] > 0 and row["errors"] == 0 and row["p50_ms"] <= row["p99_ms"]
        assert row["rss_mb"] > 20 and 0 < row["heap_mb"] < row["rss_mb"] and row["req_per_s"] > 0
    total = report["total"]
    assert total["requests"] == sum(row["requests"] for row in report["intervals"])
    assert total["searches"] > 0 and total["saves"] > 0 and total["searches"] + total["saves"] == total["requests"]
    assert report["by_kind"]["search"]["requests"] == total["searches"] and report["by_kind"]["save"]["errors"] == 0
    ingest = report["ingest"]
    assert ingest["files"] >= 1 and ingest["errors"] == 0 and ingest["new_papers"] > 0
    assert ingest["new_papers"] == sum(row["ingested_papers"] for row in report["intervals"])
    assert report["papers_after"] == report["papers_before"] + ingest["new_papers"]
    assert report["baseline_healthz"]["p50_ms"] > 0 and report["ratio_p50_to_baseline"] > 0
    memory = report["memory"]
    assert memory["rss_start_mb"] > 0 and memory["verdict"].startswith("not judged") and memory["leak"] is False
    assert Path(demo_catalogue).stat().st_mtime_ns == before        # the soak ran on a copy


def test_an_ingest_that_fails_is_counted_with_its_file(tmp_path, demo_catalogue):
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(gzip.compress(b'[{"title": "half a record'))
    feeder = IngestFeeder(demo_catalogue, [broken], time.monotonic(), 1.0, threading.Event())
    feeder.run()
    assert len(feeder.events) == 1 and "broken.json.gz" in feeder.events[0].error


def test_the_leak_verdict_follows_the_second_half_slope():
    minutes = 10
    flat = [(t, 300 + (t % 7) * 0.5, 200.0) for t in range(0, minutes * 60, 2)]
    early_growth_then_flat = [(t, 250 + min(t, 120) * 0.4, 200.0) for t in range(0, minutes * 60, 2)]
    growing = [(t, 300 + t / 60 * 5, 200 + t / 60 * 5) for t in range(0, minutes * 60, 2)]
    assert abs(slope_per_minute([(t, 10 + 3 * t / 60) for t in range(0, 600, 5)]) - 3) < 1e-9
    assert leak_verdict(flat, minutes * 60, 2.0)["verdict"] == "flat"
    assert leak_verdict(early_growth_then_flat, minutes * 60, 2.0)["leak"] is False   # warm-up is not a leak
    mapped_index_growing = [(t, 300 + t / 60 * 5, 200.0) for t in range(0, minutes * 60, 2)]
    assert leak_verdict(mapped_index_growing, minutes * 60, 2.0)["leak"] is False      # file pages, not heap
    judged = leak_verdict(growing, minutes * 60, 2.0)
    assert judged["leak"] is True and abs(judged["anon_slope_mb_per_min_second_half"] - 5) < 0.01
    assert leak_verdict(growing[:30], 60, 2.0)["verdict"].startswith("not judged")
