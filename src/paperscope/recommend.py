"""Recommendations from your library: ranked candidates, each with its reason; "not relevant" feedback.

The ranker (chosen by measurement on the reviewer-expertise benchmark, ``paperscope eval recommend``):

- three views of a paper: its vector (title + abstract, MiniLM), the mean of its abstract-sentence
  vectors, and its terms (stemmed words and adjacent word pairs, tf-idf with document frequencies from
  a sample of the catalogue: IDF from the candidates alone measured clearly worse);
- for each view, a candidate's similarity to the library is the mean of its 3 best matches among the
  library papers (a library has several topics: a paper close to one of them is relevant, the average
  over all of them is not what matters);
- the views are z-scored over the candidates and summed with equal weights (no tuned weights);
- "not relevant" feedback: candidates unusually close to a rejected paper (z-scored similarity to the
  nearest rejected paper, above the mean) lose half of that, in each view;
- diversity: maximal marginal relevance over the paper vectors, so a list never runs through ten
  near-duplicates.

Alternatives measured and not chosen (see ``paperscope eval recommend --method``): a linear model per
profile trained on the fly (library papers positive, a catalogue sample negative, arxiv-sanity style),
alone or blended; similarity to all library papers (mean); one view alone.

At catalogue scale the ranker runs in two stages so a request stays interactive on 100k papers:
1. a candidate pool: exact cosine of every catalogue vector to a few centroids of the library
   (spherical k-means; the library papers themselves when there are few), best few hundred kept;
2. the full ranker above on that pool.
Each paper's term row and sentence mean come from the feature store (:mod:`paperscope.index.features`,
built by ``paperscope embed`` and ``reindex``) when its text has not changed since; otherwise they are
computed on demand. Papers already in the library, already seen, or marked "not relevant" are never
recommended.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

VIEWS = ("vector", "sentences", "terms")
METHODS = ("profile", "linear", "profile+linear", "mean", "vector")
DEFAULT_METHOD = "profile"
DEFAULT_PARAMS: dict[str, Any] = {
    "k": 3,                      # best matches averaged per candidate
    "views": VIEWS,
    "feedback": 0.5,             # weight of the "not relevant" penalty
    "feedback_relative": 0.0,    # how much closeness to the library offsets closeness to a rejected paper
    "diversity": 0.25,           # MMR: 0 = pure relevance, 1 = pure novelty
    "pool": 800,                 # stage-1 candidates (by library centroids)
    "rerank": 300,               # of those, the best by the vector view go to the full ranker
    "centroids": 16,             # stage-1 library centroids
    "term_sample": 3000,         # catalogue papers whose terms give document frequencies
    "w_linear": 1.0,             # weight of the linear model in profile+linear
    "features": True,            # read stored per-paper features (False: compute them all on demand)
}


# =============================================================================================
# Views of papers
# =============================================================================================


_WORDS = None
_STEMS: dict[str, str] = {}


def terms_of(text: str) -> list[str]:
    """The content words of a text, stemmed: :func:`paperscope.similarity.tokenize`, with each word's
    stem remembered (a catalogue's vocabulary repeats; stemming word by word is most of the cost)."""
    import re

    global _WORDS
    if _WORDS is None:
        _WORDS = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
    out = []
    known = _STEMS.get
    for w in _WORDS.findall((text or "").lower()):
        st = known(w)          # (inline: a call per word was most of the time once stems are known)
        if st is None:
            st = _stem_of(w)
        if st:
            out.append(st)
    return out


def _stem_of(word: str) -> str:
    """The stem of a lower-case word as :func:`paperscope.similarity.tokenize` makes it ("" for a
    stopword or a single character), remembered."""
    st = _STEMS.get(word)
    if st is None:
        from paperscope.similarity import STOPWORDS, tokenize

        st = "" if word in STOPWORDS or len(word) <= 1 else (tokenize(word) or [""])[0]
        if len(_STEMS) < 2_000_000:
            _STEMS[word] = st
    return st


def bag_of_terms(text: str) -> Counter:
    """Stemmed content words and adjacent pairs of them (``reinforc_learn``-like phrases)."""
    toks = terms_of(text)
    return Counter(toks + [f"{a}_{b}" for a, b in zip(toks, toks[1:])])


@dataclass
class TermStats:
    """Document frequencies of terms over a sample of documents."""

    df: Counter
    n_docs: int

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "TermStats":
        df: Counter = Counter()
        n = 0
        for t in texts:
            df.update(bag_of_terms(t).keys())
            n += 1
        return cls(df, n)

    @classmethod
    def from_bags(cls, bags: Iterable[Counter]) -> "TermStats":
        df: Counter = Counter()
        n = 0
        for b in bags:
            df.update(b.keys())
            n += 1
        return cls(df, n)

    def idf(self, term: str) -> float:
        # a term the sample never saw is rare: it gets the highest weight, not none
        return math.log((1 + self.n_docs) / (1 + self.df.get(term, 0)))

    def idfs(self, terms: list[str]) -> np.ndarray:
        """IDF of each term (the sample's terms are looked up; the rest share the unseen weight)."""
        cache = self._idf
        if cache is None:
            self._unseen = math.log(1 + self.n_docs)
            cache = self._idf = {t: math.log((1 + self.n_docs) / (1 + n)) for t, n in self.df.items()}
        unseen = self._unseen
        return np.fromiter((cache.get(t, unseen) for t in terms), dtype=np.float32, count=len(terms))

    def row(self, bag: Counter, key: str | None = None) -> "Row":
        """The L2-normalised sublinear tf-idf row of a bag; kept by ``key``."""
        if key is not None:
            hit = self._rows.get(key)
            if hit is not None:
                return hit
        terms = list(bag)
        cols = np.fromiter((term_column(t) for t in terms), dtype=np.int64, count=len(terms))
        counts = np.fromiter(bag.values(), dtype=np.float32, count=len(terms))
        vals = (1.0 + np.log(counts)) * self.idfs(terms)
        norm = float(np.sqrt((vals * vals).sum()))
        if norm > 0:
            vals /= norm
        out = Row(cols, vals, norm)
        if key is not None:
            self._rows[key] = out
            if len(self._rows) > 100_000:
                try:
                    self._rows.popitem(last=False)
                except KeyError:   # another thread made room first
                    pass
        return out

    def __post_init__(self) -> None:
        self._rows: "OrderedDict[str, Row]" = OrderedDict()
        self._idf: dict[str, float] | None = None
        self._unseen = 0.0


def term_column(term: str) -> int:
    """A term's column: its CRC-32. Hashed, so no vocabulary grows in a long-running server; 32 bits,
    so a candidate's term takes the column of another term of the library papers explaining it in
    about one explanation in 50,000 (22 bits did in 2% of them, and showed words the papers do not
    share); CRC-32, not Python's hash(), which changes from process to process: rows stored by one
    process are compared with rows made by another."""
    return zlib.crc32(term.encode())


class Row(NamedTuple):
    """A paper's terms as an L2-normalised sublinear tf-idf row over hashed columns, with the row's
    norm before normalising (weight x norm gives a term's tf-idf back, for explanations)."""

    cols: np.ndarray
    vals: np.ndarray
    norm: float


@dataclass
class ViewSet:
    """Papers as the ranker sees them: ids, paper vectors, sentence-mean vectors, and terms: as bags
    (weighted when compared), or as tf-idf ``rows`` already weighted (from the feature store)."""

    ids: list[str]
    vectors: np.ndarray
    sentences: np.ndarray
    terms: list[Counter] | None
    keys: list[str] | None = None      # what a paper's tf-idf row is remembered by (its content hash)
    rows: list[Row] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx: Sequence[int]) -> "ViewSet":
        idx = list(idx)

        def pick(items):
            return None if items is None else [items[i] for i in idx]

        return ViewSet(pick(self.ids), self.vectors[idx], self.sentences[idx], pick(self.terms), pick(self.keys),
                       pick(self.rows))

    def term_keys(self) -> list[str | None]:
        return list(self.keys) if self.keys is not None else [None] * len(self.ids)

    def term_rows(self, stats: "TermStats") -> list[Row]:
        if self.rows is not None:
            return self.rows
        return [stats.row(bag, key) for bag, key in zip(self.terms, self.term_keys())]

    @classmethod
    def empty(cls, dim: int = 384) -> "ViewSet":
        z = np.zeros((0, dim), np.float32)
        return cls([], z, z.copy(), [], [])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.clip(n, 1e-12, None)


