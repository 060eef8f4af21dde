"""Search by meaning and similar papers, on real papers embedded with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from cached_model import cached_embedder

from paperscope.catalog.store import Catalog
from paperscope.index.embedder import default_embedder
from paperscope.index.vectors import embed_catalog, load_vector_index
from paperscope.ingest.pipeline import ingest_targets
from paperscope.model import ImportOptions
from paperscope.search import SearchService
from paperscope.similar import similar_papers, similar_to_text

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAGES = SHARED / "samples" / "pages"
pytestmark = pytest.mark.skipif(not PAGES.is_dir(), reason="needs the sample pages in ../shared/samples/pages")

FEED = PAGES / "hf-papers-listing.txt"
HALL_F = PAGES / "icml2022-session-deep-learning-hall-f.txt"
BATCH_PAPER = "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"


@pytest.fixture(scope="module")
def catalog(catalogues):
    with catalogues.new() as url:
        cat = Catalog.open(url)
        ingest_targets(cat, [str(FEED), str(HALL_F)], ImportOptions())
        yield cat
        cat.close()


@pytest.fixture(scope="module")
def embedded(catalog):
    """The catalogue after a resumable embed: first 40 papers, then the rest."""
    embedder = cached_embedder()
    first = embed_catalog(catalog, embedder, with_sentences=False, limit=40)
    rest = embed_catalog(catalog, embedder, with_sentences=False)
    again = embed_catalog(catalog, embedder, with_sentences=False)
    return {"first": first, "rest": rest, "again": again, "papers": catalog.paper_count()}


def paper_id(catalog: Catalog, title: str) -> str:
    hits = SearchService(catalog).search(f'title:"{title}"', mode="keyword").hits
    assert hits, title
    return hits[0].paper_id


def test_before_vectors_exist_search_falls_back_to_keywords_and_says_so(catalog_url):
    cat = Catalog.open(catalog_url)
    ingest_targets(cat, [str(HALL_F)], ImportOptions())
    result = SearchService(cat).search("graph networks convergence", mode="hybrid")
    assert result.mode == "keyword"
    assert "embed" in result.message
    assert result.hits and "Graph" in result.hits[0].paper["title"]
    similar = similar_papers(cat, result.hits[0].paper_id, limit=3)
    assert similar.mode == "keyword" and "paperscope embed" in similar.message
    cat.close()


def test_embedding_resumes_and_never_embeds_the_same_text_twice(catalog, embedded):
    assert embedded["first"]["embedded_papers"] == 40
    assert embedded["rest"]["embedded_papers"] == embedded["papers"] - 40
    assert embedded["again"]["embedded_papers"] == 0
    # re-ingesting the same sources leaves every vector valid
    ingest_targets(catalog, [str(FEED)], ImportOptions())
    assert embed_catalog(catalog, cached_embedder(), with_sentences=False)["embedded_papers"] == 0
    index = load_vector_index(catalog, default_embedder().name)
    assert len(index) == embedded["papers"]


def test_search_by_meaning_finds_contrastive_learning_without_the_words(catalog, embedded):
    result = SearchService(catalog).search("why do more negative pairs help self-supervised representation learning",
                                           mode="semantic", limit=5)
    assert result.mode == "semantic"
    texts = [(h.paper["title"] + " " + h.paper["abstract"]).lower() for h in result.hits]
    on_topic = [t for t in texts if "contrastive" in t or "self-supervised" in t]
    assert len(on_topic) >= 4, [h.paper["title"] for h in result.hits]


def test_hybrid_is_the_default_and_keeps_filters(catalog, embedded):
    result = SearchService(catalog).search('graph networks venue:"Hugging Face Papers"', mode="hybrid", limit=10)
    assert result.mode == "hybrid"
    assert all(any(a["venue"] == "Hugging Face Papers" for a in h.paper["appearances"]) for h in result.hits)


def test_contrastive_papers_find_each_other(catalog, embedded):
    result = similar_papers(catalog, paper_id(catalog, BATCH_PAPER), limit=5)
    assert result.mode == "semantic"
    titles = [p["title"].lower() for p in result.papers]
    assert BATCH_PAPER.lower() not in titles
    assert sum("contrastive" in t for t in titles) >= 3, titles


def test_similar_in_method_returns_ranked_papers_for_a_draft(catalog, embedded):
    draft = ("Contrastive learning for sentence embeddings. We train a text encoder with in-batch negatives "
             "and gradient caching so that very large batches fit in memory. Results improve retrieval.")
    result = similar_to_text(catalog, draft, facet="method", limit=5)
    assert result.facet == "method" and len(result.papers) == 5
    assert [p["score"] for p in result.papers] == sorted((p["score"] for p in result.papers), reverse=True)
    assert any("contrastive" in p["title"].lower() for p in result.papers)


def test_unknown_facet_is_a_clear_error(catalog, embedded):
    with pytest.raises(ValueError, match="unknown facet"):
        similar_papers(catalog, paper_id(catalog, BATCH_PAPER), facet="vibes")


def test_a_catalogue_embedded_with_the_int8_tier_is_searched_in_its_space(catalog_url):
    """``paperscope embed --model minilm-int8`` stores vectors of their own: search by meaning and
    similar papers must embed in that space, not the default model's."""
    from typer.testing import CliRunner

    from paperscope.cli import app
    from paperscope.index.embedder import search_embedder

    cat = Catalog.open(catalog_url)
    ingest_targets(cat, [str(HALL_F)], ImportOptions())
    res = CliRunner().invoke(app, ["embed", "--model", "minilm-int8", "--no-sentences", "--json", "--db", cat.location])
    assert res.exit_code == 0, res.output
    assert search_embedder(cat).name.endswith("/onnx-int8-dynamic-v2")
    assert load_vector_index(cat, default_embedder().name) is None  # no float32 vectors in it
    result = SearchService(cat).search("larger batches of negatives for contrastive learning", mode="semantic", limit=3)
    assert result.mode == "semantic" and "contrastive" in result.hits[0].paper["title"].lower()
    similar = similar_papers(cat, result.hits[0].paper_id, limit=3)
    assert similar.mode == "semantic"
    cat.close()
