"""`paperscope bench web`: how fast the web app serves search pages, over real HTTP.

The server is the real one (uvicorn, in a subprocess, on 127.0.0.1 and a free port) over the bench
catalogue; the client issues real HTTP requests with httpx. Search pages are built from real titles
(a few words of a title, some narrowed by that paper's venue as a facet click would). The baseline,
measured in the same run against the same server, is a trivial page (``/healthz``): the cost of
HTTP, uvicorn and FastAPI alone.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import typer

from paperscope.catalog.backup import safe_location
from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")
_STOP = frozenset("the and for with from via towards toward into over under using based are its our their this that".split())


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _summary(client_ms: list[float], server_ms: list[float], elapsed_s: float) -> dict[str, Any]:
    return {
        "requests": len(client_ms),
        "p50_ms": round(_percentile(client_ms, 0.50), 2),
        "p99_ms": round(_percentile(client_ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(client_ms), 2) if client_ms else None,
        "server_p50_ms": round(_percentile(server_ms, 0.50), 2) if server_ms else None,
        "server_p99_ms": round(_percentile(server_ms, 0.99), 2) if server_ms else None,
        "req_per_s": round(len(client_ms) / elapsed_s, 1) if elapsed_s > 0 else None,
    }


def search_queries(db: str, n: int, seed: int) -> tuple[list[dict[str, str]], list[str]]:
    """Search-page parameters from real titles, and paper ids for paper pages."""
    from paperscope.catalog.store import Catalog
    from paperscope.text import clean_markup

    catalog = Catalog.open(db)
    try:
        all_ids = [pid for pid, _ in catalog.content_hashes()]
        if not all_ids:
            return [], []
        rng = random.Random(seed)
        # without replacement when the catalogue is large enough (a small one repeats titles)
        ids = rng.sample(all_ids, n) if len(all_ids) >= n else rng.choices(all_ids, k=n)
        found = {p["id"]: p for p in catalog.papers(list(dict.fromkeys(ids)))}
    finally:
        catalog.close()
    queries = []
    for i, pid in enumerate(ids):
        paper = found.get(pid)
        words = [w for w in _WORD.findall(clean_markup(paper["title"] or "")) if w.lower() not in _STOP] if paper else []
        if not words:
            continue
        take = 2 + (i % 3)  # 2 to 4 words, as people type
        start = rng.randrange(0, max(1, len(words) - take + 1))
        params = {"q": " ".join(words[start:start + take])}
        venue = next((a["venue"] for a in paper["appearances"] if a.get("venue")), None)
        if i % 4 == 3 and venue:
            params["venue"] = venue  # a facet click
        queries.append(params)
    return queries, ids


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: str, workers: int = 1, log=None, accounts: bool | None = None) -> tuple[subprocess.Popen, str]:
    """uvicorn serving the app over ``db`` in a subprocess, on 127.0.0.1 and a free port; its stderr
    goes to the file ``log`` when given (a long run must not fill a pipe nobody reads). ``accounts``
    forces server mode on or off (by default it is on for PostgreSQL only).

    uvicorn binds the port itself (not an inherited ``--fd``): asyncio then sets TCP_NODELAY on its
    connections, as in `paperscope serve`; without it every response waits ~40 ms for a delayed ACK.
    """
    port = _free_port()
    env = dict(os.environ, PAPERSCOPE_DB=db)
    if accounts is not None:
        env["PAPERSCOPE_ACCOUNTS"] = "1" if accounts else "0"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "paperscope.web.app:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log or subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Ask the server to stop (SIGTERM lets uvicorn finish its requests), then kill it after ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(client, base: str, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited: " + (proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""))
        try:
            if client.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s")


def measure(client, base: str, requests: list[tuple[str, dict[str, str] | None]], concurrency: int = 1) -> dict[str, Any]:
    """Issue ``(path, params)`` requests: client latency, server time (Server-Timing), req/s.

    With ``concurrency`` > 1 that many clients share the list, each on its own connection.
    """
    import httpx

    client_ms: list[float] = []
    server_ms: list[float] = []
    errors = 0
    lock = threading.Lock()

    def run(share, http) -> None:
        nonlocal errors
        for path, params in share:
            t0 = time.perf_counter()
            response = http.get(base + path, params=params)
            took = (time.perf_counter() - t0) * 1000
            match = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
            with lock:
                client_ms.append(took)
                errors += response.status_code != 200
                if match:
                    server_ms.append(float(match.group(1)))

    started = time.perf_counter()
    if concurrency <= 1:
        run(requests, client)
    else:
        clients = [httpx.Client(timeout=60) for _ in range(concurrency)]
        threads = [threading.Thread(target=run, args=(requests[i::concurrency], c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in clients:
            c.close()
    result = _summary(client_ms, server_ms, time.perf_counter() - started)
    result["errors"] = errors
    return result


def run_web_bench(db: str, requests: int = 500, warmup: int = 50, seed: int = 7, concurrency: int = 4) -> dict[str, Any]:
    import httpx

    from paperscope.catalog.store import Catalog
    from paperscope.index.maintain import ensure_indexes

    catalog = Catalog.open(db)
    papers = catalog.paper_count()
    ensure_indexes(catalog)  # a stale index is rebuilt here, not inside the timed server
    catalog.close()
    queries, paper_ids = search_queries(db, requests + warmup, seed)
    if not queries:
        raise RuntimeError("the catalogue has no titles to build queries from")
    warm, timed = queries[:warmup], queries[warmup:warmup + requests]
    paper_paths = [(f"/paper/{pid}", None) for pid in paper_ids]
    proc, base = start_server(db, accounts=False)   # anonymous search pages on either backend; --users signs in
    try:
        with httpx.Client(timeout=60) as client:
            wait_ready(client, base, proc)
            measure(client, base, [("/search", q) for q in warm] + paper_paths[:warmup])
            baseline = measure(client, base, [("/healthz", None)] * len(timed))
            search_page = measure(client, base, [("/search", q) for q in timed])
            search_api = measure(client, base, [("/api/search", q) for q in timed[: max(10, len(timed) // 5)]])
            paper_page = measure(client, base, paper_paths[warmup:warmup + max(10, len(timed) // 5)])
            concurrent = measure(client, base, [("/search", q) for q in timed], concurrency=concurrency) if concurrency > 1 else None
    finally:
        stop_server(proc, grace_s=10)
    return {
        "catalogue": safe_location(db),
        "papers": papers,
        "setup": "uvicorn (1 worker) in a subprocess on 127.0.0.1; httpx clients; one request at a time unless named",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "search_page": search_page,
        "search_api_json": search_api,
        "paper_page": paper_page,
        "baseline_healthz": baseline,
        f"search_page_{concurrency}_clients": concurrent,
        "ratio_p50_search_page_to_baseline": round(search_page["p50_ms"] / baseline["p50_ms"], 1) if baseline["p50_ms"] else None,
        "target": "search page p50 < 50 ms server time",
        "meets_target": bool(search_page["server_p50_ms"] is not None and search_page["server_p50_ms"] < 50),
    }


@bench_app.command("web")
def bench_web(
    db: Optional[str] = typer.Option(None, "--db", help="Catalogue (default: the bench catalogue of `paperscope bench ingest`)."),
    requests: int = typer.Option(500, min=10, help="Timed search requests."),
    warmup: int = typer.Option(50, min=0, help="Untimed requests first (and as many paper pages)."),
    seed: int = typer.Option(7, help="Seed for drawing titles."),
    concurrency: int = typer.Option(4, min=1, help="Clients at once for the throughput run (1: skip it)."),
    users: int = typer.Option(0, min=0, help="Server mode instead: this many signed-in users searching and saving "
                                             "at once (see bench/users_bench.py)."),
    duration: float = typer.Option(60.0, min=1, help="With --users: seconds of load."),
    workers: int = typer.Option(2, min=1, help="With --users: uvicorn worker processes."),
    as_json: bool = JsonOption,
) -> None:
    """Search-page latency (p50/p99) and req/s over real HTTP, next to a trivial page in the same run;
    with --users N, N signed-in users searching and saving at once (requests/s, p50/p99, errors)."""
    from paperscope.bench.ingest_bench import BENCH_CATALOGUE

    location = db or str(BENCH_CATALOGUE)
    if "://" not in location and not Path(location).expanduser().is_file():
        fail(f"no catalogue at {location}: run `paperscope bench ingest` first, or pass --db PATH")
    if users:
        from paperscope.bench.users_bench import run_users_bench

        err_console.print(f"bench web: {users} signed-in users for {duration:.0f} s over {safe_location(location)}…", highlight=False)
        try:
            result = run_users_bench(location, users=users, duration_s=duration, workers=workers, seed=seed)
        except RuntimeError as exc:
            fail(str(exc))
        if as_json:
            print_json(result)
        else:
            for key, value in result.items():
                console.print(f"{key:20} {json.dumps(value) if isinstance(value, (dict, list)) else value}", highlight=False)
        if result["errors"]:
            raise typer.Exit(1)
        return
    err_console.print(f"bench web: {requests} search pages over {safe_location(location)} (warm-up {warmup})…", highlight=False)
    try:
        result = run_web_bench(location, requests=requests, warmup=warmup, seed=seed, concurrency=concurrency)
    except RuntimeError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        console.print(f"{key:30} {json.dumps(value) if isinstance(value, dict) else value}", highlight=False)
