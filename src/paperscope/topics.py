"""Topics and the topic map of a scope of papers: clusters, their labels, and a 2-D layout.

A *scope* is a venue, a year, a search result, or every paper. Its papers are clustered into fine
topics (k-means on the paper vectors), and the fine topics are grouped into a few broad ones (Ward
linkage of their centroids), so topics nest. Each topic is labelled with the key phrases that are
common in it and rare elsewhere in the scope (:func:`label_terms`), its most central papers are the
ones nearest its centroid, and every paper gets a position on a 2-D map (:func:`layout`).

Everything here is derived data, cached beside the catalogue under ``index_root(catalog)/topics/``
and keyed by the scope, the papers in it (id and content hash), the vectors used and the
algorithm's version. A second call for the same scope reads the cache; a changed scope is computed
anew, except that when only a few papers came or went (``INCREMENTAL_SHARE``) the newcomers are
placed on the previous map and the labels recounted, which takes seconds instead of minutes.

Vectors: the catalogue's paper vectors (``paperscope embed``; the MiniLM model first, then the
static fast tier) when they cover the scope, else TF-IDF vectors reduced by SVD (LSA), computed on
the spot, so a catalogue that was never embedded still gets topics and a map, and says so.

Choices were measured (``paperscope bench topics``); see the constants below for the figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from paperscope.text import clean_markup

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog

log = logging.getLogger("paperscope.topics")

# Bump when clustering, labelling or layout change: cached maps of another version are recomputed.
ALGORITHM_VERSION = "1"
# A model's vectors are used when they cover this share of the scope's papers (the rest are left
# off the map and counted); below it, every paper is represented by TF-IDF + SVD instead.
VECTOR_COVERAGE = 0.9
# When at most this share of a scope's papers changed since its last map, the map is updated in
# place (newcomers placed by their nearest neighbours) rather than recomputed.
INCREMENTAL_SHARE = 0.05
LABEL_TERMS = 4                  # key phrases per label
CENTRAL_PAPERS = 5               # most central papers listed per topic
VOCABULARY_SAMPLE = 20_000       # documents the phrase vocabulary is drawn from (all of a smaller scope)
LSA_DIMS = 128

# progress(stage, done, total)
Progress = Callable[[str, int, int], None]


class TopicsError(RuntimeError):
    """A scope that cannot be mapped (no papers, unknown topic); the message says what to do."""


# =============================================================================================
# Scopes
# =============================================================================================


@dataclass(frozen=True)
class Scope:
    """Which papers a map is made of: a venue and/or a year, narrowed by a search query; or all."""

    venue: str = ""
    year: int | None = None
    query: str = ""

    @classmethod
    def of(cls, venue: str | None = None, year: int | str | None = None, query: str | None = None) -> "Scope":
        y: int | None = None
        if year not in (None, ""):
            try:
                y = int(str(year).strip())
            except ValueError:
                raise TopicsError(f"“{year}” is not a year.") from None
        return cls(" ".join((venue or "").split()), y, " ".join((query or "").split()))

    @property
    def is_all(self) -> bool:
        return not (self.venue or self.year or self.query)

    def canonical(self) -> str:
        return json.dumps([self.venue.lower(), self.year, self.query], ensure_ascii=False)

    def describe(self) -> str:
        parts = [p for p in (self.venue, str(self.year) if self.year else "") if p]
        text = " ".join(parts) if parts else "all papers"
        return f"{text} matching “{self.query}”" if self.query else text

    def params(self) -> dict[str, str]:
        """URL parameters of the scope (``within`` is the search query, as on the map page)."""
        out = {"venue": self.venue, "year": str(self.year or ""), "within": self.query}
        return {k: v for k, v in out.items() if v}


def scope_paper_ids(catalog: "Catalog", scope: Scope) -> list[str]:
    """The ids of the papers in a scope, sorted."""
    if scope.query:
        return sorted(search_ids(catalog, scope.query, venue=scope.venue, year=scope.year))
    if scope.venue or scope.year:
        rows = catalog.appearances_where(venue=scope.venue or None, year=scope.year)
        return sorted({r["paper_id"] for r in rows})
    return [pid for pid, _ in catalog.content_hashes()]


def search_ids(catalog: "Catalog", query: str, venue: str = "", year: int | None = None,
               limit: int | None = None) -> list[str]:
    """Every paper matching a query of the search language (not one page of it), best first.

    ``venue``/``year`` are added as filters. Uses the keyword index (rebuilt first if stale).
    """
    from paperscope.search import ParsedQuery, QueryBuilder, parse_query, service_for

    text = query
    if venue:
        text += f' venue:"{venue.replace(chr(34), " ")}"'
    if year:
        text += f" year:{int(year)}"
    parsed: ParsedQuery = parse_query(text)
    if parsed.is_empty:
        return []
    service = service_for(catalog)
    searcher = service.index.searcher()
    builder = QueryBuilder(service.index, searcher)
    tquery, _ = builder.build(parsed)
    total = searcher.num_docs
    if not total:
        return []
    result = searcher.search(tquery, min(total, limit or total), count=False)
    if not result.hits and len(parsed.groups) > 1:  # as search does: some of the words rather than none
        tquery, _ = builder.build(parsed, any_group=True)
        result = searcher.search(tquery, min(total, limit or total), count=False)
    return [searcher.doc(address).get_first("id") for _, address in result.hits]


# =============================================================================================
# Paper texts and vectors
# =============================================================================================


def paper_texts(catalog: "Catalog", ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Clean (title, abstract) of each paper."""
    out: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), 2000):
        for p in catalog.papers(list(ids[start:start + 2000]), with_appearances=False):
            out[p["id"]] = (clean_markup(p.get("title") or ""), clean_markup(p.get("abstract") or ""))
    return out


def candidate_models() -> list[str]:
    """Names of the vector models the catalogue may hold, best first (MiniLM, then its static tier)."""
    from paperscope.index.embedder import MODEL_NAME, minilm_spaces

    return [*minilm_spaces(), *(f"{MODEL_NAME}/static-{d}d" for d in (256, 384, 512, 128, 64))]


@dataclass
class Representation:
    model: str                  # vector model name, or "tfidf-lsa"
    ids: list[str]              # papers represented (scope order)
    matrix: np.ndarray          # float32, L2-normalised rows
    missing: list[str]          # scope papers left out (no vector)
    note: str = ""


NO_VECTORS_NOTE = ("No paper vectors cover these papers yet, so topics come from their words (TF-IDF); "
                   "run `paperscope embed` for topics by meaning.")


def represent(catalog: "Catalog", ids: Sequence[str], texts: dict[str, tuple[str, str]] | None = None,
              vectors: str = "auto") -> Representation:
    """Vectors of the scope's papers: stored ones when they cover the scope, else TF-IDF + SVD.

    ``vectors``: ``auto``, ``tfidf`` (never stored vectors) or a model name.
    """
    ids = list(ids)
    stored = stored_representation(catalog, ids, vectors) if vectors != "tfidf" else None
    if stored is not None:
        return stored
    texts = texts if texts is not None else paper_texts(catalog, ids)
    note = NO_VECTORS_NOTE if vectors != "tfidf" else ""
    return Representation("tfidf-lsa", ids, lsa_vectors([_doc_text(texts.get(pid)) for pid in ids]), [], note)


def stored_representation(catalog: "Catalog", ids: list[str], vectors: str = "auto") -> Representation | None:
    """The scope's stored vectors of the model that covers most of it, or None when none covers
    ``VECTOR_COVERAGE`` of it (``vectors`` = ``auto``); a named model that does not is an error."""
    from paperscope.index.vectors import load_vector_index

    models = candidate_models() if vectors == "auto" else [vectors]
    best = None
    for model in models:
        index = load_vector_index(catalog, model)
        if index is None:
            continue
        rows = [index.position.get(pid) for pid in ids]
        have = sum(r is not None for r in rows)
        if best is None or have > best[1]:
            best = (model, have, index, rows)
        if have >= VECTOR_COVERAGE * len(ids):
            break
    if best is not None and ids and best[1] >= VECTOR_COVERAGE * len(ids):
        model, have, index, rows = best
        kept = [pid for pid, r in zip(ids, rows) if r is not None]
        missing = [pid for pid, r in zip(ids, rows) if r is None]
        matrix = np.ascontiguousarray(index.matrix[[r for r in rows if r is not None]], dtype=np.float32)
        note = (f"{len(missing)} papers have no vectors yet and are not on the map; run `paperscope embed`."
                if missing else "")
        return Representation(model, kept, matrix, missing, note)
    if vectors != "auto":
        raise TopicsError(f"the papers of this scope have no {vectors} vectors; run `paperscope embed` first")
    return None


