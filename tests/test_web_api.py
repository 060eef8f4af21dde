"""The web app and its REST API, over a small real catalogue (real SQLite, real keyword index).

A reader searches, narrows by facets, opens papers, authors and sessions; every page has a JSON
twin; nothing a source says is ever rendered as HTML; bad input is explained, never a server error.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("tantivy")

from backends import single_user_app  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.export import bibtex_key, to_bibtex  # noqa: E402
from paperscope.model import Appearance, PaperRecord, SessionRecord  # noqa: E402

HOSTILE_TITLE = "<script>alert(1)</script> & $x$ Tricks for Robust Momentum"
HOSTILE_AUTHOR = "Eve <img src=x onerror=alert(2)>"
PDT = "America/Los_Angeles"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def icml_talk(title, authors, abstract, start, minutes=5, award=None, **ids):
    return PaperRecord(
        title=title, authors=authors, abstract=abstract, ids=ids, year=2022,
        appearance=Appearance(
            venue="ICML", year=2022, track="Deep Learning", session="Deep Learning", room="Ballroom 1 & 2",
            moderator="Grigorios Chrysos", presentation="oral", award=award, starts_at=start,
            ends_at=start.replace(minute=start.minute + minutes), source_tz=PDT,
            slot_text=f"Wed 20 July {start.hour - 7}:{start.minute:02d} - {start.hour - 7}:{start.minute + minutes:02d} PDT",
        ),
    )


def iclr_poster(title, authors, abstract, decision="poster accept", **ids):
    return PaperRecord(
        title=title, authors=authors, abstract=abstract, ids=ids, year=2023,
        appearance=Appearance(venue="ICLR", year=2023, session="Poster Session 3", presentation="poster",
                              decision=decision, mode="in-person", starts_at=utc(2023, 5, 2, 1, 30),
                              ends_at=utc(2023, 5, 2, 3, 30), source_tz="Africa/Kigali"),
    )


def feed_entry(title, authors, abstract, **ids):
    return PaperRecord(title=title, authors=authors, abstract=abstract, ids=ids,
                       appearance=Appearance(venue="Hugging Face Papers", url="https://huggingface.co/papers/2206.00001"))


def build_catalogue(url: str) -> Catalog:
    """ICML 2022 orals with slots, ICLR 2023 posters (one with a hostile title), a feed entry merging into a talk."""
    catalog = Catalog.open(url)
    catalog.ingest("icml2022-session-deep-learning.txt", "session_page", "h-icml", [
        icml_talk("Towards understanding how momentum improves generalization in deep learning",
                  ["Samy Jelassi", "Yuanzhi Li"],
                  "Stochastic gradient descent (SGD) with momentum is widely used for training modern deep learning "
                  "architectures. We show that gradient descent with momentum significantly improves generalization.",
                  utc(2022, 7, 20, 14, 30), award="Outstanding Paper"),
        icml_talk("What Can Linear Interpolation of Neural Network Loss Landscapes Tell Us?",
                  ["Tiffany Vlaar", "Jonathan Frankle"],
                  "Studying neural network loss landscapes provides insights into the nature of the underlying "
                  "optimization problems. We put linear interpolation to the test.", utc(2022, 7, 20, 14, 35)),
        icml_talk("Deep equilibrium networks are sensitive to initialization statistics",
                  ["Atish Agarwala", "Samuel Schoenholz"],
                  "Deep equilibrium networks (DEQs) are a promising way to construct models which trade off memory "
                  "for compute. We show that DEQs are sensitive to initialization \\citep{bai2019}.",
                  utc(2022, 7, 20, 14, 40)),
        SessionRecord(name="Deep Learning", venue="ICML", year=2022, kind="oral", room="Ballroom 1 & 2",
                      starts_at=utc(2022, 7, 20, 14, 30), ends_at=utc(2022, 7, 20, 15, 30), source_tz=PDT),
    ])
    catalog.ingest("iclr2023-poster-session-3.txt", "poster_listing", "h-iclr", [
        iclr_poster("Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach",
                    ["Diego Granziol", "Stefan Zohren", "Stephen Roberts"],
                    "We study the effect of mini-batching on the loss landscape of deep neural networks using "
                    "spiked, field-dependent random matrix theory. Momentum is analysed too.",
                    decision="top 5%", openreview="lr-batch-1"),
        iclr_poster(HOSTILE_TITLE, ["Samy Jelassi", "Yuanzhi Li", HOSTILE_AUTHOR],
                    "An abstract with <b>markup</b> & an ampersand, $\\alpha$-momentum and \\cite{x}; momentum helps."),
        iclr_poster("Graph Neural Networks for Léon's Übergraph: {BERT}-style pretraining",
                    ["Léon Bottou", "Jürgen Schmidhuber"],
                    "Graph neural networks pretrained like BERT transfer across graphs.", arxiv="2301.01234"),
    ])
    catalog.ingest("hf-papers-listing.txt", "paper_feed", "h-hf", [
        feed_entry("Towards Understanding How Momentum Improves Generalization in Deep Learning", [],
                   "Feed abstract."),
        feed_entry("Diffusion Models Beat GANs on Image Synthesis", ["Prafulla Dhariwal", "Alex Nichol"],
                   "We show that diffusion models can achieve image sample quality superior to GANs.", arxiv="2105.05233"),
    ])
    return catalog


@pytest.fixture(scope="module")
def catalogue(catalogues):
    with catalogues.new() as url:
        catalog = build_catalogue(url)
        yield catalog
        catalog.close()


@pytest.fixture(scope="module")
def client(catalogue):
    with TestClient(single_user_app(catalogue), raise_server_exceptions=False) as c:
        yield c


def paper_id(catalogue, title_start: str) -> str:
    for paper in catalogue.iter_papers():
        if paper["title"].startswith(title_start):
            return paper["id"]
    raise AssertionError(title_start)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------------------------------------- search
def test_home_page_offers_a_search_box_and_the_venues(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<form class="search search-big" action="/search"' in r.text
    assert "<title>" in r.text and "ICML 2022" in visible_text(r.text)
    data = client.get("/?format=json").json()
    assert data["papers"] == 7
    assert {(v["venue"], v["year"]) for v in data["venues"]} >= {("ICML", 2022), ("ICLR", 2023)}


def test_search_page_shows_ranked_results_with_highlighted_snippets(client):
    r = client.get("/search", params={"q": "momentum generalization"})
    assert r.status_code == 200
    text = visible_text(r.text)
    assert "Towards understanding how momentum improves generalization" in text
    assert "<mark>momentum</mark>" in r.text.lower() or "<mark>Momentum</mark>" in r.text
    assert 'href="/author/Samy%20Jelassi"' in r.text
    assert "Outstanding Paper" in text and "oral" in text.lower()


def test_search_json_twin_matches_the_api(client):
    page = client.get("/search", params={"q": "momentum", "format": "json"})
    api = client.get("/api/search", params={"q": "momentum"})
    assert page.status_code == api.status_code == 200
    a, b = page.json(), api.json()
    assert a["total"] == b["total"] >= 3
    assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
    hit = a["hits"][0]
    assert {"id", "title", "authors", "venue", "badges", "appearances", "snippet", "score", "url"} <= set(hit)
    assert any(f["match"] for h in a["hits"] for f in h["snippet"])
    assert {f["name"] for f in a["facets"]} >= {"venue", "year"}
    assert a["mode_used"] == "keyword"


def test_facets_narrow_the_search_and_every_state_is_in_the_url(client):
    data = client.get("/api/search", params={"q": "momentum"}).json()
    venue = next(f for f in data["facets"] if f["name"] == "venue")
    iclr = next(v for v in venue["values"] if v["value"] == "ICLR")
    assert iclr["url"].startswith("/search?") and "venue=ICLR" in iclr["url"]
    narrowed = client.get(iclr["url"] + "&format=json").json()
    assert narrowed["total"] == iclr["count"] < data["total"]
    assert all(any(a["venue"] == "ICLR" for a in h["appearances"]) for h in narrowed["hits"])
    assert narrowed["filters"] == {"venue": "ICLR"}
    selected = next(v for f in narrowed["facets"] if f["name"] == "venue" for v in f["values"] if v["selected"])
    assert "venue=" not in selected["url"]  # the selected value links back to the wider search
    html = client.get(iclr["url"]).text
    assert "venue: ICLR" in visible_text(html)


def test_sort_by_date_and_paging_links_keep_the_query(client):
    data = client.get("/api/search", params={"q": "year:2020..2023", "sort": "date"}).json()
    assert data["sort"] == "date" and data["total"] >= 6
    years = [h["year"] for h in data["hits"]]
    assert years == sorted(years, reverse=True)
    assert "sort=date" not in data["sort_urls"]["relevance"] and "sort=date" in data["sort_urls"]["date"]


@pytest.fixture(scope="module")
def demo_client(catalogues):
    """The bundled ICLR 2020 demo (687 papers, timed sessions), ingested as a user would."""
    from iclr_catalogue import ingest_iclr

    with catalogues.copy("iclr2020", ingest_iclr) as url:
        catalog = Catalog.open(url)
        assert catalog.paper_count() > 600
        with TestClient(single_user_app(catalog)) as c:
            yield c
        catalog.close()


def test_paging_walks_through_all_results_and_back(demo_client):
    first = demo_client.get("/api/search", params={"q": "learning"}).json()
    assert first["total"] > 40 and first["pages"] == -(-first["total"] // 20) and len(first["hits"]) == 20
    assert first["prev_url"] is None and "page=2" in first["next_url"] and "q=learning" in first["next_url"]
    second = demo_client.get(first["next_url"] + "&format=json").json()
    assert second["page"] == 2 and not {h["id"] for h in second["hits"]} & {h["id"] for h in first["hits"]}
    back = demo_client.get(second["prev_url"] + "&format=json").json()
    assert [h["id"] for h in back["hits"]] == [h["id"] for h in first["hits"]]
    last = demo_client.get("/api/search", params={"q": "learning", "page": first["pages"]}).json()
    assert last["next_url"] is None and 0 < len(last["hits"]) <= 20
    html = demo_client.get("/search", params={"q": "learning", "page": 2}).text
    assert 'rel="next"' in html and 'rel="prev"' in html and "page 2 of" in html


def test_demo_venue_page_lists_its_sessions_in_time_order(demo_client):
    data = demo_client.get("/api/venue/ICLR", params={"year": 2020, "tz": "UTC"}).json()
    assert data["total"] > 600 and data["pages"] >= 4 and len(data["items"]) == 200
    timed = [s["starts_at"] for s in data["sessions"] if s["starts_at"]]
    assert timed == sorted(timed) and len(data["sessions"]) > 10
    session = demo_client.get(data["sessions"][0]["url"] + "&format=json").json()
    assert session["items"] and session["name"] == data["sessions"][0]["name"]


def test_filter_only_query_lists_papers(client):
    data = client.get("/api/search", params={"q": "", "type": "oral"}).json()
    assert data["total"] == 3
    assert all(any(a["presentation"] == "oral" for a in h["appearances"]) for h in data["hits"])


def test_bad_queries_are_explained_not_errors(client):
    for params in ({"q": 'year:banana "unclosed'}, {"q": "venue:NoSuchConf"}, {"q": "-"}, {"q": "momentum", "page": "abc"},
                   {"q": "momentum", "mode": "telepathy"}, {"q": "momentum", "sort": "sideways"},
                   {"q": "momentum", "tz": "Mars/Olympus"}, {"q": "x" * 2000}):  # at the length limit (limits.py)
        r = client.get("/search", params=params)
        assert r.status_code == 200, params
        j = client.get("/search", params={**params, "format": "json"}).json()
        assert j["error"] is None
    assert client.get("/search?q=%00%ED%A0%80%FF").status_code == 200  # control characters and broken UTF-8
    j = client.get("/api/search", params={"q": "year:banana"}).json()
    assert "year:banana" in j["message"]
    assert "Mars/Olympus" in client.get("/api/search", params={"q": "momentum", "tz": "Mars/Olympus"}).json()["message"]


def test_meaning_mode_falls_back_to_keywords_and_says_so(client):
    data = client.get("/api/search", params={"q": "momentum", "mode": "meaning"}).json()
    assert data["total"] >= 1
    if data["mode_used"] == "keyword":
        assert "keyword" in (data["message"] or "").lower()
    html = client.get("/search", params={"q": "momentum", "mode": "semantic"}).text
    assert '<option value="semantic" selected>' in html


@pytest.fixture(scope="module")
def embedded(catalogues):
    """The same catalogue with paper and sentence vectors from the bundled MiniLM model."""
    from cached_model import cached_embedder

    from paperscope.index.vectors import embed_catalog

    try:
        embedder = cached_embedder()
    except Exception as exc:  # model package missing
        pytest.skip(f"the embedding model cannot be loaded: {exc}")
    with catalogues.new() as url:
        catalog = build_catalogue(url)
        embed_catalog(catalog, embedder)
        yield catalog
        catalog.close()


def test_meaning_mode_ranks_by_vectors_once_they_exist(embedded):
    with TestClient(single_user_app(embedded)) as c:
        data = c.get("/api/search", params={"q": "why does SGD with momentum generalise better", "mode": "meaning"}).json()
        assert data["mode_used"] == "semantic" and data["mode"] == "semantic", data["message"]
        assert data["hits"][0]["title"].startswith("Towards understanding how momentum")
        hybrid = c.get("/api/search", params={"q": "momentum generalization", "mode": "hybrid", "venue": "ICML"}).json()
        assert hybrid["mode_used"] == "hybrid" and hybrid["filters"] == {"venue": "ICML"}
        assert hybrid["hits"][0]["title"].startswith("Towards understanding how momentum")
        assert all(any(a["venue"] == "ICML" for a in h["appearances"]) for h in hybrid["hits"])
        html = c.get("/search", params={"q": "momentum", "mode": "semantic"}).text
    assert "meaning" in visible_text(html)


def test_similar_papers_with_facet_tabs(embedded):
    import paperscope.search

    if not hasattr(paperscope.search, "more_like_this"):
        pytest.skip("similar.py needs search.more_like_this, which search.py does not have yet")
    pid = paper_id(embedded, "Towards understanding how momentum")
    with TestClient(single_user_app(embedded)) as c:
        data = c.get(f"/api/paper/{pid}").json()
        assert data["similar_available"] and data["similar"], data["similar_message"]
        assert pid not in [s["id"] for s in data["similar"]]
        assert all(isinstance(s["score"], float) for s in data["similar"])
        method = c.get(f"/api/paper/{pid}", params={"similar": "method"}).json()
        assert method["similar_facet"] == "method" and method["similar"]
        html = c.get(f"/paper/{pid}", params={"similar": "result"}).text
    assert 'aria-current="page" class="active">Results</a>' in html
    assert f'href="/paper/{pid}?similar=method#similar"' in html


# ---------------------------------------------------------------------------------------------- pages
def test_paper_page_shows_abstract_appearances_in_the_viewers_zone_and_bibtex(client, catalogue):
    pid = paper_id(catalogue, "Towards understanding how momentum")
    r = client.get(f"/paper/{pid}", params={"tz": "America/Los_Angeles"})
    assert r.status_code == 200
    text = visible_text(r.text)
    assert "Stochastic gradient descent (SGD) with momentum" in text
    assert "Wed 20 Jul 2022, 07:30–07:35 PDT" in text      # 14:30 UTC in Los Angeles
    assert "Ballroom 1 &amp; 2" in r.text and "Hugging Face Papers" in text
    assert "@inproceedings{jelassi2022towards," in r.text
    data = client.get(f"/paper/{pid}", params={"tz": "Asia/Tokyo", "format": "json"}).json()
    assert data["tz"] == "Asia/Tokyo"
    icml = next(a for a in data["paper"]["appearances"] if a["venue"] == "ICML")
    assert icml["slot_local"] == "Wed 20 Jul 2022, 23:30–23:35 JST"
    assert icml["starts_at"].startswith("2022-07-20T14:30")
    assert data == client.get(f"/api/paper/{pid}", params={"tz": "Asia/Tokyo"}).json()


def test_the_zone_comes_from_the_cookie_when_the_url_has_none(catalogue):
    app = single_user_app(catalogue)
    with TestClient(app, cookies={"tz": "Europe/Paris"}) as c:
        pid = paper_id(catalogue, "Towards understanding how momentum")
        data = c.get(f"/api/paper/{pid}").json()
    icml = next(a for a in data["paper"]["appearances"] if a["venue"] == "ICML")
    assert data["tz"] == "Europe/Paris" and icml["slot_local"].endswith("16:35 CEST")


def test_paper_links_out_and_abstract_is_clean_text(client, catalogue):
    pid = paper_id(catalogue, "Graph Neural Networks for L")
    data = client.get(f"/api/paper/{pid}").json()
    assert {"label": "arXiv", "url": "https://arxiv.org/abs/2301.01234"} in data["paper"]["links"]
    assert data["bibtex"].startswith("@inproceedings{bottou2023graph,")
    assert "L{\\'e}on Bottou and J{\\\"u}rgen Schmidhuber" in data["bibtex"]
    deq = client.get(f"/api/paper/{paper_id(catalogue, 'Deep equilibrium')}").json()["paper"]
    assert "\\citep" not in deq["abstract"] and "initialization." in deq["abstract"]
    r = client.get(f"/paper/{pid}/bibtex")
    assert r.status_code == 200 and r.text.startswith("@inproceedings{bottou2023graph,")


def test_author_page_lists_papers_and_coauthors_with_counts(client):
    r = client.get("/author/Samy Jelassi")
    assert r.status_code == 200
    assert "<h1>Samy Jelassi</h1>" in r.text
    data = client.get("/api/author/samy%20jelassi").json()  # case does not matter
    assert data["name"] == "Samy Jelassi" and len(data["papers"]) == 2
    assert data["coauthors"][0] == {"name": "Yuanzhi Li", "count": 2, "url": "/author/Yuanzhi%20Li"}
    assert client.get("/author/samy jelassi", params={"format": "json"}).json() == data


def test_venue_and_session_pages_list_papers_in_slot_order(client):
    r = client.get("/venue/ICML/2022", params={"tz": "UTC"})
    assert r.status_code == 200
    data = client.get("/api/venue/icml", params={"year": 2022, "tz": "UTC"}).json()
    assert data["venue"] == "ICML" and data["year"] == 2022 and data["total"] == 3
    starts = [i["starts_at"] for i in data["items"]]
    assert starts == sorted(starts)
    assert data["sessions"][0]["name"] == "Deep Learning" and data["sessions"][0]["papers"] == 3
    session = client.get(data["sessions"][0]["url"] + "&tz=UTC&format=json").json()
    assert session["room"] == "Ballroom 1 & 2" and len(session["items"]) == 3
    assert session["moderator"] == "Grigorios Chrysos"
    assert session["slot_local"] == "Wed 20 Jul 2022, 14:30–15:30 UTC"
    assert session == client.get("/api/session", params={"venue": "ICML", "year": 2022, "name": "Deep Learning", "tz": "UTC"}).json()
    assert client.get("/venue/ICML").status_code == 200  # one year: shown directly


def test_unknown_things_get_a_404_page_with_a_search_box(client):
    for url in ("/paper/nope", "/author/Nobody Atall", "/venue/NoConf", "/venue/ICML/1999", "/venue/ICML/abcd",
                "/session?name=Nothing", "/no/such/page"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert 'action="/search"' in r.text and "Not found" in r.text
    assert client.get("/api/paper/nope").json() == {"error": "No paper with id “nope” in this catalogue.", "status": 404}
    assert client.get("/api/paper/nope").status_code == 404


def test_unreadable_parameters_are_explained(client):
    r = client.get("/api/venue/ICML", params={"year": "soon"})
    assert r.status_code == 400 and "year" in r.json()["error"]
    assert client.get("/venue/ICML", params={"page": "many"}).status_code == 200


def test_an_internal_failure_is_a_friendly_page(catalogue):
    app = single_user_app(catalogue)

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500 and "Something went wrong" in r.text and "kaboom" not in r.text
    assert "Traceback" not in r.text


# ---------------------------------------------------------------------------------------------- safety
def test_hostile_titles_and_names_are_text_never_html(client, catalogue):
    pid = paper_id(catalogue, "<script>")
    pages = [client.get(f"/paper/{pid}"), client.get("/search", params={"q": "tricks robust momentum"}),
             client.get("/author/Samy Jelassi"), client.get("/venue/ICLR/2023"),
             client.get("/session", params={"venue": "ICLR", "year": 2023, "name": "Poster Session 3"}),
             client.get("/search", params={"q": "<script>alert(3)</script>"}),
             client.get("/author/<script>alert(4)</script>")]
    for r in pages:
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, r.url
        scripts = re.findall(r"<script[^>]*>", r.text)
        assert scripts == ['<script src="/static/app.js" defer>'], (r.url, scripts)
    paper_html = pages[0].text
    assert "Eve &lt;img src=x onerror=alert(2)&gt;" in paper_html
    assert "<b>markup</b>" not in paper_html
    title = client.get(f"/api/paper/{pid}").json()["paper"]["title"]
    assert "<script>" not in title and "& x Tricks for Robust Momentum" in title


def test_security_headers_are_set(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/search?q=x").headers["x-content-type-options"] == "nosniff"


def test_static_assets_are_served(client):
    assert client.get("/static/style.css").status_code == 200
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]


# ---------------------------------------------------------------------------------------------- API
def test_openapi_documents_the_api_routes_with_schemas(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for route in ("/api/search", "/api/paper/{paper_id}", "/api/author/{name}", "/api/venue/{venue}", "/api/session", "/api/venues"):
        assert route in paths, route
        ok = paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok
    schemas = spec["components"]["schemas"]
    assert {"SearchPage", "SearchHit", "PaperPage", "AuthorPage", "VenuePage", "SessionPage", "Facet"} <= set(schemas)
    assert not any(p.startswith(("/search", "/paper", "/author")) for p in paths)  # HTML pages are not the API


def test_healthz(client):
    assert client.get("/healthz").text == "ok"


# ---------------------------------------------------------------------------------------------- bench
def test_web_bench_serves_real_requests_next_to_a_baseline(catalogue):
    from paperscope.cli.bench_web_cmd import run_web_bench

    result = run_web_bench(catalogue.location, requests=12, warmup=2)
    for part in ("search_page", "search_api_json", "paper_page", "baseline_healthz"):
        assert result[part]["errors"] == 0 and result[part]["requests"] >= 10, part
        assert result[part]["p50_ms"] > 0 and result[part]["server_p50_ms"] is not None
    assert result["papers"] == 7 and result["ratio_p50_search_page_to_baseline"] > 0
    password = catalogue.engine.url.password
    assert not password or password not in repr(result), "the bench printed the database password"


# ---------------------------------------------------------------------------------------------- BibTeX
def test_bibtex_escapes_latex_specials_and_accents_and_keys_like_scholar():
    paper = {"id": "p1", "title": "GANs & {Braces}: 100% of $x_1$ #1 for Ångström", "authors": ["Paweł Łukasz", "Søren Ørsted"],
             "year": 2021, "ids": {"doi": "10.1/abc_def"}, "appearances": [{"venue": "NeurIPS", "year": 2021}]}
    entry = to_bibtex(paper)
    assert entry.startswith("@inproceedings{lukasz2021gans,\n")
    assert "title = {{GANs} \\& Braces: 100\\% of x\\_1 \\#1 for {\\r{A}}ngstr{\\\"o}m}" in entry
    assert "author = {Pawe{\\l} {\\L}ukasz and S{\\o}ren {\\O}rsted}" in entry
    assert "booktitle = {NeurIPS 2021}" in entry and "doi = {10.1/abc\\_def}" in entry
    assert entry.count("{") == entry.count("}")
    assert bibtex_key({"title": "The Attention", "authors": ["Ashish Vaswani"], "year": 2017}) == "vaswani2017attention"
    feed_only = to_bibtex({"id": "p2", "title": "A Feed Paper", "authors": [], "ids": {"arxiv": "2101.00001"},
                           "appearances": [{"venue": "Hugging Face Papers"}]})
    assert feed_only.startswith("@misc{") and "eprint = {2101.00001}" in feed_only


def test_pages_answer_head_requests(client):
    for url in ("/", "/search?q=momentum", "/healthz"):
        r = client.head(url)
        assert r.status_code == 200 and r.content == b"", url
