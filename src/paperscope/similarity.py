"""Ranking by example and by profile: pure functions over texts and vectors, no database.

These are what "similar papers" (whole paper, or by facet: background / method / result) and
recommendations reuse. Every function takes :class:`Doc` objects and an embedder (anything with
``embed(texts) -> L2-normalised rows``, see :mod:`paperscope.index.embedder`); wrap the embedder in
:class:`CachedEmbedder` to avoid re-embedding texts.

Signals, each measured on the labelled benchmarks (``paperscope eval``):

- ``cosine``: one vector per paper (title + abstract), cosine.
- ``lexical``: BM25 over title + abstract, IDF from the candidates (or given document frequencies).
- ``maxsim``: sentence level; each query sentence is matched to its best candidate sentence and the
  matches are averaged (with sentence weights: for a facet, the query sentences of that facet).
- fusion: each signal is z-scored over the candidate list and summed with fixed weights.

Facet roles come from :mod:`paperscope.index.facets` (a small classifier over sentence vectors) when
a ``Doc`` carries no roles of its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

FACETS = ("background", "method", "result")

# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def split_sentences(text: str) -> list[str]:
    """A plain sentence splitter for abstracts (keeps 'et al.' and 'e.g.' joined)."""
    text = " ".join((text or "").split())
    if not text:
        return []
    parts = _SENT_SPLIT.split(text)
    out: list[str] = []
    for p in parts:
        if out and (len(p) < 8 or re.search(r"\b(?:et al|e\.g|i\.e|cf|vs|Fig|Eq|No)\.$", out[-1])):
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return out


@dataclass
class Doc:
    """A paper as the ranking functions see it.

    ``sentences`` is the abstract split in sentences (``Doc.from_text`` splits a plain abstract);
    ``roles`` optionally gives each sentence's facet (background/method/result or None).
    """

    id: str
    title: str = ""
    sentences: list[str] = field(default_factory=list)
    year: int | None = None
    roles: list[str | None] | None = None

    @classmethod
    def from_text(cls, id: str, title: str = "", abstract: str = "", year: int | None = None) -> "Doc":
        return cls(id=str(id), title=title or "", sentences=split_sentences(abstract or ""), year=year)

    @property
    def abstract(self) -> str:
        return " ".join(self.sentences)

    @property
    def text(self) -> str:
        """Title and abstract, the text of the paper-level vector."""
        t = (self.title or "").strip()
        a = self.abstract.strip()
        if t and a:
            return f"{t}{'' if t[-1] in '.?!:' else '.'} {a}"
        return t or a

    @property
    def is_empty(self) -> bool:
        return not (self.title or self.sentences)


# ---------------------------------------------------------------------------------------------
# Embedding helpers
# ---------------------------------------------------------------------------------------------


class CachedEmbedder:
    """An embedder that remembers vectors by text (in memory, plus an optional disk cache)."""

    def __init__(self, embedder, disk_cache=None, batch_size: int = 32, progress: Callable[[int], None] | None = None):
        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.disk = disk_cache
        self.batch_size = batch_size
        self.progress = progress
        self._mem: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str], batch_size: int | None = None, progress=None) -> np.ndarray:
        from paperscope.index.embedder import embed_cached

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = [t for t in dict.fromkeys(texts) if t not in self._mem]
        if missing:
            vecs = embed_cached(self.inner, missing, self.disk, batch_size or self.batch_size, progress or self.progress)
            for t, v in zip(missing, vecs):
                self._mem[t] = v
        for i, t in enumerate(texts):
            out[i] = self._mem[t]
        return out


def doc_vectors(docs: Sequence[Doc], embedder) -> np.ndarray:
    return embedder.embed([d.text for d in docs])


def sentence_vectors(docs: Sequence[Doc], embedder, with_title: bool = True) -> list[np.ndarray]:
    """Per doc, the vectors of its sentences (title first when ``with_title``)."""
    units = [([d.title] if with_title and d.title else []) + list(d.sentences) for d in docs]
    flat = [u for us in units for u in us]
    vecs = embedder.embed(flat) if flat else np.zeros((0, embedder.dim), np.float32)
    out, i = [], 0
    for us in units:
        out.append(vecs[i : i + len(us)])
        i += len(us)
    return out


# ---------------------------------------------------------------------------------------------
# Lexical signal
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just may me might more most
    much must my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through thus to too under
    until up upon us very via was we were what when where which while who whom why will with within
    without would you your yours however therefore furthermore moreover although whereas whether yet
    paper propose proposed present presents show shows shown using use used based approach method methods
    results result new novel work study task tasks problem problems model models""".split()
)


