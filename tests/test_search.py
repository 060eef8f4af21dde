"""Keyword search over a real catalogue and a real tantivy index: ranking, filters, facets, upkeep."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import platformdirs
import pytest

from paperscope.catalog.store import Catalog
from paperscope.index import lexical
from paperscope.index.lexical import LexicalIndex
from paperscope.index.maintain import ensure_indexes, index_root, update_indexes
from paperscope.model import Appearance, PaperRecord
from paperscope.search import SearchService, more_like_this, parse_query
from paperscope.text import content_hash

ATTENTION = PaperRecord(
    key="attention", title="Attention Is All You Need",
    authors=["Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit", "Llion Jones", "Aidan N. Gomez",
             "Lukasz Kaiser", "Illia Polosukhin"],
    abstract="The dominant sequence transduction models are based on complex recurrent or convolutional neural "
             "networks that include an encoder and a decoder. The best performing models also connect the encoder "
             "and decoder through an attention mechanism. We propose a new simple network architecture, the "
             "Transformer, based solely on attention mechanisms, dispensing with recurrence and convolutions entirely.",
    appearance=Appearance(venue="NeurIPS", year=2017, presentation="oral", session="Oral Session 1"))
DDPM = PaperRecord(
    key="ddpm", title="Denoising Diffusion Probabilistic Models", authors=["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"],
    abstract="We present high quality image synthesis results using diffusion probabilistic models, a class of latent "
             "variable models inspired by considerations from nonequilibrium thermodynamics.",
    appearance=Appearance(venue="NeurIPS", year=2020, presentation="poster", session="Poster Session 4"))
BRIDGE = PaperRecord(
    key="bridge", title="Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling",
    authors=["Valentin De Bortoli", "James Thornton", "Jeremy Heng", "Arnaud Doucet"],
    abstract="Progressively applying Gaussian noise transforms complex data distributions to approximately Gaussian. "
             "Reversing this dynamic defines a generative model. We present the Diffusion Schrödinger Bridge, an "
             "original approximation of the Iterative Proportional Fitting procedure to solve the Schrödinger Bridge "
             "problem (SB).",
    appearance=Appearance(venue="NeurIPS", year=2021, presentation="spotlight", award="Outstanding Paper",
                          session="Poster Session 2"))
VIT = PaperRecord(
    key="vit", title="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
    authors=["Alexey Dosovitskiy", "Lucas Beyer", "Alexander Kolesnikov", "Neil Houlsby"],
    abstract="While the Transformer architecture has become the de-facto standard for natural language processing "
             "tasks, its applications to computer vision remain limited. In vision, attention is either applied in "
             "conjunction with convolutional networks, or used to replace certain components of convolutional networks.",
    appearance=Appearance(venue="ICLR", year=2021, presentation="oral", session="Oral Session 2"))
GCN = PaperRecord(
    key="gcn", title="Semi-Supervised Classification with Graph Convolutional Networks",
    authors=["Thomas N. Kipf", "Max Welling"],
    abstract="We present a scalable approach for semi-supervised learning on graph-structured data that is based on "
             "an efficient variant of convolutional neural networks which operate directly on graphs.",
    appearance=Appearance(venue="ICLR", year=2017, presentation="poster", session="Poster Session 3"))
GIN = PaperRecord(
    key="gin", title="How Powerful are Graph Neural Networks?",
    authors=["Keyulu Xu", "Weihua Hu", "Jure Leskovec", "Stefanie Jegelka"],
    abstract="Graph Neural Networks (GNNs) are an effective framework for representation learning of graphs. GNNs "
             "follow a neighborhood aggregation scheme, where the representation vector of a node is computed by "
             "recursively aggregating and transforming representation vectors of its neighboring nodes.",
    appearance=Appearance(venue="ICLR", year=2019, presentation="oral", session="Oral Session 5"))
ADAM = PaperRecord(
    key="adam", title="Adam: A Method for Stochastic Optimization", authors=["Diederik P. Kingma", "Jimmy Ba"],
    abstract="We introduce Adam, an algorithm for first-order gradient-based optimization of stochastic objective "
             "functions, based on adaptive estimates of lower-order moments.",
    appearance=Appearance(venue="ICLR", year=2015, presentation="poster"))
RESNET = PaperRecord(
    key="resnet", title="Deep Residual Learning for Image Recognition",
    authors=["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"],
    abstract="Deeper neural networks are more difficult to train. We present a residual learning framework to ease "
             "the training of networks that are substantially deeper than those used previously.",
    appearance=Appearance(venue="CVPR", year=2016, presentation="oral", award="Best Paper"))
MOMENTUM = PaperRecord(
    key="momentum", title="Towards understanding how momentum improves generalization in deep learning",
    authors=["Samy Jelassi", "Yuanzhi Li"],
    abstract="Stochastic gradient descent (SGD) with momentum is widely used for training modern deep learning "
             "architectures.",
    appearance=Appearance(venue="ICML", year=2022, presentation="spotlight", decision="Accept (Spotlight)",
                          session="Deep Learning", starts_at=datetime(2022, 7, 20, 14, 30, tzinfo=timezone.utc),
                          slot_text="Wed 20 Jul 2022 07:30 PDT"))

SOURCES = {"neurips.json": [ATTENTION, DDPM, BRIDGE], "iclr.json": [VIT, GCN, GIN, ADAM],
           "cvpr.json": [RESNET], "icml.json": [MOMENTUM]}


def ingest(catalog: Catalog, locator: str, records: list[PaperRecord]):
    fingerprint = content_hash(*(repr(r) for r in records))
    return catalog.ingest(locator, "test", fingerprint, [_copy(r) for r in records])


def _copy(record: PaperRecord) -> PaperRecord:
    from dataclasses import replace

    return replace(record, appearance=replace(record.appearance))


def build_catalogue(path) -> Catalog:
    catalog = Catalog.open(str(path))
    for locator, records in SOURCES.items():
        ingest(catalog, locator, records)
    return catalog


@pytest.fixture(scope="module")
def shared(catalogues):
    with catalogues.new() as url:
        catalog = build_catalogue(url)
        yield catalog, SearchService(catalog)
        catalog.close()


@pytest.fixture
def service(shared):
    return shared[1]


@pytest.fixture
def own(catalog_url):
    """A catalogue a test may change."""
    catalog = build_catalogue(catalog_url)
    yield catalog
    catalog.close()


def titles(result) -> list[str]:
    return [hit.paper["title"] for hit in result.hits]


def title_set(service, query: str) -> set[str]:
    return set(titles(service.search(query, limit=50)))


# ------------------------------------------------------------------------------------ ranking
def test_the_index_lives_beside_the_catalogue(shared):
    catalog, service = shared
    if catalog.is_sqlite:
        assert service.index.path == catalog.sqlite_path.with_name("catalogue.sqlite.index") / "lexical"
    else:  # a database URL: in the user's cache folder, one folder per catalogue
        assert service.index.path.is_relative_to(platformdirs.user_cache_dir("paperscope"))
    assert index_root(catalog).is_dir()


def test_a_title_match_ranks_first(service):
    result = service.search("attention is all you need")
    assert titles(result)[0] == "Attention Is All You Need"
    assert result.mode == "keyword" and result.sort == "relevance"


def test_title_words_outrank_abstract_words(service):
    # "transformers" is in ViT's title and in Attention's abstract only
    assert titles(service.search("transformers"))[0].startswith("An Image is Worth 16x16 Words")


def test_author_names_are_searchable_as_words(service):
    assert titles(service.search("kipf welling")) == ["Semi-Supervised Classification with Graph Convolutional Networks"]


def test_phrase_needs_the_words_in_order(service):
    words = title_set(service, "graph neural networks")
    phrase = title_set(service, '"graph neural networks"')
    assert phrase == {"How Powerful are Graph Neural Networks?"}
    assert "Semi-Supervised Classification with Graph Convolutional Networks" in words - phrase


def test_excluded_word_and_phrase(service):
    assert "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale" in title_set(service, "transformer")
    assert title_set(service, "transformer -image") == {"Attention Is All You Need"}
    assert not title_set(service, 'networks -"image recognition"') & {
        "Deep Residual Learning for Image Recognition",
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"}


def test_or_offers_alternatives(service):
    assert title_set(service, "residual OR denoising") == {"Deep Residual Learning for Image Recognition",
                                                           "Denoising Diffusion Probabilistic Models"}


def test_a_word_no_paper_has_is_left_out_and_said(service):
    result = service.search("attention zzzqqq")
    assert titles(result)[0] == "Attention Is All You Need"
    assert "zzzqqq" in result.message


# ------------------------------------------------------------------------------------ filters
def test_author_filter(service):
    assert title_set(service, 'author:"Kaiming He"') == {"Deep Residual Learning for Image Recognition"}
    assert title_set(service, "author:kipf") == {"Semi-Supervised Classification with Graph Convolutional Networks"}
    assert title_set(service, "networks author:welling") == {"Semi-Supervised Classification with Graph Convolutional Networks"}
    assert not title_set(service, 'author:"Welling Kipf"')  # a name is its words in order


def test_venue_filter_is_case_insensitive_and_takes_a_year(service):
    iclr = {"An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
            "Semi-Supervised Classification with Graph Convolutional Networks",
            "How Powerful are Graph Neural Networks?", "Adam: A Method for Stochastic Optimization"}
    assert title_set(service, "venue:iclr") == iclr
    assert title_set(service, "venue:ICLR") == iclr
    assert title_set(service, 'venue:"ICLR 2017"') == {"Semi-Supervised Classification with Graph Convolutional Networks"}
    assert title_set(service, "venue:nips year:2020") == {"Denoising Diffusion Probabilistic Models"}
    assert len(title_set(service, "venue:icml venue:cvpr")) == 2  # two venues: either


def test_unknown_venue_says_which_venues_exist(service):
    result = service.search("venue:nosuchconf")
    assert result.total == 0 and "nosuchconf" in result.message and "ICLR" in result.message


def test_year_filters(service):
    assert title_set(service, "year:2017") == {"Attention Is All You Need",
                                               "Semi-Supervised Classification with Graph Convolutional Networks"}
    assert title_set(service, "year:2019..2020") == {"How Powerful are Graph Neural Networks?",
                                                     "Denoising Diffusion Probabilistic Models"}
    assert title_set(service, "year:>=2022") == {"Towards understanding how momentum improves generalization in deep learning"}
    assert title_set(service, "year:<2016") == {"Adam: A Method for Stochastic Optimization"}
    result = service.search("attention year:abc")
    assert "year:abc" in result.message and result.total >= 1  # ignored, and said so


def test_type_filter(service):
    orals = {"Attention Is All You Need", "Deep Residual Learning for Image Recognition",
             "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
             "How Powerful are Graph Neural Networks?"}
    assert title_set(service, "type:oral") == orals
    assert title_set(service, "type:Orals") == orals
    assert title_set(service, "-type:oral -type:poster") == {
        "Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling",
        "Towards understanding how momentum improves generalization in deep learning"}
    unknown = service.search("type:keynote")
    assert unknown.total == 0 and "keynote" in unknown.message


def test_award_filter(service):
    assert title_set(service, "award:any") == {"Deep Residual Learning for Image Recognition",
                                               "Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling"}
    assert title_set(service, "award:outstanding") == {
        "Diffusion Schrödinger Bridge with Applications to Score-Based Generative Modeling"}
    assert "Deep Residual Learning for Image Recognition" not in title_set(service, "award:no")
    assert len(title_set(service, "award:no")) == 7


def test_session_filter(service):
    assert title_set(service, 'session:"Poster Session 3"') == {
        "Semi-Supervised Classification with Graph Convolutional Networks"}
    assert len(title_set(service, 'session:"oral session"')) == 3


def test_title_only_words(service):
    assert title_set(service, "title:transformers") == {
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"}
    assert "Attention Is All You Need" in title_set(service, "transformers")


def test_decision_filter(service):
    assert title_set(service, "decision:spotlight") == {
        "Towards understanding how momentum improves generalization in deep learning"}


# ------------------------------------------------------------------------------------ results
def test_facets_count_every_match_not_just_the_page(service):
    result = service.search("networks", limit=1)
    assert len(result.hits) == 1 and result.total >= 5
    venues = {b["value"]: b["count"] for b in result.facets["venue"]}
    assert sum(venues.values()) == result.total  # one venue per paper here
    assert venues["ICLR"] == 3
    assert sum(b["count"] for b in result.facets["year"]) == result.total
    assert [b["value"] for b in result.facets["year"]] == sorted((b["value"] for b in result.facets["year"]), reverse=True)
    assert {b["value"] for b in result.facets["type"]} <= {"oral", "poster", "spotlight"}
    assert result.facets_by in ("aggregation", "term_walk")


def test_both_facet_counting_ways_agree(service, monkeypatch):
    import paperscope.search as search_module

    by_aggregation = service.search("networks")
    monkeypatch.setattr(search_module, "FACET_AGG_MS_PER_DOC", 1e9)  # make the term walk look cheaper
    by_walk = service.search("networks")
    assert by_walk.facets_by == "term_walk" and by_aggregation.facets_by == "aggregation"
    assert by_walk.facets == by_aggregation.facets


def test_only_filters_lists_newest_first(service):
    result = service.search("venue:iclr")
    assert result.sort == "date"
    years = [hit.paper["year"] for hit in result.hits]
    assert years == sorted(years, reverse=True)


def test_sort_by_date_and_paging(service):
    everything = service.search("networks", sort="date", limit=50)
    years = [hit.paper["year"] for hit in everything.hits]
    assert years == sorted(years, reverse=True)
    second = service.search("networks", sort="date", limit=2, offset=2)
    assert [h.paper_id for h in second.hits] == [h.paper_id for h in everything.hits[2:4]]


def test_hits_carry_the_paper_with_its_appearances(service):
    hit = service.search("momentum generalization").hits[0]
    paper = hit.paper
    assert paper["authors"] == ["Samy Jelassi", "Yuanzhi Li"]
    (appearance,) = paper["appearances"]
    assert appearance["venue"] == "ICML" and appearance["session"] == "Deep Learning"
    assert appearance["starts_at"].startswith("2022-07-20T14:30")
    assert paper["abstract"].startswith("Stochastic gradient descent")


def test_snippet_marks_the_query_words_in_the_abstract(service):
    hit = service.search("schrödinger bridge").hits[0]
    marked = [text for text, is_match in hit.snippet if is_match]
    assert "Schrödinger" in marked and "Bridge" in marked
    plain = "".join(text for text, _ in hit.snippet).strip("…")
    assert plain.strip() in hit.paper["abstract"]


def test_snippet_without_an_abstract_match_is_the_opening(service):
    hit = service.search("title:adam").hits[0]
    assert hit.snippet == [(hit.paper["abstract"], False)]


def test_semantic_mode_without_vectors_falls_back_to_keywords_and_says_so(service):
    result = service.search("attention", mode="semantic")
    assert result.mode == "keyword" and "not available" in result.message
    assert titles(result)[0] == "Attention Is All You Need"


class WordOverlapVectors:
    """A small semantic searcher obeying the protocol: ranks papers by shared title words."""

    def __init__(self, catalog: Catalog):
        self.papers = list(catalog.iter_papers())

    def available(self):
        return True, ""

    def search(self, text, limit):
        words = set(text.lower().split())
        scored = [(p["id"], len(words & set(p["title"].lower().split())) + 0.01) for p in self.papers]
        return sorted(scored, key=lambda s: -s[1])[:limit]


def test_hybrid_fuses_vectors_and_keywords_within_the_filters(shared):
    catalog, _ = shared
    service = SearchService(catalog, semantic=WordOverlapVectors(catalog))
    result = service.search("graph networks venue:iclr", mode="hybrid")
    assert result.mode == "hybrid" and result.message == ""
    assert all(h.paper["appearances"][0]["venue"] == "ICLR" for h in result.hits)
    assert set(titles(result)[:2]) == {"How Powerful are Graph Neural Networks?",
                                       "Semi-Supervised Classification with Graph Convolutional Networks"}
    assert sum(b["count"] for b in result.facets["venue"]) == result.total  # facets count what total counts
    semantic = service.search("graph -venue:iclr", mode="semantic")
    assert all(h.paper["appearances"][0]["venue"] != "ICLR" for h in semantic.hits) and semantic.hits
    assert service.search("venue:nosuch graph", mode="semantic").total == 0


def test_more_like_this_finds_the_neighbour(shared):
    catalog, _ = shared
    ids = more_like_this(catalog, GIN.title, GIN.abstract, 3)
    papers = {p["id"]: p["title"] for p in catalog.papers(ids)}
    assert papers[ids[0]] == GIN.title
    assert "Semi-Supervised Classification with Graph Convolutional Networks" in papers.values()


HOSTILE = ['', ' ', '"', '""', '"unbalanced phrase', 'AND', 'OR', 'NOT', '(', ')', ':', '-', '*', '^', '+', '||',
           'author:', 'title:"', '-"', 'venue:"', 'year:', 'year:abc', 'year:3000..', 'year:..', 'type:',
           'award:', 'session:"', '((attention AND (is OR all)))', 'attention^2 need~1', 'title:*', 'a:b:c:d',
           '\\', '\x00', '\ud800attention', '🤖 transformer', 'x' * 5000, '"' * 300, '-' * 300,
           'author:"' + 'a' * 3000, ' OR '.join(['attention'] * 400), 'venue:ICLR venue:ICLR ' * 60]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_return_results_or_a_clear_message(service, query):
    result = service.search(query)
    assert result.total >= 0
    assert result.hits or result.message or not query.strip()
    json.dumps(result.as_dict(), default=str)


def test_a_huge_query_says_it_was_cut(service):
    result = service.search("attention " * 500)
    assert "longer than" in result.message and titles(result)[0] == "Attention Is All You Need"


def test_paging_limits_are_clamped_with_a_message(service):
    result = service.search("networks", limit=100000, offset=-5)
    assert result.limit == 500 and result.offset == 0 and "500" in result.message


# ------------------------------------------------------------------------------------ upkeep
def test_incremental_update_after_a_title_changes(own):
    service = SearchService(own)
    assert titles(service.search("momentum generalization"))
    renamed = PaperRecord(**{**MOMENTUM.__dict__, "title": "Why heavy-ball momentum generalizes better"})
    report = ingest(own, "icml.json", [renamed])
    assert report.touched_paper_ids
    update_indexes(own, report.touched_paper_ids, report.removed_paper_ids)
    assert LexicalIndex.for_catalog(own).state(own).fresh
    assert titles(service.search("heavy-ball")) == ["Why heavy-ball momentum generalizes better"]
    assert not service.search("title:towards").hits


def test_removed_papers_vanish_from_results(own):
    service = SearchService(own)
    assert service.search("denoising diffusion").total == 1
    report = ingest(own, "neurips.json", [ATTENTION, BRIDGE])
    assert report.removed_paper_ids
    update_indexes(own, report.touched_paper_ids, report.removed_paper_ids)
    assert "Denoising Diffusion Probabilistic Models" not in title_set(service, "denoising diffusion")
    assert service.search('"denoising diffusion"').total == 0
    assert service.search("").total == own.paper_count() == 8


def test_missing_manifest_means_a_rebuild(own):
    index = LexicalIndex.for_catalog(own)
    index.rebuild(own)
    (index.path / lexical.MANIFEST).unlink()
    state = index.state(own)
    assert not state.fresh and "manifest" in state.reason
    assert ensure_indexes(own)["lexical"]["rebuilt"] == 9
    assert LexicalIndex.for_catalog(own).state(own).fresh


def test_a_commit_without_its_manifest_is_never_served(own):
    import tantivy

    index = LexicalIndex.for_catalog(own)
    index.rebuild(own)
    # a crash between a commit and the manifest that describes it
    writer = index.index.writer(heap_size=15_000_000, num_threads=1)
    writer.add_document(tantivy.Document(id="bogus", title="bogus intruder"))
    writer.commit()
    writer.wait_merging_threads()
    assert not index.state(own).fresh
    service = SearchService(own)
    assert service.search("intruder").total == 0
    assert service.index.state(own).fresh


def test_an_interrupted_rebuild_leaves_the_last_complete_index(own, monkeypatch):
    index = LexicalIndex.for_catalog(own)
    index.rebuild(own)

    def broken(batch_size=2000, paper_ids=None):
        yield from own.papers([p["id"] for p in own.iter_papers()][:3])
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(own, "iter_papers", broken)
    with pytest.raises(RuntimeError):
        LexicalIndex.for_catalog(own).rebuild(own)
    monkeypatch.undo()
    fresh = LexicalIndex.for_catalog(own)
    assert fresh.state(own).fresh
    assert SearchService(own, index=fresh, ensure=False).search("").total == 9


def test_catalogue_changed_behind_the_index_is_detected(own):
    service = SearchService(own)
    ingest(own, "extra.json", [PaperRecord(key="bert", title="BERT: Pre-training of Deep Bidirectional Transformers",
                                           authors=["Jacob Devlin"], appearance=Appearance(venue="NAACL", year=2019))])
    state = LexicalIndex.for_catalog(own).state(own)
    assert not state.fresh and "catalogue" in state.reason
    assert SearchService(own).search("bidirectional").total == 1
    assert service.search("bidirectional").total == 1  # the open service sees the new commit too


def test_update_never_fails_an_ingest_when_the_index_is_busy(own, monkeypatch):
    index = LexicalIndex.for_catalog(own)
    index.rebuild(own)
    monkeypatch.setattr(lexical, "WRITER_LOCK_WAIT_S", 0.2)
    with index._exclusive(0):  # another writer holds the index
        report = ingest(own, "icml.json", [PaperRecord(**{**MOMENTUM.__dict__, "title": "Renamed while busy"})])
        outcome = update_indexes(own, report.touched_paper_ids, report.removed_paper_ids)
        assert "not updated" in outcome["lexical"]
        # a reader meanwhile serves the last complete index, and says so
        reader = SearchService(own)
        result = reader.search("momentum generalization")
        assert result.total == 1 and "being updated" in result.message
    state = LexicalIndex.for_catalog(own).state(own)
    assert not state.fresh and state.exists
    ensure_indexes(own)
    assert SearchService(own).search("renamed busy").total == 1
    assert not reader.search("renamed busy").message  # the notice goes once the index is complete


def test_an_interrupted_update_is_never_taken_for_complete(own, monkeypatch):
    """Same paper count, changed title, update cut short: the next check still sees a stale index."""
    index = LexicalIndex.for_catalog(own)
    index.rebuild(own)
    report = ingest(own, "icml.json", [PaperRecord(**{**MOMENTUM.__dict__, "title": "Heavy ball momentum"})])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lexical, "paper_document", interrupted)
    with pytest.raises(KeyboardInterrupt):
        update_indexes(own, report.touched_paper_ids, report.removed_paper_ids)
    monkeypatch.undo()
    state = LexicalIndex.for_catalog(own).state(own)
    assert not state.fresh and LexicalIndex.for_catalog(own).pending_updates()
    # the next ingest's update rebuilds, so the earlier change is not lost
    later = ingest(own, "cvpr.json", [PaperRecord(**{**RESNET.__dict__, "title": "Deep Residual Learning"})])
    update_indexes(own, later.touched_paper_ids, later.removed_paper_ids)
    service = SearchService(own)
    assert service.index.state(own).fresh
    assert service.search('"heavy ball"').total == 1


def test_update_of_a_missing_index_builds_it(catalog):
    report = ingest(catalog, "cvpr.json", [RESNET])
    assert update_indexes(catalog, report.touched_paper_ids, set())["lexical"] == 1
    assert LexicalIndex.for_catalog(catalog).state(catalog).fresh


# ------------------------------------------------------------------------------------ command line
def test_cli_search_json_and_errors(own, tmp_path):
    from typer.testing import CliRunner

    from paperscope.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["search", "graph", "networks", "--json", "--limit", "1", "--db", own.location])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["mode"] == "keyword" and data["total"] == 2 and len(data["hits"]) == 1
    assert data["facets"]["venue"] == [{"value": "ICLR", "count": 2}]
    assert data["parsed"] == parse_query("graph networks").canonical()
    table = runner.invoke(app, ["search", "--db", own.location, "--", "-type:poster", "award:any"])
    assert table.exit_code == 0 and "Deep Residual" in table.stdout
    missing = runner.invoke(app, ["search", "x", "--db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code != 0 and "Traceback" not in missing.output and "no catalogue" in missing.output
    bad = runner.invoke(app, ["search", "x", "--mode", "magic", "--db", own.location])
    assert bad.exit_code != 0 and "unknown --mode" in bad.output


def test_cli_reindex(own):
    from typer.testing import CliRunner

    from paperscope.cli import app

    done = CliRunner().invoke(app, ["reindex", "--json", "--db", own.location])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["indexes"]["lexical"] == 9


def test_singular_and_plural_match_without_stemming(service):
    from paperscope.search import word_forms

    assert word_forms("networks") == ["networks", "network"] and word_forms("policy") == ["policy", "policies"]
    assert "How Powerful are Graph Neural Networks?" in title_set(service, "network")
    assert title_set(service, '"graph neural network"') == {"How Powerful are Graph Neural Networks?"}
    # no stemmer: "transformer" does not find "transforming" or "transforms"
    assert title_set(service, "transformer") == {"Attention Is All You Need",
                                                 "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"}
