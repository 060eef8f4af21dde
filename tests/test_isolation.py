"""One user's data is theirs alone: every route of the app, tried by another user on the first one's
objects, on SQLite and PostgreSQL.

The routes are read from the app's route table, so a per-user route added later (library, tags,
notes, feedback, digests, feeds, exports) is covered without touching this file. Each route is tried
by Bob, and by an anonymous visitor, with Alice's object ids and keys in every path parameter and
in the query (``id``, ``key``, ``user``, ...), and, for changes, in the form and the JSON body:

- reads: what Bob (or the visitor) gets is the same whether Alice has data or not;
- changes and deletions: Alice's data (her agenda and its exports, as she sees them) is unchanged
  afterwards, and the requests aimed at her objects by id are refused.

To cover a new kind of per-user object, add a seeder to ``SEEDERS`` that creates Alice's objects
through the app and returns their ids/keys, and a view to ``SNAPSHOTS``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.web.app import create_app  # noqa: E402

PASSWORD = "correct horse battery"
NOT_TRIED = {"/api/docs", "/api/docs/oauth2-redirect", "/openapi.json", "/logout"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class World:
    app: Any
    alice: TestClient
    bob: TestClient
    bob_token: str
    alice_id: str
    objects: dict[str, list[str]] = field(default_factory=dict)   # kind -> Alice's ids and keys


@pytest.fixture(scope="module")
def world(catalogues):
    from iclr_catalogue import ingest_iclr

    with catalogues.copy("iclr2020", ingest_iclr) as url:
        catalog = Catalog.open(url)
        app = create_app(url, catalog=catalog, accounts=True)
        accounts = app.state.accounts
        alice_user = accounts.create_user("alice", PASSWORD, "alice@example.org")
        bob_user = accounts.create_user("bob", PASSWORD, "bob@example.org")
        _, bob_token = accounts.create_token(bob_user, "feeds")
        world = World(app, _signed_in(app, "alice"), _signed_in(app, "bob"), bob_token, alice_user.id)
        yield world
        catalog.close()


def _signed_in(app, username: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token},
                       follow_redirects=False)
    assert done.status_code == 303
    return client


def _write(client: TestClient, method: str, path: str, **kwargs):
    headers = {"x-csrf-token": client.cookies.get("csrf", "")} if "data" not in kwargs else {}
    return client.request(method, path, headers=headers, **kwargs)


# ------------------------------------------------------------------------------------------- Alice's objects
def _keys(data: Any) -> list[str]:
    found: list[str] = []
    if isinstance(data, dict):
        if isinstance(data.get("key"), str):
            found.append(data["key"])
        for value in data.values():
            found += _keys(value)
    elif isinstance(data, list):
        for value in data:
            found += _keys(value)
    return found


def seed_agenda(w: World) -> dict[str, list[str]]:
    """Alice stars two sessions and two papers of ICLR 2020, and accepts a plan."""
    program = w.alice.get("/api/schedule", params={"venue": "ICLR", "year": 2020, "day": "all"}).json()
    keys = list(dict.fromkeys(_keys(program)))
    sessions = [k for k in keys if k.startswith("session|")]
    papers = [k for k in keys if not k.startswith("session|")]
    assert len(sessions) >= 2 and len(papers) >= 2
    for key in sessions[:2] + papers[:2]:
        made = _write(w.alice, "POST", "/api/agenda", json={"key": key, "venue": "ICLR", "year": 2020})
        assert made.status_code == 200, made.text[:300]
    plan = w.alice.post("/plan/accept", data={"venue": "ICLR", "year": "2020", "text": "reinforcement learning exploration",
                                              "method": "tfidf", "csrf": w.alice.cookies["csrf"]}, follow_redirects=False)
    assert plan.status_code == 303, plan.text[:300]
    items = w.alice.get("/api/agenda").json()["items"]
    assert len(items) > 3
    return {"agenda ids": [str(i["id"]) for i in items], "agenda keys": [i["item_key"] for i in items],
            "papers": [i["paper_id"] for i in items if i.get("paper_id")][:2]}


def clear_agenda(w: World) -> None:
    for item in w.alice.get("/api/agenda").json()["items"]:
        assert _write(w.alice, "DELETE", f"/api/agenda/{item['id']}").status_code == 200
    assert w.alice.get("/api/agenda").json()["items"] == []


NOTE = "alice-private-note-7f3c"
TAG = "alice-secret-tag"
MARKERS = (NOTE, TAG)   # text only Alice ever wrote: no answer to anyone else may contain it


def _has_route(w: World, method: str, path: str) -> bool:
    return (method, path) in app_routes(w.app)


def seed_library(w: World) -> dict[str, list[str]]:
    """Alice saves two papers (a private tag and note on one) and marks a third not relevant."""
    if not _has_route(w, "POST", "/api/library"):
        return {}
    found = w.alice.get("/api/search", params={"q": "reinforcement learning", "mode": "keyword"}).json()["hits"]
    papers = [h["id"] for h in found][:3]
    assert len(papers) == 3
    first = _write(w.alice, "POST", "/api/library", json={"paper_id": papers[0], "tags": [TAG], "note": NOTE})
    assert first.status_code == 200, first.text[:300]
    assert _write(w.alice, "POST", "/api/library", json={"paper_id": papers[1]}).status_code == 200
    if _has_route(w, "POST", "/api/feedback"):
        assert _write(w.alice, "POST", "/api/feedback", json={"paper_id": papers[2]}).status_code == 200
    entries = w.alice.get("/api/library").json()["entries"]
    return {"library ids": [str(e["id"]) for e in entries], "library papers": papers}


def clear_library(w: World) -> None:
    if not _has_route(w, "POST", "/api/library"):
        return
    for entry in w.alice.get("/api/library").json()["entries"]:
        assert _write(w.alice, "DELETE", f"/api/library/{entry['id']}").status_code == 200
    for paper in w.objects.get("library papers", []):
        _write(w.alice, "DELETE", f"/api/feedback/{paper}")
    assert w.alice.get("/api/library").json()["entries"] == []


SEEDERS: list[tuple[Callable[[World], dict], Callable[[World], None]]] = [
    (seed_agenda, clear_agenda),
    (seed_library, clear_library),
]
# What Alice sees of her own data: must not change whatever Bob does.
SNAPSHOTS = ["/api/agenda", "/agenda.ics", "/agenda.csv", "/agenda.bib", "/agenda?format=json",
             "/api/library", "/library/export.json", "/library/export.bib", "/api/library/status?ids={papers}"]


# ------------------------------------------------------------------------------------------- the routes
def app_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route (HEAD is tried through GET), included routers too."""
    out = []
    for path, methods in _flatten(app.routes):
        if path in NOT_TRIED:
            continue
        out += [(method, path) for method in sorted(methods or {"GET"}) if method != "HEAD"]
    return out