def _stem(w: str) -> str:
    """A light suffix stripper (plural/-ing/-ed/-ly), enough for matching abstract vocabulary."""
    if len(w) <= 4 or w.isdigit():
        return w
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("edly", ""), ("ed", ""), ("ly", ""), ("es", "e"), ("s", "")):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            if suf == "s" and w.endswith(("ss", "us", "is")):
                return w
            return w[: -len(suf)] + rep
    return w


def tokenize(text: str) -> list[str]:
    return [_stem(t) for t in _TOKEN.findall((text or "").lower()) if t not in STOPWORDS and len(t) > 1]


def bm25_scores(
    query_tokens: list[str],
    docs_tokens: Sequence[list[str]],
    k1: float = 1.2,
    b: float = 0.75,
    df: Counter | None = None,
    n_docs: int | None = None,
) -> np.ndarray:
    """BM25 of one bag-of-words query against documents; IDF from ``df``/``n_docs`` or the docs."""
    if df is None:
        df = Counter(t for toks in docs_tokens for t in set(toks))
        n_docs = len(docs_tokens)
    n_docs = n_docs or max(1, len(docs_tokens))
    lens = np.array([len(t) for t in docs_tokens], dtype=np.float64)
    avg = lens.mean() if len(lens) and lens.mean() > 0 else 1.0
    qtf = Counter(query_tokens)
    scores = np.zeros(len(docs_tokens))
    for i, toks in enumerate(docs_tokens):
        tf = Counter(toks)
        s = 0.0
        for t, qn in qtf.items():
            f = tf.get(t)
            if not f:
                continue
            idf = math.log(1 + (n_docs - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5))
            s += qn * idf * f * (k1 + 1) / (f + k1 * (1 - b + b * lens[i] / avg))
        scores[i] = s
    return scores


