"""The real MiniLM on ONNX Runtime: shapes, normalisation, semantics, batching."""

from __future__ import annotations

import numpy as np
import pytest

from paperscope.index.embedder import (
    EmbeddingCache,
    Embedder,
    MiniLMEmbedder,
    default_embedder,
    embed_cached,
    read_safetensors,
    minilm_dir,
)


@pytest.fixture(scope="module")
def emb() -> MiniLMEmbedder:
    return default_embedder()


def test_shapes_dtype_and_unit_norm(emb):
    v = emb.embed(["Graph neural networks for molecules.", "", "A second, longer sentence about optimisation."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, 384)
    assert isinstance(emb, Embedder) and emb.dim == 384
    assert emb.name.startswith("all-MiniLM-L6-v2/onnx-")


def test_default_embedder_is_cached(emb):
    assert default_embedder() is emb


def test_paraphrase_closer_than_unrelated(emb):
    a, b, c = emb.embed([
        "We train a neural network to translate English sentences into German.",
        "A neural model is learned for machine translation from English to German.",
        "The soil samples were collected from three wheat fields in spring.",
    ])
    assert float(a @ b) > float(a @ c) + 0.3


def test_batch_equals_single(emb):
    texts = [
        "Short text.",
        "A much longer text about transformers, attention heads and the training of language models on web data. " * 3,
        "Medium length sentence on reinforcement learning for robotics.",
    ]
    batched = emb.embed(texts, batch_size=3)
    single = np.vstack([emb.embed([t], batch_size=1) for t in texts])
    assert np.abs(batched - single).max() < 1e-4


def test_truncation_at_max_tokens(emb):
    long = "word " * 1000
    assert max(emb.token_counts([long])) == emb.max_tokens == 256
    v = emb.embed([long])
    assert np.isfinite(v).all()


def test_mean_pooling_matches_reference_math(emb):
    """Recompute one vector with numpy from the ONNX hidden states: mean over mask, L2 norm."""
    text = "Mean pooling like sentence-transformers."
    enc = emb.tokenizer.encode(text)
    ids = np.array([enc.ids], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    hidden = emb.session.run(None, {k: v for k, v in feeds.items() if k in emb._input_names})[0][0]
    ref = hidden.mean(axis=0)
    ref /= np.linalg.norm(ref)
    assert np.abs(emb.embed([text])[0] - ref).max() < 1e-5


def test_int8_close_to_chosen_precision(emb):
    if emb.precision == "int8":
        pytest.skip("default is already int8 (the onnx package is not installed)")
    i8 = MiniLMEmbedder(precision="int8")
    texts = ["Contrastive learning of sentence embeddings.", "Bayesian optimisation of hyperparameters."]
    cos = (i8.embed(texts) * emb.embed(texts)).sum(axis=1)
    assert cos.min() > 0.995


def test_safetensors_reader():
    t = read_safetensors(minilm_dir() / "model.safetensors")
    assert t["embeddings.word_embeddings.weight"].shape == (30522, 384)


def test_disk_cache_roundtrip(emb, tmp_path):
    cache = EmbeddingCache(tmp_path, emb.name)
    texts = ["cached one", "cached two", "cached one"]
    first = embed_cached(emb, texts, cache)
    again = EmbeddingCache(tmp_path, emb.name)  # reopened from disk
    assert "cached two" in again

    class Boom:
        name, dim = emb.name, emb.dim

        def embed(self, texts, batch_size=32, progress=None):
            raise AssertionError("should have come from the cache")

    assert np.array_equal(embed_cached(Boom(), texts, again), first)
    assert np.array_equal(first[0], first[2])
