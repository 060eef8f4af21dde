"""The query language: what users type becomes a structured query; nothing they type breaks a search."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperscope.catalog.store import Catalog
from paperscope.index.lexical import LexicalIndex
from paperscope.model import Appearance, PaperRecord
from paperscope.search import (
    MAX_CLAUSES,
    MAX_QUERY_CHARS,
    FilterClause,
    ParsedQuery,
    QueryBuilder,
    TextClause,
    parse_query,
)


def words(q: ParsedQuery) -> list[list[tuple[str, bool, str | None]]]:
    return [[(c.text, c.phrase, c.field) for c in group] for group in q.groups]


# ------------------------------------------------------------------------------------ units
def test_plain_words_are_each_required():
    q = parse_query("graph neural networks")
    assert words(q) == [[("graph", False, None)], [("neural", False, None)], [("networks", False, None)]]
    assert not q.excluded and not q.filters


def test_quoted_phrase_and_excluded_word_and_phrase():
    q = parse_query('"graph neural"  networks -survey -"large language"')
    assert words(q) == [[("graph neural", True, None)], [("networks", False, None)]]
    assert q.excluded == (TextClause("survey"), TextClause("large language", phrase=True))


def test_not_and_bang_exclude_like_minus():
    assert parse_query("NOT survey").excluded == (TextClause("survey"),)
    assert parse_query("!survey").excluded == (TextClause("survey"),)


def test_or_joins_neighbouring_words_into_alternatives():
    q = parse_query("diffusion OR flow matching")
    assert words(q) == [[("diffusion", False, None), ("flow", False, None)], [("matching", False, None)]]
    assert words(parse_query("a || b")) == [[("a", False, None), ("b", False, None)]]


def test_and_is_the_default_and_stray_operators_are_ignored():
    q = parse_query("AND attention OR AND ( ) * ^ : - + OR")
    assert words(q) == [[("attention", False, None)]]


def test_filters_with_plain_and_quoted_values():
    q = parse_query('author:bengio venue:"ICLR 2023" year:2020..2022 type:oral award:any session:"Poster Session 3"')
    assert q.filters == (
        FilterClause("author", "bengio"), FilterClause("venue", "ICLR 2023"), FilterClause("year", "2020..2022"),
        FilterClause("type", "oral"), FilterClause("award", "any"), FilterClause("session", "Poster Session 3"),
    )
    assert not q.groups


def test_field_names_are_case_insensitive_and_aliased():
    q = parse_query("Venue:ICML AUTHORS:hinton by:lecun")
    assert q.filters == (FilterClause("venue", "ICML"), FilterClause("author", "hinton"), FilterClause("author", "lecun"))


def test_a_space_after_the_colon_is_forgiven():
    assert parse_query("venue: ICML").filters == (FilterClause("venue", "ICML"),)
    q = parse_query("venue: -survey")  # the next word is an exclusion, not a value
    assert not q.filters and q.excluded == (TextClause("survey"),)
    assert "needs a value" in " ".join(q.notes)


def test_title_field_is_a_text_clause_in_the_title_only():
    q = parse_query('title:transformer title:"vision transformer" -title:survey')
    assert words(q) == [[("transformer", False, "title")], [("vision transformer", True, "title")]]
    assert q.excluded == (TextClause("survey", field="title"),)


def test_unknown_field_is_just_a_word():
    assert words(parse_query("foo:bar")) == [[("foo:bar", False, None)]]


def test_excluded_filters():
    q = parse_query("-venue:icml NOT type:poster")
    assert q.excluded_filters == (FilterClause("venue", "icml"), FilterClause("type", "poster"))


def test_unbalanced_quote_closes_at_the_end():
    q = parse_query('"graph neural networks')
    assert words(q) == [[("graph neural networks", True, None)]]
    q = parse_query('session:"Poster Session')
    assert q.filters == (FilterClause("session", "Poster Session"),)


def test_empty_values_and_empty_phrases_are_dropped_with_a_note():
    q = parse_query('author: "" title:""')
    assert q.is_empty
    assert any("author:" in n for n in q.notes)


def test_huge_query_is_capped_with_a_message():
    q = parse_query("word " * 2000)
    assert any(str(MAX_QUERY_CHARS) in n for n in q.notes)
    assert sum(len(g) for g in q.groups) == MAX_CLAUSES
    assert any(f"first {MAX_CLAUSES}" in n for n in q.notes)


def test_control_characters_and_lone_surrogates_do_not_survive():
    q = parse_query("gra\x00ph \ud800neural")
    assert all(ch.isprintable() for c in q.groups for ch in c[0].text)


def test_canonical_form_round_trips():
    text = 'a OR "b c" d title:h -e -"f g" author:"Yoshua Bengio" -venue:icml'
    q = parse_query(text)
    assert q.canonical() == text
    assert parse_query(q.canonical()) == q


# ------------------------------------------------------------------------------------ property
@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    # one backend is enough: the catalogue only fills the keyword index, and queries run on tantivy alone
    path = tmp_path_factory.mktemp("parser") / "catalogue.sqlite"
    catalog = Catalog.open(str(path))
    records = [
        PaperRecord(title="Attention Is All You Need", authors=["Ashish Vaswani", "Noam Shazeer"],
                    abstract="The dominant sequence transduction models are based on recurrent networks.",
                    appearance=Appearance(venue="NeurIPS", year=2017, presentation="oral", session="Oral 1",
                                          award="Best Paper")),
        PaperRecord(title="Deep Residual Learning for Image Recognition", authors=["Kaiming He"],
                    abstract="Deeper neural networks are more difficult to train.",
                    appearance=Appearance(venue="CVPR", year=2016, presentation="poster")),
    ]
    catalog.ingest("tiny", "test", "h1", records)
    index = LexicalIndex.for_catalog(catalog)
    index.rebuild(catalog)
    yield index
    catalog.close()


query_alphabet = st.sampled_from(list('abcxyz019 "-+!:*^()|&~\\\'.,OR AND NOT title: author: venue: year: type: award: session: ..>=< é\t'))
query_text = st.one_of(
    st.text(max_size=120),
    st.lists(query_alphabet, max_size=60).map("".join),
    st.lists(st.sampled_from(["OR", "AND", "NOT", "-", '"', "title:", "venue:", "year:", "year:2020..", "award:any",
                              "type:oral", "session:", "attention", "neural", "(", ")", "*", ":", " "]), max_size=20).map(" ".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query_text)
def test_any_text_parses_round_trips_and_runs_on_tantivy(tiny_index, text):
    q = parse_query(text)
    again = parse_query(q.canonical())
    assert again == q
    assert again.canonical() == q.canonical()
    searcher = tiny_index.searcher()
    builder = QueryBuilder(tiny_index, searcher)
    query, _ = builder.build(q)
    searcher.search(query, 5, count=True)
    any_query, _ = builder.build(q, any_group=True)
    searcher.search(any_query, 5, count=True)


# ------------------------------------------------------------------------------------ what a query finds
LIBRARY = [
    PaperRecord(title="Attention Is All You Need", authors=["Ashish Vaswani", "Noam Shazeer"],
                abstract="The dominant sequence transduction models are based on recurrent networks.",
                appearance=Appearance(venue="NeurIPS", year=2017, presentation="oral", session="Oral 1",
                                      award="Best Paper")),
    PaperRecord(title="Deep Residual Learning for Image Recognition", authors=["Kaiming He", "Jian Sun"],
                abstract="Deeper neural networks are more difficult to train.",
                appearance=Appearance(venue="CVPR", year=2016, presentation="poster", session="Poster Session 3")),
    PaperRecord(title="Contrastive Learning with Hard Negative Samples", authors=["Joshua Robinson", "Ching-Yao Chuang"],
                abstract="How can you sample good negative examples for contrastive learning?",
                appearance=Appearance(venue="ICLR", year=2021, presentation="spotlight", decision="top 5%")),
    PaperRecord(title="Élan: Graph Networks über Ünicode Wörter", authors=["Zoë Ångström"],
                abstract="Accents and umlauts in titles, authors and queries.",
                appearance=Appearance(venue="ICML", year=2022, presentation="talk", session="Deep Learning")),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from paperscope.search import SearchService

    catalog = Catalog.open(str(tmp_path_factory.mktemp("finds") / "catalogue.sqlite"))
    catalog.ingest("library", "test", "h1", LIBRARY)
    index = LexicalIndex.for_catalog(catalog)
    index.rebuild(catalog)
    yield SearchService(catalog, index=index)
    catalog.close()


def title_of(hit) -> str:
    return hit.paper["title"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=query_text, sort=st.sampled_from(["relevance", "date", "nonsense"]), offset=st.integers(-5, 50),
       limit=st.integers(-5, 600))
def test_any_query_runs_through_the_search_service(service, text, sort, offset, limit):
    result = service.search(text, mode="keyword", limit=limit, offset=offset, sort=sort)
    assert 0 <= len(result.hits) <= result.limit and result.total >= 0
    assert result.parsed == parse_query(text).canonical()  # what was searched is what was typed, tidied


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_words_of_a_title_with_filters_of_its_paper_find_that_paper(service, data):
    paper = data.draw(st.sampled_from(LIBRARY))
    words = [w.strip(":,?.") for w in paper.title.split()]
    chosen = data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=4, unique=True))
    if data.draw(st.booleans()):
        chosen = [w.upper() if data.draw(st.booleans()) else w.lower() for w in chosen]
    a = paper.appearance
    filters = data.draw(st.lists(st.sampled_from([
        f"venue:{a.venue}", f"year:{a.year}", f"year:{a.year - 1}..{a.year + 1}", f"year:>={a.year}",
        f'author:"{paper.authors[0]}"', f"author:{paper.authors[0].split()[-1].lower()}", f"type:{a.presentation}",
        f'session:"{a.session}"' if a.session else "", "award:any" if a.award else "award:none",
    ]), max_size=3, unique=True))
    query = " ".join(chosen + [f for f in filters if f])
    result = service.search(query, mode="keyword", limit=10)
    assert paper.title in [title_of(h) for h in result.hits], (query, result.message)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_excluded_word_or_filter_is_in_no_result(service, data):
    paper = data.draw(st.sampled_from(LIBRARY))
    word = data.draw(st.sampled_from([w.strip(":,?.") for w in paper.title.split() if len(w) > 3]))
    excluded = data.draw(st.sampled_from([f"-{word}", f"NOT {word.lower()}", f"-venue:{paper.appearance.venue}",
                                          f"-year:{paper.appearance.year}"]))
    result = service.search(excluded, mode="keyword", limit=50)
    assert paper.title not in [title_of(h) for h in result.hits], excluded
    assert result.total == len(result.hits) and result.total >= 1
