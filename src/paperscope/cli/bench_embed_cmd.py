"""``paperscope bench embed``: embedding throughput of our ONNX pipeline against sentence-transformers
running the same model in the same process, and of the static fast tier;
``paperscope bench distill-static``: build the fast tier once (needs model2vec + torch)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Optional

import numpy as np
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


def _time(fn, texts: list[str]) -> tuple[float, float, object]:
    """Wall and process CPU seconds of ``fn(texts)``, and its result. CPU seconds show the work
    done when other programs share the machine (wall time then depends on the scheduler)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(texts)
    return time.perf_counter() - t0, time.process_time() - c0, out


class _Side:
    """One pipeline in the comparison: its time summed over the chunks of each round, and its vectors."""

    def __init__(self, embed, n_texts: int) -> None:
        self.embed, self.n = embed, n_texts
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.parts: list = []

    def start_round(self) -> None:
        self.wall.append(0.0)
        self.cpu.append(0.0)
        self.parts = []

    def run(self, chunk: list[str]) -> None:
        wall, cpu, out = _time(self.embed, chunk)
        self.wall[-1] += wall
        self.cpu[-1] += cpu
        self.parts.append(np.asarray(out, dtype=np.float32))

    @property
    def vectors(self) -> np.ndarray:
        return np.vstack(self.parts)

    def report(self, **extra) -> dict:
        best = min(self.wall)
        return {**extra, "seconds": round(best, 2), "texts_per_s": round(self.n / best, 1),
                "cpu_s": round(min(self.cpu), 2), "rounds_s": [round(x, 2) for x in self.wall]}


def _timed_rounds(sides: dict[str, "_Side"], texts: list[str], rounds: int, chunk: int) -> None:
    """Each round embeds the texts chunk by chunk, every side in turn on each chunk, the side that
    goes first rotating: on a machine shared with other work, the load then falls on all sides
    alike rather than on whichever ran during a busy minute."""
    order = list(sides.values())
    for _ in range(max(1, rounds)):
        for side in order:
            side.start_round()
        for i, start in enumerate(range(0, len(texts), chunk)):
            part = texts[start : start + chunk]
            k = i % len(order)
            for side in order[k:] + order[:k]:
                side.run(part)