def _csr(rows: Sequence["Row"], width: int, cols: np.ndarray):
    import scipy.sparse as sp

    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r.cols) for r in rows])
    vals = np.concatenate([r.vals for r in rows]) if rows else np.zeros(0, np.float32)
    # (a hash collision inside one paper leaves two entries in a column: products still add up right)
    return sp.csr_matrix((vals, cols, indptr), shape=(len(rows), max(1, width)))


def term_similarities(a_bags: Sequence[Counter], b_bags: Sequence[Counter], stats: TermStats,
                      a_keys: Sequence[str | None] | None = None, b_keys: Sequence[str | None] | None = None) -> np.ndarray:
    """Cosine of the tf-idf rows of every ``a`` to every ``b`` (rows kept by key between calls)."""
    a_keys = a_keys if a_keys is not None else [None] * len(a_bags)
    b_keys = b_keys if b_keys is not None else [None] * len(b_bags)
    return row_cosines([stats.row(x, k) for x, k in zip(a_bags, a_keys)], [stats.row(x, k) for x, k in zip(b_bags, b_keys)])


def row_cosines(a_rows: Sequence[Row], b_rows: Sequence[Row]) -> np.ndarray:
    """Dot products of every ``a`` row with every ``b`` row (cosines: the rows are L2-normalised).

    Only the columns some ``b`` uses matter to a dot product with ``b``: the ``a`` rows are cut down
    to those before multiplying (``b`` is the library, much smaller than the candidates)."""
    import scipy.sparse as sp

    if not a_rows or not b_rows:
        return np.zeros((len(a_rows), len(b_rows)), np.float32)
    # (one integer type throughout: searchsorted across types took most of the time)
    b_cols = np.concatenate([r.cols for r in b_rows]).astype(np.int64, copy=False)
    uniq, b_compact = np.unique(b_cols, return_inverse=True)
    b = _csr(b_rows, len(uniq), b_compact)
    a_cols = np.concatenate([r.cols for r in a_rows]).astype(np.int64, copy=False)
    a_vals = np.concatenate([r.vals for r in a_rows])
    a_row_of = np.repeat(np.arange(len(a_rows)), [len(r.cols) for r in a_rows])
    pos = np.searchsorted(uniq, a_cols)
    pos = np.minimum(pos, len(uniq) - 1)
    keep = uniq[pos] == a_cols
    a = sp.csr_matrix((a_vals[keep], (a_row_of[keep], pos[keep])), shape=(len(a_rows), len(uniq)))
    return (a @ b.T).toarray().astype(np.float32)


def tfidf_matrix(rows: Sequence[Row]):
    """The tf-idf ``rows`` as one scipy CSR matrix, over the columns they use."""
    cols = np.concatenate([r.cols for r in rows]) if rows else np.zeros(0, np.int64)
    uniq, compact = np.unique(cols, return_inverse=True)
    return _csr(rows, len(uniq), compact)


def similarities(cands: ViewSet, others: ViewSet, stats: TermStats, views: Sequence[str] = VIEWS) -> dict[str, np.ndarray]:
    """Per view, the (candidates x others) similarity matrix."""
    out: dict[str, np.ndarray] = {}
    if "vector" in views:
        out["vector"] = cands.vectors @ others.vectors.T
    if "sentences" in views:
        out["sentences"] = cands.sentences @ others.sentences.T
    if "terms" in views:
        out["terms"] = row_cosines(cands.term_rows(stats), others.term_rows(stats))
    return out


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def top_k_mean(sims: np.ndarray, k: int) -> np.ndarray:
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    k = max(1, min(k, sims.shape[1]))
    if k == sims.shape[1]:
        return sims.mean(axis=1)
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


@dataclass
class Scored:
    """Scores of a candidate list, with what explains them."""

    score: np.ndarray                          # final (higher = better)
    relevance: np.ndarray                      # before the feedback penalty
    penalty: np.ndarray                        # what "not relevant" feedback took off
    sims: dict[str, np.ndarray] = field(default_factory=dict)   # per view, candidates x profile


