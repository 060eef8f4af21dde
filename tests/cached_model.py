"""The real embedding model behind the product's disk cache of texts (the user cache dir).

Embedding the 687 ICLR 2020 papers takes a minute or more on 2 cores: through the cache only the
first run on a machine pays, and the second backend of a session never does.
"""

from __future__ import annotations

import time

from paperscope.catalog.store import Catalog


class CachedEmbedder:
    """The real embedding model behind the product's disk cache of texts: each text runs through the model once."""

    def __init__(self, embedder):
        from paperscope.index.embedder import EmbeddingCache, cache_dir

        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.cache = EmbeddingCache(cache_dir() / "embeddings", embedder.name)

    def embed(self, texts: list[str], batch_size: int = 32, **_):
        from paperscope.index.embedder import embed_cached

        return embed_cached(self.inner, list(texts), self.cache, batch_size=batch_size)


_cached: list[CachedEmbedder] = []


def cached_embedder() -> CachedEmbedder:
    """One cached embedder per test session (raises when the model package is missing)."""
    if not _cached:
        from paperscope.index.embedder import default_embedder

        _cached.append(CachedEmbedder(default_embedder()))
    return _cached[0]


def add_cached_vectors(catalog: Catalog) -> str | None:
    """Give every paper its MiniLM vector; the model's name, or None when the model is not installed."""
    try:
        embedder = cached_embedder()
    except Exception as exc:  # no model package: the tests that need vectors skip
        print(f"no embedding model: {exc}")
        return None
    from paperscope.index.vectors import paper_doc, to_blob

    rows = catalog.papers_missing_vectors(embedder.name)
    if rows:
        vectors = embedder.embed([paper_doc(r).text for r in rows])
        catalog.store_vectors(embedder.name, {r["content_hash"]: to_blob(v) for r, v in zip(rows, vectors)})
        catalog.set_meta(f"vectors:{embedder.name}:generation", str(time.time()))
    return embedder.name