def _flatten(routes, prefix: str = ""):
    for route in routes:
        inner = getattr(route, "original_router", None)   # FastAPI keeps included routers as such
        if inner is not None:
            yield from _flatten(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            continue                                       # static files
        else:
            yield prefix + route.path, getattr(route, "methods", None)


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def concrete_paths(template: str, values: list[str]) -> list[str]:
    names = _PARAM.findall(template)
    if not names:
        return [template]
    return [_PARAM.sub(lambda m: value.replace("/", "%2F"), template) for value in values]


def alice_values(w: World) -> list[str]:
    values = [v for vs in w.objects.values() for v in vs[:2]]   # two of each kind of object
    return list(dict.fromkeys([*values, w.alice_id, "alice"]))


def probe_fields(w: World) -> dict[str, str]:
    """Form fields / query parameters naming Alice's objects, as a hostile client would send them."""
    ids, keys = w.objects.get("agenda ids", ["1"]), w.objects.get("agenda keys", ["k"])
    entries, papers = w.objects.get("library ids", ids), w.objects.get("library papers", ["p"])
    return {"id": ids[0], "item_id": ids[0], "keep": ids[0], "key": keys[0], "user": w.alice_id,
            "user_id": w.alice_id, "username": "alice", "owner": "alice", "venue": "ICLR", "year": "2020",
            "method": "tfidf", "entry": entries[0], "entry_id": entries[0], "paper_id": papers[0],
            "ids": ",".join(papers)}


def _normal(response) -> tuple[int, str]:
    """A response without what changes from one request to the next (timings, stamps)."""
    body = response.text
    if "json" in response.headers.get("content-type", ""):
        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items() if not (k.endswith("_ms") or k in ("timings", "took_ms"))}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value
        try:
            body = json.dumps(clean(response.json()), sort_keys=True)
        except ValueError:
            pass
    body = re.sub(r"[0-9.]+\s?ms\b", "#ms", body)
    body = re.sub(r"DTSTAMP:\S+", "DTSTAMP", body)
    body = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z)?", "#time", body)   # made at request time
    # a client without a session (a token) gets a fresh form token on each page
    body = re.sub(r'(name="csrf" value=|"csrf": ?)"[^"]*"', r'\1"#"', body)
    return response.status_code, body


def read_everything(w: World, client: TestClient, token: str | None = None) -> dict[str, tuple[int, str]]:
    """Every GET route, with Alice's ids in the path and the query."""
    seen = {}
    query = probe_fields(w)
    for method, template in app_routes(w.app):
        if method != "GET":
            continue
        for path in concrete_paths(template, alice_values(w)):
            params = dict(query, **({"token": token} if token else {}))
            response = client.get(path, params=params, follow_redirects=False)
            if response.status_code >= 500:
                warnings.warn(f"GET {path} failed ({response.status_code}): {response.text[:200]}")
            seen[f"GET {path}"] = _normal(response)
    return seen


def settled(answer: tuple[int, str]) -> bool:
    """An answer that can be compared: not "still computing, poll again" (202, or 429 while other maps
    are computed), not a server failure."""
    return answer[0] not in (202, 429) and answer[0] < 500


def alice_sees(w: World) -> dict[str, tuple[int, str]]:
    papers = ",".join(w.objects.get("library papers", []))
    paths = [p.format(papers=papers) for p in SNAPSHOTS]
    return {path: _normal(w.alice.get(path)) for path in paths}