def tfidf_matrix(docs_tokens: Sequence[list[str]], df: Counter | None = None, n_docs: int | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """L2-normalised sublinear tf-idf rows (dense; meant for a few thousand docs at most)."""
    if df is None:
        df = Counter(t for toks in docs_tokens for t in set(toks))
        n_docs = len(docs_tokens)
    n_docs = n_docs or len(docs_tokens)
    vocab = {t: i for i, t in enumerate(sorted(df))}
    m = np.zeros((len(docs_tokens), len(vocab)), dtype=np.float32)
    for r, toks in enumerate(docs_tokens):
        for t, f in Counter(toks).items():
            j = vocab.get(t)
            if j is not None:
                m[r, j] = (1 + math.log(f)) * math.log((1 + n_docs) / (1 + df[t]))
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.clip(n, 1e-12, None), vocab


# ---------------------------------------------------------------------------------------------
# Fusion
# ---------------------------------------------------------------------------------------------


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def fuse(signals: Iterable[tuple[float, np.ndarray]]) -> np.ndarray:
    """Weighted sum of z-scored signals over the same candidate list."""
    total = None
    for w, s in signals:
        if w == 0:
            continue
        z = w * zscore(s)
        total = z if total is None else total + z
    return total if total is not None else np.zeros(0)


# ---------------------------------------------------------------------------------------------
# Sentence-level matching
# ---------------------------------------------------------------------------------------------


def maxsim(q_vecs: np.ndarray, c_vecs: np.ndarray, q_weights: np.ndarray | None = None, c_weights: np.ndarray | None = None) -> float:
    """Weighted mean over query sentences of their best cosine to a candidate sentence.

    ``c_weights`` (0..1) scale each candidate sentence's similarity before the max (a facet
    prior on candidate sentences).
    """
    if len(q_vecs) == 0 or len(c_vecs) == 0:
        return 0.0
    sims = q_vecs @ c_vecs.T
    if c_weights is not None:
        sims = sims * c_weights[None, :]
    best = sims.max(axis=1)
    if q_weights is None:
        return float(best.mean())
    w = np.asarray(q_weights, dtype=np.float64)
    if w.sum() <= 0:
        return float(best.mean())
    return float((best * w).sum() / w.sum())


def sparse_tfidf(docs_tokens: Sequence[list[str]], df: Counter | None = None, n_docs: int | None = None) -> list[dict[str, float]]:
    """L2-normalised sublinear tf-idf as ``{term: weight}`` per doc; IDF from ``df`` or the docs."""
    if df is None:
        df = Counter(t for toks in docs_tokens for t in set(toks))
        n_docs = len(docs_tokens)
    n_docs = n_docs or len(docs_tokens)
    out = []
    for toks in docs_tokens:
        v = {t: (1 + math.log(f)) * math.log((1 + n_docs) / (1 + df.get(t, 0))) for t, f in Counter(toks).items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        out.append({t: x / norm for t, x in v.items()})
    return out


def sparse_cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(t, 0.0) for t, x in a.items())


def facet_weights(probs: np.ndarray, facet: str | None, floor: float = 0.0) -> np.ndarray:
    """Weights of sentences for a facet from role probabilities (columns in :data:`FACETS`)."""
    if facet is None or len(probs) == 0:
        return np.ones(len(probs))
    p = probs[:, FACETS.index(facet)]
    return floor + (1 - floor) * p


def role_probs(doc: Doc, sent_vecs: np.ndarray, role_model=None) -> np.ndarray:
    """(n sentences, 3) probabilities of background/method/result for ``doc``'s sentences:
    its own ``roles`` when given, else the classifier's, else uniform."""
    from paperscope.index.facets import default_role_model, labels_to_probs

    if doc.roles is not None and len(doc.roles) == len(doc.sentences):
        return labels_to_probs(doc.roles)
    model = role_model if role_model is not None else default_role_model()
    # the classifier reads MiniLM vectors: with another embedder (the static tier) roles are unknown
    if model is not None and len(sent_vecs) and sent_vecs.shape[1] == model.dim:
        return model.predict_proba(sent_vecs, doc.sentences)
    return np.full((len(sent_vecs), len(FACETS)), 1 / len(FACETS), dtype=np.float32)


def facet_text(doc: Doc, probs: np.ndarray, facet: str, threshold: float = 0.4) -> str:
    """The title and the sentences of ``doc`` in ``facet`` (its most likely one when none pass)."""
    if not doc.sentences:
        return doc.title
    p = probs[:, FACETS.index(facet)]
    chosen = [s for s, x in zip(doc.sentences, p) if x >= threshold] or [doc.sentences[int(np.argmax(p))]]
    t = (doc.title or "").strip()
    body = " ".join(chosen)
    return f"{t}{'' if not t or t[-1] in '.?!:' else '.'} {body}".strip()


def coverage(c_units: np.ndarray, q_units: np.ndarray) -> float:
    """How much of a candidate is covered: mean over its units of the best cosine to a query unit."""
    if len(c_units) == 0 or len(q_units) == 0:
        return 0.0
    return float((c_units @ q_units.T).max(axis=1).mean())


# ---------------------------------------------------------------------------------------------
# Ranking by example (similar papers, optionally by facet)
# ---------------------------------------------------------------------------------------------

#: ``fusion`` (default) = z-scored sum of: paper cosine (1), cosine to the query's facet text
#: (title + facet sentences, 1), BM25 (0.3), candidate coverage by the query's sentences (0.5) and
#: facet max-sim (query facet sentences vs candidate sentences, candidates' facet sentences
#: weighted up, 0.5). Weights chosen once on the CSFCube dev half, the same for every facet.
METHODS_BY_EXAMPLE = ("cosine", "lexical", "hybrid", "fusion")
DEFAULT_BY_EXAMPLE = "fusion"
BY_EXAMPLE_PARAMS = {"w_cos": 1.0, "w_facet_text": 1.0, "w_lex": 0.3, "w_cov": 0.5, "w_fmax": 0.5, "cand_floor": 0.5}


def score_by_example(
    query: Doc,
    candidates: Sequence[Doc],
    embedder,
    facet: str | None = None,
    method: str = DEFAULT_BY_EXAMPLE,
    role_model=None,
    params: dict | None = None,
) -> np.ndarray:
    """Scores of ``candidates`` for "papers like ``query``" (in its ``facet`` when given).

    Scores are comparable within one call only (fusion z-scores each signal over the candidates).
    """
    p = dict(BY_EXAMPLE_PARAMS, **(params or {}))
    if method not in METHODS_BY_EXAMPLE:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS_BY_EXAMPLE)}")
    if facet is not None and facet not in FACETS:
        raise ValueError(f"unknown facet {facet!r}; one of {', '.join(FACETS)}")
    if len(candidates) == 0:
        return np.zeros(0)

    signals: list[tuple[float, np.ndarray]] = []
    if method != "lexical":
        qv = doc_vectors([query], embedder)[0]
        cv = doc_vectors(candidates, embedder)
        cos = (cv @ qv).astype(np.float64)
        if method == "cosine":
            return cos
        signals.append((p["w_cos"], cos))
    lex = bm25_scores(tokenize(query.text), [tokenize(c.text) for c in candidates])
    if method == "lexical":
        return lex
    signals.append((p["w_lex"], lex))
    if method == "fusion":
        q_units = sentence_vectors([query], embedder)[0]  # title first, then sentences
        c_units = sentence_vectors(candidates, embedder)
        signals.append((p["w_cov"], np.array([coverage(cu, q_units) for cu in c_units])))
        q_title = 1 if query.title else 0
        q_sents = q_units[q_title:]
        if facet is None:
            signals.append((p["w_fmax"], np.array([maxsim(q_sents if len(q_sents) else q_units, cu) for cu in c_units])))
        else:
            qp = role_probs(query, q_sents, role_model)
            ftext = facet_text(query, qp, facet)
            fv = embedder.embed([ftext])[0]
            signals.append((p["w_facet_text"], (cv @ fv).astype(np.float64)))
            qw = facet_weights(qp, facet) if len(q_sents) else None
            fm = []
            for c, cu in zip(candidates, c_units):
                c_title = 1 if c.title else 0
                cw = facet_weights(role_probs(c, cu[c_title:], role_model), facet, p["cand_floor"])
                if c_title:
                    cw = np.concatenate([[p["cand_floor"] + (1 - p["cand_floor"]) / len(FACETS)], cw])
                fm.append(maxsim(q_sents if len(q_sents) else q_units, cu, qw, cw))
            signals.append((p["w_fmax"], np.array(fm)))
    return fuse(signals)


