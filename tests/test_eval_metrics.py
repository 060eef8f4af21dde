"""Metrics of the labelled benchmarks on tiny hand-made cases, and the reference figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from paperscope.bench import eval_csfcube as C
from paperscope.bench import eval_reviewer as R

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CSFCUBE = SHARED / "eval" / "csfcube"
REVIEWER = SHARED / "eval" / "reviewer-expertise"


# --------------------------------------------------------------------------- NDCG%20 / MAP


def test_ndcg_perfect_and_cut():
    grades = {f"c{i}": g for i, g in enumerate([3, 2, 0, 0, 1, 0, 0, 0, 0, 0])}  # 10 judged -> k = 2
    assert C.ndcg_pct(["c0", "c1", "c4"], grades) == pytest.approx(1.0)
    # only the first two positions count: swapping them changes the score, position 3 does not
    swapped = C.ndcg_pct(["c1", "c0"], grades)
    ideal = 3 + 2 / math.log2(3)
    assert swapped == pytest.approx((2 + 3 / math.log2(3)) / ideal)
    assert C.ndcg_pct(["c2", "c3", "c0"], grades) == 0.0


def test_ndcg_linear_gain_and_missing_ids():
    grades = {"a": 3, "b": 1, "c": 0, "d": 0, "e": 0}  # k = int(0.2 * 5) = 1
    assert C.ndcg_pct(["b", "a"], grades) == pytest.approx(1 / 3)  # linear gain, not 2^g - 1
    assert C.ndcg_pct(["zz", "a"], grades) == 0.0  # an unjudged id takes its place with grade 0
    assert C.ndcg_pct([], grades) == 0.0


def test_average_precision_threshold_and_denominator():
    grades = {"a": 2, "b": 1, "c": 3, "d": 0}
    # relevant (>= 2): a, c. Ranking a, b, c -> (1/1 + 2/3) / 2
    assert C.average_precision(["a", "b", "c", "d"], grades) == pytest.approx((1 + 2 / 3) / 2)
    # a relevant candidate missing from the ranking counts as never found
    assert C.average_precision(["a", "b", "d"], grades) == pytest.approx(1 / 2)
    assert C.average_precision(["a"], {"a": 1}) == 0.0


def test_evaluate_per_facet_and_missing_query():
    qrels = {"1_method": {"a": 3, "b": 0, "c": 0, "d": 0, "e": 0}, "2_result": {"a": 0, "b": 2, "c": 0, "d": 0, "e": 0}}
    res = C.evaluate({"1_method": ["a", "b"]}, qrels)
    assert res["by_facet"]["method"]["ndcg%20"] == 1.0
    assert res["by_facet"]["result"]["ndcg%20"] == 0.0
    assert res["ndcg%20"] == 0.5 and res["queries"] == 2


# --------------------------------------------------------------------------- pairwise loss


def test_pairwise_loss_orders_ties_and_weights():
    ratings = {"p": [("x", 5.0), ("y", 3.0), ("z", 1.0)]}
    # pairs: (x,y) d=2, (x,z) d=4, (y,z) d=2 -> denominator 8
    assert R.pairwise_loss({"p": {"x": 3, "y": 2, "z": 1}}, ratings) == 0.0
    assert R.pairwise_loss({"p": {"x": 1, "y": 2, "z": 3}}, ratings) == 1.0
    # x,y tie: 2/2; x<z wrong: +4; y<z wrong: +2 -> 7/8
    assert R.pairwise_loss({"p": {"x": 2, "y": 2, "z": 3}}, ratings) == pytest.approx(7 / 8)
    assert R.pairwise_loss({"p": {"x": 3, "y": 3, "z": 1}}, ratings) == pytest.approx(1 / 8)


def test_pairwise_loss_pools_participants_and_skips_equal_expertise():
    ratings = {"p": [("a", 5.0), ("b", 1.0)], "q": [("c", 2.0), ("d", 2.0), ("e", 3.0)]}
    scores = {"p": {"a": 0.0, "b": 1.0}, "q": {"c": 0.9, "d": 0.1, "e": 0.5}}
    # p: wrong, d=4. q: (c,d) equal expertise -> skipped; (c,e) wrong d=1; (d,e) right d=1
    assert R.pairwise_loss(scores, ratings) == pytest.approx((4 + 1) / (4 + 1 + 1))


def test_profile_most_recent_with_random_ties():
    from paperscope.similarity import Doc

    # 10 papers of 2002, 15 of 2001: the profile takes all of 2002 and 10 of the 15 of 2001
    papers = {f"p{i}": Doc(id=f"p{i}", title="t", sentences=["s."], year=2002 if i < 10 else 2001) for i in range(25)}
    papers["noabs"] = Doc(id="noabs", title="t", sentences=[], year=2030)
    data = R.ReviewerData(ratings={}, authored={"u": list(papers)}, papers=papers)
    prof = R.profile(data, "u", seed=1)
    assert len(prof) == 20 and all(d.id != "noabs" for d in prof)
    assert sorted((d.year for d in prof), reverse=True) == [d.year for d in prof]
    assert [d.year for d in prof].count(2002) == 10  # all of the latest year, then the next
    assert [d.id for d in R.profile(data, "u", seed=1)] == [d.id for d in prof]  # reproducible
    picks = {frozenset(d.id for d in R.profile(data, "u", seed=s)) for s in range(1, 11)}
    assert len(picks) > 1  # ties in 2001 are broken differently by other seeds


# --------------------------------------------------------------------------- reference figures


@pytest.mark.skipif(not CSFCUBE.is_dir(), reason=f"shared benchmark folder {CSFCUBE} is absent")
def test_csfcube_reference_specter():
    data = C.load(CSFCUBE)
    ranking = json.loads((CSFCUBE / "reference_ranking_specter.json").read_text())
    res = C.evaluate(ranking, data.qrels)
    assert res["queries"] == 28
    assert round(res["ndcg%20"], 3) == 0.523
    assert round(res["map"], 3) == 0.334


@pytest.mark.skipif(not REVIEWER.is_dir(), reason=f"shared benchmark folder {REVIEWER} is absent")
def test_reviewer_reference_losses():
    data = R.load(REVIEWER)
    ref = json.loads((REVIEWER / "reference_scores.json").read_text())
    losses = {alg: R.evaluate(runs, data.ratings)["loss"] for alg, runs in ref.items()}
    expected = {"tpms": 0.238, "elmo": 0.310, "specter": 0.203, "specter_mfr": 0.182, "acl": 0.248}
    for alg, want in expected.items():
        assert round(losses[alg], 3) == want, alg


@pytest.mark.skipif(not REVIEWER.is_dir(), reason=f"shared benchmark folder {REVIEWER} is absent")
def test_reviewer_profiles_are_the_protocols():
    data = R.load(REVIEWER)
    for part in data.ratings:
        prof = R.profile(data, part, seed=3)
        assert len(prof) <= R.PROFILE_SIZE
        assert all(d.title and d.sentences and d.year for d in prof)
        assert len({d.id for d in prof}) == len(prof)


# --------------------------------------------------------------------------- the CLI


@pytest.mark.skipif(not (CSFCUBE.is_dir() and REVIEWER.is_dir()), reason=f"shared benchmark folders under {SHARED} are absent")
def test_cli_scores_reference_files():
    from typer.testing import CliRunner

    from paperscope.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "csfcube", str(CSFCUBE), "--reference", str(CSFCUBE / "reference_ranking_specter.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (round(out["ndcg%20"], 3), round(out["map"], 3)) == (0.523, 0.334)
    assert set(out["by_facet"]) == {"background", "method", "result"}
    res = runner.invoke(app, ["eval", "reviewer", str(REVIEWER), "--reference", str(REVIEWER / "reference_scores.json")])
    assert res.exit_code == 0, res.output
    assert round(json.loads(res.stdout)["algorithms"]["specter_mfr"]["loss"], 3) == 0.182


def test_cli_rejects_a_folder_of_another_layout(tmp_path):
    from typer.testing import CliRunner

    from paperscope.cli import app

    res = CliRunner().invoke(app, ["eval", "csfcube", str(tmp_path)])
    assert res.exit_code == 1 and "queries.csv" in res.output
    res = CliRunner().invoke(app, ["eval", "reviewer", str(tmp_path)])
    assert res.exit_code == 1 and "evaluations.tsv" in res.output
