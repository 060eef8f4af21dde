"""Search: the query language and the search service.

The user's text is parsed here into a :class:`ParsedQuery` and turned into tantivy query objects
term by term; it never reaches tantivy's query parser, so no input can make a search fail.

The language (see :func:`parse_query`)::

    graph neural networks            all words, in any form of number (network/networks); BM25,
                                     words in the title count more
    "graph neural"                   a phrase
    diffusion OR flow matching       either word, and "matching"
    -survey  -"large language"       exclude a word or a phrase (also NOT survey)
    title:transformer                a word (or title:"a phrase") in the title only
    author:bengio  author:"Yoshua Bengio"
    venue:icml  venue:"ICLR 2023"    venue (any case; a trailing year is a year filter)
    year:2022  year:2020..2022  year:>=2021
    type:oral  (oral, spotlight, poster, talk)
    award:any  award:outstanding     any award, or award text
    session:"Poster Session 3"       session name (its words, in order)
    decision:"top 5%"

Several values of ``venue``/``year``/``type``/``session``/``decision`` are alternatives (either);
several ``author``/``award`` values must all hold. Any filter can be negated: ``-venue:icml``.
A query with only filters lists the matching papers, newest first.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import threading
import time
import weakref
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from paperscope.text import name_key

if TYPE_CHECKING:
    import tantivy

    from paperscope.catalog.store import Catalog
    from paperscope.index.lexical import LexicalIndex
    from paperscope.topics import SearchTopics

log = logging.getLogger("paperscope.search")

MAX_QUERY_CHARS = 1000
MAX_CLAUSES = 64
MAX_LIMIT = 500
MAX_OFFSET = 10_000
SNIPPET_CHARS = 240
MLT_MAX_TERMS = 25
FACET_SIZES = {"venue": 40, "year": 60, "type": 10, "award": 20, "session": 40}
# Cost model choosing how facets are counted (see SearchService._facets); measured on 166k papers.
FACET_AGG_MS_PER_DOC = 0.0001     # terms aggregation: ~0.1 us per matching paper for the five facets
TOPIC_FACET_DEPTH = 1000          # the topic facet counts the best this many matches
FACET_WALK_MS_PER_FIELD = 0.3     # term-dictionary walk: one more run of the query per facet, plus this

MODES = ("keyword", "semantic", "hybrid")
BUSY_NOTICE = "The keyword index is being updated by another process; results may miss the latest changes."
SORTS = ("relevance", "date")

# Field names the user may type, and the field they mean.
FIELD_NAMES = {
    "author": "author", "authors": "author", "by": "author",
    "venue": "venue", "conf": "venue", "conference": "venue",
    "year": "year", "years": "year",
    "type": "type", "presentation": "type",
    "award": "award", "awards": "award",
    "session": "session",
    "decision": "decision",
    "title": "title",
    "topic": "topic", "topics": "topic",
}
# Filters whose repeated values are alternatives; the others must all hold.
ANY_OF_FIELDS = ("venue", "year", "type", "session", "decision", "topic")
KNOWN_TYPES = ("oral", "spotlight", "poster", "talk", "paper")
_ANY_AWARD = {"any", "yes", "true", "all", "*", "1"}
_NO_AWARD = {"no", "none", "false", "0"}
_OPERATORS = {"OR": "or", "||": "or", "|": "or", "AND": "and", "&&": "and", "&": "and", "NOT": "not"}
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):(.*)", re.S)
_VENUE_WITH_YEAR = re.compile(r"^(.*?)[\s\-_'’]*((?:19|20)\d{2})$")
_YEAR = r"((?:1[89]|20|21)\d{2})"
_YEAR_EXACT = re.compile(rf"^{_YEAR}$")
_YEAR_RANGE = re.compile(rf"^{_YEAR}?\s*(?:\.\.+|-|–|—|to|:)\s*{_YEAR}?$")
_YEAR_CMP = re.compile(rf"^(>=|<=|=>|=<|>|<|=)\s*{_YEAR}$")


# ============================================================================ the parsed query
@dataclass(frozen=True)
class TextClause:
    """Words to match: a bare word (which may stand for several tokens, like ``state-of-the-art``)
    or a quoted phrase; in every text field, or in the title only."""

    text: str
    phrase: bool = False
    field: str | None = None  # None: all text fields; "title"

    def canonical(self) -> str:
        body = f'"{self.text}"' if self.phrase else self.text
        return f"title:{body}" if self.field == "title" else body


@dataclass(frozen=True)
class FilterClause:
    field: str   # author, venue, year, type, award, session, decision
    value: str

    def canonical(self) -> str:
        value = self.value
        needs_quotes = any(ch.isspace() for ch in value) or not value
        return f'{self.field}:"{value}"' if needs_quotes else f"{self.field}:{value}"


@dataclass(frozen=True)
class ParsedQuery:
    """What the user asked for: groups of alternatives (all groups must match), exclusions, filters."""

    groups: tuple[tuple[TextClause, ...], ...] = ()
    excluded: tuple[TextClause, ...] = ()
    filters: tuple[FilterClause, ...] = ()
    excluded_filters: tuple[FilterClause, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def has_text(self) -> bool:
        return bool(self.groups)

    @property
    def is_empty(self) -> bool:
        return not (self.groups or self.excluded or self.filters or self.excluded_filters)

    def canonical(self) -> str:
        """The query written back in the language; parsing it gives this query again."""
        parts = [" OR ".join(c.canonical() for c in group) for group in self.groups]
        parts += ["-" + c.canonical() for c in self.excluded]
        parts += [f.canonical() for f in self.filters]
        parts += ["-" + f.canonical() for f in self.excluded_filters]
        return " ".join(parts)

    def words(self) -> list[str]:
        """The positive words and phrases, for display ("results for ...")."""
        return [c.text for group in self.groups for c in group]


def _sanitize(text: str) -> str:
    # Lone surrogates (undecodable bytes from a terminal) cannot cross into tantivy; control
    # characters are never meaningful in a query.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text)


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class _Lexer:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.n = len(text)

    def skip_space(self) -> None:
        while self.i < self.n and self.s[self.i].isspace():
            self.i += 1

    def quoted(self) -> str:
        """Text up to the closing quote (or the end: an unbalanced quote closes itself)."""
        assert self.s[self.i] == '"'
        end = self.s.find('"', self.i + 1)
        if end < 0:
            end = self.n
        value = self.s[self.i + 1:end]
        self.i = min(end + 1, self.n)
        return " ".join(value.split())

    def bare(self) -> str:
        start = self.i
        while self.i < self.n and not self.s[self.i].isspace() and self.s[self.i] != '"':
            self.i += 1
        return self.s[start:self.i]


def parse_query(text: str) -> ParsedQuery:
    """Parse what the user typed. Never raises: anything unreadable is dropped with a note."""
    notes: list[str] = []
    text = _sanitize(text or "")
    if len(text) > MAX_QUERY_CHARS:
        notes.append(f"The query is longer than {MAX_QUERY_CHARS} characters; only the first {MAX_QUERY_CHARS} were used.")
        text = text[:MAX_QUERY_CHARS]
    lx = _Lexer(text)
    groups: list[list[TextClause]] = []
    excluded: list[TextClause] = []
    filters: list[FilterClause] = []
    excluded_filters: list[FilterClause] = []
    negate = False
    join_or = False
    clauses = 0
    dropped = 0

    def add_text(clause: TextClause) -> None:
        nonlocal clauses, dropped
        if not _has_word(clause.text):
            return
        if clauses >= MAX_CLAUSES:
            dropped += 1
            return
        clauses += 1
        if negate:
            excluded.append(clause)
        elif join_or and groups:
            groups[-1].append(clause)
        else:
            groups.append([clause])

    def add_filter(clause: FilterClause) -> None:
        nonlocal clauses, dropped
        if clauses >= MAX_CLAUSES:
            dropped += 1
            return
        clauses += 1
        (excluded_filters if negate else filters).append(clause)

    while True:
        lx.skip_space()
        if lx.i >= lx.n:
            break
        ch = lx.s[lx.i]
        if ch in "-+!" and lx.i + 1 < lx.n and not lx.s[lx.i + 1].isspace():
            # "-word" excludes; "+word" is what a plain word means anyway; "!word" as in "NOT".
            negate = negate or ch in "-!"
            lx.i += 1
            continue
        if ch == '"':
            add_text(TextClause(lx.quoted(), phrase=True))
            negate = join_or = False
            continue
        word = lx.bare()
        operator = _OPERATORS.get(word)
        if operator == "or":
            join_or = bool(groups) and not negate
            continue
        if operator == "not":
            negate = True
            continue
        if operator == "and":
            continue
        match = _FIELD_PREFIX.match(word)
        name = FIELD_NAMES.get(match.group(1).lower()) if match else None
        if match and name:
            value, quoted = match.group(2), False
            if not value:
                # field:"a value", or "field: value" typed with a space
                lx.skip_space()
                if lx.i < lx.n and lx.s[lx.i] == '"':
                    value, quoted = lx.quoted(), True
                elif lx.i < lx.n and not _starts_clause(lx.s, lx.i):
                    value = lx.bare()
            value = " ".join(value.split())
            if not value:
                notes.append(f"'{match.group(1)}:' needs a value (e.g. {match.group(1)}:{_EXAMPLES[name]}); it was ignored.")
            elif name == "title":
                add_text(TextClause(value, phrase=quoted or any(c.isspace() for c in value), field="title"))
            else:
                add_filter(FilterClause(name, value))
        else:
            add_text(TextClause(word))
        negate = join_or = False
    if dropped:
        notes.append(f"Only the first {MAX_CLAUSES} words and filters were used ({dropped} more were ignored).")
    return ParsedQuery(
        groups=tuple(tuple(g) for g in groups), excluded=tuple(excluded), filters=tuple(filters),
        excluded_filters=tuple(excluded_filters), notes=tuple(notes),
    )


_EXAMPLES = {"author": "bengio", "venue": "ICML", "year": "2023", "type": "oral", "award": "any",
             "session": '"Poster Session 3"', "decision": "accept", "title": "transformer",
             "topic": "reinforcement"}


def _starts_clause(s: str, i: int) -> bool:
    """Whether the word at ``i`` is an operator, an exclusion or another field (not a value)."""
    end = i
    while end < len(s) and not s[end].isspace() and s[end] != '"':
        end += 1
    word = s[i:end]
    if word in _OPERATORS or s[i] in "-+!":
        return True
    match = _FIELD_PREFIX.match(word)
    return bool(match and match.group(1).lower() in FIELD_NAMES)


# ============================================================================ results
@dataclass
class SearchHit:
    paper_id: str
    score: float
    paper: dict[str, Any] | None            # catalogue paper with appearances, for display
    snippet: list[tuple[str, bool]]         # abstract excerpt: (text, is_match) fragments


@dataclass
class SearchResult:
    query: str                              # as the user typed it
    parsed: str                             # canonical form of what was searched
    hits: list[SearchHit]
    total: int
    facets: dict[str, list[dict[str, Any]]]
    mode: str                               # mode actually used
    sort: str                               # sort actually used
    limit: int
    offset: int
    message: str = ""                       # for the user: fallbacks, ignored parts, hints
    took_ms: float = 0.0
    facets_by: str = ""                     # how facets were counted: "aggregation" or "term_walk"
    timings: dict[str, float] = field(default_factory=dict)  # ms by stage: parse, search, facets, hits

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hits"] = [
            {"id": h.paper_id, "score": round(h.score, 4), "paper": h.paper,
             "snippet": [{"text": t, "match": m} for t, m in h.snippet]}
            for h in self.hits
        ]
        out["took_ms"] = round(self.took_ms, 2)
        return out


class SemanticSearcher(Protocol):
    """What a vector index offers search (``paperscope.index`` provides one once vectors exist)."""

    def available(self) -> tuple[bool, str]:
        """(True, "") when vectors can be searched, else (False, why not)."""

    def search(self, text: str, limit: int) -> list[tuple[str, float]]:
        """Paper ids and similarities, best first."""


# ============================================================================ query building
def word_forms(token: str) -> list[str]:
    """A lower-case word and its likely singular/plural forms, the word first.

    The index does not stem (a stemmer makes "transformer" match "transforming", and "generative"
    match "generalization"); plurals are matched at query time instead, and only the forms that
    occur in the index are searched.
    """
    forms = [token]
    if len(token) < 3 or not token.isalpha():
        return forms
    if token.endswith("ies") and len(token) > 4:
        forms.append(token[:-3] + "y")                      # policies -> policy
    elif token.endswith(("sses", "xes", "zes", "ches", "shes", "ses")):
        forms += [token[:-2], token[:-1]]                   # processes -> process; bases -> base
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        forms.append(token[:-1])                            # networks -> network
    elif token.endswith("y") and token[-2] not in "aeiou":
        forms.append(token[:-1] + "ies")                    # policy -> policies
    elif token.endswith(("s", "x", "z", "ch", "sh")):
        forms.append(token + "es")                          # process -> processes
    else:
        forms.append(token + "s")                           # network -> networks
    return forms


class QueryBuilder:
    """Turns a ParsedQuery into tantivy queries against one searcher (to resolve venues, types)."""

    def __init__(self, index: "LexicalIndex", searcher: "tantivy.Searcher", topics: "SearchTopics | None" = None):
        import tantivy

        self.t = tantivy
        self.index = index
        self.topics = topics
        self.schema = index.schema
        self.searcher = searcher
        self.notes: list[str] = []
        self._forms: dict[str, list[str]] = {}

    # -------------------------------------------------------------- text
    def _field_query(self, field_name: str, tokens: list[str], inflect: bool = False) -> "tantivy.Query":
        """A word (any of its singular/plural forms in the index, when ``inflect``) or a phrase
        (its last word in any of those forms: "graph neural network" finds "... networks")."""
        Q, Occur = self.t.Query, self.t.Occur
        last = self.forms(tokens[-1]) if inflect else [tokens[-1]]
        if len(tokens) == 1:
            queries = [Q.term_query(self.schema, field_name, form) for form in last]
        else:
            queries = [Q.phrase_query(self.schema, field_name, [*tokens[:-1], form]) for form in last]
        return queries[0] if len(queries) == 1 else Q.boolean_query([(Occur.Should, q) for q in queries])

    def forms(self, token: str) -> list[str]:
        """``token`` and those of its singular/plural forms that some paper uses."""
        from paperscope.index.lexical import TEXT_FIELD

        found = self._forms.get(token)
        if found is None:
            found = [token] + [form for form in word_forms(token)[1:] if self.searcher.doc_freq(TEXT_FIELD, form)]
            self._forms[token] = found
        return found

    def text_query(self, clause: TextClause) -> "tantivy.Query | None":
        """What a paper must contain to match the clause (in its text, or its title for ``title:``)."""
        from paperscope.index.lexical import TEXT_FIELD

        tokens = self.index.analyze(clause.text)
        if not tokens:
            return None
        return self._field_query("title" if clause.field == "title" else TEXT_FIELD, tokens, inflect=True)

    def clause_queries(self, clause: TextClause) -> tuple[Any, Any, Any] | None:
        """(what must match, the title-match bonus, the abstract words to highlight) for a clause.

        Matching runs on one field holding title, authors, keywords and abstract (a conjunction
        of single-field terms is 2-3x faster than one of per-field unions); the ranking adds a
        bonus for the words found in the title.
        """
        from paperscope.index.lexical import TITLE_BOOST

        match = self.text_query(clause)
        if match is None:
            return None
        Q = self.t.Query
        tokens = self.index.analyze(clause.text)
        if clause.field == "title":
            return Q.boost_query(match, TITLE_BOOST), None, None
        bonus = Q.boost_query(self._field_query("title", tokens, inflect=True), TITLE_BOOST)
        return match, bonus, self._field_query("abstract", tokens, inflect=True)

    def can_match(self, clause: TextClause) -> bool:
        """Whether some paper has every token of the clause (in some form) in the clause's field."""
        from paperscope.index.lexical import TEXT_FIELD

        tokens = self.index.analyze(clause.text)
        name = "title" if clause.field == "title" else TEXT_FIELD
        return bool(tokens) and all(any(self.searcher.doc_freq(name, form) > 0 for form in self.forms(tok))
                                    for tok in tokens)

    # -------------------------------------------------------------- filters
    def filter_query(self, clause: FilterClause) -> "tantivy.Query | None":
        """A query for one filter; None when it is ignored (with a note saying why)."""
        return getattr(self, f"_filter_{clause.field}")(clause.value)

    def _phrase_in(self, field_name: str, value: str) -> "tantivy.Query | None":
        tokens = self.index.analyze(value)
        return self._field_query(field_name, tokens) if tokens else None

    def _filter_author(self, value: str) -> "tantivy.Query | None":
        Q, Occur = self.t.Query, self.t.Occur
        by_words = self._phrase_in("authors", value)
        key = name_key(value)
        if by_words is None:
            return Q.term_query(self.schema, "author_key", key) if key else None
        if key and " " in key:
            return Q.boolean_query([(Occur.Should, by_words), (Occur.Should, Q.term_query(self.schema, "author_key", key))])
        return by_words

    def _filter_venue(self, value: str) -> "tantivy.Query | None":
        from paperscope.index.lexical import venue_key

        Q, Occur = self.t.Query, self.t.Occur
        year_query = None
        match = _VENUE_WITH_YEAR.match(value.strip())
        if match:  # venue:"ICLR 2023" is venue ICLR, year 2023
            value = match.group(1)
            year_query = self._filter_year(match.group(2))
        key = venue_key(value)
        if not key:
            return year_query
        if self.searcher.doc_freq("venue_key", key) > 0:
            venue_query = Q.term_query(self.schema, "venue_key", key)
        else:
            candidates = [term for term, _ in self.searcher.terms_with_prefix("venue_key", key, limit=50)]
            if candidates:
                venue_query = Q.term_set_query(self.schema, "venue_key", candidates)
            else:
                known = [v for v, _ in self.searcher.terms_with_prefix("venue", "", limit=12)]
                hint = f" Venues here: {', '.join(known)}." if known else ""
                self.notes.append(f"No venue matches '{value}'.{hint}")
                venue_query = Q.empty_query()
        if year_query is None:
            return venue_query
        return Q.boolean_query([(Occur.Must, venue_query), (Occur.Must, year_query)])

    def _filter_year(self, value: str) -> "tantivy.Query | None":
        Q = self.t.Query
        value = value.strip()
        if m := _YEAR_EXACT.match(value):
            return Q.term_query(self.schema, "year", int(m.group(1)))
        lo = hi = None
        if m := _YEAR_RANGE.match(value):
            lo = int(m.group(1)) if m.group(1) else None
            hi = int(m.group(2)) if m.group(2) else None
        elif m := _YEAR_CMP.match(value):
            op, year = m.group(1), int(m.group(2))
            if op == "=":
                return Q.term_query(self.schema, "year", year)
            lo, hi = {">=": (year, None), "=>": (year, None), ">": (year + 1, None),
                      "<=": (None, year), "=<": (None, year), "<": (None, year - 1)}[op]
        if lo is None and hi is None:
            self.notes.append(f"'year:{value}' is not a year or a range (try year:2023, year:2020..2022 or year:>=2021); it was ignored.")
            return None
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        # the term index, not the column: 10x faster when the range covers most papers (measured)
        return Q.range_query(self.schema, "year", self.t.FieldType.Integer, lo, hi, use_inverted_index=True)

    def _filter_type(self, value: str) -> "tantivy.Query | None":
        Q = self.t.Query
        kind = value.strip().lower()
        if kind not in KNOWN_TYPES and kind.endswith("s") and kind[:-1] in KNOWN_TYPES:
            kind = kind[:-1]  # "orals", "posters"
        if self.searcher.doc_freq("type", kind) == 0:
            known = [t for t, _ in self.searcher.terms_with_prefix("type", "")]
            hint = f"types here: {', '.join(known)}" if known else "no paper here has a presentation type"
            self.notes.append(f"No paper has type '{value}' ({hint}).")
        return Q.term_query(self.schema, "type", kind)

    def _filter_award(self, value: str) -> "tantivy.Query | None":
        Q, Occur = self.t.Query, self.t.Occur
        word = value.strip().lower()
        any_award = Q.term_query(self.schema, "flag", "award")
        if word in _ANY_AWARD:
            return any_award
        if word in _NO_AWARD:
            return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, any_award)])
        return self._phrase_in("award_text", value)

    def _filter_session(self, value: str) -> "tantivy.Query | None":
        return self._phrase_in("session_text", value)

    def _filter_decision(self, value: str) -> "tantivy.Query | None":
        return self._phrase_in("decision_text", value)

    def _filter_topic(self, value: str) -> "tantivy.Query | None":
        """The papers of a topic of the map of all papers, named by its id or words of its label."""
        if self.topics is None:
            self.notes.append(f"'topic:{value}' was ignored: there is no topic map of all papers yet "
                              "(open the Map page or run `paperscope topics`).")
            return None
        chosen = self.topics.resolve(value)
        if not chosen:
            labels = "; ".join(t.label for t in self.topics.broad[:8])
            self.notes.append(f"No topic matches '{value}'. Broad topics: {labels}.")
            return self.t.Query.empty_query()
        ids = sorted({pid for topic in chosen for pid in self.topics.ids(topic)})
        return self.t.Query.term_set_query(self.schema, "id", ids)

    # -------------------------------------------------------------- whole query
    def build(self, parsed: ParsedQuery, any_group: bool = False) -> tuple["tantivy.Query", "tantivy.Query | None"]:
        """(the query, the abstract words to highlight in snippets).

        ``any_group``: groups are alternatives instead of all required (the fallback when no
        paper has all the words).
        """
        Q, Occur = self.t.Query, self.t.Occur
        must: list[tuple[Any, Any]] = []
        groups = list(parsed.groups)
        live = [g for g in groups if any(self.can_match(c) for c in g)]
        if live and len(live) < len(groups):
            # a word no paper contains would empty the result: leave it out, and say so
            missing = [c.canonical() for g in groups if g not in live for c in g]
            self.notes.append(f"No paper contains {', '.join(missing)}; {'it was' if len(missing) == 1 else 'they were'} left out.")
            groups = live
        required: list[Any] = []
        bonuses: list[tuple[Any, Any]] = []
        highlights: list[tuple[Any, Any]] = []
        for group in groups:
            parts = [p for p in (self.clause_queries(c) for c in group) if p is not None]
            if not parts:
                continue
            matches = [p[0] for p in parts]
            required.append(matches[0] if len(matches) == 1 else Q.boolean_query([(Occur.Should, q) for q in matches]))
            bonuses += [(Occur.Should, p[1]) for p in parts if p[1] is not None]
            highlights += [(Occur.Should, p[2]) for p in parts if p[2] is not None]
        if any_group and len(required) > 1:
            required = [Q.boolean_query([(Occur.Should, q) for q in required])]
        must += [(Occur.Must, q) for q in required]
        must += bonuses  # optional: they only rank
        highlight_query = None
        if highlights:
            highlight_query = highlights[0][1] if len(highlights) == 1 else Q.boolean_query(highlights)
        by_field: dict[str, list] = {}
        for clause in parsed.filters:
            q = self.filter_query(clause)
            if q is not None:
                by_field.setdefault(clause.field, []).append(q)
        for name, queries in by_field.items():
            if name in ANY_OF_FIELDS and len(queries) > 1:
                queries = [Q.boolean_query([(Occur.Should, q) for q in queries])]
            # filters select, they do not score: a venue match must not outrank a title match
            must += [(Occur.Must, Q.const_score_query(q, 0.0)) for q in queries]
        for clause in parsed.excluded:
            q = self.text_query(clause)
            if q is not None:
                must.append((Occur.MustNot, q))
        for clause in parsed.excluded_filters:
            q = self.filter_query(clause)
            if q is not None:
                must.append((Occur.MustNot, q))
        if not any(occur == Occur.Must for occur, _ in must):
            must.insert(0, (Occur.Must, Q.all_query()))
        query = must[0][1] if len(must) == 1 and must[0][0] == Occur.Must else Q.boolean_query(must)
        return query, highlight_query