def rank_by_example(
    query: Doc,
    candidates: Sequence[Doc],
    facet: str | None = None,
    embedder=None,
    method: str = DEFAULT_BY_EXAMPLE,
    role_model=None,
    params: dict | None = None,
    exclude_query: bool = True,
) -> list[tuple[str, float]]:
    """``[(candidate id, score)]`` best first. Candidates without text go last (score -inf);
    so does the query itself unless ``exclude_query=False`` (then it is ranked like any other)."""
    if embedder is None:
        from paperscope.index.embedder import default_embedder

        embedder = default_embedder()
    skip = lambda c: c.is_empty or (exclude_query and c.id == query.id)  # noqa: E731
    usable = [c for c in candidates if not skip(c)]
    if usable and not query.is_empty:
        scores = score_by_example(query, usable, embedder, facet, method, role_model, params)
    else:
        scores = np.zeros(len(usable))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = [(usable[i].id, float(scores[i])) for i in order]
    return ranked + [(c.id, float("-inf")) for c in candidates if skip(c)]


# ---------------------------------------------------------------------------------------------
# Scoring against a profile (recommendations)
# ---------------------------------------------------------------------------------------------

#: ``coverage`` (default) = mean of the k=3 best (cosine + tf-idf cosine) over the profile's papers,
#: plus coverage: mean over the candidate's title and sentences of the best cosine to any sentence
#: of the profile. Raw sums (no per-list normalisation), so a candidate's score does not depend on
#: the other candidates except through tf-idf's IDF (local to profile + candidates unless ``df``).
#: ``hybrid`` = the same without coverage: needs paper vectors only (no sentence vectors), so it is
#: the library default for large candidate lists; ``paperscope eval reviewer`` defaults to coverage.
METHODS_PROFILE = ("mean", "centroid", "topk", "softmax", "hybrid", "coverage")
DEFAULT_PROFILE = "hybrid"
BEST_PROFILE = "coverage"
PROFILE_PARAMS = {"k": 3, "temperature": 0.05, "w_lex": 1.0, "w_cov": 1.0}


