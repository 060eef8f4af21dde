"""`paperscope bench web --users N`: N signed-in users searching and saving at once, over real HTTP.

The server is the real one in server mode (uvicorn with ``--workers``, accounts on) over the given
catalogue, SQLite or PostgreSQL, on 127.0.0.1. Each user is a thread with its own connection that
signs in through the sign-in form (argon2id, server-side session) and then, for the duration, does
what a reader does: four search pages (a few words of a real title, some narrowed by venue) for each
save (into their library, or their agenda when the library is not there), with the session's CSRF
token. Reported: requests per second, p50/p99 per kind of request, and every error.

The bench users (``bench-user-N``) and everything they saved are deleted afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from paperscope.cli.bench_web_cmd import _free_port, _percentile, search_queries, stop_server, wait_ready

BENCH_USER = "bench-user-{}"


def _stats(samples: list[float], elapsed_s: float) -> dict[str, Any]:
    return {"requests": len(samples), "req_per_s": round(len(samples) / elapsed_s, 1) if elapsed_s else None,
            "p50_ms": round(_percentile(samples, 0.5), 1) if samples else None,
            "p99_ms": round(_percentile(samples, 0.99), 1) if samples else None,
            "mean_ms": round(statistics.fmean(samples), 1) if samples else None}


def _make_users(db: str, n: int) -> tuple[list[tuple[str, str]], str]:
    from paperscope.accounts import Accounts
    from paperscope.catalog.store import Catalog

    catalog = Catalog.open(db)
    backend = "sqlite" if catalog.is_sqlite else catalog.engine.dialect.name
    accounts = Accounts(catalog)
    made = []
    try:
        for i in range(n):
            name = BENCH_USER.format(i)
            if accounts.user_named(name) is not None:
                accounts.delete_user(name)          # left over from an interrupted run
            password = secrets.token_urlsafe(12)
            accounts.create_user(name, password)
            made.append((name, password))
    finally:
        catalog.close()
    return made, backend


def _remove_users(db: str, names: list[str]) -> None:
    from paperscope.accounts import Accounts
    from paperscope.catalog.store import Catalog

    catalog = Catalog.open(db)
    try:
        accounts = Accounts(catalog)
        for name in names:
            if accounts.user_named(name) is not None:
                accounts.delete_user(name)
    finally:
        catalog.close()


def run_users_bench(db: str, users: int = 20, duration_s: float = 60.0, workers: int = 2, seed: int = 7) -> dict[str, Any]:
    import httpx

    from paperscope.catalog.store import Catalog
    from paperscope.index.maintain import ensure_indexes

    catalog = Catalog.open(db)
    papers = catalog.paper_count()
    ensure_indexes(catalog)          # a stale keyword index is rebuilt here, not on the timed server
    catalog.close()
    queries, paper_ids = search_queries(db, 400, seed)
    if not queries:
        raise RuntimeError("the catalogue has no titles to build queries from")
    accounts, backend = _make_users(db, users)
    port = _free_port()
    env = dict(os.environ, PAPERSCOPE_DB=db, PAPERSCOPE_ACCOUNTS="1", PAPERSCOPE_PUBLIC="0")
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "paperscope.web.app:app_from_env", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    log = tempfile.TemporaryFile(mode="w+")   # the server's log (a pipe nobody reads would fill and stall it)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    timings: dict[str, list[float]] = {"search": [], "save": [], "sign_in": []}
    errors: list[str] = []
    lock = threading.Lock()
    try:
        with httpx.Client(timeout=120) as probe:
            wait_ready(probe, base, proc)
        start_barrier = threading.Barrier(users + 1)
        deadline_box: list[float] = []

        def user(i: int, name: str, password: str) -> None:
            local: dict[str, list[float]] = {"search": [], "save": [], "sign_in": []}
            local_errors: list[str] = []
            with httpx.Client(base_url=base, timeout=120) as client:
                try:
                    t0 = time.perf_counter()
                    page = client.get("/login")
                    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                    done = client.post("/login", data={"username": name, "password": password, "csrf": token})
                    local["sign_in"].append((time.perf_counter() - t0) * 1000)
                    if done.status_code != 303 or done.headers.get("location", "").startswith("/login"):
                        local_errors.append(f"sign-in of {name}: {done.status_code}")
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    local_errors.append(f"sign-in of {name}: {type(exc).__name__}: {exc}")
                start_barrier.wait(timeout=600)
                csrf = client.cookies.get("csrf", "")
                k = 0
                while time.monotonic() < deadline_box[0]:
                    k += 1
                    t0 = time.perf_counter()
                    try:
                        if k % 5:
                            kind = "search"
                            response = client.get("/search", params=queries[(i * 37 + k) % len(queries)])
                            ok = response.status_code == 200
                        else:
                            kind = "save"
                            pid = paper_ids[(i * 11 + k) % len(paper_ids)]
                            response = client.post("/api/library", json={"paper_id": pid},
                                                   headers={"x-csrf-token": csrf})
                            ok = response.status_code == 200
                    except Exception as exc:  # noqa: BLE001
                        local_errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                        continue
                    took = (time.perf_counter() - t0) * 1000
                    if ok:
                        local[kind].append(took)
                    else:
                        local_errors.append(f"{kind}: {response.status_code} {response.text[:120]}")
            with lock:
                for key, values in local.items():
                    timings[key] += values
                errors.extend(local_errors)

        threads = [threading.Thread(target=user, args=(i, name, password))
                   for i, (name, password) in enumerate(accounts)]
        for t in threads:
            t.start()
        deadline_box.append(float("inf"))
        start_barrier.wait(timeout=600)          # everyone is signed in: the timed part starts now
        started = time.monotonic()
        deadline_box[0] = started + duration_s
        for t in threads:
            t.join(duration_s + 300)
        elapsed = time.monotonic() - started
    finally:
        stop_server(proc)
        _remove_users(db, [name for name, _ in accounts])
        log.seek(0)
        server_log = log.read()
        log.close()
    combined = timings["search"] + timings["save"]
    return {
        "catalogue": _safe(db), "backend": backend, "papers": papers,
        "setup": f"uvicorn --workers {workers} (server mode, accounts) on 127.0.0.1; {users} signed-in users, "
                 "one httpx client thread each, 4 search pages per save, no think time",
        "users": users, "duration_s": round(elapsed, 1), "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "requests": len(combined), "req_per_s": round(len(combined) / elapsed, 1) if elapsed else None,
        "p50_ms": round(_percentile(combined, 0.5), 1) if combined else None,
        "p99_ms": round(_percentile(combined, 0.99), 1) if combined else None,
        "search_page": _stats(timings["search"], elapsed), "save": _stats(timings["save"], elapsed),
        "sign_in": _stats(timings["sign_in"], elapsed),
        "errors": len(errors), "error_samples": errors[:10],
        "server_log_tail": server_log[-3000:] if errors else "",
    }


def _safe(db: str) -> str:
    if "://" not in db:
        return db
    from sqlalchemy.engine import make_url

    return make_url(db).render_as_string(hide_password=True)
