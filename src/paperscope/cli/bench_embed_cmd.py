"""``paperscope bench embed``: embedding throughput of our ONNX pipeline against sentence-transformers
running the same model in the same process, and of the static fast tier;
``paperscope bench distill-static``: build the fast tier once (needs model2vec + torch)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json

_SENTENCES = [
    "We propose a new method for learning sparse representations of graphs with message passing.",
    "Large language models are evaluated on reasoning benchmarks under few-shot prompting.",
    "Our approach combines contrastive pre-training with a lightweight adapter for each downstream task.",
    "Experiments on ImageNet and COCO show consistent gains over strong convolutional baselines.",
    "We derive a tight upper bound on the generalisation error of overparameterised networks.",
    "The policy is trained with off-policy reinforcement learning from logged interaction data.",
    "Existing retrieval systems struggle when queries and documents use different vocabularies.",
    "We release a benchmark of 12,000 annotated dialogues in five languages.",
    "Ablations indicate that the attention temperature and the number of layers matter most.",
    "Diffusion models generate high-fidelity samples but are slow at inference time.",
    "We analyse the convergence of stochastic gradient descent with adaptive step sizes.",
    "A human study confirms that the generated explanations are preferred by domain experts.",
    "Our model achieves state-of-the-art results while using three times fewer parameters.",
    "Federated learning allows clients to train a shared model without exchanging raw data.",
    "We show that the representation collapses unless a variance regulariser is added.",
    "Code and pretrained weights are publicly available to facilitate future research.",
]


def sample_abstracts(n: int, seed: int = 0) -> list[str]:
    """Deterministic abstract-like texts (6-10 sentences, roughly 150-250 tokens)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(6, 10)
        out.append(f"Paper {i}: " + " ".join(rng.choice(_SENTENCES) for _ in range(k)))
    return out


def _time(fn, texts: list[str]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(texts)
    return time.perf_counter() - t0, out


@bench_app.command("embed")
def bench_embed(
    n: int = typer.Option(256, "--n", help="How many abstract-like texts to embed."),
    batch_size: int = typer.Option(32, "--batch-size"),
    texts_file: Optional[Path] = typer.Option(None, "--texts", help="One text per line instead of generated ones."),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="Do not run sentence-transformers."),
    rounds: int = typer.Option(2, "--rounds", help="Interleaved timing rounds; the best of each side counts."),
    json_out: bool = JsonOption,
) -> None:
    """Texts per second: ONNX Runtime pipeline vs sentence-transformers (same model, same run)."""
    import numpy as np

    from paperscope.index.embedder import MiniLMEmbedder, StaticEmbedder, _default_threads, minilm_dir

    if texts_file is not None:
        try:
            texts = [l.strip() for l in texts_file.read_text(encoding="utf-8").splitlines() if l.strip()][:n]
        except OSError as exc:
            fail(f"cannot read {texts_file}: {exc}")
    else:
        texts = sample_abstracts(n)
    if not texts:
        fail("no texts to embed")
    threads = _default_threads()
    report: dict = {"texts": len(texts), "batch_size": batch_size, "threads": threads}

    t0 = time.perf_counter()
    onnx = MiniLMEmbedder()
    load_s = time.perf_counter() - t0
    report["mean_tokens"] = round(float(np.mean(onnx.token_counts(texts))), 1)
    onnx.embed(texts[:batch_size], batch_size=batch_size)  # warm-up
    rounds = max(1, rounds)

    st = None
    if skip_baseline:
        report["sentence_transformers"] = {"skipped": "--skip-baseline"}
    else:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            report["sentence_transformers"] = {"skipped": f"not installed ({exc.name})"}
        else:
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            st = SentenceTransformer(str(minilm_dir()), device="cpu")
            st_load = time.perf_counter() - t0
            st.max_seq_length = onnx.max_tokens
            st.encode(texts[:batch_size], batch_size=batch_size)

    # Interleave the two so that a busy machine slows both alike; keep each side's best round.
    ours_s, theirs_s, ours, theirs = [], [], None, None
    for _ in range(rounds):
        secs, ours = _time(lambda t: onnx.embed(t, batch_size=batch_size), texts)
        ours_s.append(secs)
        if st is not None:
            import torch

            with torch.inference_mode():
                secs, theirs = _time(
                    lambda t: st.encode(t, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True), texts
                )
            theirs_s.append(secs)
    report["onnx"] = {
        "model": onnx.name,
        "providers": onnx.providers,
        "load_s": round(load_s, 2),
        "seconds": round(min(ours_s), 2),
        "texts_per_s": round(len(texts) / min(ours_s), 1),
        "rounds_s": [round(x, 2) for x in ours_s],
    }
    if st is not None:
        import torch

        cos = (np.asarray(theirs, dtype=np.float32) * ours).sum(axis=1)
        report["sentence_transformers"] = {
            "torch": torch.__version__,
            "load_s": round(st_load, 2),
            "seconds": round(min(theirs_s), 2),
            "texts_per_s": round(len(texts) / min(theirs_s), 1),
            "rounds_s": [round(x, 2) for x in theirs_s],
            "min_cosine_to_onnx": round(float(cos.min()), 6),
        }
        report["speedup_onnx_vs_st"] = round(min(theirs_s) / min(ours_s), 2)
    report["load_avg_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None

    try:
        static = StaticEmbedder()
    except FileNotFoundError as exc:
        report["static"] = {"skipped": str(exc)}
    else:
        many = texts * max(1, 2000 // len(texts))
        static.embed(many[:64])
        s_secs, _ = _time(static.embed, many)
        report["static"] = {"model": static.name, "seconds": round(s_secs, 3), "texts_per_s": round(len(many) / s_secs, 1)}

    if json_out:
        print_json(report)
        return
    console.print(f"{report['texts']} texts, ~{report['mean_tokens']} tokens, {threads} threads")
    console.print(f"ONNX ({onnx.name}): {report['onnx']['texts_per_s']} texts/s")
    st_r = report["sentence_transformers"]
    console.print(f"sentence-transformers: {st_r.get('texts_per_s', st_r.get('skipped'))}")
    if "speedup_onnx_vs_st" in report:
        console.print(f"speed-up: {report['speedup_onnx_vs_st']}x")
    s = report["static"]
    console.print(f"static fast tier: {s.get('texts_per_s', s.get('skipped'))}")


@bench_app.command("distill-static")
def distill_static_cmd(
    output: Optional[Path] = typer.Option(None, "--output", help="Folder (default: the user cache)."),
    pca_dims: int = typer.Option(256, "--pca-dims"),
) -> None:
    """Distil the static fast tier from the bundled MiniLM (model2vec + torch needed, once)."""
    from paperscope.index.embedder import distill_static

    err_console.print("distilling a static model from all-MiniLM-L6-v2 (about half a minute)…")
    try:
        path = distill_static(output, pca_dims=pca_dims)
    except RuntimeError as exc:
        fail(str(exc))
    console.print(f"static model written to {path}")
