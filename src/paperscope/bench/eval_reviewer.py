"""Reviewer expertise (Stelmakh et al., 2023): loading, the protocol, the loss.

Layout of a folder (see shared/eval/README.md): ``evaluations.tsv`` (ParticipantID, Paper1..10,
Expertise1..10), ``participants/<id>.json`` (``papers: [{paperId}]``), ``papers/<id>.json``
(title, abstract, year).

Protocol: a participant's profile is their 20 most recent papers that have a title, an abstract
and a year (ties in year broken at random by the seed); each rated paper is scored by similarity to
the profile from titles and abstracts only; 10 seeds, averaged.

Loss (lower is better), pooled over participants: for every pair of a participant's rated papers
with expertise e1 != e2, add |e1 - e2| when the predicted order is the opposite of the expertise
order and |e1 - e2| / 2 when the predictions tie; divide by the sum of |e1 - e2| over all pairs.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paperscope.similarity import Doc

PROFILE_SIZE = 20
SEEDS = tuple(range(1, 11))


@dataclass
class ReviewerData:
    ratings: dict[str, list[tuple[str, float]]]  # participant -> [(paper id, expertise)]
    authored: dict[str, list[str]]  # participant -> their paper ids (as listed)
    papers: dict[str, Doc]


def _paper_doc(pid: str, raw: dict) -> Doc:
    year = raw.get("year")
    try:
        year = int(year) if year not in (None, "", "None") else None
    except (TypeError, ValueError):
        year = None
    abstract = raw.get("abstract") or ""
    if abstract == "None":
        abstract = ""
    return Doc.from_text(pid, raw.get("title") or "", abstract, year)


def load(folder: Path | str) -> ReviewerData:
    folder = Path(folder)
    ev = folder / "evaluations.tsv"
    if not ev.is_file():
        raise FileNotFoundError(f"{ev} is missing (not a reviewer-expertise folder?)")
    ratings: dict[str, list[tuple[str, float]]] = {}
    with open(ev, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    pcols = [i for i, h in enumerate(header) if h.lower().startswith("paper")]
    ecols = [i for i, h in enumerate(header) if h.lower().startswith("expertise")]
    for r in rows[1:]:
        if not r or not r[0].strip():
            continue
        items = []
        for pc, ec in zip(pcols, ecols):
            p = r[pc].strip() if pc < len(r) else ""
            e = r[ec].strip() if ec < len(r) else ""
            if p and e:
                items.append((p, float(e)))
        ratings[r[0].strip()] = items
    authored: dict[str, list[str]] = {}
    for pf in sorted((folder / "participants").glob("*.json")):
        raw = json.loads(pf.read_text(encoding="utf-8"))
        authored[pf.stem] = [str(p["paperId"]) for p in raw.get("papers", []) if p.get("paperId")]
    papers: dict[str, Doc] = {}
    for pf in sorted((folder / "papers").glob("*.json")):
        papers[pf.stem] = _paper_doc(pf.stem, json.loads(pf.read_text(encoding="utf-8")))
    return ReviewerData(ratings, authored, papers)


def profile(data: ReviewerData, participant: str, seed: int, size: int = PROFILE_SIZE) -> list[Doc]:
    """The ``size`` most recent papers with title, abstract and year; ties broken by ``seed``."""
    docs = []
    for pid in dict.fromkeys(data.authored.get(participant, [])):
        d = data.papers.get(pid)
        if d is not None and d.title and d.sentences and d.year is not None:
            docs.append(d)
    rng = random.Random(f"{seed}:{participant}")
    keyed = [(-d.year, rng.random(), d) for d in docs]  # type: ignore[operator]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [d for _, _, d in keyed[:size]]


# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------


def participant_loss_terms(rated: list[tuple[str, float]], scores: dict[str, float]) -> tuple[float, float]:
    """(misranking weight, total weight) of one participant's rated pairs (a missing score ties)."""
    num = den = 0.0
    for i in range(len(rated)):
        for j in range(i + 1, len(rated)):
            (p1, e1), (p2, e2) = rated[i], rated[j]
            if e1 == e2:
                continue
            d = abs(e1 - e2)
            den += d
            a, b = scores.get(p1), scores.get(p2)
            if a is None or b is None or a == b:
                num += d / 2
            elif (a > b) != (e1 > e2):
                num += d
    return num, den


def pairwise_loss(scores: dict[str, dict[str, float]], ratings: dict[str, list[tuple[str, float]]]) -> float:
    """Weighted pairwise misranking loss pooled over participants (a missing score ties)."""
    num = den = 0.0
    for part, rated in ratings.items():
        n, d = participant_loss_terms(rated, scores.get(part, {}))
        num += n
        den += d
    return num / den if den else 0.0


def evaluate(runs: dict[str, dict[str, dict[str, float]]], ratings) -> dict:
    losses = {seed: pairwise_loss(sc, ratings) for seed, sc in runs.items()}
    vals = list(losses.values())
    mean = sum(vals) / len(vals) if vals else 0.0
    sd = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5 if vals else 0.0
    return {
        "loss": round(mean, 4),
        "loss_sd": round(sd, 4),
        "runs": len(vals),
        "participants": len(ratings),
        "per_run": {k: round(v, 4) for k, v in losses.items()},
    }


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def all_texts(data: ReviewerData, sentences: bool = True) -> list[str]:
    texts = []
    for d in data.papers.values():
        if d.is_empty:
            continue
        texts.append(d.text)
        if sentences:
            texts.extend(([d.title] if d.title else []) + d.sentences)
    return list(dict.fromkeys(texts))


def run(
    data: ReviewerData,
    embedder,
    method: str | None = None,
    seeds=SEEDS,
    params: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{seed: {participant: {paper: score}}}`` for the rated papers of every participant."""
    from paperscope.similarity import BEST_PROFILE, score_against_profile

    method = method or BEST_PROFILE
    out: dict[str, dict[str, dict[str, float]]] = {}
    for seed in seeds:
        per = {}
        for part, rated in data.ratings.items():
            prof = profile(data, part, seed)
            cands = [data.papers.get(p) or Doc(id=p) for p, _ in rated]
            per[part] = score_against_profile(prof, cands, embedder=embedder, method=method, params=params)
            if progress is not None:
                progress(1)
        out[str(seed)] = per
    return out
