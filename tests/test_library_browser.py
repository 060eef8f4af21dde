"""The library in a real browser (Debian's Chromium driven by Playwright) against a real uvicorn server
over the 687 ICLR 2020 papers bundled with the demo (with their cached MiniLM vectors).

A reader saves papers from a paper page and from search results, finds them in the library and writes a
note, opens "For you" and sees why each paper is there, marks one "not relevant" and it goes, follows
one and it counts as seen. Without JavaScript, saving asks once to confirm and then works.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json

import pytest
from browser_fixture import Watched, require_browser, served, shot

require_browser()

from backends import single_user_app  # noqa: E402
from iclr_catalogue import has_vectors, ingest_iclr_with_vectors  # noqa: E402
from test_recommend import GAN_PAPERS, GRAPH_PAPERS  # noqa: E402

from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def server(catalogues):
    """A real uvicorn server on 127.0.0.1, on a free port, over the ICLR 2020 catalogue with vectors."""
    with catalogues.copy("iclr2020-vectors", ingest_iclr_with_vectors) as url:
        catalog = Catalog.open(url)
        if has_vectors(catalog) is None:
            pytest.skip("the embedding model is not installed")
        ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
        with served(single_user_app(catalog)) as base_url:
            yield {"url": base_url, "catalog": catalog, "ids": ids}
        catalog.close()


def api(page, path: str):
    return json.loads(page.evaluate("(p) => fetch(p, {credentials: 'same-origin'}).then(r => r.text())", path))


def test_save_library_foryou_not_relevant(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    w = Watched(context, timeout_ms=60_000)
    page = w.page
    first_id = server["ids"][GRAPH_PAPERS[0]]

    # Save from a paper page (a fresh browser: no security cookie yet); it comes back to the same page
    page.goto(f"{server['url']}/paper/{first_id}")
    save = page.locator('form[data-library-action="save"] button').first
    assert save.inner_text() == "Save"
    save.click()
    page.wait_for_url(f"**/paper/{first_id}")
    page.wait_for_load_state()
    assert api(page, f"/api/library/status?ids={first_id}")["saved"] == [first_id]
    if page.evaluate("!!window.__paperscopeLibrary"):     # where the page loads /library.js, the button says so
        page.wait_for_function("document.querySelector('form[data-library-action=\"save\"] button').textContent.startsWith('Saved')")
    shot(page, "library-paper-saved")

    # Save from search results: back to the same results
    page.goto(server["url"] + "/search?q=generative+adversarial+networks+optimization+landscapes")
    search_url = page.url
    hit = page.locator("article.item", has_text=GAN_PAPERS[0]).first
    hit.locator('form[data-library-action="save"] button').click()
    page.wait_for_url(search_url)
    page.wait_for_load_state()
    gan_id = server["ids"][GAN_PAPERS[0]]
    assert api(page, f"/api/library/status?ids={gan_id}")["saved"] == [gan_id]

    # The library lists both (reached from the site navigation); a note is kept
    page.locator('header nav[aria-label="Sections"] a', has_text="Library").click()
    page.wait_for_url("**/library")
    titles = page.locator(".lib-entry h3").all_inner_texts()
    assert set(titles) == {GRAPH_PAPERS[0], GAN_PAPERS[0]}
    entry = page.locator(".lib-entry", has_text=GRAPH_PAPERS[0])
    entry.locator("summary").click()
    entry.locator("textarea[name=note]").fill("Pre-training recipes for GNNs; compare with GraphCL.")
    entry.locator("input[name=tags]").fill("graphs, to read")
    entry.locator("button", has_text="Save changes").click()
    page.wait_for_url("**/library**")
    entry = page.locator(".lib-entry", has_text=GRAPH_PAPERS[0])
    assert "Pre-training recipes for GNNs" in entry.inner_text()
    assert set(entry.locator(".lib-tag").all_inner_texts()) == {"graphs", "to read"}
    shot(page, "library")

    # For you (from the navigation too): papers with their reasons
    page.locator('header nav[aria-label="Sections"] a', has_text="For you").click()
    page.wait_for_url("**/foryou")
    items = page.locator(".foryou-item")
    assert items.count() >= 10
    reasons = page.locator(".foryou-reason").all_inner_texts()
    assert all(r.startswith("Close to ") for r in reasons)
    assert any(GRAPH_PAPERS[0] in r for r in reasons) and any(GAN_PAPERS[0] in r for r in reasons)
    assert page.locator(".foryou-reason .term").count() >= 10
    shown = [items.nth(i).get_attribute("data-paper") for i in range(items.count())]
    assert first_id not in shown and server["ids"][GAN_PAPERS[0]] not in shown          # saved papers are not offered
    shot(page, "foryou")

    # "Not relevant" on the first: it goes, and the server remembers why
    rejected = shown[0]
    items.first.locator('form[data-library-action="not-relevant"] button').click()
    page.wait_for_url("**/foryou")
    page.wait_for_selector(".foryou-item")
    after = [page.locator(".foryou-item").nth(i).get_attribute("data-paper") for i in range(page.locator(".foryou-item").count())]
    assert rejected not in after
    assert api(page, f"/api/library/status?ids={rejected}")["not_relevant"] == [rejected]
    shot(page, "foryou-after-not-relevant")

    # Following a recommendation opens the paper and counts it as seen
    followed = after[0]
    page.locator(".foryou-item h3 a").first.click()
    page.wait_for_url(f"**/paper/{followed}")
    page.goto(server["url"] + "/foryou")
    page.wait_for_selector(".foryou-item")
    assert followed not in [page.locator(".foryou-item").nth(i).get_attribute("data-paper")
                            for i in range(page.locator(".foryou-item").count())]

    # Saving from For you: the paper joins the library and leaves the list
    kept = after[1] if after[1] != followed else after[2]
    page.locator(f'.foryou-item[data-paper="{kept}"] form[data-library-action="save"] button').click()
    page.wait_for_url("**/foryou")
    page.wait_for_selector(".foryou-item")
    assert page.locator(f'.foryou-item[data-paper="{kept}"]').count() == 0
    assert kept in api(page, f"/api/library/status?ids={kept}")["saved"]

    # the private feed link is on the page
    assert "/feed/" in page.locator(".feed-link a").get_attribute("href")
    assert w.errors == [] and w.failed == [], (w.errors, w.failed)
    context.close()


def test_saving_without_javascript(server, browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(60_000)
    target = server["ids"][GAN_PAPERS[1]]
    page.goto(f"{server['url']}/paper/{target}")
    page.locator('form[data-library-action="save"] button').first.click()
    page.wait_for_url(f"**/paper/{target}")         # one click, back where it was
    page.goto(server["url"] + "/library")
    assert GAN_PAPERS[1] in page.locator(".lib-entry h3").all_inner_texts()
    context.close()


def test_a_write_without_token_or_origin_asks_to_confirm_and_a_foreign_one_is_refused(server):
    """Browsers that send neither Origin nor Sec-Fetch-Site get a confirmation page that writes nothing;
    a form posted from another site is refused."""
    from fastapi.testclient import TestClient

    catalog = server["catalog"]
    client = TestClient(single_user_app(catalog))
    target = server["ids"]["Hypermodels for Exploration"]
    r = client.post("/library/save", data={"paper_id": target, "csrf": "", "next": f"/paper/{target}"}, follow_redirects=False)
    assert r.status_code == 200 and "Save to your library?" in r.text
    assert target not in client.get(f"/api/library/status?ids={target}").json()["saved"]
    token = client.cookies.get("csrf")
    r = client.post("/library/save", data={"paper_id": target, "csrf": token, "next": f"/paper/{target}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{target}"
    assert client.get(f"/api/library/status?ids={target}").json()["saved"] == [target]
    other = server["ids"]["Influence-Based Multi-Agent Exploration"]
    r = client.post("/foryou/not-relevant", data={"paper_id": other, "csrf": token}, headers={"origin": "https://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/library/save", data={"paper_id": other}, headers={"sec-fetch-site": "cross-site"}, follow_redirects=False)
    assert r.status_code == 200 and "Save to your library?" in r.text      # asks; never writes
    assert client.get(f"/api/library/status?ids={other}").json() == {"saved": [], "not_relevant": []}


def section_links(page) -> list[str]:
    return page.locator('header nav[aria-label="Sections"] a').all_inner_texts()


def test_library_and_foryou_are_in_the_navigation_only_for_a_signed_in_reader(server, browser):
    """Server mode (accounts, catalogue public): a visitor has no library, so the navigation offers none;
    once signed in, Library and For you are there and lead to the reader's own pages."""
    app = create_app(server["catalog"].location, catalog=server["catalog"], accounts=True, public=True)
    app.state.accounts.create_user("reader", "correct horse battery", "reader@example.org")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    with served(app) as base_url:
        page.goto(base_url + "/schedule")
        assert section_links(page) == ["Schedule", "Agenda", "Map"]
        page.locator('header nav[aria-label="Account"] a', has_text="Sign in").click()
        page.wait_for_url("**/login**")
        page.fill("input[name=username]", "reader")
        page.fill("input[name=password]", "correct horse battery")
        page.locator("main form[action='/login'] button[type=submit]").click()
        page.wait_for_load_state()
        assert section_links(page) == ["Schedule", "Agenda", "Map", "Library", "For you"]
        page.locator('header nav[aria-label="Sections"] a', has_text="Library").click()
        page.wait_for_url("**/library")
        assert page.locator(".lib-entry").count() == 0          # the reader's own library: empty, not the laptop's
        page.locator('header nav[aria-label="Sections"] a', has_text="For you").click()
        page.wait_for_url("**/foryou")
        assert page.locator(".foryou-item").count() == 0
        shot(page, "foryou-server-mode-empty-library")
    context.close()
