"""``paperscope bench topics``: clustering, labelling and the 2-D layout on a large catalogue, with the
baselines computed in the same run.

Reported: time and memory of each stage; the layout's neighbourhood preservation (trustworthiness@10
and kNN recall@10 between the vector space and the map) next to PCA on all papers and next to
scikit-learn's t-SNE on a subsample (the same subsample for every method); the same figures on the 687
ICLR 2020 papers against the 2-D maps the ICLR 2020 virtual site shipped; and label quality (the
share of each topic's papers whose title or abstract contains one of its label phrases, and how
specific those phrases are) for our labels and for BERTopic's c-TF-IDF on the same topics.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any, Optional

import typer

from paperscope.cli.app import JsonOption, bench_app, console, err_console, fail, print_json


def _rss_mb() -> dict[str, float]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        now = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        now = float("nan")
    return {"rss_mb": round(now, 1), "peak_rss_mb": round(peak, 1)}


def default_site() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / "iclr2020_virtual_site"
        if candidate.is_dir():
            return candidate
    return Path("../shared/data/iclr2020_virtual_site")


@bench_app.command("topics")
def bench_topics(
    db: Optional[str] = typer.Option(None, "--db", help="Catalogue (default: the paperlists bench catalogue of `paperscope bench ingest`)."),
    vectors: str = typer.Option("auto", "--vectors", help="auto, tfidf or a model name (see `paperscope topics`)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only a random sample of this many papers."),
    metric_sample: int = typer.Option(2000, "--metric-sample", help="Papers the neighbourhood metrics average over (each ranked against all)."),
    baseline_sample: int = typer.Option(10000, "--baseline-sample", help="Papers in the subsample where scikit-learn's t-SNE runs (0: skip)."),
    site: Optional[Path] = typer.Option(None, "--site", help="The ICLR 2020 virtual site folder (default: ../shared/data/iclr2020_virtual_site)."),
    save: bool = typer.Option(True, "--save/--no-save", help="Cache the map of all papers so the web app can serve it."),
    with_layout: bool = typer.Option(True, "--layout/--no-layout", help="--no-layout: clustering and labels only (no map, no layout baselines, nothing saved)."),
    as_json: bool = JsonOption,
) -> None:
    """Time, memory, neighbourhood preservation and label quality of topics and the map."""
    import numpy as np

    from paperscope import topics as T
    from paperscope.bench.ingest_bench import BENCH_CATALOGUE
    from paperscope.catalog.store import Catalog

    location = db or str(BENCH_CATALOGUE)
    if not db and not BENCH_CATALOGUE.exists():
        fail(f"no bench catalogue at {BENCH_CATALOGUE}; run `paperscope bench ingest` first, or pass --db")
    catalog = Catalog.open(location)
    report: dict[str, Any] = {"catalogue": location, "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg())}

    clock = time.perf_counter()

    def say(text: str) -> None:  # on stderr, so also with --json
        err_console.print(f"[{time.perf_counter() - clock:7.1f} s] {text}", highlight=False)

    scope = T.Scope()
    started = time.perf_counter()
    say("reading papers and vectors…")
    state = T.scope_state(catalog, scope, vectors)
    ids = state.ids
    texts = T.paper_texts(catalog, ids)
    rep = state.representation or state.words_representation(catalog, texts)
    matrix, rep_ids = rep.matrix, rep.ids
    if limit and limit < len(rep_ids):
        pick = np.sort(np.random.default_rng(0).choice(len(rep_ids), limit, replace=False))
        matrix, rep_ids = matrix[pick], [rep_ids[i] for i in pick]
    n = len(rep_ids)
    report["papers"] = n
    report["papers_without_vectors"] = len(rep.missing)
    report["vectors"] = rep.model
    report["read"] = {"seconds": round(time.perf_counter() - started, 2)} | _rss_mb()

    n_fine, n_broad = T.topic_counts(n)
    say(f"clustering {n} papers into {n_fine} fine and {n_broad} broad topics…")
    t0 = time.perf_counter()
    fine, broad_of = T.cluster(matrix, n_fine, n_broad)
    report["cluster"] = {"seconds": round(time.perf_counter() - t0, 2), "fine_topics": int(fine.max()) + 1,
                         "broad_topics": int(broad_of.max()) + 1} | _rss_mb()

    if with_layout:
        xy, layout_s = _layout_report(report, matrix, metric_sample, say)
    else:  # labels need only a position per paper for the label anchors
        xy, layout_s = T.layout(matrix, "pca"), 0.0
        save, baseline_sample, site = False, 0, None

    say("labelling…")
    t0 = time.perf_counter()
    docs = [T._doc_text(texts.get(pid)) for pid in rep_ids]
    tmap = T.TopicMap(state.key, scope, rep.model, "tsne", rep_ids, T._fit_box(xy), fine, broad_of, [], [], rep.missing,
                      rep.note, time.time(), [state.hashes.get(p, "") for p in rep_ids],
                      [texts[p][0] if p in texts else "" for p in rep_ids])
    T.describe_topics(tmap, matrix, docs)
    report["labels"] = {"seconds": round(time.perf_counter() - t0, 2)} | _rss_mb()
    report["total_seconds"] = round(report["cluster"]["seconds"] + layout_s + report["labels"]["seconds"]
                                    + report["read"]["seconds"], 2)
    say("measuring label quality…")
    report["label_quality"] = label_quality_report(tmap, texts, docs)
    if save and not limit:
        tmap.timings = {"read_s": report["read"]["seconds"], "cluster_s": report["cluster"]["seconds"],
                        "layout_s": round(layout_s, 2), "labels_s": report["labels"]["seconds"]}
        T.save_topic_map(catalog, tmap)
        report["saved_map"] = tmap.key
    report["examples"] = [{"label": b.label, "size": b.size, "fine": [catalog_topic(tmap, c) for c in b.children[:4]]}
                          for b in tmap.broad[:8]]

    if baseline_sample and n > 50:
        say(f"baselines on a subsample of {min(baseline_sample, n)} papers (t-SNE by scikit-learn, PCA)…")
        report["subsample"] = subsample_comparison(matrix, min(baseline_sample, n), metric_sample)

    site = site or default_site() if with_layout else None
    if site is not None and site.is_dir():
        say("the ICLR 2020 site's maps, on its 687 papers…")
        try:
            report["iclr2020_site"] = site_comparison(site, rep.model, location)
        except Exception as exc:  # reported, not fatal: the main figures stand
            report["iclr2020_site"] = {"error": str(exc)}
    elif site is not None:
        report["iclr2020_site"] = {"error": f"no site folder at {site}"}
    report["load_average_end"] = list(os.getloadavg())
    if as_json:
        print_json(report)
        return
    console.print_json(json.dumps(report, default=str))


def catalog_topic(tmap, topic_id: str) -> dict[str, Any]:
    t = tmap.topic(topic_id)
    return {"label": t.label, "size": t.size}


def label_quality_report(tmap, texts: dict, docs: list[str]) -> dict[str, Any]:
    """Our labels (the better of lift-cover and c-TF-IDF per topic), and each of the two alone, on the
    same topics, at both levels."""
    import numpy as np

    from paperscope import topics as T

    plain = [f"{texts[p][0]} {texts[p][1]}" if p in texts else "" for p in tmap.ids]
    phrases = T.PhraseMatrix.build(docs)
    overall = np.asarray(phrases.matrix.sum(axis=0)).ravel()
    out: dict[str, Any] = {"phrases": len(phrases.vocabulary), "terms_per_label": T.LABEL_TERMS}
    for level, labels in (("fine", tmap.fine), ("broad", tmap.broad_of_fine[tmap.fine])):
        groups_n = int(labels.max()) + 1
        counts = T.group_counts(phrases.matrix, labels, groups_n)
        members = {g: np.flatnonzero(labels == g) for g in range(groups_n)}
        for method in ("best", "lift-cover", "ctfidf"):
            terms = {}
            for g, rows in members.items():
                row = np.asarray(counts[g].todense()).ravel()
                terms[g] = [t for t, _ in T.label_terms(row, len(rows), overall, len(docs), phrases.vocabulary,
                                                        method=method, members=phrases.matrix[rows])]
            name = {"best": "ours", "lift-cover": "lift_cover"}.get(method, method)
            out[f"{level}_{name}"] = T.label_quality({g: list(r) for g, r in members.items()}, terms, plain)
    return out


def _layout_report(report: dict[str, Any], matrix, metric_sample: int, say) -> tuple[Any, float]:
    """The t-SNE map of all papers, its neighbourhood preservation, and PCA's in the same run."""
    from paperscope import topics as T

    say("laying out the map (t-SNE)…")
    t0 = time.perf_counter()
    xy = T.layout(matrix, "tsne")
    layout_s = time.perf_counter() - t0
    report["layout"] = {"method": "tsne (openTSNE, FFT-accelerated)", "seconds": round(layout_s, 2)} | _rss_mb()
    say("measuring neighbourhood preservation…")
    t0 = time.perf_counter()
    report["layout"]["neighbourhoods"] = T.neighbourhood_preservation(matrix, xy, 10, metric_sample)
    t1 = time.perf_counter()
    pca = T.layout(matrix, "pca")
    report["pca_all"] = {"seconds": round(time.perf_counter() - t1, 2),
                         "neighbourhoods": T.neighbourhood_preservation(matrix, pca, 10, metric_sample)}
    report["metric_seconds"] = round(time.perf_counter() - t0, 2)
    return xy, layout_s