def profile_similarity(sims: np.ndarray, method: str = "topk", k: int = 3, temperature: float = 0.05) -> np.ndarray:
    """Aggregate a (candidates x profile papers) similarity matrix into one score per candidate."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    if method == "mean":
        return sims.mean(axis=1)
    if method == "topk":
        k = max(1, min(k, sims.shape[1]))
        return np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    if method == "softmax":
        z = sims / temperature
        z = z - z.max(axis=1, keepdims=True)
        w = np.exp(z)
        w /= w.sum(axis=1, keepdims=True)
        return (w * sims).sum(axis=1)
    if method == "max":
        return sims.max(axis=1)
    raise ValueError(f"unknown aggregation {method!r}")


def score_against_profile(
    profile: Sequence[Doc],
    candidates: Sequence[Doc],
    embedder=None,
    method: str = DEFAULT_PROFILE,
    params: dict | None = None,
    df: Counter | None = None,
    n_docs: int | None = None,
) -> dict[str, float]:
    """Score each candidate by how close it is to a researcher's papers (higher = closer).

    ``df``/``n_docs``: document frequencies of a larger collection (the catalogue) for tf-idf;
    without them IDF comes from the profile and the candidates.
    """
    p = dict(PROFILE_PARAMS, **(params or {}))
    if method not in METHODS_PROFILE:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS_PROFILE)}")
    if embedder is None:
        from paperscope.index.embedder import default_embedder

        embedder = default_embedder()
    cands = list(candidates)
    prof = [d for d in profile if not d.is_empty]
    if not cands:
        return {}
    if not prof:
        return {c.id: 0.0 for c in cands}
    usable = [c for c in cands if not c.is_empty]
    out = {c.id: float("-inf") for c in cands if c.is_empty}
    if not usable:
        return out
    pv = doc_vectors(prof, embedder)
    cv = doc_vectors(usable, embedder)
    sims = cv @ pv.T
    if method == "centroid":
        c = pv.mean(axis=0)
        s = cv @ (c / max(float(np.linalg.norm(c)), 1e-12))
    elif method in ("mean", "topk", "softmax"):
        s = profile_similarity(sims, method, p["k"], p["temperature"])
    else:
        tf = sparse_tfidf([tokenize(d.text) for d in prof + usable], df, n_docs)
        tf_p, tf_c = tf[: len(prof)], tf[len(prof) :]
        lex = np.array([[sparse_cosine(a, b) for b in tf_p] for a in tf_c])
        s = profile_similarity(sims + p["w_lex"] * lex, "topk", p["k"])
        if method == "coverage":
            p_units = np.vstack(sentence_vectors(prof, embedder))
            c_units = sentence_vectors(usable, embedder)
            s = s + p["w_cov"] * np.array([coverage(cu, p_units) for cu in c_units])
    out.update({c.id: float(v) for c, v in zip(usable, s)})
    return {c.id: out[c.id] for c in cands}
