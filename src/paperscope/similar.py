"""Papers like this one: by the whole paper, or by its background, method or results.

Two stages, so that it stays interactive on 100k papers:
1. candidates: the nearest papers by paper-level vector (exact cosine over the catalogue), joined
   with the best keyword matches of the paper's own title and abstract terms;
2. re-ranking of those candidates with the measured method of ``paperscope.similarity``
   (cosine + BM25 + sentence-level matching, facet-weighted when a facet is asked for),
   using sentence vectors stored by ``paperscope embed``.
Before any vectors exist, keyword similarity alone ranks, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paperscope.catalog.store import Catalog
from paperscope.similarity import FACETS, Doc

CANDIDATES = 60


class UnknownPaper(LookupError):
    pass


@dataclass
class SimilarResult:
    papers: list[dict[str, Any]] = field(default_factory=list)   # paper dicts with "score"
    mode: str = "semantic"                                       # "semantic" | "keyword"
    facet: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "facet": self.facet, "message": self.message, "papers": self.papers}


class CatalogEmbedder:
    """An embedder that first looks in the catalogue for stored vectors, and stores what it computes."""

    def __init__(self, catalog: Catalog, embedder):
        from paperscope.index.vectors import sentence_model

        self.catalog = catalog
        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.model = sentence_model(embedder.name)
        self.memory: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str], vectors) -> None:
        for text, vector in zip(texts, vectors):
            if vector is not None:
                self.memory[text] = np.asarray(vector, dtype=np.float32)

    def embed(self, texts: list[str], batch_size: int = 32, progress=None) -> np.ndarray:
        from paperscope.index.embedder import text_key
        from paperscope.index.vectors import from_blob, to_blob

        wanted = [t for t in dict.fromkeys(texts) if t not in self.memory]
        if wanted:
            keys = {t: text_key(t) for t in wanted}
            stored = self.catalog.stored_vectors(self.model, list(keys.values()))
            missing = []
            for text in wanted:
                blob = stored.get(keys[text])
                if blob is None:
                    missing.append(text)
                else:
                    self.memory[text] = from_blob(blob)
            if missing:
                vectors = self.inner.embed(missing, batch_size=batch_size)
                self.prime(missing, vectors)
                self.catalog.store_vectors(self.model, {keys[t]: to_blob(v) for t, v in zip(missing, vectors)})
        return np.stack([self.memory[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def doc_of(paper: dict[str, Any]) -> Doc:
    return Doc.from_text(paper["id"], paper.get("title") or "", paper.get("abstract") or "", paper.get("year"))


def similar_papers(catalog: Catalog, paper_id: str, facet: str | None = None, limit: int = 10) -> SimilarResult:
    """The papers most like ``paper_id`` (in its ``facet`` when given)."""
    paper = catalog.paper(paper_id)
    if paper is None:
        raise UnknownPaper(paper_id)
    return _similar_to_doc(catalog, doc_of(paper), facet, limit, exclude={paper_id})


def similar_to_text(catalog: Catalog, text: str, facet: str | None = None, limit: int = 10) -> SimilarResult:
    """Papers like a draft abstract (first sentence taken as its title)."""
    from paperscope.similarity import split_sentences

    sentences = split_sentences(text)
    title = sentences[0] if sentences else text
    query = Doc(id="__draft__", title=title, sentences=sentences[1:] or [])
    return _similar_to_doc(catalog, query, facet, limit, exclude=set())


def _similar_to_doc(catalog: Catalog, query: Doc, facet: str | None, limit: int, exclude: set[str]) -> SimilarResult:
    if facet is not None and facet not in FACETS:
        raise ValueError(f"unknown facet {facet!r}; one of {', '.join(FACETS)}")
    from paperscope.index.embedder import catalogue_minilm
    from paperscope.index.vectors import load_vector_index

    embedder = catalogue_minilm(catalog)  # the sentence-role classifier reads MiniLM vectors
    index = load_vector_index(catalog, embedder.name)
    keyword_ids = _keyword_candidates(catalog, query, CANDIDATES, exclude)
    if index is None or not len(index):
        ranked = keyword_ids[:limit]
        papers = catalog.papers(ranked)
        for rank, p in enumerate(papers):
            p["score"] = round(1.0 / (rank + 1), 4)
        return SimilarResult(papers, mode="keyword", facet=facet,
                             message="no paper vectors yet (run `paperscope embed`): ranked by shared key terms")
    cached = CatalogEmbedder(catalog, embedder)
    query_vector = index.vector(query.id)
    if query_vector is None:
        query_vector = cached.embed([query.text])[0]
    cached.prime([query.text], [query_vector])
    vector_ids = [pid for pid, _ in index.search(query_vector, CANDIDATES, exclude=exclude)]
    candidate_ids = list(dict.fromkeys(vector_ids + keyword_ids))
    candidates = [doc_of(p) for p in catalog.papers(candidate_ids, with_appearances=False)]
    cached.prime([c.text for c in candidates], [index.vector(c.id) for c in candidates])
    from paperscope.similarity import rank_by_example

    method = _method_for(catalog, embedder.name, facet)
    ranked = [(pid, s) for pid, s in rank_by_example(query, candidates, facet=facet, embedder=cached, method=method)
              if np.isfinite(s)][:limit]
    papers = catalog.papers([pid for pid, _ in ranked])
    scores = dict(ranked)
    for p in papers:
        p["score"] = round(scores[p["id"]], 4)
    return SimilarResult(papers, mode="semantic", facet=facet)


def _method_for(catalog: Catalog, model: str, facet: str | None) -> str:
    """The measured best method ("fusion": sentence-level, facet-aware) when sentence vectors are stored
    or a facet is asked for; else "hybrid" (paper vectors + BM25), so that a paper page never waits
    for ~400 sentences to be embedded just to list its neighbours."""
    from paperscope.index.vectors import sentence_model

    if facet is not None or catalog.get_meta(f"vectors:{sentence_model(model)}:complete") == "yes":
        return "fusion"
    return "hybrid"


def _keyword_candidates(catalog: Catalog, query: Doc, limit: int, exclude: set[str]) -> list[str]:
    """Papers sharing the query's most distinctive terms (BM25 over the keyword index)."""
    from paperscope.search import more_like_this

    return [pid for pid in more_like_this(catalog, query.title, query.abstract, limit + len(exclude)) if pid not in exclude][:limit]