# ------------------------------------------------------------------------------------------- the tests
def test_nobody_reads_another_users_data(world):
    w = world
    for seed, _ in SEEDERS:
        w.objects.update(seed(w))
    anonymous = TestClient(w.app)
    read_everything(w, w.bob)   # Bob's own traces (a token's first use, a session's last visit) settle first
    read_everything(w, TestClient(w.app), w.bob_token)
    with_data = {"bob": read_everything(w, w.bob), "bob's token": read_everything(w, TestClient(w.app), w.bob_token),
                 "anonymous": read_everything(w, anonymous)}
    for _, clear in SEEDERS:
        clear(w)
    without = {"bob": read_everything(w, w.bob), "bob's token": read_everything(w, TestClient(w.app), w.bob_token),
               "anonymous": read_everything(w, anonymous)}
    marked = [f"{who}: {request} shows {marker!r}" for answers in (with_data, without) for who in answers
              for request, (_, body) in answers[who].items() for marker in MARKERS if marker in body]
    assert not marked, "Alice's private text showed:\n" + "\n".join(marked[:20])
    leaks = [f"{who}: {request} -> {with_data[who][request][0]}: {with_data[who][request][1][:200]!r}"
             for who in with_data for request in with_data[who]
             if settled(with_data[who][request]) and settled(without[who].get(request, (0, "")))
             and with_data[who][request] != without[who].get(request)]
    assert not leaks, "another user's data showed:\n" + "\n".join(leaks[:20])
    get_routes = {template for method, template in app_routes(w.app) if method == "GET"}
    tried = {request.split(" ", 1)[1] for request in with_data["bob"]}
    untried = [t for t in get_routes if not any(_matches(t, path) for path in tried)]
    assert not untried, f"routes not tried: {untried}"


def _matches(template: str, path: str) -> bool:
    pattern = "^" + _PARAM.sub("[^?]+", re.escape(template).replace("\\{", "{").replace("\\}", "}")) + "$"
    return re.match(pattern, path) is not None


def test_the_visitor_is_sent_to_sign_in_for_everything_private(world):
    w = world
    anonymous = TestClient(w.app)
    for method, template in app_routes(w.app):
        for path in concrete_paths(template, alice_values(w) or ["1"]):
            if method == "GET":
                response = anonymous.get(path, follow_redirects=False)
                public = path in ("/login", "/signup", "/reset", "/healthz") or path.startswith(("/reset/", "/feed/"))
                assert public or response.status_code in (303, 401), f"GET {path}: {response.status_code}"
            else:
                response = anonymous.request(method, path, follow_redirects=False)
                assert response.status_code in (401, 403), f"{method} {path}: {response.status_code}"


def test_nobody_changes_or_deletes_another_users_data(world):
    w = world
    for seed, _ in SEEDERS:
        w.objects.update(seed(w))
    before = alice_sees(w)
    fields = probe_fields(w)
    tried = []
    for client_name, client in (("bob", w.bob), ("bob's token", TestClient(w.app))):
        auth = {"authorization": f"Bearer {w.bob_token}"} if client_name == "bob's token" else {}
        for method, template in app_routes(w.app):
            if method not in UNSAFE:
                continue
            for path in concrete_paths(template, alice_values(w)):
                csrf = client.cookies.get("csrf", "")
                attempts = [
                    client.request(method, path, data=dict(fields, csrf=csrf), headers=auth, follow_redirects=False),
                    client.request(method, path, json=fields, headers={"x-csrf-token": csrf, **auth}, follow_redirects=False),
                ]
                for response in attempts:
                    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
                tried.append(f"{method} {path}")
                if client_name == "bob" and w.bob.get("/api/account").status_code != 200:
                    w.bob = _signed_in(w.app, "bob")    # a route signed Bob out: sign in again
                    client = w.bob
    after = alice_sees(w)
    changed = [path for path in before if after[path] != before[path]]
    assert not changed, f"Bob's requests changed what Alice sees at {changed}"
    assert tried
    # and the direct attempts, by id, are refused as "not yours / not found"
    for item_id in w.objects["agenda ids"]:
        assert _write(w.bob, "DELETE", f"/api/agenda/{item_id}").status_code == 404
        assert _write(w.bob, "POST", "/api/agenda/resolve", json={"keep": int(item_id)}).status_code == 404
    for entry_id in w.objects.get("library ids", []):
        assert _write(w.bob, "DELETE", f"/api/library/{entry_id}").status_code == 404
        bob_edit = w.bob.post("/library/entry", data={"entry": entry_id, "note": "bob was here", "csrf": w.bob.cookies["csrf"]},
                              follow_redirects=False)
        assert bob_edit.status_code in (400, 403, 404), bob_edit.text[:200]
    assert alice_sees(w) == before


def test_every_route_was_tried(world):
    """The route table is what the other tests walk: nothing is skipped but the docs and sign-out."""
    routes = app_routes(world.app)
    assert ("DELETE", "/api/agenda/{item_id:int}") in routes and ("GET", "/agenda.ics") in routes
    assert len(routes) >= 30