def _doc_text(pair: tuple[str, str] | None) -> str:
    if not pair:
        return ""
    title, abstract = pair
    return f"{title}. {title}. {abstract}"  # the title counts twice, as in search


def lsa_vectors(docs: list[str], dims: int = LSA_DIMS, seed: int = 0) -> np.ndarray:
    """TF-IDF (sublinear, English stop words) reduced by truncated SVD, rows L2-normalised."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(docs)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2 if n > 50 else 1, max_df=0.5 if n > 50 else 1.0,
                          max_features=100_000, dtype=np.float32, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9\-]+\b")
    try:
        tfidf = vec.fit_transform(docs)
    except ValueError:  # no usable word at all
        return np.ones((n, 2), np.float32) / math.sqrt(2)
    k = max(1, min(dims, tfidf.shape[1] - 1, n - 1))
    if k < 2:
        return _normalise(np.asarray(tfidf.todense(), dtype=np.float32)) if tfidf.shape[1] else np.ones((n, 2), np.float32)
    reduced = TruncatedSVD(k, random_state=seed, algorithm="randomized", n_iter=5).fit_transform(tfidf)
    return _normalise(reduced.astype(np.float32))


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.clip(norms, 1e-12, None)).astype(np.float32)


# =============================================================================================
# Clustering
# =============================================================================================


def topic_counts(n: int) -> tuple[int, int]:
    """(fine, broad) numbers of topics for n papers: about sqrt(n) fine ones (26 for a 687-paper
    venue, 300 for 92k papers), and about 1.5 x sqrt(fine) broad ones (8 and 26)."""
    if n < 4:
        return 1, 1
    fine = int(min(400, max(2, round(math.sqrt(n)))))
    fine = min(fine, n // 2)
    broad = int(min(30, max(2, round(1.5 * math.sqrt(fine)))))
    return fine, min(broad, fine)


def cluster(matrix: np.ndarray, n_fine: int, n_broad: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fine topic of each row (k-means on the unit vectors, i.e. spherical k-means in effect), and
    the broad topic of each fine one (Ward linkage of the fine centroids, cut at ``n_broad``).

    Returns (fine label per row, broad label per fine topic), numbered so that broad topics come by
    decreasing size and the fine topics of a broad one follow each other, largest first.
    """
    n = len(matrix)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    if n_fine <= 1 or n < 4:
        return np.zeros(n, np.int32), np.zeros(1, np.int32)
    from threadpoolctl import threadpool_limits

    # BLAS/OpenMP threads cost more than they give on small scopes (687 papers: 6.3 s with the
    # default pools on a busy 2-core machine, 0.8 s with one thread)
    with threadpool_limits(1 if n < 20_000 else _threads()):
        return _kmeans_ward(matrix, n_fine, n_broad, seed)


