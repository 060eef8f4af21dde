"""The real MiniLM on ONNX Runtime: shapes, normalisation, semantics, batching, the fused float32
graph giving the vectors of the packaged export, and the int8 tier staying close to it."""

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


BATCH_TEXTS = [
    "Short text.",
    "A much longer text about transformers, attention heads and the training of language models on web data. " * 3,
    "Medium length sentence on reinforcement learning for robotics.",
]


def test_float32_batch_equals_single(fp32):
    batched = fp32.embed(BATCH_TEXTS, batch_size=3)
    single = np.vstack([fp32.embed([t], batch_size=1) for t in BATCH_TEXTS])
    assert np.abs(batched - single).max() < 1e-4


def test_int8_batch_close_to_single(int8):
    """The int8 tier quantises activations per batch, so a text's vector moves a little with its
    batch-mates; a query embedded alone must still land where its batched twin is."""
    batched = int8.embed(BATCH_TEXTS, batch_size=3)
    single = np.vstack([int8.embed([t], batch_size=1) for t in BATCH_TEXTS])
    assert (batched * single).sum(axis=1).min() > 0.985  # 0.990 measured with this mixed batch


def test_truncation_at_max_tokens(emb):
    long = "word " * 1000
    assert max(emb.token_counts([long])) == emb.max_tokens == 256
    v = emb.embed([long])
    assert np.isfinite(v).all()


def real_abstracts() -> list[str]:
    """Title + abstract of the first ``N_ABSTRACTS`` papers of CSFCube's corpus."""
    rows = [json.loads(line) for line in CSFCUBE_CORPUS.read_text(encoding="utf-8").splitlines()[:N_ABSTRACTS]]
    return [f"{r['title']}. {' '.join(r['abstract'])}" for r in rows]


@pytest.fixture(scope="module")
def export():
    """The packaged export with float32 weights: what the fused graph must reproduce."""
    return MiniLMEmbedder(precision="fp32-export")


def built_or_skip(precision: str) -> MiniLMEmbedder:
    """The fused graphs need the onnx package to be built once; without it their tests skip."""
    try:
        return MiniLMEmbedder(precision=precision)
    except RuntimeError as exc:
        pytest.skip(f"the {precision} graph cannot be built here: {exc}")


@pytest.fixture(scope="module")
def fp32() -> MiniLMEmbedder:
    """The fused float32 graph: the vectors of sentence-transformers."""
    return built_or_skip("fp32")


@pytest.fixture(scope="module")
def int8() -> MiniLMEmbedder:
    """The int8 tier: the fused graph with int8 matrix products."""
    return built_or_skip("int8-dynamic")


def test_mean_pooling_matches_reference_math(fp32, export):
    """The fused graph pools inside; recompute one vector with numpy from the export's hidden
    states (mean over the mask, L2 norm), as sentence-transformers does."""
    emb = fp32
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
def test_fused_graph_gives_the_exports_vectors_on_real_abstracts(fp32, export):
    emb = fp32
    texts = real_abstracts()
    assert max(emb.token_counts(texts)) == 256  # long ones reach the truncation too
    cos = (emb.embed(texts) * export.embed(texts)).sum(axis=1)
    assert len(cos) == N_ABSTRACTS and cos.min() >= 0.999, cos.min()
    assert emb.name == export.name  # same vectors, same name: stored vectors stay valid


def test_int8_tier_is_close_to_float32_but_a_space_of_its_own(int8, fp32):
    assert int8.name.endswith("/onnx-int8-dynamic-v2") and int8.name != fp32.name
    texts = ["Contrastive learning of sentence embeddings.", "Bayesian optimisation of hyperparameters for deep networks."]
    cos = (int8.embed(texts) * fp32.embed(texts)).sum(axis=1)
    assert cos.min() > 0.97


@pytest.mark.skipif(not CSFCUBE_CORPUS.is_file(), reason=f"real abstracts ({CSFCUBE_CORPUS}) are absent")
def test_int8_tier_stays_close_to_float32_on_real_abstracts(int8, fp32):
    texts = real_abstracts()
    cos = (int8.embed(texts) * fp32.embed(texts)).sum(axis=1)
    assert cos.mean() > 0.99 and cos.min() > 0.98, (cos.mean(), cos.min())


def test_int8_weights_use_seven_bits_so_avx2_products_cannot_saturate(int8):
    """Without VNNI, ONNX Runtime multiplies u8 activations by s8 weights with VPMADDUBSW, whose
    16-bit pair sums saturate for full-range weights (it cost CSFCube NDCG%20 0.012)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(int8.model_path))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")]
    assert len(weights) == 6 * 4  # every matrix product of the six layers
    # a pair of u8 x s8 products then sums to at most 2 * 255 * 64 = 32,640 < 32,767
    assert all(np.abs(w.astype(np.int32)).max() <= 64 for w in weights)


def test_a_damaged_cached_graph_is_built_again(fp32, tmp_path, monkeypatch):
    emb = fp32
    monkeypatch.setenv("PAPERSCOPE_CACHE", str(tmp_path))
    path = fused_onnx_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a model")
    rebuilt = MiniLMEmbedder(precision="fp32")
    assert rebuilt.model_path == path and path.stat().st_size > 50_000_000
    assert np.abs(rebuilt.embed(["A rebuilt graph."]) - emb.embed(["A rebuilt graph."])).max() < 1e-5
    assert not list(path.parent.glob(".*.tmp"))  # no leftovers of the atomic write


def test_packaged_int8_file_close_to_float32(fp32):
    """The fallback without the onnx package: the packaged int8-weight export, float32 arithmetic."""
    emb = fp32
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
    assert report["default_model"] == default_embedder().name
    assert report["sentence_transformers"] == {"skipped": "--skip-baseline"}
    assert report["static"].get("texts_per_s", 0) > 0 or "skipped" in report["static"]