# ============================================================================ the service
class SearchService:
    """Searches one catalogue. Keep one per process: it holds the open index."""

    def __init__(self, catalog: "Catalog", index: "LexicalIndex | None" = None,
                 semantic: SemanticSearcher | None = None, progress=None, ensure: bool = True):
        from paperscope.index.lexical import IndexBusy, LexicalIndex

        self.catalog = catalog
        self.index = index or LexicalIndex.for_catalog(catalog)
        if semantic is None:
            from paperscope.index.vectors import semantic_searcher

            semantic = semantic_searcher(catalog)
        self.semantic = semantic
        self.notice = ""
        self._notice_generation: Any = None
        self._columns: tuple[Any, dict[str, str]] | None = None
        if ensure:
            state = self.index.state(catalog)
            if not state.fresh:
                try:
                    # with a complete earlier index to serve, do not wait for another writer
                    self.index.rebuild(catalog, progress=progress, wait_s=0 if state.exists else None)
                except IndexBusy:
                    if not state.exists:
                        raise
                    self.index.searcher()
                    self.notice = BUSY_NOTICE
                    self._notice_generation = self.index.generation

    def _current_notice(self) -> str:
        """The busy notice, until the other process publishes its commit."""
        if self.notice and self.index.generation != self._notice_generation:
            if self.index.state(self.catalog).fresh:
                self.notice = ""
            self._notice_generation = self.index.generation
        return self.notice

    # -------------------------------------------------------------- public
    def search(self, query: str, *, mode: str = "keyword", limit: int = 20, offset: int = 0,
               sort: str = "relevance", facets: bool = True, snippets: bool = True,
               with_papers: bool = True) -> SearchResult:
        started = time.perf_counter()
        self.index.searcher()  # notices a commit published by another process
        notice = self._current_notice()
        messages: list[str] = [notice] if notice else []
        parsed = parse_query(query)
        messages += parsed.notes
        limit, offset = self._page(limit, offset, messages)
        if sort not in SORTS:
            messages.append(f"Unknown sort '{sort}' (use relevance or date); sorted by relevance.")
            sort = "relevance"
        if mode not in MODES:
            messages.append(f"Unknown mode '{mode}' (use keyword, semantic or hybrid); used keywords.")
            mode = "keyword"
        if mode != "keyword":
            usable, why = self.semantic.available() if self.semantic else (False, "no vectors")
            if not usable:
                messages.append(f"Semantic search is not available yet: {why}; used keywords.")
                mode = "keyword"
            elif not parsed.has_text:
                mode = "keyword"  # nothing to embed: a filter-only query is a listing
        if not parsed.has_text and sort == "relevance":
            sort = "date"  # no words to rank by: newest first
        if parsed.is_empty and query.strip():
            messages.append("Nothing to search for in that query: type some words, or a filter like venue:ICML or year:2023.")

        searcher = self.index.searcher()
        topics = self._topics()
        builder = QueryBuilder(self.index, searcher, topics)
        tquery, text_query = builder.build(parsed)
        query_started = time.perf_counter()
        timings = {"parse_ms": (query_started - started) * 1000}
        if mode == "keyword":
            ranked, total = self._keyword(searcher, tquery, sort, limit, offset)
            if total == 0 and len(parsed.groups) > 1:
                any_query, any_text = builder.build(parsed, any_group=True)
                ranked, total = self._keyword(searcher, any_query, sort, limit, offset)
                if total:
                    messages.append("No paper has all of the words; showing papers with some of them.")
                    tquery, text_query = any_query, any_text
        else:
            ranked, total, tquery = self._semantic(searcher, builder, parsed, tquery, mode, limit, offset)
        query_ms = (time.perf_counter() - query_started) * 1000
        timings["search_ms"] = query_ms
        messages += builder.notes

        facets_started = time.perf_counter()
        facet_counts, facets_by = self._facets(searcher, tquery, total, query_ms) if facets and total else ({}, "")
        if facets and total and topics is not None:
            facet_counts["topic"] = self._topic_facet(searcher, tquery, total, topics)
        hits_started = time.perf_counter()
        timings["facets_ms"] = (hits_started - facets_started) * 1000
        hits = self._hits(searcher, ranked, text_query, snippets, with_papers)
        timings["hits_ms"] = (time.perf_counter() - hits_started) * 1000
        if total == 0 and not parsed.is_empty and not builder.notes:
            messages.append("No papers match; try fewer words or filters.")
        return SearchResult(
            query=query, parsed=parsed.canonical(), hits=hits, total=total, facets=facet_counts,
            mode=mode, sort=sort, limit=limit, offset=offset, message=" ".join(dict.fromkeys(m for m in messages if m)),
            took_ms=(time.perf_counter() - started) * 1000, facets_by=facets_by,
            timings={k: round(v, 3) for k, v in timings.items()},
        )

    def more_like_this(self, title: str, abstract: str = "", limit: int = 50,
                       max_terms: int = MLT_MAX_TERMS) -> list[tuple[str, float]]:
        """Papers sharing the text's most distinctive words: the top tf-idf terms, OR-ed, BM25-ranked.

        Title words count twice. Words in more than a fifth of the papers carry no signal and are skipped.
        """
        import tantivy

        searcher = self.index.searcher()
        docs = searcher.num_docs
        if not docs:
            return []
        counts = Counter(self.index.analyze(title or "")) + Counter(self.index.analyze(title or ""))
        counts.update(self.index.analyze(abstract or ""))
        weighted = []
        for token, tf in counts.items():
            if len(token) < 3 or token.isdigit():
                continue
            df = max(searcher.doc_freq("abstract", token), searcher.doc_freq("title", token))
            if df == 0 or df > max(docs * 0.2, 10):
                continue
            weighted.append((tf * math.log(1 + (docs - df + 0.5) / (df + 0.5)), token))
        if not weighted:
            return []
        Q, Occur = tantivy.Query, tantivy.Occur
        subs = []
        for _, token in heapq.nlargest(max_terms, weighted):
            subs.append((Occur.Should, Q.boost_query(Q.term_query(self.index.schema, "title", token), 2.0)))
            subs.append((Occur.Should, Q.term_query(self.index.schema, "abstract", token)))
        hits = searcher.search(Q.boolean_query(subs), max(1, min(limit, MAX_LIMIT * 4)), count=False).hits
        return [(searcher.doc(address).get_first("id"), float(score)) for score, address in hits]

    # -------------------------------------------------------------- parts
    @staticmethod
    def _page(limit: int, offset: int, messages: list[str]) -> tuple[int, int]:
        if limit < 1:
            limit = 1
        if limit > MAX_LIMIT:
            messages.append(f"At most {MAX_LIMIT} results per page.")
            limit = MAX_LIMIT
        if offset < 0:
            offset = 0
        if offset > MAX_OFFSET:
            messages.append(f"Results can be paged up to {MAX_OFFSET}; narrow the query with filters to see more.")
            offset = MAX_OFFSET
        return limit, offset

    def _keyword(self, searcher, tquery, sort: str, limit: int, offset: int):
        import tantivy

        if sort == "date":
            result = searcher.search(tquery, limit, count=True, order_by_field="date", offset=offset, order=tantivy.Order.Desc)
            return [(0.0, address) for _, address in result.hits], result.count  # the sort key is no score
        else:
            result = searcher.search(tquery, limit, count=True, offset=offset)
        return [(float(score), address) for score, address in result.hits], result.count

    def _semantic(self, searcher, builder: QueryBuilder, parsed: ParsedQuery, tquery, mode: str, limit: int, offset: int):
        """Vector ranking (semantic) or reciprocal-rank fusion with keywords (hybrid), within the filters."""
        import tantivy

        Q, Occur = tantivy.Query, tantivy.Occur
        depth = min(MAX_OFFSET, offset + limit) * 2 + 50
        text = " ".join(parsed.words())
        vector_hits = self.semantic.search(text, depth) if self.semantic else []
        ids = [pid for pid, _ in vector_hits]
        # keep only the papers the filters and exclusions allow
        no_text = ParsedQuery(excluded=parsed.excluded, filters=parsed.filters, excluded_filters=parsed.excluded_filters)
        allowed_query, _ = builder.build(no_text)
        addresses = {}
        if ids:
            restricted = Q.boolean_query([(Occur.Must, allowed_query), (Occur.Must, Q.term_set_query(builder.schema, "id", ids))])
            for _, address in searcher.search(restricted, len(ids), count=False).hits:
                addresses[searcher.doc(address).get_first("id")] = address
        fused: dict[str, float] = {}
        for rank, (pid, _) in enumerate(h for h in vector_hits if h[0] in addresses):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (60 + rank)
        if mode == "hybrid":
            keyword = searcher.search(tquery, depth, count=False).hits
            for rank, (_, address) in enumerate(keyword):
                pid = searcher.doc(address).get_first("id")
                addresses[pid] = address
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (60 + rank)
        order = sorted(fused.items(), key=lambda kv: -kv[1])
        # facets count the fused candidates (what "total" counts), not every keyword match
        candidates = Q.term_set_query(builder.schema, "id", list(fused)) if fused else Q.empty_query()
        return [(score, addresses[pid]) for pid, score in order[offset:offset + limit]], len(order), candidates

    def _topics(self) -> "SearchTopics | None":
        """The topics of the map of all papers, when one has been computed (search never computes one)."""
        from paperscope.topics import SearchTopics

        try:
            return SearchTopics.latest(self.catalog)
        except (OSError, ValueError) as exc:  # an unreadable map cache costs the facet, not the search
            log.warning("topic map unreadable: %s", exc)
            return None

    def _topic_facet(self, searcher, tquery, total: int, topics: "SearchTopics") -> list[dict[str, Any]]:
        """Matches per broad topic, counted over the best TOPIC_FACET_DEPTH matches (all of them when
        there are fewer): each match's topic comes from a table of index documents built once per map
        and index generation, so a search pays one more ranked pass, not a query per topic (26
        term-set queries of ~3,500 ids each took seconds per search at 92k papers)."""
        of_doc = topics.topic_of_documents(searcher, self.index.schema, self.index.generation)
        counts: dict[int, int] = {}
        for _, address in searcher.search(tquery, min(total, TOPIC_FACET_DEPTH), count=False).hits:
            topic = of_doc.get((address.segment_ord, address.doc))
            if topic is not None:
                counts[topic] = counts.get(topic, 0) + 1
        buckets = [{"value": topics.broad[i].id, "label": topics.broad[i].label, "count": n} for i, n in counts.items()]
        buckets.sort(key=lambda b: (-b["count"], b["label"]))
        return buckets

    def facet_strategy(self, total: int, query_ms: float, fields: int) -> str:
        """"aggregation" or "term_walk", whichever the cost model expects to be faster."""
        walk = fields * (query_ms + FACET_WALK_MS_PER_FIELD)
        return "term_walk" if walk < total * FACET_AGG_MS_PER_DOC else "aggregation"

    def _facet_columns(self, searcher) -> dict[str, str]:
        """The facet fields that hold any value in this index (an empty one costs a pass for nothing)."""
        from paperscope.index.lexical import FACET_FIELDS

        generation = self.index.generation
        if self._columns is None or self._columns[0] != generation:
            present = {name: column for name, column in FACET_FIELDS.items()
                       if searcher.terms_with_prefix(column, "", limit=1)}
            self._columns = (generation, present)
        return self._columns[1]

    def _facets(self, searcher, tquery, total: int, query_ms: float) -> tuple[dict[str, list[dict[str, Any]]], str]:
        """Counts over every matching paper, not just the page; two exact ways, chosen by cost.

        - one terms aggregation over the columnar fast fields: a pass over the matches for all
          facets; cheapest for the usual few hundred matches (~0.1 us a match);
        - per facet, the term dictionary walked with the query as a filter: costs a run of the
          query per facet but not a visit per match, so it wins when most of the catalogue matches
          (all 166k papers: 2.6 ms instead of 15 ms).
        """
        from paperscope.index.lexical import FACET_FIELDS, venue_key

        columns = self._facet_columns(searcher)
        counted: dict[str, list[tuple[Any, int]]] = {name: [] for name in FACET_FIELDS}
        strategy = self.facet_strategy(total, query_ms, len(columns)) if columns else ""
        if strategy == "aggregation":
            spec = {name: {"terms": {"field": column, "size": FACET_SIZES[name]}} for name, column in columns.items()}
            raw = searcher.aggregate(tquery, spec)
            for name in columns:
                counted[name] = [(b["key"], int(b["doc_count"])) for b in (raw.get(name) or {}).get("buckets", [])]
        elif strategy == "term_walk":
            for name, column in columns.items():
                counted[name] = [(term, int(n)) for term, n in
                                 searcher.terms_with_prefix(column, "", filter_query=tquery, limit=FACET_SIZES[name]) if n]
        out: dict[str, list[dict[str, Any]]] = {}
        for name in FACET_FIELDS:
            buckets = counted[name]
            if name == "venue":  # "ICML" and "icml" from two sources are one venue
                merged: dict[str, list] = {}
                for value, count in buckets:
                    slot = merged.setdefault(venue_key(value), [value, 0])
                    slot[1] += count
                buckets = [(v, c) for v, c in merged.values()]
                buckets.sort(key=lambda b: (-b[1], str(b[0]).lower()))
            elif name == "year":
                buckets = [(int(v), c) for v, c in buckets]
                buckets.sort(key=lambda b: -b[0])
            out[name] = [{"value": v, "count": c} for v, c in buckets]
        return out, strategy

    def _hits(self, searcher, ranked, text_query, snippets: bool, with_papers: bool) -> list[SearchHit]:
        import tantivy

        from paperscope.index.lexical import stored_paper

        if not ranked:
            return []
        generator = None
        if snippets and text_query is not None:
            generator = tantivy.SnippetGenerator.create(searcher, text_query, self.index.schema, "abstract")
            generator.set_max_num_chars(SNIPPET_CHARS)
        hits = []
        for score, address in ranked:
            doc = searcher.doc(address)
            snippet = make_snippet(doc.get_first("abstract") or "", generator, doc) if snippets else []
            hits.append(SearchHit(paper_id=doc.get_first("id"), score=score,
                                  paper=stored_paper(doc) if with_papers else None, snippet=snippet))
        return hits


