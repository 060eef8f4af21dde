"""The real MiniLM on ONNX Runtime: shapes, normalisation, semantics, batching, and the fused
graph giving the vectors of the packaged export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from paperscope.index.embedder import (
    EmbeddingCache,
    Embedder,
    MiniLMEmbedder,
    default_embedder,
    embed_cached,
    fused_onnx_path,
    read_safetensors,
    minilm_dir,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CSFCUBE_CORPUS = SHARED / "eval" / "csfcube" / "corpus.jsonl"
#: "a few hundred" real abstracts; PAPERSCOPE_TEST_ABSTRACTS=2000 checks more
N_ABSTRACTS = int(os.environ.get("PAPERSCOPE_TEST_ABSTRACTS", "300"))


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


@pytest.fixture(scope="module")
def export():
    """The packaged export with float32 weights: what the fused graph must reproduce."""
    return MiniLMEmbedder(precision="fp32-export")


def _fused(emb):
    if emb.precision != "fp32":
        pytest.skip(f"the default runs {emb.precision} (the onnx package is missing), not the fused graph")


def test_mean_pooling_matches_reference_math(emb, export):
    """The fused graph pools inside; recompute one vector with numpy from the export's hidden
    states (mean over the mask, L2 norm), as sentence-transformers does."""
    _fused(emb)
    assert emb.pools_in_graph and not export.pools_in_graph
    text = "Mean pooling like sentence-transformers."
    enc = export.tokenizer.encode(text)
    ids = np.array([enc.ids], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    hidden = export.session.run(None, {k: v for k, v in feeds.items() if k in export._input_names})[0][0]
    ref = hidden.mean(axis=0)
    ref /= np.linalg.norm(ref)
    assert np.abs(emb.embed([text])[0] - ref).max() < 1e-5


@pytest.mark.skipif(not CSFCUBE_CORPUS.is_file(), reason=f"real abstracts ({CSFCUBE_CORPUS}) are absent")
def test_fused_graph_gives_the_exports_vectors_on_real_abstracts(emb, export):
    _fused(emb)
    rows = [json.loads(line) for line in CSFCUBE_CORPUS.read_text(encoding="utf-8").splitlines()[:N_ABSTRACTS]]
    texts = [f"{r['title']}. {' '.join(r['abstract'])}" for r in rows]
    assert max(emb.token_counts(texts)) == 256  # long ones reach the truncation too
    cos = (emb.embed(texts) * export.embed(texts)).sum(axis=1)
    assert len(cos) == N_ABSTRACTS and cos.min() >= 0.999, cos.min()
    assert emb.name == export.name  # same vectors, same name: stored vectors stay valid


def test_int8_dynamic_tier_is_close_but_a_space_of_its_own(emb):
    _fused(emb)
    fast = MiniLMEmbedder(precision="int8-dynamic")
    assert fast.name.endswith("/onnx-int8-dynamic") and fast.name != emb.name
    texts = ["Contrastive learning of sentence embeddings.", "Bayesian optimisation of hyperparameters for deep networks."]
    cos = (fast.embed(texts) * emb.embed(texts)).sum(axis=1)
    assert cos.min() > 0.97


def test_a_damaged_cached_graph_is_built_again(emb, tmp_path, monkeypatch):
    _fused(emb)
    monkeypatch.setenv("PAPERSCOPE_CACHE", str(tmp_path))
    path = fused_onnx_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a model")
    rebuilt = MiniLMEmbedder(precision="fp32")
    assert rebuilt.model_path == path and path.stat().st_size > 50_000_000
    assert np.abs(rebuilt.embed(["A rebuilt graph."]) - emb.embed(["A rebuilt graph."])).max() < 1e-5
    assert not list(path.parent.glob(".*.tmp"))  # no leftovers of the atomic write


def test_packaged_int8_file_close_to_float32(emb):
    """The fallback without the onnx package: the packaged int8-weight export, float32 arithmetic."""
    _fused(emb)
    i8 = MiniLMEmbedder(precision="int8")
    texts = ["Contrastive learning of sentence embeddings.", "Bayesian optimisation of hyperparameters."]
    cos = (i8.embed(texts) * emb.embed(texts)).sum(axis=1)
    assert cos.min() > 0.995 and i8.name.endswith("/onnx-int8")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        MiniLMEmbedder(precision="fp16")


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


def test_bench_embed_reports_every_tier_with_its_vectors_checked():
    from typer.testing import CliRunner

    from paperscope.cli import app

    result = CliRunner().invoke(app, ["bench", "embed", "--n", "8", "--rounds", "1", "--chunk", "4",
                                      "--skip-baseline", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["texts"] == 8 and report["chunk"] == 4
    assert report["onnx"]["texts_per_s"] > 0 and report["onnx"]["model"].endswith("/onnx-fp32")
    assert report["onnx_int8_dynamic"]["min_cosine_to_fp32"] > 0.95
    assert report["sentence_transformers"] == {"skipped": "--skip-baseline"}
    assert report["static"].get("texts_per_s", 0) > 0 or "skipped" in report["static"]
