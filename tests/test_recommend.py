"""Recommendations from a library over a real venue: the 687 ICLR 2020 papers bundled with the demo,
with their MiniLM vectors (cached on disk by text, so only the first run pays for them), in a real
catalogue on each backend (a SQLite file, a PostgreSQL database).

A reader with a few papers on graph neural networks and GANs gets papers on those topics, each with
the library papers it is closest to and the terms they share; never a paper they saved, saw or
rejected; "not relevant" on a GAN paper demotes the other GAN papers; the list is not ten
near-duplicates in a row; a tag's recommendations follow that tag.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from cached_model import add_cached_vectors
from paperscope import library as lib
from paperscope import recommend as rec
from paperscope.catalog import library as store
from paperscope.catalog.store import Catalog

DEMO_SITE = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
GAN = re.compile(r"\bGANs?\b|generative adversarial", re.I)
GRAPH = re.compile(r"\bgraphs?\b|\bGNNs?\b|\bnodes?\b", re.I)

GRAPH_PAPERS = ["Strategies for Pre-training Graph Neural Networks",
                "A Fair Comparison of Graph Neural Networks for Graph Classification"]
GAN_PAPERS = ["A Closer Look at the Optimization Landscapes of Generative Adversarial Networks",
              "Smoothness and Stability in GANs"]


def ingest_iclr(location: Path | str) -> Catalog:
    """The bundled ICLR 2020 papers in a new catalogue at ``location`` (a SQLite path or a database URL)."""
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    catalog = Catalog.open(str(location))
    run = ingest_targets(catalog, [str(DEMO_SITE)], ImportOptions(venue="ICLR", year=2020))
    assert run.anything_read
    return catalog


@pytest.fixture(scope="module")
def iclr(catalogues):
    """The ICLR 2020 catalogue with vectors, on the backend under test (a SQLite file, a PostgreSQL database)."""
    with catalogues.new("iclr2020") as url:
        catalog = ingest_iclr(url)
        if add_cached_vectors(catalog) is None:
            catalog.close()
            pytest.skip("the embedding model is not installed")
        titles = {p["title"]: p["id"] for p in catalog.iter_papers()}
        yield {"catalog": catalog, "ids": titles, "titles": {v: k for k, v in titles.items()}}
        catalog.close()


def save_all(iclr, user: str, titles: list[str], tag: str | None = None) -> list[str]:
    ids = [iclr["ids"][t] for t in titles]
    for pid in ids:
        lib.save(iclr["catalog"], user, pid, tags=[tag] if tag else [])
    return ids


def titles_of(result) -> list[str]:
    return [r.paper["title"] for r in result.items]


def test_recommendations_follow_the_library_and_say_why(iclr):
    catalog, user = iclr["catalog"], "reader"
    saved = save_all(iclr, user, GRAPH_PAPERS + GAN_PAPERS)
    result = rec.recommend(catalog, user, limit=10)
    assert result.mode == "semantic" and result.library_papers == 4 and len(result.items) == 10
    titles = titles_of(result)
    on_topic = [t for t in titles if GAN.search(t) or GRAPH.search(t)]
    assert len(on_topic) >= 7, titles
    assert any(GAN.search(t) for t in titles) and any(GRAPH.search(t) for t in titles)   # both interests served
    assert not set(saved) & {r.paper["id"] for r in result.items}
    for item in result.items:
        assert item.closest and {c["id"] for c in item.closest} <= set(saved)
        assert item.terms and item.reason.startswith("close to “")
    gan_item = next(r for r in result.items if GAN.search(r.paper["title"]))
    assert any(c["title"] in GAN_PAPERS for c in gan_item.closest)        # explained by the GAN papers
    data = result.as_dict()
    json.dumps(data)
    assert {"id", "title", "score", "reason", "closest", "terms"} <= set(data["items"][0])


def test_not_relevant_demotes_similar_real_papers(iclr):
    catalog, user = iclr["catalog"], "critic"
    save_all(iclr, user, GRAPH_PAPERS + GAN_PAPERS)
    plain = {"diversity": 0.0}
    before = rec.recommend(catalog, user, limit=60, params=plain)
    ranked = [r.paper["id"] for r in before.items]
    gans = [pid for pid in ranked if GAN.search(iclr["titles"][pid])]
    assert len(gans) >= 4, [iclr["titles"][p] for p in ranked]
    rejected = gans[0]
    assert rec.mark_not_relevant(catalog, user, rejected)
    after = rec.recommend(catalog, user, limit=60, params=plain)
    ranked_after = [r.paper["id"] for r in after.items]
    assert rejected not in ranked_after
    others = [p for p in gans[1:] if p in ranked_after]

    def rank(order, pid):
        return order.index(pid) if pid in order else len(order)

    # every other GAN paper moves down, on average by many places; graph papers move up
    moved = [rank(ranked_after, p) - rank(ranked, p) for p in gans[1:]]
    assert np.mean(moved) >= 5, moved
    top10_gans = lambda order: sum(1 for p in order[:10] if GAN.search(iclr["titles"][p]))  # noqa: E731
    assert top10_gans(ranked_after) < top10_gans(ranked)
    demoted = {r.paper["id"]: r.penalty for r in after.items}
    assert all(demoted[p] > 0 for p in others)
    # and taking the mark back restores the ranking
    assert rec.undo_not_relevant(catalog, user, rejected) == 1
    assert [r.paper["id"] for r in rec.recommend(catalog, user, limit=60, params=plain).items] == ranked


def test_saved_seen_and_new_only(iclr):
    catalog, user = iclr["catalog"], "visitor"
    save_all(iclr, user, GRAPH_PAPERS)
    first = rec.recommend(catalog, user, limit=5)
    top = first.items[0].paper["id"]
    store.mark_seen(catalog, user, [top], "opened")
    assert top not in [r.paper["id"] for r in rec.recommend(catalog, user, limit=5).items]
    assert top in [r.paper["id"] for r in rec.recommend(catalog, user, limit=5, hide_seen=False).items]
    lib.save(catalog, user, first.items[1].paper["id"])
    assert first.items[1].paper["id"] not in [r.paper["id"] for r in rec.recommend(catalog, user, limit=5).items]
    later = rec.recommend(catalog, user, since="2999-01-01")
    assert later.items == [] and later.message == "no new papers to recommend"
    assert rec.recommend(catalog, user, since="2000-01-01", limit=3).items
    with pytest.raises(rec.RecommendError, match="not a date"):
        rec.recommend(catalog, user, since="last tuesday")
    only = [iclr["ids"][GAN_PAPERS[0]], iclr["ids"]["Hypermodels for Exploration"]]
    assert {r.paper["id"] for r in rec.recommend(catalog, user, candidate_ids=only).items} == set(only)


def test_no_run_of_near_duplicates(iclr):
    catalog, user = iclr["catalog"], "explorer"
    save_all(iclr, user, ["Influence-Based Multi-Agent Exploration", "Exploration in Reinforcement Learning with Deep Covering Options"])
    from paperscope.index.vectors import load_vector_index

    index = rec._vector_index(catalog, load_vector_index)

    def vectors(result):
        return np.stack([index.vector(r.paper["id"]) for r in result.items])

    def mean_pairwise(result):
        v = vectors(result)
        return (v @ v.T)[np.triu_indices(len(v), 1)].mean()

    def mean_of_neighbours(result):
        """How alike consecutive items are: a run of near-duplicates makes it high."""
        v = vectors(result)
        return (v[:-1] * v[1:]).sum(axis=1).mean()

    greedy = rec.recommend(catalog, user, limit=10, params={"diversity": 0.0})
    diverse = rec.recommend(catalog, user, limit=10)
    assert diverse.items[0].paper["id"] == greedy.items[0].paper["id"]      # the best one still leads
    assert mean_of_neighbours(diverse) < mean_of_neighbours(greedy)
    assert mean_pairwise(diverse) <= mean_pairwise(greedy) + 1e-6
    more = rec.recommend(catalog, user, limit=10, params={"diversity": 0.5})
    assert mean_pairwise(more) < mean_pairwise(greedy)  # more diversity changes which papers make the list
    assert len({r.paper["id"] for r in diverse.items}) == 10


def test_a_tag_gets_its_own_recommendations(iclr):
    catalog, user = iclr["catalog"], "two-hats"
    graph_ids = save_all(iclr, user, GRAPH_PAPERS, tag="graphs")
    save_all(iclr, user, GAN_PAPERS, tag="gans")
    graphs = rec.recommend(catalog, user, tag="graphs", limit=8)
    assert graphs.library_papers == 2
    assert sum(1 for t in titles_of(graphs) if GRAPH.search(t)) >= 6, titles_of(graphs)
    assert all({c["id"] for c in r.closest} <= set(graph_ids) for r in graphs.items)
    gans = rec.recommend(catalog, user, tag="gans", limit=8)
    assert sum(1 for t in titles_of(gans) if GAN.search(t)) >= 4, titles_of(gans)
    empty = rec.recommend(catalog, user, tag="nothing")
    assert empty.mode == "empty" and "no papers tagged" in empty.message


def test_profile_only_papers_shape_recommendations(iclr):
    """A paper the catalogue does not have, imported from BibTeX, still says what the reader likes."""
    catalog, user = iclr["catalog"], "importer"
    bib = r"""@inproceedings{mnih2013playing,
  title = {Playing {Atari} with Deep Reinforcement Learning},
  author = {Mnih, Volodymyr and Kavukcuoglu, Koray and Silver, David and Graves, Alex and Antonoglou, Ioannis and Wierstra, Daan and Riedmiller, Martin},
  year = {2013},
  eprint = {1312.5602}, archivePrefix = {arXiv},
  abstract = {We present the first deep learning model to successfully learn control policies directly from high-dimensional sensory input using reinforcement learning. The model is a convolutional neural network, trained with a variant of Q-learning, whose input is raw pixels and whose output is a value function estimating future rewards.},
}"""
    report = lib.import_text(catalog, user, bib, "atari.bib")
    assert len(report.profile_only) == 1
    result = rec.recommend(catalog, user, limit=10)
    rl = [t for t in titles_of(result) if re.search(r"reinforcement|\bRL\b|agent|reward|polic|Q-learning|atari|exploration", t, re.I)]
    assert len(rl) >= 6, titles_of(result)
    assert result.items[0].closest[0]["id"].startswith("ext:")


def test_without_vectors_keyword_ranking_says_so(catalog_url):
    from paperscope.model import Appearance, PaperRecord

    catalog = Catalog.open(catalog_url)
    records = [PaperRecord(title=t, authors=["A. Author"], abstract=a, appearance=Appearance(venue="X", year=2024))
               for t, a in [("Graph neural networks for molecules", "Message passing graph neural networks predict molecule properties."),
                            ("Graph attention networks", "Attention over graph neighbourhoods for node classification."),
                            ("Diffusion models for images", "Denoising diffusion probabilistic models generate images."),
                            ("Contrastive learning of images", "Self-supervised contrastive learning of visual representations.")]]
    catalog.ingest("plain.csv", "tabular", "h", records)
    first = next(p for p in catalog.iter_papers() if p["title"].startswith("Graph neural"))
    lib.save(catalog, "u", first["id"])
    result = rec.recommend(catalog, "u", limit=3)
    assert result.mode == "keyword" and "paperscope embed" in result.message
    assert result.items and result.items[0].paper["title"] == "Graph attention networks"
    catalog.close()


def test_term_similarity_is_tfidf_cosine():
    stats = rec.TermStats.from_texts(["graph neural networks", "image diffusion models", "graph attention", "language models"])
    bags = [rec.bag_of_terms(t) for t in ("graph neural networks for molecules", "diffusion models for images", "graph attention networks")]
    sims = rec.term_similarities(bags, bags, stats)
    # dense reference
    vocab = sorted({t for b in bags for t in b})
    m = np.array([[(1 + np.log(b[t])) * stats.idf(t) if t in b else 0.0 for t in vocab] for b in bags])
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    assert np.allclose(sims, m @ m.T, atol=1e-5)
    assert stats.idf("never-seen-term") > stats.idf("graph")          # unseen terms count as rare
    assert Counter(rec.bag_of_terms("graph neural networks"))["graph_neural"] == 1


def test_cli_recommend_and_feedback(iclr):
    from typer.testing import CliRunner

    from paperscope.cli import app

    catalog = iclr["catalog"]
    save_all(iclr, "local", GAN_PAPERS)
    runner = CliRunner()
    db = ["--db", catalog.location]
    res = runner.invoke(app, ["recommend", "--json", "-n", "5", *db])
    assert res.exit_code == 0, res.output
    items = json.loads(res.stdout)["items"]
    assert len(items) == 5 and all(i["reason"] for i in items)
    res = runner.invoke(app, ["feedback", items[0]["id"], *db])
    assert res.exit_code == 0 and "not relevant" in res.stdout
    res = runner.invoke(app, ["recommend", "--json", "-n", "5", *db])
    assert items[0]["id"] not in [i["id"] for i in json.loads(res.stdout)["items"]]
    res = runner.invoke(app, ["feedback", "--list", "--json", *db])
    assert [m["paper_id"] for m in json.loads(res.stdout)] == [items[0]["id"]]


def test_bench_recommend_reports_cold_and_warm_against_a_baseline(iclr):
    from paperscope.bench.recommend_bench import run_recommend_bench

    out = run_recommend_bench(iclr["catalog"].location, library_size=20, libraries=3, requests=3, on_demand=1)
    assert out["features"]["papers"] == 687
    for kind in ("cold", "warm"):
        figures = out[kind]
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
        assert figures["p50_ratio_to_baseline"] > 0 and figures["p95_ratio_to_baseline"] > 0
    assert out["cold"]["n"] == 3 and out["warm"]["n"] == 3 and out["baseline_plain_cosine"]["n"] == 3
    assert {"stage1", "views", "score", "explain"} <= set(out["cold"]["stage_p50_ms"])
    assert out["cold_on_demand"]["n"] == 1 and out["cold_on_demand"]["p50_ratio_to_cold"] > 0
    assert 0.0 <= out["quality"]["exact_vector_top20_in_pool"] <= 1.0
    assert isinstance(out["met"], bool)
    for k in range(3):                                                       # the bench users are removed
        assert store.list_entries(iclr["catalog"], f"bench-recommend-{k}") == []


def ranked(result) -> list[tuple[str, float, list[str]]]:
    return [(r.paper["id"], round(r.score, 5), r.terms) for r in result.items]


def test_stored_features_rank_exactly_as_features_computed_on_demand(iclr):
    """`paperscope embed` keeps every paper's term row and sentence mean stored, `reindex` rebuilds
    them; a request reading them recommends the same papers, with the same scores and reasons, as one
    computing them."""
    from typer.testing import CliRunner

    from paperscope.cli import app
    from paperscope.index.embedder import default_embedder
    from paperscope.index.features import load_features
    from paperscope.index.vectors import load_vector_index

    catalog, user = iclr["catalog"], "two-stores"
    save_all(iclr, user, GRAPH_PAPERS + GAN_PAPERS[:1])
    rec.mark_not_relevant(catalog, user, iclr["ids"]["Smoothness and Stability in GANs"])
    res = CliRunner().invoke(app, ["embed", "--no-sentences", "--json", "--db", catalog.location])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["recommend_features"]["papers"] == 687
    model = load_vector_index(catalog, default_embedder().name).model
    assert load_features(catalog, model).generation == load_vector_index(catalog, model).generation
    res = CliRunner().invoke(app, ["reindex", "--json", "--db", catalog.location])
    assert res.exit_code == 0, res.output
    built = json.loads(res.stdout)["indexes"]["recommend_features"]
    assert [(b["papers"], b["computed"]) for b in built.values()] == [(687, 687)]
    store_ = load_features(catalog, next(iter(built)))
    assert len(store_) == 687 and store_.stats.n_docs == 687
    rec._CACHE.forget_papers()
    on_demand = rec.recommend(catalog, user, limit=30, params={"features": False})
    rec._CACHE.forget_papers()
    stored = rec.recommend(catalog, user, limit=30)
    assert ranked(stored) == ranked(on_demand)


def feed(abstract_of_last: str = "Spectral convolutions on triangle meshes for shape analysis."):
    """Five small papers as a feed gives them (the last one's abstract as given)."""
    from paperscope.model import Appearance, PaperRecord

    papers = [("Graph neural networks for molecules", "Message passing graph neural networks predict molecule properties."),
              ("Graph attention networks", "Attention over graph neighbourhoods for node classification."),
              ("Graph pooling with learned clusters", "Hierarchical pooling coarsens graphs for graph classification. "
                                                      "Pooled graphs keep their communities."),
              ("Diffusion models for images", "Denoising diffusion probabilistic models generate images."),
              ("Spectral methods on meshes", abstract_of_last)]
    return [PaperRecord(title=t, authors=["A. Author"], abstract=a, ids={"arxiv": f"2401.0000{n}"},
                        appearance=Appearance(venue="X", year=2024)) for n, (t, a) in enumerate(papers)]


@contextmanager
def feed_catalogue(catalogues, name: str):
    """A new catalogue holding ``feed()`` with MiniLM vectors: (catalogue, model name); skips without the model."""
    with catalogues.new(name) as url:
        catalog = Catalog.open(url)
        try:
            catalog.ingest("feed.jsonl", "tabular", "v1", feed())
            model = add_cached_vectors(catalog)
            if model is None:
                pytest.skip("the embedding model is not installed")
            yield catalog, model
        finally:
            catalog.close()


def test_sentence_vectors_embedded_after_the_store_was_built_are_taken_up(catalogues):
    """A store built before the abstracts' sentences had vectors stands in the paper vector for their
    mean; once their sentences are embedded, the next update takes their means (nothing else is redone)."""
    from paperscope.index.embedder import default_embedder, text_key
    from paperscope.index.features import load_features, update_features
    from paperscope.index.vectors import embed_sentences, load_vector_index, paper_doc

    with feed_catalogue(catalogues, "sentences") as (catalog, model):
        assert update_features(catalog, model)["computed"] == 5
        assert not load_features(catalog, model).has_sentences.any()
        assert update_features(catalog, model)["message"] == "up to date"
        pooling = next(p for p in catalog.iter_papers() if p["title"].startswith("Graph pooling"))
        embed_sentences(catalog, default_embedder(), [paper_doc(pooling)], text_key)
        assert update_features(catalog, model)["computed"] == 0          # term rows kept, means redone
        features = load_features(catalog, model)
        at = features.position[pooling["id"]]
        assert features.has_sentences.tolist().count(True) == 1 and features.has_sentences[at]
        rows = [store.paper_texts(catalog, [pooling["id"]])[pooling["id"]]]
        expected, _ = rec.stored_sentence_means(catalog, model, rows, np.zeros((1, 384), np.float32))
        assert np.allclose(features.sentences[at], expected[0])
        assert not np.allclose(features.sentences[at], load_vector_index(catalog, model).vector(pooling["id"]))


def test_a_paper_changed_since_the_store_was_built_is_computed_again(catalogues):
    """The store keeps each paper's features with the hash of the text they came from: a paper whose
    abstract changed since is computed from its new text, never served from the old one."""
    from paperscope.index.features import load_features, update_features

    with feed_catalogue(catalogues, "changed") as (catalog, model):
        ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
        lib.save(catalog, "u", ids["Graph neural networks for molecules"])
        assert update_features(catalog, model)["papers"] == 5
        changed = ids["Spectral methods on meshes"]
        before = load_features(catalog, model).hashes[load_features(catalog, model).position[changed]]
        # the same feed again, the last abstract rewritten: now it is about graph neural networks;
        # its new text gets its vector, and the store is not brought up to date
        catalog.ingest("feed.jsonl", "tabular", "v2", feed("Message passing graph neural networks on mesh graphs predict molecule properties."))
        assert store.content_hashes_of(catalog, [changed])[changed] != before
        add_cached_vectors(catalog)
        rec._CACHE.forget_papers()
        stored = rec.recommend(catalog, "u", limit=4, params={"diversity": 0.0})
        assert stored.items[0].paper["id"] == changed                 # now the closest to the library
        assert "message passing" in stored.items[0].terms             # shared through its new abstract
        # the row a request uses for it is the new text's, not the stored one
        from paperscope.index.vectors import load_vector_index

        index, features = load_vector_index(catalog, model), load_features(catalog, model)
        row = {"id": changed, "content_hash": store.content_hashes_of(catalog, [changed])[changed]}
        used = rec._paper_views(catalog, index, [row], index.matrix[[index.position[changed]]], features, features.stats).rows[0]
        fresh = features.stats.row(rec.bag_of_terms(rec._text(store.paper_texts(catalog, [changed])[changed])))
        old = features.term_rows([features.position[changed]])[0]
        assert np.array_equal(used[0], fresh[0]) and np.allclose(used[1], fresh[1])
        assert set(old[0].tolist()) != set(fresh[0].tolist())
