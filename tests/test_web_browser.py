"""The web app in a real browser (Debian's Chromium driven by Playwright) against a real uvicorn server.

A reader searches, narrows with a facet, opens a paper, follows a link to another page, and finds
every state in the URL (reload and back work); hostile titles stay text. Screenshots of the main
pages go to ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from browser_fixture import Watched, require_browser, served, shot

require_browser()

from backends import single_user_app  # noqa: E402
from test_web_api import build_catalogue  # noqa: E402  (same catalogue as the API tests)


@pytest.fixture(scope="module")
def server(catalogues):
    """A real uvicorn server on 127.0.0.1, on a free port, serving a small real catalogue."""
    with catalogues.new() as url:
        catalog = build_catalogue(url)
        try:  # with vectors, similar papers rank by meaning (without, by shared terms, which finds few here)
            from cached_model import cached_embedder

            from paperscope.index.vectors import embed_catalog

            embed_catalog(catalog, cached_embedder())
        except Exception as exc:  # no model: the pages still work, the similar-paper step is skipped
            print(f"no vectors for the browser catalogue: {exc}")
        app = single_user_app(catalog)
        app.state.searcher.warm_up()
        with served(app) as base_url:
            yield {"url": base_url, "catalog": catalog}
        catalog.close()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def test_search_facet_paper_author_with_urls_that_round_trip(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/Los_Angeles")
    w = Watched(context)
    page = w.page
    page.goto(server["url"] + "/")
    shot(page, "home")
    # "/" focuses the search box (the home page autofocuses it; leave it first); Enter searches
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.type("momentum")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?**")
    assert query_of(page.url)["q"] == ["momentum"]
    count_all = page.locator(".results-count").inner_text()
    assert page.locator("article.item").count() >= 3
    assert page.locator(".snippet mark").count() >= 1
    shot(page, "search")

    # a facet narrows, and the state is in the URL
    page.locator(".facet a", has_text="ICLR").first.click()
    page.wait_for_url("**venue=ICLR**")
    count_iclr = page.locator(".results-count").inner_text()
    assert count_iclr != count_all
    titles = page.locator("article.item h3").all_inner_texts()
    shot(page, "search-facet")
    page.reload()
    assert page.locator(".results-count").inner_text() == count_iclr
    assert page.locator("article.item h3").all_inner_texts() == titles
    assert page.locator(".chip").inner_text().startswith("venue: ICLR")
    page.go_back()
    page.wait_for_url(lambda url: "venue=" not in url)
    assert page.locator(".results-count").inner_text() == count_all
    page.go_forward()
    page.wait_for_url("**venue=ICLR**")

    # open a paper
    page.locator("article.item h3 a").first.click()
    page.wait_for_url("**/paper/**")
    assert page.locator("h1.paper-title").inner_text() == titles[0]
    assert page.title().startswith(titles[0][:20])
    assert page.locator("#bibtex").inner_text().startswith("@")
    shot(page, "paper")
    paper_url = page.url

    # follow a similar paper when this installation ranks them, else an author
    similar = page.locator("#similar article.item h3 a")
    if similar.count():
        target = similar.first.inner_text()
        similar.first.click()
        page.wait_for_url(lambda url: url != paper_url and "/paper/" in url)
        assert page.locator("h1.paper-title").inner_text() == target
        shot(page, "paper-similar")
        page.go_back()
        page.wait_for_url(paper_url)
    author = page.locator(".paper-authors a").first
    name = author.inner_text()
    author.click()
    page.wait_for_url("**/author/**")
    assert page.locator("h1").inner_text() == name
    assert page.locator(".facet a").count() >= 1  # co-authors
    shot(page, "author")
    page.go_back()
    page.wait_for_url(paper_url)
    assert w.dialogs == [] and w.errors == [] and w.failed == [], (w.dialogs, w.errors, w.failed)
    context.close()


def test_slots_are_shown_in_the_browsers_time_zone(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo")
    w = Watched(context)
    page = w.page
    page.goto(server["url"] + "/session?venue=ICML&year=2022&name=Deep+Learning")
    # app.js stores the browser's zone and reloads once; the server then shows Tokyo time
    page.wait_for_function("document.body.dataset.tz === 'Asia/Tokyo'")
    assert "23:30–23:35 JST" in page.locator(".program").inner_text()
    assert page.locator("#tz-select").input_value() == "Asia/Tokyo"
    shot(page, "session")
    # choosing a zone puts it in the URL
    page.select_option("#tz-select", "Europe/Paris")
    page.wait_for_url("**tz=Europe%2FParis**")
    assert "16:30–16:35 CEST" in page.locator(".program").inner_text()
    assert query_of(page.url)["name"] == ["Deep Learning"]
    page.goto(server["url"] + "/venue/ICML/2022")
    shot(page, "venue")
    assert w.dialogs == [] and w.errors == [] and w.failed == [], (w.dialogs, w.errors, w.failed)
    context.close()


def test_hostile_titles_are_shown_as_text_and_never_run(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    w = Watched(context)
    page = w.page
    page.goto(server["url"] + "/search?q=tricks+robust+momentum")
    assert page.locator("article.item").count() >= 1
    page.locator("article.item h3 a", has_text="Tricks for Robust Momentum").click()
    page.wait_for_url("**/paper/**")
    assert "Tricks for Robust Momentum" in page.locator("h1").inner_text()
    assert "Eve <img src=x onerror=alert(2)>" in page.locator(".paper-authors").inner_text()
    assert page.locator(".paper-authors img").count() == 0
    page.goto(server["url"] + "/search?q=%3Cscript%3Ealert(3)%3C%2Fscript%3E")
    assert page.locator("input[type=search][name=q]").input_value() == "<script>alert(3)</script>"
    page.goto(server["url"] + "/author/%3Cscript%3Ealert(4)%3C%2Fscript%3E")
    assert "alert(4)" in page.locator(".lede").inner_text()
    shot(page, "not-found")
    page.wait_for_timeout(200)
    assert w.dialogs == [], w.dialogs
    context.close()


def test_phone_width_is_readable(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    w = Watched(context)
    page = w.page
    page.goto(server["url"] + "/search?q=momentum")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    shot(page, "search-phone")
    page.locator("article.item h3 a").first.click()
    page.wait_for_url("**/paper/**")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "paper-phone")
    assert w.errors == [], w.errors
    context.close()