def subsample_comparison(matrix, size: int, metric_sample: int) -> dict[str, Any]:
    import numpy as np

    from paperscope import topics as T

    pick = np.sort(np.random.default_rng(1).choice(len(matrix), size, replace=False)) if size < len(matrix) else np.arange(len(matrix))
    sub = matrix[pick]
    out: dict[str, Any] = {"papers": int(len(sub))}
    for name, fn in (("tsne_ours", lambda: T.layout(sub, "tsne")), ("pca", lambda: T.layout(sub, "pca")),
                     ("tsne_sklearn", lambda: _sklearn_tsne(sub))):
        t0 = time.perf_counter()
        xy = fn()
        out[name] = {"seconds": round(time.perf_counter() - t0, 2),
                     "neighbourhoods": T.neighbourhood_preservation(sub, xy, 10, metric_sample)}
    return out


def _sklearn_tsne(matrix):
    from sklearn.manifold import TSNE

    return TSNE(2, metric="cosine", init="pca", random_state=0, n_jobs=T_threads()).fit_transform(matrix)


def T_threads() -> int:
    from paperscope.topics import _threads

    return _threads()


def site_comparison(site: Path, model: str, main_location: str) -> dict[str, Any]:
    """Our layout, PCA and scikit-learn's t-SNE against the site's shipped t-SNE and PCA maps, on the
    site's 687 papers, in the vector space of ``model`` (the site ingested into a side catalogue)."""
    import numpy as np

    from paperscope import topics as T
    from paperscope.bench.ingest_bench import BENCH_DIR
    from paperscope.catalog.store import Catalog
    from paperscope.index.vectors import embed_catalog, load_vector_index
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    side = BENCH_DIR / "iclr2020_site.sqlite"
    side.parent.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.open(str(side))
    ingest_targets(catalog, [str(site)], ImportOptions(venue="ICLR", year=2020))
    if model == "tfidf-lsa":
        ids = [pid for pid, _ in catalog.content_hashes()]
        texts = T.paper_texts(catalog, ids)
        matrix = T.lsa_vectors([T._doc_text(texts[p]) for p in ids])
        position = {p: i for i, p in enumerate(ids)}
    else:
        embedder = _embedder_for(model)
        embed_catalog(catalog, embedder, with_sentences=False)
        index = load_vector_index(catalog, embedder.name)
        ids, matrix, position = index.ids, index.matrix, index.position
    papers = catalog.papers(ids, with_appearances=False)
    by_openreview = {p["ids"].get("openreview"): p["id"] for p in papers if p["ids"].get("openreview")}
    out: dict[str, Any] = {"vectors": model}
    shipped = {}
    for name, file in (("site_tsne", "embeddings_tsne_2.json"), ("site_pca", "embeddings_pca_2.json")):
        rows = json.loads((site / "static" / file).read_text())
        shipped[name] = [(position[by_openreview[r["id"]]], r["pos"]) for r in rows if r.get("id") in by_openreview]
    common = sorted(set.intersection(*[{i for i, _ in v} for v in shipped.values()]))
    sub = matrix[common]
    out["papers"] = len(common)
    for name, rows in shipped.items():
        pos = dict(rows)
        out[name] = T.neighbourhood_preservation(sub, np.array([pos[i] for i in common]), 10, None)
    for name, fn in (("ours_tsne", lambda: T.layout(sub, "tsne")), ("pca", lambda: T.layout(sub, "pca")),
                     ("sklearn_tsne", lambda: _sklearn_tsne(sub))):
        t0 = time.perf_counter()
        xy = fn()
        out[name] = T.neighbourhood_preservation(sub, xy, 10, None) | {"seconds": round(time.perf_counter() - t0, 2)}
    catalog.close()
    return out


def _embedder_for(model: str):
    from paperscope.index.embedder import StaticEmbedder, default_embedder

    if "/static-" in model:
        return StaticEmbedder()
    return default_embedder()
