"""Topics in search: the ``topic:`` filter and the topic facet, on the 687 ICLR 2020 papers.

A reader searching "policy" sees which topics the matches fall in, clicks the reinforcement
learning one, and gets only that topic's papers; the CLI does the same with ``topic:reinforcement``.
The map is computed with the words (TF-IDF) representation, which needs no model.
"""

from __future__ import annotations

import re
from html import escape

import pytest

pytest.importorskip("sklearn", reason="topics need scikit-learn")
pytest.importorskip("openTSNE", reason="the topic map's layout needs openTSNE")

from iclr_catalogue import ingest_iclr  # noqa: E402

from paperscope import topics as T  # noqa: E402
from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.search import SearchService  # noqa: E402


@pytest.fixture(scope="module")
def mapped(catalogues):
    with catalogues.copy("iclr2020", ingest_iclr) as url:
        catalog = Catalog.open(url)
        tmap = T.topic_map(catalog, T.Scope(), vectors="tfidf")
        yield catalog, tmap, SearchService(catalog, semantic=None)
        catalog.close()


def rl_topic(tmap: T.TopicMap) -> T.Topic:
    found = [t for t in tmap.broad if "reinforcement" in t.label.lower()]
    assert found, [t.label for t in tmap.broad]
    return found[0]


def test_facet_counts_every_match_by_broad_topic(mapped):
    catalog, tmap, service = mapped
    result = service.search("policy", limit=5)
    buckets = result.facets["topic"]
    assert buckets and all(b["label"] and b["count"] > 0 for b in buckets)
    assert sum(b["count"] for b in buckets) == result.total   # every paper of the map is in one broad topic
    assert buckets[0]["value"] == rl_topic(tmap).id               # "policy" is mostly reinforcement learning
    counts = [b["count"] for b in buckets]
    assert counts == sorted(counts, reverse=True)


def test_topic_filter_by_id_keeps_only_its_papers(mapped):
    catalog, tmap, service = mapped
    topic = rl_topic(tmap)
    members = {tmap.ids[i] for i in tmap.members(topic)}
    result = service.search(f'policy topic:"{topic.id}"', limit=500)
    everything = service.search("policy", limit=500)
    assert 0 < result.total < everything.total
    assert {h.paper_id for h in result.hits} <= members
    assert result.total == next(b["count"] for b in everything.facets["topic"] if b["value"] == topic.id)


def test_topic_filter_by_label_words(mapped):
    catalog, tmap, service = mapped
    by_words = service.search("topic:reinforcement", limit=1000)
    assert by_words.total >= len(tmap.members(rl_topic(tmap)))
    excluded = service.search("policy -topic:reinforcement", limit=1000)
    assert rl_topic(tmap).id not in {b["value"] for b in excluded.facets.get("topic", [])}


def test_unknown_topic_says_so(mapped):
    catalog, tmap, service = mapped
    result = service.search("topic:zzqx", limit=5)
    assert result.total == 0 and "No topic matches 'zzqx'" in result.message


def test_without_a_map_the_filter_is_ignored_with_a_note(catalogues):
    with catalogues.copy("iclr2020", ingest_iclr) as url:
        catalog = Catalog.open(url)
        result = SearchService(catalog, semantic=None).search("policy topic:reinforcement", limit=5)
        catalog.close()
    assert result.total > 0 and "no topic map" in result.message and "topic" not in result.facets


def test_web_page_facet_links_narrow_to_the_topic(mapped):
    from backends import single_user_app
    from fastapi.testclient import TestClient

    catalog, tmap, _ = mapped
    client = TestClient(single_user_app(catalog))
    page = client.get("/api/search", params={"q": "policy"}).json()
    facet = next(f for f in page["facets"] if f["name"] == "topic")
    first = facet["values"][0]
    assert first["label"] and "topic=" in first["url"]
    assert facet["note"] is None   # fewer matches than the facet depth: every match counted
    narrowed = client.get("/api/search", params={"q": "policy", "topic": first["value"]}).json()
    assert narrowed["total"] == first["count"]
    assert narrowed["filter_labels"] == {"topic": first["label"]}
    html = client.get(first["url"]).text
    assert "Topic" in html and first["label"].split(" · ")[0] in html
    chip = re.search(r'<a class="chip"[^>]*>(.*?) <span', html).group(1)
    assert chip == f"topic: {escape(first['label'])}"   # the label, not the id {first['value']}