def score_candidates(cands: ViewSet, profile: ViewSet, stats: TermStats, negatives: ViewSet | None = None,
                     method: str = DEFAULT_METHOD, params: dict[str, Any] | None = None,
                     background: ViewSet | None = None) -> Scored:
    """Score ``cands`` for a reader whose library is ``profile`` (higher = more relevant).

    ``negatives`` are papers marked "not relevant"; ``background`` (for the linear methods) are
    papers standing for "the rest of the catalogue".
    """
    p = DEFAULT_PARAMS | (params or {})
    n = len(cands)
    if n == 0:
        z = np.zeros(0)
        return Scored(z, z, z)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if len(profile) == 0:
        z = np.zeros(n)
        return Scored(z, z, z)
    views = tuple(p["views"]) if method in ("profile", "profile+linear") else ("vector",) if method in ("mean", "vector") else tuple(p["views"])
    sims = similarities(cands, profile, stats, views)
    if method == "mean":
        rel = sims["vector"].mean(axis=1)
    elif method == "vector":
        rel = top_k_mean(sims["vector"], p["k"])
    elif method == "linear":
        rel = linear_scores(cands, profile, background, stats)
    else:
        rel = sum(zscore(top_k_mean(s, p["k"])) for s in sims.values())
        if method == "profile+linear":
            rel = rel + p["w_linear"] * zscore(linear_scores(cands, profile, background, stats))
    rel = np.asarray(rel, dtype=np.float64)
    penalty = np.zeros(n)
    if negatives is not None and len(negatives) and p["feedback"]:
        neg = similarities(cands, negatives, stats, tuple(p["views"]))
        pos = sims if set(neg) <= set(sims) else similarities(cands, profile, stats, tuple(neg))
        # A candidate closer than usual to a rejected paper (z-score over the candidates, per view) is
        # demoted in proportion, half as strongly as relevance counts (Rocchio's negatives weigh less
        # than positives). On the bundled ICLR 2020 papers, one "not relevant" on a GAN paper, for a
        # library of two GAN and two graph papers, moves the other GAN papers down ~15 places and out
        # of the top 10, without removing them; offsetting the penalty by closeness to the library
        # ("feedback_relative") left the papers most like the rejected one where they were.
        g = float(p["feedback_relative"])
        penalty = p["feedback"] * sum(
            np.clip(zscore(s.max(axis=1)) - g * zscore(top_k_mean(pos[v], p["k"])), 0, None) for v, s in neg.items())
    return Scored(rel - penalty, rel, penalty, sims)


def linear_scores(cands: ViewSet, profile: ViewSet, background: ViewSet | None, stats: TermStats,
                  c: float = 1.0, iterations: int = 200) -> np.ndarray:
    """An L2-regularised logistic regression trained on the fly (library positive, background
    negative) over [paper vector | tf-idf terms], scored on ``cands`` (arxiv-sanity's per-tag SVM idea)."""
    import scipy.sparse as sp
    from scipy.optimize import minimize

    back = background if background is not None and len(background) else cands
    m = tfidf_matrix(profile.term_rows(stats) + back.term_rows(stats) + cands.term_rows(stats))

    dense = np.vstack([profile.vectors, back.vectors, cands.vectors])
    X = sp.hstack([sp.csr_matrix(dense), m]).tocsr()
    n_pos, n_back = len(profile), len(back)
    Xtr = X[: n_pos + n_back]
    y = np.r_[np.ones(n_pos), np.zeros(n_back)]
    w_pos, w_neg = 0.5 / n_pos, 0.5 / n_back     # balanced classes
    sw = np.where(y > 0, w_pos, w_neg)
    lam = 1.0 / (c * (n_pos + n_back))

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        z = Xtr @ w + b
        pr = 1 / (1 + np.exp(-z))
        ll = -(sw * (y * np.log(pr + 1e-12) + (1 - y) * np.log(1 - pr + 1e-12))).sum() + 0.5 * lam * w @ w
        g = sw * (pr - y)
        return ll, np.r_[Xtr.T @ g + lam * w, g.sum()]

    theta = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": iterations}).x
    return np.asarray(X[n_pos + n_back:] @ theta[:-1] + theta[-1]).ravel()