def make_snippet(abstract: str, generator, doc) -> list[tuple[str, bool]]:
    """The abstract's best-matching passage as (text, is_match) fragments; its opening if nothing matches."""
    if not abstract:
        return []
    if generator is not None:
        snip = generator.snippet_from_doc(doc)
        fragment = snip.fragment()
        if fragment:
            data = fragment.encode("utf-8")  # tantivy's highlight offsets are byte offsets
            parts: list[tuple[str, bool]] = []
            at = 0
            for rng in sorted(snip.highlighted(), key=lambda r: r.start):
                if rng.start < at:
                    continue
                if rng.start > at:
                    parts.append((data[at:rng.start].decode("utf-8", "replace"), False))
                parts.append((data[rng.start:rng.end].decode("utf-8", "replace"), True))
                at = rng.end
            if at < len(data):
                parts.append((data[at:].decode("utf-8", "replace"), False))
            start = abstract.find(fragment)
            if start > 0:
                parts.insert(0, ("…", False))
            if start < 0 or start + len(fragment) < len(abstract):
                parts.append(("…", False))
            return _merge_fragments(parts)
    if len(abstract) <= SNIPPET_CHARS:
        return [(abstract, False)]
    cut = abstract.rfind(" ", 0, SNIPPET_CHARS)
    return [(abstract[: cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS].rstrip() + " …", False)]


def _merge_fragments(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for text, match in parts:
        if not text:
            continue
        if out and out[-1][1] == match:
            out[-1] = (out[-1][0] + text, match)
        else:
            out.append((text, match))
    return out


_SERVICES: "weakref.WeakKeyDictionary[Catalog, SearchService]" = weakref.WeakKeyDictionary()
_SERVICES_LOCK = threading.Lock()


def service_for(catalog: "Catalog") -> SearchService:
    """The search service of a catalogue object, opened once and kept while the catalogue lives."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(catalog)
        if service is None:
            service = _SERVICES[catalog] = SearchService(catalog)
        return service


def search(catalog: "Catalog", query: str, **options: Any) -> SearchResult:
    """One search on a catalogue (opens, and if needed builds, its keyword index)."""
    return service_for(catalog).search(query, **options)


def more_like_this(catalog: "Catalog", title: str, abstract: str = "", limit: int = 50) -> list[str]:
    """Ids of the papers sharing the most distinctive words of a title and abstract, best first (BM25)."""
    return [pid for pid, _ in service_for(catalog).more_like_this(title, abstract, limit)]