def _sentence_transformers(max_tokens: int, threads: int, warm: list[str], batch_size: int):
    """sentence-transformers on the same model folder, or the reason it cannot run."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        return None, f"not installed ({exc.name})"
    from paperscope.index.embedder import minilm_dir

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    load_s = time.perf_counter() - t0
    st.max_seq_length = max_tokens
    st.encode(warm, batch_size=batch_size)

    def embed(texts: list[str]):
        with torch.inference_mode():
            return st.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)

    return (embed, {"torch": torch.__version__, "load_s": round(load_s, 2)}), None


def _load_minilm(precision: str):
    from paperscope.index.embedder import MiniLMEmbedder

    t0 = time.perf_counter()
    model = MiniLMEmbedder(precision=precision)
    return model, round(time.perf_counter() - t0, 2)


def _min_cosine(a, b) -> float:
    return round(float((np.asarray(a) * np.asarray(b)).sum(axis=1).min()), 6)


def _static_tier(texts: list[str]) -> dict:
    from paperscope.index.embedder import StaticEmbedder

    try:
        static = StaticEmbedder()
    except FileNotFoundError as exc:
        return {"skipped": str(exc)}
    many = texts * max(1, 2000 // len(texts))
    static.embed(many[:64])
    wall, cpu, _ = _time(static.embed, many)
    return {"model": static.name, "seconds": round(wall, 3), "texts_per_s": round(len(many) / wall, 1), "cpu_s": round(cpu, 3)}


@bench_app.command("embed")
def bench_embed(
    n: int = typer.Option(256, "--n", help="How many abstract-like texts to embed."),
    batch_size: int = typer.Option(32, "--batch-size"),
    texts_file: Optional[Path] = typer.Option(None, "--texts", help="One text per line instead of generated ones."),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="Do not run sentence-transformers."),
    skip_int8: bool = typer.Option(False, "--skip-int8", help="Do not time the int8 tier (embed --model minilm-int8)."),
    rounds: int = typer.Option(2, "--rounds", help="Timing rounds; each side's best round counts."),
    chunk: int = typer.Option(64, "--chunk", help="Texts per turn: the sides take turns on chunks of this size."),
    json_out: bool = JsonOption,
) -> None:
    """Texts per second: our ONNX Runtime pipelines (the default float32 graph, and the int8 tier) vs
    sentence-transformers on the same model and texts in the same run; and the static fast tier."""
    from paperscope.index.embedder import _default_threads

    texts = _bench_texts(texts_file, n)
    threads = _default_threads()
    report: dict = {"texts": len(texts), "batch_size": batch_size, "threads": threads}
    onnx, load_s = _load_minilm("auto")  # what default_embedder() runs
    report["default_model"] = onnx.name
    report["mean_tokens"] = round(float(np.mean(onnx.token_counts(texts))), 1)
    onnx.embed(texts[:batch_size], batch_size=batch_size)  # warm-up
    sides = {"onnx": _Side(lambda t: onnx.embed(t, batch_size=batch_size), len(texts))}
    if not skip_int8:
        int8, int8_load_s = _load_minilm("int8-dynamic")
        int8.embed(texts[:batch_size], batch_size=batch_size)
        sides["onnx_int8_dynamic"] = _Side(lambda t: int8.embed(t, batch_size=batch_size), len(texts))
    st_meta: dict = {"skipped": "--skip-baseline"}
    if not skip_baseline:
        st, reason = _sentence_transformers(onnx.max_tokens, threads, texts[:batch_size], batch_size)
        if st is None:
            st_meta = {"skipped": reason}
        else:
            sides["sentence_transformers"] = _Side(st[0], len(texts))
            st_meta = st[1]

    if chunk < 1:
        fail("--chunk must be at least 1")
    report["chunk"] = chunk
    _timed_rounds(sides, texts, rounds, chunk)
    ours = sides["onnx"]
    report["onnx"] = ours.report(model=onnx.name, providers=onnx.providers, load_s=load_s)
    if "onnx_int8_dynamic" in sides:
        q = sides["onnx_int8_dynamic"]
        report["onnx_int8_dynamic"] = q.report(model=int8.name, load_s=int8_load_s,
                                               min_cosine_to_fp32=_min_cosine(q.vectors, ours.vectors))
    if "sentence_transformers" in sides:
        theirs = sides["sentence_transformers"]
        report["sentence_transformers"] = theirs.report(**st_meta, min_cosine_to_onnx=_min_cosine(theirs.vectors, ours.vectors))
        for key in ("onnx", "onnx_int8_dynamic"):
            if key in sides:
                report[key]["speedup_vs_st"] = round(min(theirs.wall) / min(sides[key].wall), 2)
                report[key]["cpu_ratio_vs_st"] = round(min(theirs.cpu) / min(sides[key].cpu), 2)
        report["speedup_onnx_vs_st"] = report["onnx"]["speedup_vs_st"]
    else:
        report["sentence_transformers"] = st_meta
    report["load_avg_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    report["static"] = _static_tier(texts)
    if json_out:
        print_json(report)
    else:
        _print_report(report)


def _bench_texts(texts_file: Optional[Path], n: int) -> list[str]:
    if texts_file is None:
        return sample_abstracts(n)
    try:
        lines = texts_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {texts_file}: {exc}")
    texts = [line.strip() for line in lines if line.strip()][:n]
    if not texts:
        fail(f"{texts_file}: no texts to embed (one text per line)")
    return texts


def _print_report(report: dict) -> None:
    console.print(f"{report['texts']} texts, ~{report['mean_tokens']} tokens, {report['threads']} threads")
    for key, label in (("onnx", "ONNX float32"), ("onnx_int8_dynamic", "ONNX int8-dynamic")):
        r = report.get(key)
        if r:
            speed = f", {r['speedup_vs_st']}x sentence-transformers" if "speedup_vs_st" in r else ""
            mark = ", the default" if r["model"] == report["default_model"] else ""
            console.print(f"{label} ({r['model']}{mark}): {r['texts_per_s']} texts/s{speed}")
    for label, r in (("sentence-transformers", report["sentence_transformers"]), ("static fast tier", report["static"])):
        console.print(f"{label}: {r['texts_per_s']} texts/s" if "texts_per_s" in r else f"{label}: skipped ({r['skipped']})")


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