def mmr_order(scores: np.ndarray, vectors: np.ndarray, limit: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: each next pick trades relevance for distance to the picks so far."""
    n = len(scores)
    if n == 0 or limit <= 0:
        return []
    order = list(np.argsort(-scores))
    if diversity <= 0 or n == 1:
        return order[:limit]
    span = float(scores.max() - scores.min()) or 1.0
    rel = (scores - scores.min()) / span
    chosen = [order[0]]
    max_sim = vectors @ vectors[order[0]]
    left = np.ones(n, bool)
    left[order[0]] = False
    while len(chosen) < min(limit, n):
        value = (1 - diversity) * rel - diversity * max_sim
        value[~left] = -np.inf
        nxt = int(np.argmax(value))
        chosen.append(nxt)
        left[nxt] = False
        max_sim = np.maximum(max_sim, vectors @ vectors[nxt])
    return chosen


# =============================================================================================
# Reasons
# =============================================================================================


_WORD = None


def column_tfidf(row: Row) -> dict[int, float]:
    """column -> tf-idf of a paper's terms, from its row (a weight times the row's norm)."""
    return {c: w * row.norm for c, w in zip(row.cols.tolist(), row.vals.tolist())}


def _tfidf_of(terms: list[str], others: Sequence[dict[int, float]]) -> dict[str, float]:
    """Of each term some of the ``others`` hold, its tf-idf summed over them."""
    cols = [term_column(t) for t in terms]
    out: dict[str, float] = {}
    for tfidf in others:
        for t, c in zip(terms, cols):
            w = tfidf.get(c)
            if w is not None:
                out[t] = out.get(t, 0.0) + w
    return out


def surface_forms(text: str) -> dict[str, str]:
    """stem -> the word as the text writes it (first time), for terms shown to a reader."""
    hit = _CACHE.forms.get(text)
    if hit is None:
        hit = _surface_forms(text)
        _CACHE.remember(_CACHE.forms, text, hit, 5000)
    return hit


def _surface_forms(text: str) -> dict[str, str]:
    import re

    global _WORD
    if _WORD is None:
        _WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
    pairs = []
    out: dict[str, str] = {}
    known = _STEMS.get
    for w in _WORD.findall(text or ""):
        low = w.lower()
        st = known(low)
        if st is None:
            st = _stem_of(low)
        if not st:
            continue
        # lower case, except names written with capitals inside (BERT, GANs, ImageNet)
        shown = w if w[1:] != low[1:] and not (w.isupper() and len(w) > 5) else low   # BERT, GANs; not SHOUTED titles
        out.setdefault(st, shown)
        pairs.append((st, shown))
    for (a, wa), (b, wb) in zip(pairs, pairs[1:]):
        out.setdefault(f"{a}_{b}", f"{wa} {wb}")
    return out


def shared_terms(cand: Counter, others: Sequence[dict[int, float]], stats: TermStats, text: str, limit: int = 5,
                 topical: Iterable[str] = ()) -> list[str]:
    """The candidate's terms that weigh most in both it and the library papers it is closest to
    (``others``: their terms' tf-idf by column, :func:`column_tfidf`; their texts need not be read again).

    A term's weight is its tf-idf in the candidate times its tf-idf summed over those papers; phrases
    (word pairs) and ``topical`` terms (those of the titles involved) count double: a word two
    abstracts happen to share ("avoid", "field") explains less than a phrase or a title word.
    """
    topical = set(topical)
    weight: dict[str, float] = {}
    theirs = _tfidf_of(list(cand), others)
    for t, their_tfidf in theirs.items():
        idf = stats.idf(t)
        weight[t] = (1 + math.log(cand[t])) * idf * their_tfidf * (2 if "_" in t else 1) * (2 if t in topical else 1)
    forms = surface_forms(text)
    # equal weights (to float noise) keep the order the candidate's text has them in
    first = {t: n for n, t in enumerate(cand)}
    ranked = sorted(weight, key=lambda t: (-float(f"{weight[t]:.6g}"), first[t]))
    floor = 0.2 * weight[ranked[0]] if ranked else 0.0
    out: list[str] = []
    for t in ranked:
        if weight[t] < floor:
            break      # far behind the best: a coincidence of wording, not a shared subject
        word = forms.get(t)
        if not word or (stats.n_docs >= 50 and stats.df.get(t, 0) > 0.2 * stats.n_docs):
            continue   # unreadable or too common in the catalogue to explain anything
        if "_" in t:   # a phrase covers its words
            out = [w for w in out if w.lower() not in word.lower().split()]
        elif any(word.lower() in w.lower().split() for w in out):
            continue
        out.append(word)
        if len(out) == limit:
            break
    return out


# =============================================================================================
# The service over a catalogue
# =============================================================================================


class RecommendError(ValueError):
    """The request cannot be answered; the message says what to do."""


@dataclass
class Recommendation:
    paper: dict[str, Any]
    score: float
    closest: list[dict[str, Any]] = field(default_factory=list)   # library papers it is closest to
    terms: list[str] = field(default_factory=list)                # key terms it shares with them
    penalty: float = 0.0

    @property
    def reason(self) -> str:
        parts = []
        if self.closest:
            parts.append("close to " + "; ".join(f"“{c['title']}”" for c in self.closest))
        if self.terms:
            parts.append("shares " + ", ".join(self.terms))
        return " — ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        p = self.paper
        apps = p.get("appearances") or []
        return {"id": p["id"], "title": p.get("title"), "authors": p.get("authors") or [], "year": p.get("year"),
                "venue": next((a.get("venue") for a in apps if a.get("venue")), None),
                "score": round(self.score, 4), "reason": self.reason, "closest": self.closest, "terms": self.terms,
                "demoted_by_feedback": round(self.penalty, 3)}


@dataclass
class RecommendResult:
    items: list[Recommendation]
    tag: str | None = None
    since: str | None = None
    mode: str = "semantic"            # "semantic" | "keyword" | "empty"
    message: str | None = None
    library_papers: int = 0
    candidates: int = 0               # papers that could be recommended
    pool: int = 0                     # re-ranked by the full ranker
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "since": self.since, "mode": self.mode, "message": self.message,
                "library_papers": self.library_papers, "candidates": self.candidates, "pool": self.pool,
                "items": [r.as_dict() for r in self.items], "timings_ms": self.timings_ms}


class _Caches:
    """Per-process memory of what does not change between requests (bounded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: dict[tuple[str, int], TermStats] = {}
        self.bags: "OrderedDict[str, Counter]" = OrderedDict()       # content hash -> terms
        self.sentences: "OrderedDict[str, np.ndarray]" = OrderedDict()  # content hash -> sentence mean
        self.no_sentences: "OrderedDict[str, bool]" = OrderedDict()     # catalogue|generation|hash: none stored
        self.forms: "OrderedDict[str, dict[str, str]]" = OrderedDict()   # text -> stem -> word as written
        self.centroids: "OrderedDict[str, np.ndarray]" = OrderedDict()    # library vectors -> their centres
        self.stage1: dict[str, tuple[np.ndarray, np.ndarray]] = {}        # index -> (reduced matrix, projection)

    def remember(self, store: OrderedDict, key: str, value, size: int = 50_000) -> None:
        with self.lock:   # web requests run in threads
            store[key] = value
            if len(store) > size:
                store.popitem(last=False)

    def forget_papers(self) -> None:
        """Forget what was derived from particular papers and libraries (terms, rows, sentence means,
        words as written, centroids), keeping what belongs to the catalogue as a whole."""
        with self.lock:
            for store in (self.bags, self.sentences, self.no_sentences, self.forms, self.centroids):
                store.clear()
            for stats in self.stats.values():
                stats._rows.clear()
        from paperscope.index.features import forget_rows

        forget_rows()


_CACHE = _Caches()


def term_stats(catalog, sample: int = DEFAULT_PARAMS["term_sample"], generation: str = "") -> TermStats:
    """Document frequencies from a reproducible sample of the catalogue (kept per process)."""
    from paperscope.catalog import library as store

    key = (catalog.location, generation)
    with _CACHE.lock:
        cached = _CACHE.stats.get(key)
    if cached is not None:
        return cached
    stats = TermStats.from_texts(store.sample_paper_texts(catalog, sample))
    with _CACHE.lock:
        _CACHE.stats[key] = stats
    return stats


def _bags(rows: list[dict[str, Any]]) -> list[Counter]:
    out = []
    for r, key in zip(rows, _keys(rows)):
        bag = _CACHE.bags.get(key)
        if bag is None:
            bag = bag_of_terms(_text(r))
            _CACHE.remember(_CACHE.bags, key, bag)
        out.append(bag)
    return out


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    return [r.get("content_hash") or (r.get("title", "") + "\x1f" + r.get("abstract", "")) for r in rows]


def _text(row: dict[str, Any]) -> str:
    """Title and abstract as ``similarity.Doc.text`` joins them (the text of the paper vector), without
    splitting the abstract into sentences on the way."""
    title = (row.get("title") or "").strip()
    abstract = " ".join((row.get("abstract") or "").split())
    if title and abstract:
        return f"{title}{'' if title[-1] in '.?!:' else '.'} {abstract}"
    return title or abstract


def _sentence_means(catalog, model: str, rows: list[dict[str, Any]], fallback: np.ndarray, embedder=None,
                    generation: str = "") -> np.ndarray:
    """Mean abstract-sentence vector of each paper (stored by ``paperscope embed``); the paper vector
    where sentences have no stored vectors (and no ``embedder`` is given to compute them)."""
    from paperscope.index.embedder import text_key
    from paperscope.index.vectors import from_blob, sentence_model
    from paperscope.similarity import split_sentences

    out = np.array(fallback, dtype=np.float32, copy=True)
    todo: list[tuple[int, str, list[str]]] = []
    absent = f"{catalog.location}|{generation}|"
    for i, r in enumerate(rows):
        key = r.get("content_hash") or _text(r)
        hit = _CACHE.sentences.get(key)
        if hit is not None:
            out[i] = hit
            continue
        if embedder is None and (absent + key) in _CACHE.no_sentences:
            continue
        sents = split_sentences(r.get("abstract") or "")
        if sents:
            todo.append((i, key, sents))
    if not todo:
        return out
    keys = list(dict.fromkeys(text_key(s) for _, _, ss in todo for s in ss))
    stored = catalog.stored_vectors(sentence_model(model), keys)
    missing_texts = []
    for i, key, sents in todo:
        vecs = [stored.get(text_key(s)) for s in sents]
        if all(v is not None for v in vecs):
            mean = _unit(np.mean([from_blob(v) for v in vecs], axis=0))
            out[i] = mean
            _CACHE.remember(_CACHE.sentences, key, mean)
        elif embedder is not None:
            missing_texts.append((i, key, sents))
        else:
            _CACHE.remember(_CACHE.no_sentences, absent + key, True)
    if missing_texts:
        flat = [s for _, _, ss in missing_texts for s in ss]
        vecs = embedder.embed(flat)
        j = 0
        for i, key, sents in missing_texts:
            mean = _unit(vecs[j:j + len(sents)].mean(axis=0))
            j += len(sents)
            out[i] = mean
            _CACHE.remember(_CACHE.sentences, key, mean)
    return out


def stored_sentence_means(catalog, model: str, rows: list[dict[str, Any]], fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean stored abstract-sentence vector of each paper, and whether it had them all (else its row of
    ``fallback`` is kept): what :func:`_sentence_means` computes, without remembering anything."""
    from paperscope.index.embedder import text_key
    from paperscope.index.vectors import from_blob, sentence_model
    from paperscope.similarity import split_sentences

    out = np.array(fallback, dtype=np.float32, copy=True)
    found = np.zeros(len(rows), bool)
    sentences = [split_sentences(r.get("abstract") or "") for r in rows]
    keys = list(dict.fromkeys(text_key(x) for xs in sentences for x in xs))
    stored = catalog.stored_vectors(sentence_model(model), keys) if keys else {}
    for i, xs in enumerate(sentences):
        vecs = [stored.get(text_key(x)) for x in xs]
        if xs and all(v is not None for v in vecs):
            out[i] = _unit(np.mean([from_blob(v) for v in vecs], axis=0))
            found[i] = True
    return out, found


def _library_views(catalog, user: str, tag: str | None, index, embedder_factory, features=None,
                   stats: TermStats | None = None) -> tuple[ViewSet, list[dict[str, Any]]]:
    """Views of the library papers (catalogue vectors; profile-only papers embedded once, then stored)."""
    from paperscope.catalog import library as store

    rows = store.profile_rows(catalog, user, tag)
    if not rows:
        return ViewSet.empty(), []
    dim = index.matrix.shape[1] if index is not None and len(index) else 384
    vectors = np.zeros((len(rows), dim), np.float32)
    need = []
    for i, r in enumerate(rows):
        v = index.vector(r["id"]) if index is not None else None
        if v is not None:
            vectors[i] = v
        else:
            need.append(i)
    embedder = None
    if need:
        embedder = embedder_factory()
        if embedder is None:
            keep = [i for i in range(len(rows)) if i not in set(need)]
            rows, vectors = [rows[i] for i in keep], vectors[keep]
        else:
            vectors[need] = embedder.embed([_text(rows[i]) for i in need])
    if not rows:
        return ViewSet.empty(dim), []
    stats = stats if stats is not None else term_stats(catalog, generation=index.generation if index is not None else "")
    return _paper_views(catalog, index, rows, vectors, features, stats, embedder), rows


def _negative_views(catalog, user: str, index, features=None, stats: TermStats | None = None) -> ViewSet:
    from paperscope.catalog import library as store

    ids = [f["paper_id"] for f in store.list_feedback(catalog, user)]
    if index is None or not ids:
        return ViewSet.empty()
    ids = [i for i in ids if index.vector(i) is not None]
    if not ids:
        return ViewSet.empty()
    texts = store.paper_texts(catalog, ids)
    rows = [texts[i] for i in ids if i in texts]
    vectors = np.stack([index.vector(r["id"]) for r in rows])
    stats = stats if stats is not None else term_stats(catalog, generation=index.generation)
    return _paper_views(catalog, index, rows, vectors, features, stats)


def _paper_views(catalog, index, rows: list[dict[str, Any]], vectors: np.ndarray, features, stats: TermStats,
                 embedder=None) -> ViewSet:
    """Views of papers (``rows``: id and content hash; title and abstract are read when needed): their
    stored features where those are of their current text, the rest computed now. With an
    ``embedder``, sentence vectors never stored are computed too (a library's profile-only papers)."""
    n = len(rows)
    sentences = np.array(vectors, dtype=np.float32, copy=True)
    term_rows: list[Row | None] = [None] * n
    found = [features.find(r["id"], r.get("content_hash")) if features is not None else None for r in rows]
    stored = [k for k, pos in enumerate(found) if pos is not None]
    for k, row in zip(stored, features.term_rows([found[k] for k in stored]) if stored else []):
        term_rows[k] = row
    # a stored mean is used unless it stands in for sentence vectors an embedder can now compute
    means = [k for k in stored if embedder is None or features.has_sentences[found[k]]]
    if means:
        sentences[means] = features.sentences[[found[k] for k in means]]
    missing = sorted(set(range(n)) - set(means))
    if missing:
        _fill_texts(catalog, rows, missing)
        model, generation = (index.model, index.generation) if index is not None else ("", "")
        sentences[missing] = _sentence_means(catalog, model, [rows[k] for k in missing], sentences[missing], embedder,
                                             generation)
    unweighted = [k for k in range(n) if term_rows[k] is None]
    for k, bag, key in zip(unweighted, _bags([rows[k] for k in unweighted]), _keys([rows[k] for k in unweighted])):
        term_rows[k] = stats.row(bag, key)
    return ViewSet([r["id"] for r in rows], vectors, sentences, None, _keys(rows), term_rows)


def _fill_texts(catalog, rows: list[dict[str, Any]], which: Iterable[int]) -> None:
    """Give the ``which`` rows their title and abstract, read in one query, where they lack them."""
    from paperscope.catalog import library as store

    lacking = [k for k in which if "abstract" not in rows[k]]
    if not lacking:
        return
    texts = store.paper_texts(catalog, [rows[k]["id"] for k in lacking])
    for k in lacking:
        text = texts.get(rows[k]["id"]) or {}
        rows[k]["title"] = text.get("title") or ""
        rows[k]["abstract"] = text.get("abstract") or ""


def _centroids(vectors: np.ndarray, k: int, iterations: int = 8) -> np.ndarray:
    """Spherical k-means of the library vectors (farthest-point start: every topic gets a centre)."""
    if len(vectors) <= k:
        return vectors
    import hashlib

    key = hashlib.sha1(np.ascontiguousarray(vectors).tobytes()).hexdigest() + f"|{k}"
    hit = _CACHE.centroids.get(key)
    if hit is not None:
        return hit
    centres = [0]
    dist = 1 - vectors @ vectors[0]
    for _ in range(1, k):
        nxt = int(np.argmax(dist))
        centres.append(nxt)
        dist = np.minimum(dist, 1 - vectors @ vectors[nxt])
    c = vectors[centres].copy()
    for _ in range(iterations):
        assign = np.argmax(vectors @ c.T, axis=1)
        for j in range(len(c)):
            members = vectors[assign == j]
            if len(members):
                c[j] = _unit(members.mean(axis=0))
    _CACHE.remember(_CACHE.centroids, key, c, 1000)
    return c


STAGE1_DIMS = 128
STAGE1_MIN_ROWS = 20_000


def stage1_space(index) -> tuple[np.ndarray, np.ndarray | None]:
    """The matrix stage 1 multiplies, and the projection that maps vectors into it (None: as they are).

    Above 20k papers, the vectors' top 128 principal directions (of their second moment, so dot
    products are what is kept): a third of the arithmetic and of the memory read per request, at a
    recall ``paperscope bench recommend`` measures. Built once per process and vector generation.
    """
    rows = _matrix_rows(index)
    if rows < STAGE1_MIN_ROWS or index.matrix.shape[1] <= STAGE1_DIMS:
        return index.matrix, None
    key = f"{id(index)}|{index.generation}|{rows}"
    with _CACHE.lock:
        hit = _CACHE.stage1.get(key)
    if hit is not None:
        return hit
    rng = np.random.default_rng(0)
    sample = index.matrix[np.sort(rng.choice(rows, STAGE1_MIN_ROWS, replace=False))]
    _, vecs = np.linalg.eigh((sample.T @ sample).astype(np.float64))
    w = np.ascontiguousarray(vecs[:, -STAGE1_DIMS:], dtype=np.float32)
    reduced = np.ascontiguousarray(index.matrix @ w)
    with _CACHE.lock:
        _CACHE.stage1.clear()           # one index at a time is enough
        _CACHE.stage1[key] = (reduced, w)
    return reduced, w


def candidate_pool(index, profile_vectors: np.ndarray, allowed: np.ndarray | None, size: int, centroids: int) -> np.ndarray:
    """Stage 1: positions in ``index`` of the ``size`` papers closest to a centroid of the library."""
    c = _centroids(profile_vectors, centroids)
    matrix, w = stage1_space(index)
    if w is not None:
        c = c @ w
    # (centroids x papers, then the best centroid per paper: a reduction over 16 long rows, not 92k short ones)
    scores = (c @ matrix.T).max(axis=0) if len(c) > 1 else matrix @ c[0]
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    finite = int(np.isfinite(scores).sum())
    size = min(size, finite)
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, size - 1)[:size]
    return top[np.argsort(-scores[top])]


def _embedder_or_none(space: str | None = None):
    """The MiniLM embedder of vector space ``space`` (the default model's when None), or None."""
    try:
        from paperscope.index.embedder import default_embedder, minilm_for_space

        return minilm_for_space(space) if space else default_embedder()
    except Exception:  # noqa: BLE001 - no model: profile-only papers without vectors are left out
        return None


class _OneBlasThread:
    """BLAS on one thread while requests run (counted, so overlapping requests restore it once).

    A request multiplies small matrices, and OpenBLAS's worker threads busy-wait between them: on a
    shared 2-core machine that doubled the CPU time of a request (`paperscope bench recommend`).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.limiter = None
        self.controller = None

    def __enter__(self):
        with self.lock:
            if self.depth == 0:
                try:
                    if self.controller is None:
                        from threadpoolctl import ThreadpoolController

                        self.controller = ThreadpoolController()
                    self.limiter = self.controller.limit(limits=1, user_api="blas")
                except Exception:  # noqa: BLE001 - no threadpoolctl: BLAS as configured
                    self.limiter = None
            self.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.limiter is not None:
                self.limiter.restore_original_limits()
                self.limiter = None


_ONE_BLAS_THREAD = _OneBlasThread()


def recommend(catalog, user: str = "local", tag: str | None = None, since: str | None = None, limit: int = 20,
              candidate_ids: Iterable[str] | None = None, hide_seen: bool = True,
              params: dict[str, Any] | None = None, embedder_factory=None) -> RecommendResult:
    """Papers for ``user`` (for one ``tag`` of the library, or the whole of it), best first, each with
    its reason. ``since`` (ISO date or time) keeps papers added to the catalogue since then;
    ``candidate_ids`` restricts the candidates (the digest passes the new papers)."""
    with _ONE_BLAS_THREAD:
        return _recommend(catalog, user, tag, since, limit, candidate_ids, hide_seen, params, embedder_factory)


def _recommend(catalog, user: str, tag: str | None, since: str | None, limit: int, candidate_ids: Iterable[str] | None,
               hide_seen: bool, params: dict[str, Any] | None, embedder_factory) -> RecommendResult:
    from paperscope.catalog import library as store
    from paperscope.index.vectors import load_vector_index

    p = DEFAULT_PARAMS | (params or {})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[name] = round((now - t0) * 1000, 2)
        t0 = now

    store.ensure_library_tables(catalog)
    tag = tag or None
    result = RecommendResult([], tag=tag, since=since, timings_ms=timings)
    index = _vector_index(catalog, load_vector_index)
    features = _feature_store(catalog, index) if p["features"] else None
    stats = features.stats if features is not None else term_stats(catalog, int(p["term_sample"]), index.generation if index else "")
    lap("index")
    factory = embedder_factory or (lambda: _catalog_embedder(catalog, index))
    profile, profile_rows = _library_views(catalog, user, tag, index, factory, features, stats)
    result.library_papers = len(profile)
    lap("library")
    if not len(profile):
        result.mode = "empty"
        result.message = (f"no papers tagged “{tag}” in your library" if tag else
                          "your library is empty: save papers (`paperscope library add ID`, or Save on any paper page), "
                          "import a BibTeX file, or add your own papers (`paperscope library mine \"Your Name\"`)")
        return result
    hidden = set(store.library_paper_ids(catalog, user))
    hidden |= {f["paper_id"] for f in store.list_feedback(catalog, user)}
    if hide_seen:
        hidden |= store.seen_ids(catalog, user)
    wanted: set[str] | None = set(candidate_ids) if candidate_ids is not None else None
    if since:
        new = set(store.paper_ids_added_between(catalog, _since_iso(since), None))
        wanted = new if wanted is None else wanted & new
    lap("filters")
    if index is None or not len(index):
        return _keyword_recommend(catalog, result, profile, profile_rows, hidden, wanted, limit, p, stats)
    allowed = np.ones(_matrix_rows(index), bool)
    for pid in hidden:
        i = index.position.get(pid)
        if i is not None:
            allowed[i] = False
    unembedded: list[str] = []
    if wanted is not None:
        mask = np.zeros(_matrix_rows(index), bool)
        for pid in wanted:
            i = index.position.get(pid)
            if i is not None:
                mask[i] = True
            elif pid not in hidden:
                unembedded.append(pid)
        allowed &= mask
    extra_rows, extra_vectors = _embed_new(catalog, sorted(unembedded), factory)
    result.candidates = int(allowed.sum()) + len(extra_rows)
    lap("mask")
    if result.candidates == 0:
        result.message = "no new papers to recommend" if (since or candidate_ids is not None) else "nothing left to recommend"
        if unembedded and not extra_rows:
            result.message += f" ({len(unembedded)} new papers have no vectors yet: run `paperscope embed`)"
        return result
    positions = candidate_pool(index, profile.vectors, allowed, int(p["pool"]), int(p["centroids"])) if allowed.any() else []
    if len(positions) > int(p["rerank"]):
        # the pool by the vector view (exact, in memory): the full ranker reads texts of the best only
        near = top_k_mean(index.matrix[positions] @ profile.vectors.T, int(p["k"]))
        positions = positions[np.argsort(-near)[: int(p["rerank"])]]
    result.pool = len(positions) + len(extra_rows)
    lap("stage1")
    pool_ids = [index.ids[i] for i in positions]
    hashes = store.content_hashes_of(catalog, pool_ids)
    # (texts are read only for papers whose features must be computed, and for those explained)
    rows = [{"id": pid, "content_hash": hashes[pid]} for pid in pool_ids if pid in hashes]
    vectors = np.zeros((len(rows) + len(extra_rows), index.matrix.shape[1]), np.float32)
    for n, r in enumerate(rows):
        vectors[n] = index.matrix[index.position[r["id"]]]
    if extra_rows:
        vectors[len(rows):] = extra_vectors
        rows = rows + extra_rows
    lap("fetch")
    cands = _paper_views(catalog, index, rows, vectors, features, stats)
    lap("views")
    negatives = _negative_views(catalog, user, index, features, stats)
    scored = score_candidates(cands, profile, stats, negatives, params=p)
    lap("score")
    order = mmr_order(scored.score, cands.vectors, limit, float(p["diversity"]))
    result.items = _explain(catalog, order, cands, rows, profile, profile_rows, scored, stats)
    lap("explain")
    return result


def _matrix_rows(index) -> int:
    """The papers the index's matrix holds. (On PostgreSQL ``len(index)`` counts the vectors stored,
    which include those of papers whose text changed since they were embedded; the matrix does not.)"""
    return index.matrix.shape[0]


def _feature_store(catalog, index):
    """The stored per-paper features of the index's model, or None (then everything is computed on demand)."""
    if index is None or not len(index):
        return None
    from paperscope.index.features import load_features

    return load_features(catalog, index.model)


NEW_PAPERS_EMBEDDED_ON_THE_FLY = 256


def _embed_new(catalog, paper_ids: list[str], factory) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Vectors for candidates the vector index does not have yet (papers ingested since the last
    ``paperscope embed``): computed now when they are few (kept in the catalogue by text, so once)."""
    from paperscope.catalog import library as store

    if not paper_ids or len(paper_ids) > NEW_PAPERS_EMBEDDED_ON_THE_FLY:
        return [], np.zeros((0, 384), np.float32)
    embedder = factory()
    if embedder is None:
        return [], np.zeros((0, 384), np.float32)
    texts = store.paper_texts(catalog, paper_ids)
    rows = [texts[i] for i in paper_ids if i in texts and (texts[i]["title"] or texts[i]["abstract"])]
    if not rows:
        return [], np.zeros((0, 384), np.float32)
    return rows, _unit(embedder.embed([_text(r) for r in rows]))


def vector_models() -> tuple[str, ...]:
    """The vector sets the recommender reads, in order of preference (the default model's first)."""
    from paperscope.index.embedder import minilm_spaces

    return minilm_spaces()


def _vector_index(catalog, loader):
    """The catalogue's vector index of the default model (full-precision vectors preferred), or None.

    Found by name, without loading the model: a request that needs no new vector never pays for it.
    Without the search graph: the recommender reads the matrix (attaching the graph of a large
    catalogue per request hashed every paper id, and started building the graph when it had none).
    """
    for candidate in vector_models():
        index = loader(catalog, candidate, graph=False)
        if index is not None and len(index):
            return index
    return None


def _catalog_embedder(catalog, index=None):
    """Embeds papers without stored vectors in the space of ``index`` (the default model's when
    there is none), answering from the catalogue's stored vectors first."""
    base = _embedder_or_none(index.model if index is not None else None)
    if base is None:
        return None
    from paperscope.similar import CatalogEmbedder

    return CatalogEmbedder(catalog, base)


def _since_iso(since: str) -> str:
    from datetime import date, datetime, timezone

    text = since.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).isoformat(timespec="seconds")
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecommendError(f"“{since}” is not a date; give it as YYYY-MM-DD") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def _explain(catalog, order: list[int], cands: ViewSet, rows: list[dict[str, Any]], profile: ViewSet,
             profile_rows: list[dict[str, Any]], scored: Scored, stats: TermStats) -> list[Recommendation]:
    _fill_texts(catalog, rows, order)
    papers = {p["id"]: p for p in catalog.papers([cands.ids[i] for i in order])}
    combined = sum(zscore(s.ravel()).reshape(s.shape) for s in scored.sims.values()) if scored.sims else None
    library_rows = profile.term_rows(stats)
    library_tfidf: dict[int, dict[int, float]] = {}

    def tfidf_of_library_paper(j: int) -> dict[int, float]:
        if j not in library_tfidf:        # (a library paper explains several candidates)
            library_tfidf[j] = column_tfidf(library_rows[j])
        return library_tfidf[j]

    out = []
    for i in order:
        pid = cands.ids[i]
        if pid not in papers:
            continue
        closest: list[dict[str, Any]] = []
        if combined is not None and len(profile):
            order_j = np.argsort(-combined[i])
            best = combined[i, order_j[0]]
            # the closest library paper, and the next one when it is nearly as close
            near = [order_j[0]] + [j for j in order_j[1:2] if combined[i, j] > 0 and combined[i, j] >= 0.8 * best]
            closest = [{"id": profile_rows[j]["id"], "title": profile_rows[j].get("title") or "",
                        "entry": profile_rows[j].get("entry"),
                        "similarity": round(float(scored.sims["vector"][i, j]) if "vector" in scored.sims else 0.0, 3)}
                       for j in near]
            basis = list(order_j[:3])
            titles = terms_of(" ".join([rows[i].get("title") or ""] + [profile_rows[j].get("title") or "" for j in basis]))
            terms = shared_terms(_bags([rows[i]])[0], [tfidf_of_library_paper(j) for j in basis], stats, _text(rows[i]),
                                 topical=set(titles) | {f"{a}_{b}" for a, b in zip(titles, titles[1:])})
        else:
            terms = []
        out.append(Recommendation(papers[pid], float(scored.score[i]), closest, terms, float(scored.penalty[i])))
    return out


def _keyword_recommend(catalog, result: RecommendResult, profile: ViewSet, profile_rows, hidden: set[str],
                       wanted: set[str] | None, limit: int, p: dict[str, Any], stats: TermStats) -> RecommendResult:
    """No vectors yet: candidates share the library's key terms (BM25), ranked by the terms view alone."""
    from paperscope.catalog import library as store

    result.mode = "keyword"
    result.message = "no paper vectors yet (run `paperscope embed`): ranked by shared key terms only"
    pool: list[str] = []
    if wanted is not None:
        pool = [w for w in wanted if w not in hidden]
    else:
        try:
            from paperscope.search import more_like_this

            for r in profile_rows[:30]:
                pool.extend(x for x in more_like_this(catalog, r.get("title") or "", r.get("abstract") or "", 30) if x not in hidden)
        except Exception as exc:  # noqa: BLE001 - no keyword index either
            result.message = f"no paper vectors and no keyword index ({exc}): run `paperscope embed`"
            return result
    pool = list(dict.fromkeys(pool))[: int(p["pool"])]
    result.candidates = result.pool = len(pool)
    if not pool:
        return result
    texts = store.paper_texts(catalog, pool)
    rows = [texts[i] for i in pool if i in texts]
    zero = np.zeros((len(rows), profile.vectors.shape[1]), np.float32)
    cands = ViewSet([r["id"] for r in rows], zero, zero, _bags(rows), _keys(rows))
    scored = score_candidates(cands, profile, stats, None, params=p | {"views": ("terms",)})
    order = list(np.argsort(-scored.score))[:limit]
    result.items = _explain(catalog, order, cands, rows, profile, profile_rows, scored, stats)
    return result


def mark_not_relevant(catalog, user: str, paper_id: str, tag: str | None = None) -> bool:
    """Record "not relevant": the paper is hidden and papers like it are demoted from now on."""
    from paperscope.catalog import library as store

    paper = catalog.paper(paper_id)
    if paper is None:
        raise RecommendError(f"no paper with id {paper_id!r} in this catalogue")
    return store.add_feedback(catalog, user, paper_id, "not_relevant", tag or "", paper.get("title") or "")


def undo_not_relevant(catalog, user: str, paper_id: str) -> int:
    from paperscope.catalog import library as store

    return store.remove_feedback(catalog, user, paper_id, "not_relevant")


# =============================================================================================
# Evaluation on the reviewer-expertise benchmark (reuses its loaders, protocol and loss)
# =============================================================================================


def eval_views(data, embedder) -> tuple[dict[str, int], ViewSet, TermStats]:
    """Views of every benchmark paper (vectors from ``embedder``, which should cache), and term
    statistics from the whole benchmark corpus (the catalogue of this benchmark)."""
    docs = [d for d in data.papers.values() if not d.is_empty]
    vectors = _unit(embedder.embed([d.text for d in docs]))
    units = [d.sentences for d in docs]
    flat = [s for ss in units for s in ss]
    svecs = embedder.embed(flat) if flat else np.zeros((0, vectors.shape[1]), np.float32)
    sentences = vectors.copy()
    j = 0
    for i, ss in enumerate(units):
        if ss:
            sentences[i] = _unit(svecs[j:j + len(ss)].mean(axis=0))
        j += len(ss)
    bags = [bag_of_terms(d.text) for d in docs]
    views = ViewSet([d.id for d in docs], vectors, sentences, bags, [f"eval:{d.id}" for d in docs])
    sample = DEFAULT_PARAMS["term_sample"]
    stats = TermStats.from_bags(bags if len(bags) <= sample else [bags[i] for i in np.random.default_rng(7).choice(len(bags), sample, replace=False)])
    return {pid: i for i, pid in enumerate(views.ids)}, views, stats


def eval_runs(data, embedder, method: str = DEFAULT_METHOD, params: dict[str, Any] | None = None, seeds=None,
              progress=None, background_size: int = 300) -> dict[str, dict[str, dict[str, float]]]:
    """``{seed: {participant: {paper: score}}}`` of this module's ranker under the benchmark's protocol
    (profile = the participant's 20 latest papers; candidates = the papers they rated)."""
    from paperscope.bench import eval_reviewer as R

    position, views, stats = eval_views(data, embedder)
    rng = np.random.default_rng(11)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for seed in seeds or R.SEEDS:
        per: dict[str, dict[str, float]] = {}
        for part, rated in data.ratings.items():
            prof = views.take([position[d.id] for d in R.profile(data, part, seed) if d.id in position])
            known = [pid for pid, _ in rated if pid in position]
            cands = views.take([position[pid] for pid in known])
            background = None
            if method in ("linear", "profile+linear"):
                background = views.take(rng.choice(len(views), min(background_size, len(views)), replace=False))
            scored = score_candidates(cands, prof, stats, method=method, params=params, background=background)
            per[part] = {pid: float(s) for pid, s in zip(known, scored.score)}
            if progress is not None:
                progress(1)
        out[str(seed)] = per
    return out