def _kmeans_ward(matrix: np.ndarray, n_fine: int, n_broad: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = len(matrix)
    if n > 30_000:
        km = MiniBatchKMeans(n_fine, random_state=seed, batch_size=4096, n_init=3, max_no_improvement=30,
                             reassignment_ratio=0.001)
    else:
        km = KMeans(n_fine, random_state=seed, n_init=3)
    fine = km.fit_predict(matrix).astype(np.int32)
    present = np.unique(fine)
    centroids = _normalise(np.stack([matrix[fine == f].mean(axis=0) for f in present]))
    if len(present) <= n_broad or n_broad <= 1:
        broad_of = np.arange(len(present)) if n_broad > 1 else np.zeros(len(present), int)
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        broad_of = fcluster(linkage(centroids, "ward"), n_broad, "maxclust") - 1
    remap = {f: i for i, f in enumerate(present)}
    fine = np.array([remap[f] for f in fine], np.int32)
    return _renumber(fine, np.asarray(broad_of, np.int32))


def _renumber(fine: np.ndarray, broad_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fine_sizes = np.bincount(fine, minlength=len(broad_of))
    broad_sizes = np.bincount(broad_of, weights=fine_sizes)
    broad_order = sorted(range(len(broad_sizes)), key=lambda b: (-broad_sizes[b], b))
    broad_rank = {b: i for i, b in enumerate(b for b in broad_order if broad_sizes[b] > 0)}
    fine_order = sorted(range(len(broad_of)), key=lambda f: (broad_rank[broad_of[f]], -fine_sizes[f], f))
    fine_rank = np.empty(len(broad_of), np.int32)
    fine_rank[fine_order] = np.arange(len(broad_of))
    new_broad = np.array([broad_rank[broad_of[f]] for f in fine_order], np.int32)
    return fine_rank[fine], new_broad


# =============================================================================================
# Labels: key phrases
# =============================================================================================

# Words that end a phrase and are never a label (function words, and the boilerplate of abstracts).
STOP_WORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although always am among
amongst amount an and another any anyhow anyone anything anyway anywhere are around as at back be became because
become becomes becoming been before beforehand behind being below beside besides between beyond both bottom but by
can cannot could de describe detail do done down due during each eg either else elsewhere enough etc even ever
every everyone everything everywhere except few fifteen fify fill find fire five for former formerly forty found
four from front full further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers
herself him himself his how however hundred i ie if in inc indeed interest into is it its itself keep last latter
latterly least less ltd made many may me meanwhile might mill mine more moreover most mostly move much must my
myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of off
often on once one only onto or other others otherwise our ours ourselves out over own part per perhaps please put
rather re same see seem seemed seeming seems serious several she should show side since sincere six sixty so some
somehow someone something sometime sometimes somewhere still such system take ten than that the their them
themselves then thence there thereafter thereby therefore therein thereupon these they thick thin third this those
though three through throughout thru thus to together too top toward towards twelve twenty two un under until up
upon us very via was we well were what whatever when whence whenever where whereafter whereas whereby wherein
whereupon wherever whether which while whither who whoever whole whom whose why will with within without would yet
you your yours yourself yourselves
paper papers propose proposes proposed proposing approach approaches present presents presented introduce introduces
introduced show shows shown showing demonstrate demonstrates demonstrated novel new based using use used uses usage
result results experiments experiment experimental empirical empirically significantly significant achieve achieves
achieved achieving state-of-the-art sota existing work works study studies problem problems performance improve
improves improved improving improvement improvements outperform outperforms outperforming provide provides provided
effective effectively able different various important recent recently widely wide key main first second simple
better best good also well many given way ways allow allows allowing enable enables enabling furthermore specifically
particular particularly extensive extensively evaluate evaluated evaluation evaluations compared comparison prior
previous previously respectively obtain obtained lead leads make makes making including terms number order usually
typically often however like paradigm framework frameworks method methods technique techniques leverage leverages
leveraging effectiveness superior remains remain challenging challenge challenges crucial address addresses
addressing aim aims goal propose novel despite across furthermore thereby surprisingly notably strong stronger
code available publicly github https http www com org com github io url
""".split())

# A word (hyphenated words are one), or a punctuation mark, which ends a phrase like a stop word.
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[^\sa-z0-9]")


def phrase_tokens(text: str) -> list[str]:
    """Words of a text as they may make up a phrase; stop words become ``None`` (phrase breaks)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        tok = tok.removesuffix("'s")
        if tok in STOP_WORDS or len(tok) < 2 or not any(c.isalpha() for c in tok) or "'" in tok:
            out.append(None)
        else:
            out.append(tok)
    return out


def phrases(text: str, max_words: int = 3) -> list[str]:
    """Candidate key phrases of a text: runs of 1-3 consecutive words with no stop word among them
    (so a phrase is always a literal part of the text, as a reader would find it)."""
    toks = phrase_tokens(text)
    out = []
    n = len(toks)
    for i, tok in enumerate(toks):
        if tok is None:
            continue
        out.append(tok)
        phrase = tok
        for j in range(i + 1, min(n, i + max_words)):
            nxt = toks[j]
            if nxt is None:
                break
            phrase = phrase + " " + nxt
            out.append(phrase)
    return out


def singular(word: str) -> str:
    """A crude singular, enough to count "network" and "networks" (or "gan" and "gans") as one phrase."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "as", "os", "ys")):
        return word[:-1]
    return word


def phrase_key(phrase: str) -> str:
    return " ".join(singular(w) for w in phrase.split())


@dataclass
class PhraseMatrix:
    """Which papers contain which phrases: a binary papers x phrases matrix (scipy CSR).

    Singular and plural forms are one column, named by the form most papers use.
    """

    vocabulary: list[str]
    matrix: Any

    @classmethod
    def build(cls, docs: list[str], sample: int = VOCABULARY_SAMPLE, seed: int = 0) -> "PhraseMatrix":
        from scipy.sparse import csr_matrix
        from sklearn.feature_extraction.text import CountVectorizer

        n = len(docs)
        min_df = 2 if n >= 20 else 1
        vec = CountVectorizer(analyzer=phrases, binary=True, min_df=min_df, dtype=np.int32)
        try:
            if n > sample:  # the vocabulary from a sample (memory), then every paper counted against it
                rng = np.random.default_rng(seed)
                vec.fit([docs[i] for i in rng.choice(n, sample, replace=False)])
                matrix = vec.transform(docs)
            else:
                matrix = vec.fit_transform(docs)
        except ValueError:  # no phrase at all
            return cls([], csr_matrix((n, 0), dtype=np.int32))
        surface = list(vec.get_feature_names_out())
        keys: dict[str, int] = {}
        column = np.array([keys.setdefault(phrase_key(t), len(keys)) for t in surface])
        merge = csr_matrix((np.ones(len(surface), np.int32), (np.arange(len(surface)), column)),
                           shape=(len(surface), len(keys)))
        merged = (matrix.tocsr() @ merge).tocsr()
        merged.data[:] = 1
        df = np.asarray(matrix.sum(axis=0)).ravel()
        names = [""] * len(keys)
        best = np.full(len(keys), -1)
        for i, (t, c) in enumerate(zip(surface, column)):
            if df[i] > best[c]:
                best[c], names[c] = df[i], t
        return cls(names, merged)


def group_counts(matrix, labels: np.ndarray, groups: int):
    """Per group, the number of its papers containing each phrase (groups x phrases, CSR)."""
    from scipy.sparse import csr_matrix

    n = matrix.shape[0]
    onehot = csr_matrix((np.ones(n, np.int32), (labels, np.arange(n))), shape=(groups, n))
    return (onehot @ matrix).tocsr()


_OLD, _ALPHA = 0.0, 0.6
_MIN_LIFT = 1.0
# Words of every machine-learning abstract: never a label on their own (they stay inside phrases,
# "language model", "graph neural networks"). Measured on 92k papers, they made up many labels.
GENERIC_WORDS = frozenset("""
model models modeling modelling learning learn learned learns training train trained data dataset datasets network networks
neural deep algorithm algorithms task tasks prediction predictions system systems function functions information
analysis process processing design applications application time set sets real-world world accuracy error
representation representations features feature approach framework solution solutions structure structures
input inputs output outputs space value values level levels quality type types number large small high low better
""".split())
_ALLOWED: dict[int, tuple[int, np.ndarray]] = {}


def _allowed(vocabulary: list[str]) -> np.ndarray:
    """Which phrases may be label terms (not a lone generic word); computed once per vocabulary."""
    hit = _ALLOWED.get(id(vocabulary))
    if hit is None or hit[0] != len(vocabulary):
        mask = np.fromiter((v not in GENERIC_WORDS for v in vocabulary), bool, len(vocabulary))
        _ALLOWED.clear()
        hit = _ALLOWED[id(vocabulary)] = (len(vocabulary), mask)
    return hit[1]
LABEL_METHODS = ("best", "lift", "lift-cover", "ctfidf")


def label_terms(in_group: np.ndarray, group_size: int, overall: np.ndarray, total: int, vocabulary: list[str],
                k: int = LABEL_TERMS, method: str = "best", members=None) -> list[tuple[str, float]]:
    """The key phrases of a group of papers, best first, with their scores.

    ``lift`` (ours): each phrase is scored by p * log(p / q), p being the share of the group's papers
    that contain it and q its share in the whole scope: frequent in the group *and* rarer outside it
    (the phrase's contribution to the KL divergence of the group from the scope). Phrases are then
    chosen greedily: a phrase that is part of one already chosen is skipped, and a longer phrase
    that says the same (nearly as frequent) replaces its shorter part ("reinforcement" ->
    "reinforcement learning").

    ``lift-cover``: the same, but each next phrase is scored on the group's papers that the phrases
    already chosen do not mention (``members``: the group's rows of the phrase matrix), so the label
    speaks for more of the group rather than repeating one facet of it.

    ``ctfidf``: BERTopic's class-based TF-IDF on the same phrases (document counts), top k.

    ``best`` (the default): ``lift-cover``'s phrases or ``ctfidf``'s, whichever fits the group
    better (:func:`label_fit`). On 92k papers neither wins everywhere: lift-cover covered more of
    the fine topics but c-TF-IDF was more specific for the broad ones (coverage/precision 0.818/0.255
    vs 0.853/0.268), so each topic takes the better of the two, judged on its own papers only.
    """
    if group_size <= 0 or not len(vocabulary):
        return []
    if method == "best":
        if members is None:
            return label_terms(in_group, group_size, overall, total, vocabulary, k, "lift-cover")
        candidates = [label_terms(in_group, group_size, overall, total, vocabulary, k, m, members)
                      for m in ("lift-cover", "ctfidf")]
        return max(candidates, key=lambda terms: label_fit(terms, in_group, overall, members, vocabulary))
    p = in_group / group_size
    q = np.maximum(overall / max(total, 1), 1e-9)
    if method == "ctfidf":
        # tf of the phrase in the class (normalised) x log(1 + A / f_t), A = mean phrases per class
        avg = overall.sum() / max(1, total / max(group_size, 1))
        score = (in_group / max(in_group.sum(), 1)) * np.log1p(avg / np.maximum(overall, 1))
        top = np.argsort(-score)[:k]
        return [(vocabulary[i], float(score[i])) for i in top if in_group[i] > 0]
    if method not in LABEL_METHODS:
        raise ValueError(f"unknown label method {method!r} (use {', '.join(LABEL_METHODS)})")
    minimum = 2 if group_size >= 6 else 1
    lift = np.log(np.maximum(p, 1e-12) / q)
    score = np.where((in_group >= minimum) & (p > q * _MIN_LIFT) & _allowed(vocabulary), p * lift, 0.0)
    pool = [int(i) for i in np.argsort(-score)[:60] if score[i] > 0]
    cover = None
    if method == "lift-cover" and members is not None and pool:
        cover = np.asarray(members[:, pool].todense()).astype(bool)   # group papers x pool phrases
    return _choose(pool, score, lift, p, vocabulary, k, cover)


def label_fit(terms: Sequence[tuple[str, float]], in_group: np.ndarray, overall: np.ndarray, members,
              vocabulary: list[str]) -> float:
    """How well phrases label a group: the harmonic mean of their coverage (share of the group's
    papers holding at least one) and their precision (per phrase, the share of the papers holding
    it that are in the group, averaged) -- the two figures `paperscope bench topics` reports."""
    if not terms:
        return 0.0
    columns = _columns(vocabulary)
    cols = [columns[t] for t, _ in terms]
    coverage = float((np.asarray(members[:, cols].sum(axis=1)).ravel() > 0).mean())
    precision = float(np.mean(in_group[cols] / np.maximum(overall[cols], 1)))
    return 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0


_COLUMNS: dict[int, tuple[int, dict[str, int]]] = {}


def _columns(vocabulary: list[str]) -> dict[str, int]:
    """Phrase -> column of a vocabulary; computed once per vocabulary (like :func:`_allowed`)."""
    hit = _COLUMNS.get(id(vocabulary))
    if hit is None or hit[0] != len(vocabulary):
        _COLUMNS.clear()
        hit = _COLUMNS[id(vocabulary)] = (len(vocabulary), {t: i for i, t in enumerate(vocabulary)})
    return hit[1]


def _choose(pool: list[int], score: np.ndarray, lift: np.ndarray, p: np.ndarray, vocabulary: list[str], k: int,
            cover: np.ndarray | None = None) -> list[tuple[str, float]]:
    """Greedy choice of non-redundant phrases from a pool (see :func:`label_terms`)."""
    words = {i: f" {vocabulary[i]} " for i in pool}
    column = {i: c for c, i in enumerate(pool)}
    chosen: list[int] = []
    left = list(pool)
    uncovered = np.ones(cover.shape[0], bool) if cover is not None else None
    while left and len(chosen) < k:
        if cover is not None and uncovered.any():
            gains = {i: (cover[uncovered, column[i]].sum() + _OLD * cover[~uncovered, column[i]].sum())
                     / cover.shape[0] * lift[i] ** _ALPHA for i in left}
            i = max(left, key=lambda j: (gains[j], score[j]))
        else:
            i = left[0]
        left.remove(i)
        if any(words[i] in words[c] for c in chosen):
            continue  # part of a phrase already chosen
        # a longer phrase in the pool that contains this one and is nearly as common says it better
        longer = [j for j in pool if j != i and words[i] in words[j] and p[j] >= 0.7 * p[i]]
        if longer:
            i = max(longer, key=lambda j: (p[j], score[j]))
            if i in chosen:
                continue
            if i in left:
                left.remove(i)
        chosen = [c for c in chosen if words[c] not in words[i]]  # drop parts of the new phrase
        chosen.append(i)
        if uncovered is not None:
            uncovered &= ~cover[:, column[i]]
    chosen = sorted(chosen[:k], key=lambda i: -score[i])   # shown most distinctive first
    return [(vocabulary[i], float(score[i])) for i in chosen]


def label_text(terms: Sequence[str]) -> str:
    return ", ".join(terms[:3]) if terms else "(no distinctive words)"


def _forms(word: str) -> set[str]:
    base = singular(word)
    forms = {word, base, base + "s", base + "es"}
    if base.endswith("y"):
        forms.add(base[:-1] + "ies")
    return forms


def _word_forms(word: str) -> str:
    return "(?:" + "|".join(sorted(map(re.escape, _forms(word)), key=len, reverse=True)) + ")"


def term_pattern(term: str) -> re.Pattern:
    """A phrase as words in a lower-cased text, singular or plural, hyphen or space between words."""
    return re.compile(r"(?<![a-z0-9])" + r"[\s\-]+".join(_word_forms(w) for w in term.split()) + r"(?![a-z0-9])")


_WORD = re.compile(r"[a-z0-9]+")


def label_quality(groups: dict[Any, list[int]], terms: dict[Any, list[str]], docs: list[str]) -> dict[str, float]:
    """How well labels describe their topics.

    coverage: per topic, the share of its papers whose own title or abstract contains at least one
    of its label terms (as words, any case); ``coverage_mean`` averages topics, ``coverage_papers``
    counts papers. precision: per label term, the share of the scope's papers containing it that
    are in the topic (how specific the term is to its topic), averaged over terms then topics.
    """
    lowered = [d.lower() for d in docs]
    coverages, precisions, covered_papers, papers = [], [], 0, 0
    cache: dict[str, np.ndarray] = {}
    # Which papers hold each word of the labels (any form), so each phrase's pattern is only tried on
    # papers that have all its words: exact, and fast enough for 100k papers and 1,500 phrases.
    wanted = {f for ts in terms.values() for t in (ts or ()) for w in _WORD.findall(t) for f in _forms(w)}
    holders: dict[str, list[int]] = {w: [] for w in wanted}
    for i, d in enumerate(lowered):
        for w in set(_WORD.findall(d)) & wanted:
            holders[w].append(i)

    def has(term: str) -> np.ndarray:
        if term not in cache:
            pattern = term_pattern(term)
            sets = [set().union(*(holders.get(f, ()) for f in _forms(w))) for w in _WORD.findall(term)]
            candidates = sets[0].intersection(*sets[1:]) if sets else set()
            mask = np.zeros(len(lowered), bool)
            for i in candidates:
                if pattern.search(lowered[i]):
                    mask[i] = True
            cache[term] = mask
        return cache[term]

    for g, members in groups.items():
        ts = terms.get(g) or []
        if not members:
            continue
        members_arr = np.asarray(members)
        hit = np.zeros(len(members_arr), bool)
        precs = []
        for t in ts:
            mask = has(t)
            hit |= mask[members_arr]
            total = int(mask.sum())
            precs.append(int(mask[members_arr].sum()) / total if total else 0.0)
        coverages.append(float(hit.mean()))
        covered_papers += int(hit.sum())
        papers += len(members_arr)
        precisions.append(float(np.mean(precs)) if precs else 0.0)
    return {
        "topics": len(coverages),
        "coverage_mean": round(float(np.mean(coverages)), 4) if coverages else 0.0,
        "coverage_papers": round(covered_papers / papers, 4) if papers else 0.0,
        "coverage_min": round(float(np.min(coverages)), 4) if coverages else 0.0,
        "precision_mean": round(float(np.mean(precisions)), 4) if precisions else 0.0,
        "distinct_labels": len({tuple(terms.get(g) or ()) for g in groups}),
    }


# =============================================================================================
# Layout
# =============================================================================================

# Chosen by neighbourhood preservation (trustworthiness@10 / kNN recall@10 between the vectors and
# the map; `paperscope bench topics`), 2 busy cores. ICLR 2020, 687 papers, MiniLM vectors: t-SNE
# (openTSNE) 0.941 / 0.463, scikit-learn t-SNE 0.939 / 0.466, UMAP 0.931 / 0.412, PaCMAP 0.915 /
# 0.371, PCA 0.755 / 0.105, the map the ICLR site shipped 0.840 / 0.275. 10k paperlists papers:
# openTSNE 0.923 / 0.246 in 80 s, scikit-learn t-SNE 0.926 / 0.251 in 497 s, UMAP 0.836 / 0.094 in
# 278 s, PCA 0.718 / 0.011. openTSNE keeps t-SNE's quality at a sixth of scikit-learn's time, with no
# numba (UMAP and PaCMAP need numba + llvmlite, ~210 MB, and PaCMAP took 76 s to import).
LAYOUT_METHODS = ("tsne", "pca")


def layout(matrix: np.ndarray, method: str = "tsne", seed: int = 0, progress: Callable[[int, int], None] | None = None,
           threads: int | None = None) -> np.ndarray:
    """2-D positions of the rows (float32, n x 2)."""
    n = len(matrix)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 4:
        return np.array([[math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)] for i in range(n)], np.float32)
    if method == "pca":
        return _pca2(matrix)
    if method != "tsne":
        raise ValueError(f"unknown layout method {method!r} (use {', '.join(LAYOUT_METHODS)})")
    return _tsne(matrix, seed, progress, threads)


def _pca2(matrix: np.ndarray) -> np.ndarray:
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[: min(len(centred), 20_000)], full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


# t-SNE iterations: 250 with early exaggeration, then 250 more. On 10k papers 250 + 500 (openTSNE's
# default) gave trustworthiness 0.920 / kNN recall 0.247 and 250 + 250 gave 0.923 / 0.246, in half the time.
TSNE_ITERATIONS = (250, 250)
# Above this many papers, t-SNE runs on a sample of this size; every other paper starts at the mean
# position of its 10 nearest sampled neighbours, and then all of them are refined together with
# ``TSNE_REFINE`` plain iterations (openTSNE's recipe for large data, minus its second early phase).
TSNE_SAMPLE = 25_000
TSNE_REFINE = 150


def _tsne(matrix: np.ndarray, seed: int, progress, threads: int | None) -> np.ndarray:
    import openTSNE

    n = len(matrix)
    threads = threads or (1 if n < 5000 else _threads())   # threads only pay off on large maps
    early, main = TSNE_ITERATIONS
    large = n > TSNE_SAMPLE
    total = early + main + (TSNE_REFINE if large else 0)
    done = [0]

    def report(iteration, error, embedding):  # openTSNE callback, every 25 iterations
        done[0] += 25
        if progress:
            progress(min(done[0], total), total)
        return False

    def embed(data: np.ndarray, init: np.ndarray, phases) -> np.ndarray:
        m = len(data)
        affinities = openTSNE.affinity.PerplexityBasedNN(
            data, perplexity=float(min(30.0, max(2.0, (m - 1) / 3.5))), metric="cosine", n_jobs=threads,
            random_state=seed, method="annoy" if m > 1000 else "exact", verbose=False)
        emb = openTSNE.TSNEEmbedding(init.astype(np.float64), affinities, n_jobs=threads, random_state=seed,
                                     callbacks=report, callbacks_every_iters=25, verbose=False)
        for iterations, options in phases:
            emb = emb.optimize(n_iter=iterations, **options)
        return np.asarray(emb, dtype=np.float32)

    phases = [(early, {"exaggeration": 12, "momentum": 0.5}), (main, {"momentum": 0.8})]
    if not large:
        init = _pca2(matrix)
        return embed(matrix, init / (np.std(init[:, 0]) or 1.0) * 1e-4, phases)  # openTSNE's own PCA init scale
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, TSNE_SAMPLE, replace=False))
    init = _pca2(matrix[sample])
    placed = embed(matrix[sample], init / (np.std(init[:, 0]) or 1.0) * 1e-4, phases)
    everyone = np.empty((n, 2), np.float32)
    everyone[sample] = placed
    rest = np.setdiff1d(np.arange(n), sample)
    sampled = matrix[sample]
    for start in range(0, len(rest), 2048):
        rows = rest[start:start + 2048]
        sims = matrix[rows] @ sampled.T
        nearest = np.argpartition(-sims, 10, axis=1)[:, :10]
        everyone[rows] = placed[nearest].mean(axis=1)
    spread = float(np.std(placed[:, 0])) or 1.0
    everyone[rest] += rng.normal(0, spread * 1e-3, (len(rest), 2)).astype(np.float32)
    return embed(matrix, everyone, [(TSNE_REFINE, {"momentum": 0.8})])


def _threads() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(os.cpu_count() or 1, 8))


def neighbourhood_preservation(high: np.ndarray, low: np.ndarray, k: int = 10, sample: int | None = 2000,
                               seed: int = 0) -> dict[str, float]:
    """How well a 2-D layout keeps each paper's nearest neighbours (cosine in the vector space).

    ``knn_recall``: the share of a paper's k nearest neighbours in the vector space that are among
    its k nearest on the map. ``trustworthiness``: Venna & Kaski's measure (sklearn's), 1 when no
    map neighbour is a stranger in the vector space, penalising each by how far down the
    vector-space ranking it is. Exact, averaged over ``sample`` papers (all when None or n is
    smaller), each ranked against every paper.
    """
    from scipy.spatial import cKDTree

    high = np.asarray(high, np.float32)
    low = np.asarray(low, np.float64)
    n = len(high)
    if n <= k + 1:
        return {"knn_recall": 1.0, "trustworthiness": 1.0, "k": k, "papers": n}
    rng = np.random.default_rng(seed)
    queries = np.arange(n) if sample is None or sample >= n else np.sort(rng.choice(n, sample, replace=False))
    _, low_nn = cKDTree(low).query(low[queries], k=k + 1)
    recall_sum, penalty = 0.0, 0.0
    for start in range(0, len(queries), 256):
        q = queries[start:start + 256]
        sims = high[q] @ high.T
        sims[np.arange(len(q)), q] = np.inf                        # itself ranks 0
        order = np.argsort(-sims, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.broadcast_to(np.arange(n), order.shape), axis=1)
        for row, qi in enumerate(q):
            mine = [j for j in low_nn[start + row] if j != qi][:k]
            r = ranks[row, mine]                                   # 1 = nearest in the vector space
            recall_sum += float(np.sum(r <= k)) / k
            penalty += float(np.clip(r - k, 0, None).sum())
    m = len(queries)
    trust = 1.0 - 2.0 / (m * k * (2 * n - 3 * k - 1)) * penalty
    return {"knn_recall": round(recall_sum / m, 4), "trustworthiness": round(trust, 4), "k": k, "papers": n,
            "queries": m}


# =============================================================================================
# The topic map: computing, caching, updating
# =============================================================================================


@dataclass
class Topic:
    """One topic of a map. ``id`` is ``<map>-<broad>`` for a broad topic, ``<map>-<broad>.<fine>`` for
    a fine one, so a topic's address says which map (scope and version) it belongs to."""

    id: str
    level: str                     # "broad" or "fine"
    index: int                     # position in the map's broad or fine list
    label: str
    terms: list[str]
    size: int
    central: list[str]             # paper ids, most central first
    x: float                       # where its label goes on the map (a member paper near its middle)
    y: float
    parent: str | None = None      # a fine topic's broad topic
    children: list[str] = field(default_factory=list)


@dataclass
class TopicMap:
    key: str
    scope: Scope
    model: str
    method: str
    ids: list[str]
    xy: np.ndarray                 # n x 2 float32
    fine: np.ndarray               # fine topic index per paper
    broad_of_fine: np.ndarray      # broad topic index per fine topic
    broad: list[Topic]
    fine_topics: list[Topic]
    missing: list[str] = field(default_factory=list)
    note: str = ""
    created: float = 0.0
    hashes: list[str] = field(default_factory=list)   # content hash of each paper when mapped
    titles: list[str] = field(default_factory=list)   # clean titles, for the map's hover
    timings: dict[str, float] = field(default_factory=dict)
    incremental_from: str | None = None
    from_cache: bool = field(default=False, compare=False)    # read from the cache rather than computed now
    _position: dict[str, int] | None = field(default=None, repr=False)

    @property
    def short(self) -> str:
        return self.key[:10]

    def position(self, paper_id: str) -> int | None:
        if self._position is None:
            self._position = {pid: i for i, pid in enumerate(self.ids)}
        return self._position.get(paper_id)

    def topic(self, topic_id: str) -> Topic | None:
        for t in self.broad + self.fine_topics:
            if t.id == topic_id:
                return t
        return None

    def members(self, topic: Topic) -> list[int]:
        if topic.level == "fine":
            return [int(i) for i in np.flatnonzero(self.fine == topic.index)]
        return [int(i) for i in np.flatnonzero(self.broad_of_fine[self.fine] == topic.index)]

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "scope": asdict(self.scope), "scope_text": self.scope.describe(), "papers": len(self.ids),
                "missing": len(self.missing), "model": self.model, "layout": self.method, "note": self.note,
                "created": self.created, "timings": self.timings, "incremental_from": self.incremental_from,
                "broad_topics": len(self.broad), "fine_topics": len(self.fine_topics)}


def topics_folder(catalog: "Catalog") -> Path:
    from paperscope.index.maintain import index_root

    return index_root(catalog) / "topics"


@dataclass
class ScopeState:
    """What a scope's map would be built from now, and its cache key."""

    scope: Scope
    ids: list[str]
    hashes: dict[str, str]
    representation: Representation | None   # stored vectors; None: the map comes from the words
    key: str
    words_note: str = ""                    # what a map from the words says about the vectors

    def words_representation(self, catalog: "Catalog", texts: dict[str, tuple[str, str]] | None = None) -> Representation:
        """TF-IDF + SVD of the scope's papers: computed when a map is built, never for its key."""
        rep = represent(catalog, self.ids, texts, vectors="tfidf")
        rep.note = self.words_note
        return rep


def _paper_set_digest(ids: Sequence[str], hashes: dict[str, str]) -> str:
    h = hashlib.sha1()
    for pid in ids:
        h.update(f"{pid}\x1f{hashes.get(pid, '')}\x1e".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def scope_state(catalog: "Catalog", scope: Scope, vectors: str = "auto", method: str = "tsne") -> ScopeState:
    ids = scope_paper_ids(catalog, scope)
    if not ids:
        raise TopicsError(f"no papers in {scope.describe()}; check the venue, year or query "
                          f"(`paperscope stats` lists the venues)")
    wanted = set(ids)
    hashes = {pid: h for pid, h in catalog.content_hashes() if pid in wanted}
    # The key must be cheap (a page asks for it): stored vectors are read, the words' LSA is not computed.
    rep = stored_representation(catalog, ids, vectors) if vectors != "tfidf" else None
    model = rep.model if rep is not None else "tfidf-lsa"
    # which papers have vectors changes as `embed` fills them in; a map from the words covers them all
    represented = "" if vectors == "tfidf" else _paper_set_digest(rep.ids if rep is not None else ids, {})
    raw = json.dumps([ALGORITHM_VERSION, scope.canonical(), model, method, _paper_set_digest(ids, hashes), represented])
    note = NO_VECTORS_NOTE if rep is None and vectors != "tfidf" else ""
    return ScopeState(scope, ids, hashes, rep, hashlib.sha1(raw.encode()).hexdigest(), note)


def compute_topic_map(catalog: "Catalog", scope: Scope, *, vectors: str = "auto", method: str = "tsne",
                      progress: Progress | None = None, state: ScopeState | None = None,
                      n_topics: tuple[int, int] | None = None, seed: int = 0) -> TopicMap:
    """Cluster, label and lay out a scope's papers (no cache involved)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    def tell(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)

    tell("papers", 0, 1)
    state = state or scope_state(catalog, scope, vectors, method)
    texts = paper_texts(catalog, state.ids)
    rep = state.representation or state.words_representation(catalog, texts)
    step("vectors_s")
    tell("clusters", 0, 1)
    n_fine, n_broad = n_topics or topic_counts(len(rep.ids))
    fine, broad_of = cluster(rep.matrix, n_fine, n_broad, seed)
    step("cluster_s")
    tell("layout", 0, 1)
    xy = layout(rep.matrix, method, seed, progress=lambda d, t: tell("layout", d, t))
    step("layout_s")
    tell("labels", 0, 1)
    docs = [_doc_text(texts.get(pid)) for pid in rep.ids]
    tmap = TopicMap(state.key, scope, rep.model, method, rep.ids, _fit_box(xy), fine, broad_of, [], [],
                    rep.missing, rep.note, time.time(), [state.hashes.get(p, "") for p in rep.ids],
                    [texts[p][0] if p in texts else "" for p in rep.ids])
    describe_topics(tmap, rep.matrix, docs)
    step("labels_s")
    tmap.timings = timings
    tell("done", 1, 1)
    return tmap


def _fit_box(xy: np.ndarray, size: float = 1000.0) -> np.ndarray:
    """Positions scaled into [0, size] on their longer side (keeps the aspect), for compact JSON."""
    if not len(xy):
        return xy.astype(np.float32)
    lo = xy.min(axis=0)
    span = float((xy.max(axis=0) - lo).max()) or 1.0
    return ((xy - lo) / span * size).astype(np.float32)


def describe_topics(tmap: TopicMap, matrix: np.ndarray, docs: list[str]) -> None:
    """Labels, sizes, central papers and label positions of every topic of a map (in place)."""
    n_fine = int(tmap.fine.max()) + 1 if len(tmap.fine) else 0
    n_broad = int(tmap.broad_of_fine.max()) + 1 if len(tmap.broad_of_fine) else 0
    phrases_ = PhraseMatrix.build(docs)
    total = len(docs)
    overall = np.asarray(phrases_.matrix.sum(axis=0)).ravel()
    broad_labels = tmap.broad_of_fine[tmap.fine] if len(tmap.fine) else np.zeros(0, np.int32)
    fine_counts = group_counts(phrases_.matrix, tmap.fine, n_fine) if n_fine else None
    broad_counts = group_counts(phrases_.matrix, broad_labels, n_broad) if n_broad else None

    def make(level: str, index: int, members: np.ndarray, counts) -> Topic:
        row = np.asarray(counts[index].todense()).ravel()
        terms = [t for t, _ in label_terms(row, len(members), overall, total, phrases_.vocabulary,
                                           members=phrases_.matrix[members])]
        centroid = matrix[members].mean(axis=0)
        order = members[np.argsort(-(matrix[members] @ centroid), kind="stable")]
        pts = tmap.xy[members]
        middle = np.median(pts, axis=0)
        anchor = pts[int(np.argmin(((pts - middle) ** 2).sum(axis=1)))]
        tid = f"{tmap.short}-{index}" if level == "broad" else f"{tmap.short}-{int(tmap.broad_of_fine[index])}.{index}"
        return Topic(tid, level, index, label_text(terms), terms, int(len(members)),
                     [tmap.ids[i] for i in order[:CENTRAL_PAPERS]], round(float(anchor[0]), 2), round(float(anchor[1]), 2))

    tmap.broad = [make("broad", b, np.flatnonzero(broad_labels == b), broad_counts) for b in range(n_broad)]
    tmap.fine_topics = [make("fine", f, np.flatnonzero(tmap.fine == f), fine_counts) for f in range(n_fine)]
    for t in tmap.fine_topics:
        parent = tmap.broad[int(tmap.broad_of_fine[t.index])]
        t.parent = parent.id
        parent.children.append(t.id)


# ---------------------------------------------------------------------------- cache
def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    return folder / f"{key}.npz", folder / f"{key}.json"


def save_topic_map(catalog: "Catalog", tmap: TopicMap) -> None:
    """Write a map to the cache (arrays, then the JSON that makes it visible), and point its scope at it."""
    folder = topics_folder(catalog)
    folder.mkdir(parents=True, exist_ok=True)
    arrays, meta = _paths(folder, tmap.key)
    tmp = arrays.with_name(arrays.stem + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=np.asarray(tmap.ids, dtype=str), xy=tmap.xy, fine=tmap.fine, broad_of_fine=tmap.broad_of_fine,
             missing=np.asarray(tmap.missing, dtype=str), hashes=np.asarray(tmap.hashes, dtype=str),
             titles=np.asarray(tmap.titles, dtype=str))
    os.replace(tmp, arrays)
    body = tmap.summary() | {"broad": [asdict(t) for t in tmap.broad], "fine": [asdict(t) for t in tmap.fine_topics]}
    _write_json(meta, body)
    _update_pointers(folder, tmap.scope, tmap.key)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False))
    os.replace(tmp, path)


_POINTERS_LOCK = threading.Lock()


def _update_pointers(folder: Path, scope: Scope, key: str) -> None:
    """``scopes.json``: the latest map of each scope (what ``topic_of`` and a stale page read)."""
    with _POINTERS_LOCK:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "scopes.json"
        try:
            pointers = json.loads(path.read_text())
        except (OSError, ValueError):
            pointers = {}
        old = pointers.get(scope.canonical(), {}).get("key")
        pointers[scope.canonical()] = {"key": key, "scope": asdict(scope), "at": time.time()}
        _write_json(path, pointers)
    if old and old != key and not any(p.get("key") == old for p in pointers.values()):
        for p in _paths(folder, old):  # the scope's previous map is superseded
            try:
                p.unlink()
            except OSError:
                pass
        _LOADED.pop((str(folder), old), None)


def scope_pointers(catalog: "Catalog") -> dict[str, dict[str, Any]]:
    try:
        return json.loads((topics_folder(catalog) / "scopes.json").read_text())
    except (OSError, ValueError):
        return {}


_LOADED: dict[tuple[str, str], TopicMap] = {}   # (topics folder, key) -> map
_LOADED_LOCK = threading.Lock()
_LOADED_MAX = 8


def load_topic_map(catalog: "Catalog", key: str) -> TopicMap | None:
    """A cached map by key (or a key's first 10 characters), or None."""
    if not re.fullmatch(r"[0-9a-f]{6,40}", key or ""):   # keys come from URLs: hex only, never a path
        return None
    folder = topics_folder(catalog)
    with _LOADED_LOCK:
        for (where, k), m in _LOADED.items():
            if where == str(folder) and (k == key or k.startswith(key)):
                return m
    if len(key) < 40:
        found = sorted(folder.glob(f"{key}*.json")) if folder.is_dir() else []
        found = [f for f in found if not f.name.endswith(".tmp") and f.name != "scopes.json"]
        if not found:
            return None
        key = found[0].stem
    arrays, meta = _paths(folder, key)
    try:
        body = json.loads(meta.read_text())
        with np.load(arrays) as z:
            ids, xy, fine, broad_of, missing = (list(z["ids"]), z["xy"], z["fine"], z["broad_of_fine"], list(z["missing"]))
            hashes = [str(h) for h in z["hashes"]] if "hashes" in z.files else []
            titles = [str(t) for t in z["titles"]] if "titles" in z.files else []
    except (OSError, ValueError, KeyError):
        return None
    tmap = TopicMap(body["key"], Scope(**body["scope"]), body["model"], body["layout"], [str(i) for i in ids],
                    xy.astype(np.float32), fine.astype(np.int32), broad_of.astype(np.int32),
                    [Topic(**t) for t in body["broad"]], [Topic(**t) for t in body["fine"]],
                    [str(m) for m in missing], body.get("note", ""), body.get("created", 0.0), hashes, titles,
                    body.get("timings", {}), body.get("incremental_from"), True)
    with _LOADED_LOCK:
        _LOADED[(str(folder), tmap.key)] = tmap
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
    return tmap


def latest_topic_map(catalog: "Catalog", scope: Scope) -> TopicMap | None:
    """The last map computed for a scope, fresh or not (no computing)."""
    pointer = scope_pointers(catalog).get(scope.canonical())
    return load_topic_map(catalog, pointer["key"]) if pointer else None


def topic_map(catalog: "Catalog", scope: Scope, *, vectors: str = "auto", method: str = "tsne",
              progress: Progress | None = None, recompute: bool = False, incremental: bool = True) -> TopicMap:
    """The map of a scope: from the cache when its papers and vectors are unchanged, else computed
    (or, when few papers changed, updated from the previous map) and cached."""
    if progress:
        progress("papers", 0, 1)
    state = scope_state(catalog, scope, vectors, method)
    if not recompute:
        cached = load_topic_map(catalog, state.key)
        if cached is not None:
            if _pointer_key(catalog, scope) != cached.key:
                _update_pointers(topics_folder(catalog), scope, cached.key)
            return cached
        previous = latest_topic_map(catalog, scope) if incremental else None
        if previous is not None:
            updated = update_topic_map(catalog, previous, state, progress)
            if updated is not None:
                save_topic_map(catalog, updated)
                return updated
    tmap = compute_topic_map(catalog, scope, vectors=vectors, method=method, progress=progress, state=state)
    save_topic_map(catalog, tmap)
    return tmap


def _pointer_key(catalog: "Catalog", scope: Scope) -> str | None:
    return (scope_pointers(catalog).get(scope.canonical()) or {}).get("key")


def update_topic_map(catalog: "Catalog", previous: TopicMap, state: ScopeState,
                     progress: Progress | None = None) -> TopicMap | None:
    """The previous map of the scope brought up to date when few papers changed, else None.

    Papers gone are dropped; papers new or edited are placed in the fine topic of their nearest
    neighbours among the papers kept (majority of 10) and on the map at the mean position of those
    neighbours (with a small offset so they do not stack); labels are recounted.
    """
    rep = state.representation
    texts = None
    if rep is None and previous.model == "tfidf-lsa":  # words: the new papers' neighbours in a fresh LSA space
        texts = paper_texts(catalog, state.ids)
        rep = state.words_representation(catalog, texts)
    if rep is None or rep.model != previous.model:
        return None
    old_hash = dict(zip(previous.ids, previous.hashes))
    # an edited paper keeps its id but not its content hash (nor its vector): it is placed anew
    old_pos = {pid: i for i, pid in enumerate(previous.ids) if old_hash.get(pid) == state.hashes.get(pid)}
    changed = [pid for pid in rep.ids if pid not in old_pos]
    current = set(rep.ids)
    gone = [pid for pid in previous.ids if pid not in current]
    if len(changed) + len(gone) > INCREMENTAL_SHARE * max(len(rep.ids), 1) or not rep.ids:
        return None
    if progress:
        progress("update", 0, 1)
    started = time.perf_counter()
    row = {pid: i for i, pid in enumerate(rep.ids)}
    kept = [pid for pid in rep.ids if pid in old_pos]
    if len(kept) < 10:
        return None
    kept_rows = np.array([row[p] for p in kept])
    kept_old = np.array([old_pos[p] for p in kept])
    xy = np.zeros((len(rep.ids), 2), np.float32)
    fine = np.zeros(len(rep.ids), np.int32)
    xy[kept_rows] = previous.xy[kept_old]
    fine[kept_rows] = previous.fine[kept_old]
    if changed:
        new_rows = np.array([row[p] for p in changed])
        sims = rep.matrix[new_rows] @ rep.matrix[kept_rows].T
        nn = np.argsort(-sims, axis=1)[:, :10]
        rng = np.random.default_rng(len(changed))
        for r, neighbours in zip(new_rows, nn):
            xy[r] = previous.xy[kept_old[neighbours]].mean(axis=0) + rng.normal(0, 2.0, 2)
            fine[r] = Counter(previous.fine[kept_old[neighbours]].tolist()).most_common(1)[0][0]
    texts = texts or paper_texts(catalog, rep.ids)
    docs = [_doc_text(texts.get(pid)) for pid in rep.ids]
    present = np.unique(fine)
    remap = np.full(len(previous.broad_of_fine), -1, np.int32)
    remap[present] = np.arange(len(present))
    fine, broad_of = _renumber(remap[fine], previous.broad_of_fine[present])
    tmap = TopicMap(state.key, state.scope, rep.model, previous.method, rep.ids, xy, fine, broad_of, [], [],
                    rep.missing, rep.note, time.time(), [state.hashes.get(p, "") for p in rep.ids],
                    [texts[p][0] if p in texts else "" for p in rep.ids], incremental_from=previous.key)
    describe_topics(tmap, rep.matrix, docs)
    tmap.timings = {"update_s": round(time.perf_counter() - started, 3)}
    return tmap


# =============================================================================================
# Background computation, with progress
# =============================================================================================


@dataclass
class Job:
    """A map being computed in a background thread."""

    scope: Scope
    stage: str = "starting"
    done: int = 0
    total: int = 1
    started: float = field(default_factory=time.time)
    finished: float | None = None
    key: str | None = None
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.finished is None

    def progress(self) -> dict[str, Any]:
        stages = ("papers", "clusters", "layout", "labels", "done")
        fraction = 0.0
        if self.stage in stages:
            weights = {"papers": (0, .1), "clusters": (.1, .2), "layout": (.2, .9), "labels": (.9, 1.0), "done": (1, 1)}
            lo, hi = weights[self.stage]
            fraction = lo + (hi - lo) * (self.done / max(self.total, 1))
        elif self.stage == "update":
            fraction = .5
        return {"stage": self.stage, "done": self.done, "total": self.total, "fraction": round(fraction, 3),
                "seconds": round(time.time() - self.started, 1), "error": self.error}


_JOBS: dict[tuple[str, str], Job] = {}
_JOBS_LOCK = threading.Lock()
# A map takes a core for seconds to minutes, and any visitor can ask for the map of any search:
# maps are computed one at a time, a few more wait their turn, and beyond that a new scope is
# refused (``TopicsBusy``) until some finish, so requests for many scopes cannot pile up work.
MAX_PARALLEL_MAPS = 1
MAX_WAITING_MAPS = 4
_COMPUTING = threading.BoundedSemaphore(MAX_PARALLEL_MAPS)


class TopicsBusy(TopicsError):
    """Too many topic maps are being computed already; ask again when some have finished."""


def start_topic_map(catalog: "Catalog", scope: Scope, **options: Any) -> Job:
    """Start computing a scope's map in the background (or return the run already under way).

    Raises ``TopicsBusy`` when ``MAX_PARALLEL_MAPS + MAX_WAITING_MAPS`` maps are unfinished."""
    slot = (catalog.location, scope.canonical())
    with _JOBS_LOCK:
        job = _JOBS.get(slot)
        if job is not None and job.running:
            return job
        unfinished = sum(1 for j in _JOBS.values() if j.running)
        if unfinished >= MAX_PARALLEL_MAPS + MAX_WAITING_MAPS:
            raise TopicsBusy(f"{unfinished} topic maps are being computed already; this one starts when "
                             "some have finished (try again in a minute)")
        job = Job(scope, stage="waiting")
        _JOBS[slot] = job

    def progress(stage: str, done: int, total: int) -> None:
        job.stage, job.done, job.total = stage, done, total

    def run() -> None:
        try:
            with _COMPUTING:
                job.key = topic_map(catalog, scope, progress=progress, **options).key
        except TopicsError as exc:
            job.error = str(exc)
        except Exception as exc:  # logged; the page says it failed rather than waiting forever
            log.exception("computing the topic map of %s failed", scope.describe())
            job.error = f"computing the map failed: {exc}"
        finally:
            job.finished = time.time()

    job.thread = threading.Thread(target=run, name=f"topics {scope.describe()}", daemon=True)
    job.thread.start()
    return job


def running_job(catalog: "Catalog", scope: Scope) -> Job | None:
    return _JOBS.get((catalog.location, scope.canonical()))


_FRESH: dict[tuple[str, str], tuple[str, str]] = {}


def fresh_key(catalog: "Catalog", scope: Scope, vectors: str = "auto", method: str = "tsne") -> str:
    """The cache key a scope's map has now. Remembered per process for as long as the catalogue's
    sources and vectors are unchanged (so polling a page costs a fingerprint, not a rescan)."""
    from paperscope.index.lexical import catalogue_fingerprint

    probe = json.dumps([catalogue_fingerprint(catalog)] + [catalog.get_meta(f"vectors:{m}:generation")
                                                           for m in candidate_models()])
    slot = (catalog.location, json.dumps([scope.canonical(), vectors, method]))
    remembered = _FRESH.get(slot)
    if remembered and remembered[0] == probe:
        return remembered[1]
    key = scope_state(catalog, scope, vectors, method).key
    _FRESH[slot] = (probe, key)
    return key


def map_status(catalog: "Catalog", scope: Scope, start: bool = True) -> tuple[TopicMap | None, Job | None, bool]:
    """(map to show, job computing, whether the map is fresh) for a page that must not wait.

    The fresh map when cached; otherwise the scope's previous map if any (stale, shown while the
    new one is computed in the background), and the background job.
    """
    key = fresh_key(catalog, scope)
    tmap = load_topic_map(catalog, key)
    if tmap is not None:
        return tmap, None, True
    job = running_job(catalog, scope)
    if job is None or not job.running:
        if job is not None and job.error and job.finished and time.time() - job.finished < 30:
            return latest_topic_map(catalog, scope), job, False   # a recent failure: say so, do not loop
        job = start_topic_map(catalog, scope) if start else None
    return latest_topic_map(catalog, scope), job, False


# =============================================================================================
# Lookups for other parts: search's topic facet, topic pages, selections
# =============================================================================================


@dataclass(frozen=True)
class TopicRef:
    id: str
    label: str
    broad_id: str
    broad_label: str


def topic_of(catalog: "Catalog", paper_ids: Iterable[str], scope: Scope | None = None,
             level: str = "broad") -> dict[str, TopicRef]:
    """The topic of each paper in the latest map of ``scope`` (default: all papers), never computing.

    For search's topic facet: papers not on that map (or no map yet) are left out of the result.
    ``level`` says which topic the ``id``/``label`` fields name ("broad" or "fine"); both are given.
    """
    tmap = latest_topic_map(catalog, scope or Scope())
    if tmap is None:
        return {}
    out: dict[str, TopicRef] = {}
    for pid in paper_ids:
        i = tmap.position(pid)
        if i is None:
            continue
        fine = tmap.fine_topics[int(tmap.fine[i])]
        broad = tmap.broad[int(tmap.broad_of_fine[tmap.fine[i]])]
        chosen = broad if level == "broad" else fine
        out[pid] = TopicRef(chosen.id, chosen.label, broad.id, broad.label)
    return out


def find_topic(catalog: "Catalog", topic_id: str) -> tuple[TopicMap, Topic]:
    """A topic by its id (``<map>-<broad>[.<fine>]``), from the cache."""
    key = topic_id.split("-", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{6,40}", key or ""):
        raise TopicsError(f"“{topic_id}” is not a topic id; topics are listed on /topics and the map.")
    tmap = load_topic_map(catalog, key)
    if tmap is None:
        raise TopicsError(f"Topic “{topic_id}” belongs to a map that has been recomputed since; "
                          "open the map again for the current topics.")
    topic = tmap.topic(topic_id)
    if topic is None:
        raise TopicsError(f"The map has no topic “{topic_id}”.")
    return tmap, topic


def topic_papers(catalog: "Catalog", tmap: TopicMap, topic: Topic) -> list[str]:
    """The papers of a topic, most central first (nearest the topic's centroid)."""
    members = tmap.members(topic)
    if len(members) <= len(topic.central):
        return [tmap.ids[i] for i in members]
    ids = [tmap.ids[i] for i in members]
    rep = None
    try:
        if tmap.model != "tfidf-lsa":
            rep = represent(catalog, ids, vectors=tmap.model)
    except TopicsError:
        rep = None
    if rep is None or len(rep.ids) != len(ids):  # no vectors: by distance to the topic's middle on the map
        pts = tmap.xy[members]
        order = np.argsort(((pts - np.median(pts, axis=0)) ** 2).sum(axis=1), kind="stable")
        return [ids[i] for i in order]
    centroid = rep.matrix.mean(axis=0)
    order = np.argsort(-(rep.matrix @ centroid), kind="stable")
    return [rep.ids[i] for i in order]


def selection_terms(catalog: "Catalog", tmap: TopicMap, paper_ids: Sequence[str], k: int = 8) -> list[str]:
    """Key phrases of a set of papers picked on a map, against the map's whole scope."""
    chosen = {pid for pid in paper_ids if tmap.position(pid) is not None}
    if not chosen:
        return []
    phrases_ = _scope_phrases(catalog, tmap)
    rows = np.array(sorted(tmap.position(p) for p in chosen))
    counts = np.asarray(phrases_.matrix[rows].sum(axis=0)).ravel()
    overall = np.asarray(phrases_.matrix.sum(axis=0)).ravel()
    return [t for t, _ in label_terms(counts, len(rows), overall, len(tmap.ids), phrases_.vocabulary, k=k,
                                      members=phrases_.matrix[rows])]


_PHRASES: dict[str, PhraseMatrix] = {}


def _scope_phrases(catalog: "Catalog", tmap: TopicMap) -> PhraseMatrix:
    cached = _PHRASES.get(tmap.key)
    if cached is None:
        texts = paper_texts(catalog, tmap.ids)
        cached = PhraseMatrix.build([_doc_text(texts.get(pid)) for pid in tmap.ids])
        _PHRASES.clear()   # one scope's phrases at a time: they are large for a big scope
        _PHRASES[tmap.key] = cached
    return cached


# =============================================================================================
# Topics in search: the topic: filter and the topic facet
# =============================================================================================


class SearchTopics:
    """The topics of the latest map of all papers, as search sees them: ``topic:`` resolves to the
    papers of a topic (by its id, or by words of its label), and the facet counts matches per broad topic.

    The map is not in the keyword index (it is recomputed on its own schedule), so a topic becomes a
    set of paper ids; the id lists of a map are built once and kept with it.
    """

    def __init__(self, tmap: TopicMap):
        self.tmap = tmap
        self._ids: dict[str, list[str]] = {}
        self._documents: tuple[Any, dict[tuple[int, int], int]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def latest(cls, catalog: "Catalog") -> "SearchTopics | None":
        tmap = latest_topic_map(catalog, Scope())
        if tmap is None:
            return None
        held = _SEARCH_TOPICS.get(tmap.key)
        if held is None:
            held = cls(tmap)
            _SEARCH_TOPICS.clear()   # one map of all papers is current at a time
            _SEARCH_TOPICS[tmap.key] = held
        return held

    @property
    def broad(self) -> list[Topic]:
        return self.tmap.broad

    def ids(self, topic: Topic) -> list[str]:
        found = self._ids.get(topic.id)
        if found is None:
            found = [self.tmap.ids[i] for i in self.tmap.members(topic)]
            self._ids[topic.id] = found
        return found

    def topic_of_documents(self, searcher, schema, generation: Any) -> dict[tuple[int, int], int]:
        """(segment, document) of the keyword index -> broad topic index, for one index generation.

        Built with one term-set query per broad topic (a second or so at 92k papers), then kept.
        """
        import tantivy

        with self._lock:
            if self._documents is not None and self._documents[0] == generation:
                return self._documents[1]
            table: dict[tuple[int, int], int] = {}
            for topic in self.tmap.broad:
                ids = self.ids(topic)
                query = tantivy.Query.term_set_query(schema, "id", ids)
                for _, address in searcher.search(query, max(1, len(ids)), count=False).hits:
                    table[(address.segment_ord, address.doc)] = topic.index
            self._documents = (generation, table)
            return table

    def resolve(self, value: str) -> list[Topic]:
        """The topics ``value`` names: a topic id of this map, else every topic (broad first) whose
        label holds all of its words ("reinforcement" finds "reinforcement learning · policy")."""
        value = value.strip()
        exact = self.tmap.topic(value)
        if exact is not None:
            return [exact]
        words = [singular(w) for w in phrase_tokens(value) if w]
        if not words:
            return []
        found = []
        for topic in self.tmap.broad + self.tmap.fine_topics:
            label_words = {singular(w) for w in phrase_tokens(topic.label) if w}
            if all(w in label_words for w in words):
                found.append(topic)
        # a broad topic already holds its fine ones
        broad_ids = {t.id for t in found if t.level == "broad"}
        return [t for t in found if t.level == "broad" or t.parent not in broad_ids]


_SEARCH_TOPICS: dict[str, SearchTopics] = {}
