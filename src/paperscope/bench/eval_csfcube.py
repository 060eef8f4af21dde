"""CSFCube (faceted query by example): loading, metrics and runs.

Layout of a folder (see shared/eval/README.md): ``queries.csv`` (pid, facet, ...), ``pools.json``
(``{pid: {"cands": [...]}}``), ``qrels.json`` (``{"<pid>_<facet>": {"cands": [...], "relevance":
[...]}}``), ``corpus.jsonl`` (paper_id, year, title, abstract = list of sentences, pred_labels).

Metrics, exactly as the README defines them (they reproduce the SPECTER reference, 0.523 / 0.334):

- NDCG%20: linear gains (the grade), discount log2(rank + 1), cut at k = int(0.2 x number of judged
  candidates); the ranking is read as the grades of the judged candidates in ranked order (an
  unjudged id in a ranking counts as grade 0 in its place); the ideal DCG is that of all judged
  grades sorted, cut at the same k.
- MAP: relevant = grade >= 2; AP = sum of precision at each relevant hit / number of relevant
  judged candidates (a relevant candidate missing from the ranking counts as never found).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from paperscope.similarity import Doc

ROLE_MAP = {
    "background_label": "background",
    "objective_label": "background",
    "method_label": "method",
    "result_label": "result",
}


@dataclass
class CsfcubeQuery:
    qid: str
    pid: str
    facet: str


@dataclass
class CsfcubeData:
    queries: list[CsfcubeQuery]
    pools: dict[str, list[str]]
    qrels: dict[str, dict[str, int]]
    corpus: dict[str, Doc]
    labels: dict[str, list[str | None]]


def load(folder: Path | str) -> CsfcubeData:
    folder = Path(folder)
    for name in ("queries.csv", "pools.json", "corpus.jsonl"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing (not a CSFCube folder?)")
    with open(folder / "queries.csv", newline="", encoding="utf-8") as f:
        queries = [
            CsfcubeQuery(f"{r['pid'].strip()}_{r['facet'].strip()}", r["pid"].strip(), r["facet"].strip())
            for r in csv.DictReader(f)
        ]
    pools_raw = json.loads((folder / "pools.json").read_text(encoding="utf-8"))
    pools = {str(k): [str(c) for c in (v["cands"] if isinstance(v, dict) else v)] for k, v in pools_raw.items()}
    qrels: dict[str, dict[str, int]] = {}
    if (folder / "qrels.json").is_file():
        for k, v in json.loads((folder / "qrels.json").read_text(encoding="utf-8")).items():
            qrels[k] = {str(c): int(g) for c, g in zip(v["cands"], v["relevance"])}
    corpus: dict[str, Doc] = {}
    labels: dict[str, list[str | None]] = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            pid = str(r["paper_id"])
            abstract = r.get("abstract") or []
            if isinstance(abstract, str):
                abstract = [abstract]
            try:
                year = int(r.get("year")) if r.get("year") not in (None, "") else None
            except (TypeError, ValueError):
                year = None
            corpus[pid] = Doc(id=pid, title=r.get("title") or "", sentences=[s for s in abstract if s], year=year)
            labels[pid] = [ROLE_MAP.get(x) for x, s in zip(r.get("pred_labels") or [], abstract) if s]
    return CsfcubeData(queries, pools, qrels, corpus, labels)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_pct(ranking: Sequence[str], grades: dict[str, int], pct: float = 0.2) -> float:
    """NDCG with linear gains cut at int(pct x judged pool size)."""
    k = int(pct * len(grades))
    if k <= 0:
        return 0.0
    judged = [grades.get(c, 0) for c in ranking]
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    return dcg(judged[:k]) / ideal if ideal > 0 else 0.0


def average_precision(ranking: Sequence[str], grades: dict[str, int], threshold: int = 2) -> float:
    n_rel = sum(1 for g in grades.values() if g >= threshold)
    if n_rel == 0:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for i, c in enumerate(ranking):
        if c in seen:
            continue
        seen.add(c)
        if grades.get(c, 0) >= threshold:
            hits += 1
            total += hits / (i + 1)
    return total / n_rel


def evaluate(rankings: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]) -> dict:
    """NDCG%20 and MAP over the queries of ``qrels`` (a missing ranking scores 0), per facet too."""
    per_q = {}
    for qid, grades in qrels.items():
        r = [str(c) for c in rankings.get(qid, [])]
        per_q[qid] = (ndcg_pct(r, grades), average_precision(r, grades))
    out = {
        "queries": len(per_q),
        "ndcg%20": _mean(v[0] for v in per_q.values()),
        "map": _mean(v[1] for v in per_q.values()),
        "by_facet": {},
    }
    facets = sorted({q.rsplit("_", 1)[1] for q in per_q})
    for f in facets:
        vals = [v for q, v in per_q.items() if q.rsplit("_", 1)[1] == f]
        out["by_facet"][f] = {"queries": len(vals), "ndcg%20": _mean(v[0] for v in vals), "map": _mean(v[1] for v in vals)}
    return out


def _mean(xs) -> float:
    xs = list(xs)
    return round(sum(xs) / len(xs), 4) if xs else 0.0


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def judged(data: CsfcubeData) -> dict[str, dict[str, int]]:
    """The qrels of the queries listed in queries.csv (what a run ranks and is scored on)."""
    return {q.qid: data.qrels[q.qid] for q in data.queries if q.qid in data.qrels}


def all_texts(data: CsfcubeData, sentences: bool = True) -> list[str]:
    """Every text a run embeds (to warm the cache in one pass with a progress bar)."""
    needed = {q.pid for q in data.queries} | {c for q in data.queries for c in data.pools.get(q.pid, [])}
    texts: list[str] = []
    for pid in sorted(needed):
        d = data.corpus.get(pid)
        if d is None or d.is_empty:
            continue
        texts.append(d.text)
        if sentences:
            texts.extend(([d.title] if d.title else []) + d.sentences)
    return list(dict.fromkeys(texts))


def run(
    data: CsfcubeData,
    embedder,
    method: str | None = None,
    use_given_labels: bool = False,
    params: dict | None = None,
    progress: Callable[[int], None] | None = None,
    exclude_query: bool = False,
) -> dict[str, list[str]]:
    """Rank every query's whole pool; ``{qid: [candidate ids best first]}``.

    Candidates without text in the corpus go last, in pool order. A query paper found in its own
    pool is ranked like any other candidate (the judges graded it), unless ``exclude_query``.
    Sentence roles come from the classifier, not from the corpus's labels, unless
    ``use_given_labels`` (for comparison only).
    """
    from paperscope.similarity import DEFAULT_BY_EXAMPLE, rank_by_example

    method = method or DEFAULT_BY_EXAMPLE
    out: dict[str, list[str]] = {}
    for q in data.queries:
        query = data.corpus.get(q.pid) or Doc(id=q.pid)
        pool = data.pools.get(q.pid, [])
        cands = [data.corpus.get(c) or Doc(id=c) for c in pool]
        if use_given_labels:
            for d in [query, *cands]:
                lab = data.labels.get(d.id)
                if lab and len(lab) == len(d.sentences):
                    d.roles = lab
        else:
            for d in [query, *cands]:
                d.roles = None
        ranked = rank_by_example(
            query, cands, facet=q.facet, embedder=embedder, method=method, params=params, exclude_query=exclude_query
        )
        out[q.qid] = [cid for cid, _ in ranked]
        if progress is not None:
            progress(1)
    return out
