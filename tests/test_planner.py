"""The planner: the best set of non-overlapping talks and poster visits for a user's interests.

Optimality is checked against brute force on many small random programs (seeded), including poster
sessions with a budget and papers presented more than once; then on the real ICLR 2020 program a
plan for "reinforcement learning exploration" picks RL papers, gives its reasons and never overlaps.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from paperscope.schedule import (
    Candidate,
    Interest,
    assign_papers,
    day_bounds,
    load_program,
    make_plan,
    overlaps,
    plan_candidates,
    plan_intervals,
    poster_capacity,
    weighted_interval_schedule,
    zone,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ICLR2020 = SHARED / "data" / "iclr2020_virtual_site"
needs_iclr = pytest.mark.skipif(not ICLR2020.is_dir(), reason=f"the ICLR 2020 Mini-Conf site is not at {ICLR2020}")
T0 = datetime(2022, 7, 20, 8, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def non_overlapping(spans) -> bool:
    return all(not overlaps(a0, a1, b0, b1) for (a0, a1), (b0, b1) in itertools.combinations(spans, 2))


# ------------------------------------------------------------------------------------------------
# Weighted interval scheduling against brute force
# ------------------------------------------------------------------------------------------------


def brute_force_wis(intervals):
    best = 0.0
    for r in range(len(intervals) + 1):
        for combo in itertools.combinations(range(len(intervals)), r):
            spans = [(intervals[i][0], intervals[i][1]) for i in combo]
            if non_overlapping(spans):
                best = max(best, sum(intervals[i][2] for i in combo))
    return best


def test_weighted_interval_scheduling_is_optimal_on_random_cases():
    rng = random.Random(20220721)
    for _ in range(400):
        n = rng.randint(0, 9)
        intervals = []
        for _ in range(n):
            start = rng.randint(0, 40)
            end = start + rng.randint(1, 15)      # small grid: many touching and nested intervals
            intervals.append((start, end, rng.choice([0.0, round(rng.uniform(0, 5), 2)])))
        total, chosen = weighted_interval_schedule(intervals)
        assert total == pytest.approx(brute_force_wis(intervals))
        assert total == pytest.approx(sum(intervals[i][2] for i in chosen))
        assert non_overlapping([(intervals[i][0], intervals[i][1]) for i in chosen])
        assert all(intervals[i][2] > 0 for i in chosen)


def test_touching_intervals_can_both_be_chosen_and_overlapping_ones_cannot():
    total, chosen = weighted_interval_schedule([(0, 10, 1.0), (10, 20, 1.0), (5, 15, 1.5)])
    assert total == 2.0 and chosen == [0, 1]
    total, chosen = weighted_interval_schedule([(0, 10, 1.0), (9, 20, 1.0)])
    assert total == 1.0 and len(chosen) == 1


# ------------------------------------------------------------------------------------------------
# Poster budgets
# ------------------------------------------------------------------------------------------------


def test_a_two_hour_poster_session_fits_24_posters_at_5_minutes():
    assert poster_capacity(at(0), at(120), 5) == 24
    assert poster_capacity(at(0), at(120), 7) == 17
    assert poster_capacity(at(0), at(4), 5) == 0


def test_a_poster_session_visits_its_most_relevant_posters_within_the_budget():
    papers = [f"p{i}" for i in range(40)]
    relevance = {p: (i % 7) * 0.5 for i, p in enumerate(papers)}   # many zero, many ties
    session = Candidate("s", at(0), at(60), "posters", papers, poster_capacity(at(0), at(60), 5))
    picks = session.picks(relevance)
    assert len(picks) == 12
    assert min(relevance[p] for p in picks) >= max(relevance[p] for p in papers if p not in picks)
    assert session.weight(relevance) == pytest.approx(sum(sorted(relevance.values(), reverse=True)[:12]))
    # Papers of no relevance are never visited, even with time to spare.
    sparse = {"p1": 2.0, "p2": 1.0}
    assert session.picks(sparse) == ["p1", "p2"]


# ------------------------------------------------------------------------------------------------
# The whole planner against brute force
# ------------------------------------------------------------------------------------------------


def random_program(rng: random.Random, n_papers: int, repeats: bool):
    """Talks (one paper, 5-20 min) and poster sessions (30-120 min) on a 4-hour grid."""
    papers = [f"p{i}" for i in range(n_papers)]
    relevance = {p: rng.choice([0.0, 0.0, round(rng.uniform(0.1, 3.0), 2)]) for p in papers}
    pool = list(papers)
    rng.shuffle(pool)
    cands = []
    for k in range(rng.randint(1, 7)):
        start = rng.randrange(0, 240, 5)
        if rng.random() < 0.5:
            length = rng.choice([5, 10, 15, 20])
            paper = rng.choice(papers) if repeats else (pool.pop() if pool else None)
            if paper is None:
                continue
            cands.append(Candidate(f"t{k}", at(start), at(start + length), "talk", [paper], 1))
        else:
            length = rng.choice([30, 60, 90, 120])
            size = rng.randint(1, 6)
            if repeats:
                members = rng.sample(papers, min(size, len(papers)))
            else:
                members = [pool.pop() for _ in range(min(size, len(pool)))]
            if not members:
                continue
            cap = poster_capacity(at(start), at(start + length), rng.choice([15, 20, 30, 45]))
            cands.append(Candidate(f"s{k}", at(start), at(start + length), "posters", members, cap))
    return cands, relevance


def brute_force_distinct(cands, relevance):
    """Best total over every non-overlapping subset, each paper counted once (exact assignment by enumeration)."""
    best = 0.0
    for r in range(len(cands) + 1):
        for combo in itertools.combinations(cands, r):
            if not non_overlapping([(c.start, c.end) for c in combo]):
                continue
            best = max(best, brute_force_assignment(combo, relevance))
    return best


def brute_force_assignment(chosen, relevance):
    papers = sorted({p for c in chosen for p in c.papers if relevance.get(p, 0) > 0})
    best = 0.0
    # each paper goes to one interval holding it, or nowhere
    options = [[None] + [i for i, c in enumerate(chosen) if p in c.papers] for p in papers]
    for choice in itertools.product(*options):
        load = [0] * len(chosen)
        ok = True
        for i in choice:
            if i is not None:
                load[i] += 1
                if load[i] > chosen[i].capacity:
                    ok = False
                    break
        if ok:
            best = max(best, sum(relevance[p] for p, i in zip(papers, choice) if i is not None))
    return best


def check_plan(result, cands, relevance):
    spans = [(p.start, p.end) for p in result.picks]
    assert non_overlapping(spans), "the plan has overlapping items"
    seen = [p for pick in result.picks for p in pick.papers]
    assert len(seen) == len(set(seen)), "a paper is visited twice"
    for pick in result.picks:
        assert len(pick.papers) <= pick.candidate.capacity
        assert set(pick.papers) <= set(pick.candidate.papers)
        assert all(relevance[p] > 0 for p in pick.papers)
    assert result.total == pytest.approx(sum(relevance[p] for p in seen))
    assert result.total <= result.upper_bound + 1e-9


def test_the_plan_is_optimal_when_every_paper_is_presented_once():
    rng = random.Random(7)
    for _ in range(300):
        cands, relevance = random_program(rng, n_papers=14, repeats=False)
        result = plan_intervals(cands, relevance)
        check_plan(result, cands, relevance)
        assert result.total == pytest.approx(brute_force_distinct(cands, relevance))
        assert result.proven_optimal


def test_papers_presented_twice_are_visited_once_and_the_plan_says_when_it_is_provably_optimal():
    rng = random.Random(11)
    optimal = proven = 0
    cases = 250
    for _ in range(cases):
        cands, relevance = random_program(rng, n_papers=6, repeats=True)
        result = plan_intervals(cands, relevance)
        check_plan(result, cands, relevance)
        best = brute_force_distinct(cands, relevance)
        assert result.total <= best + 1e-9
        if result.proven_optimal:
            proven += 1
            assert result.total == pytest.approx(best)
        optimal += result.total == pytest.approx(best)
    # The repair loop reaches the true optimum in nearly every case (measured: see the report).
    assert optimal >= 0.9 * cases, f"optimal in only {optimal}/{cases} cases"
    assert proven >= 0.5 * cases


def test_paper_assignment_is_exact():
    rng = random.Random(3)
    for _ in range(300):
        papers = [f"p{i}" for i in range(6)]
        relevance = {p: rng.choice([0.0, round(rng.uniform(0.1, 3.0), 2)]) for p in papers}
        chosen = [Candidate(f"c{k}", at(k * 10), at(k * 10 + 5), "posters", rng.sample(papers, rng.randint(1, 4)),
                            rng.randint(0, 3)) for k in range(rng.randint(1, 4))]
        total, assignment = assign_papers(chosen, relevance)
        assert total == pytest.approx(brute_force_assignment(chosen, relevance))
        placed = [p for ps in assignment.values() for p in ps]
        assert len(placed) == len(set(placed))
        assert all(len(ps) <= chosen[i].capacity and set(ps) <= set(chosen[i].papers) for i, ps in assignment.items())


# ------------------------------------------------------------------------------------------------
# The real ICLR 2020 program
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iclr2020(catalogues):
    pytest.importorskip("paperscope.ingest.miniconf", reason="the Mini-Conf importer is not installed")
    from iclr_catalogue import ingest_iclr_site

    from paperscope.catalog.store import Catalog

    with catalogues.copy("iclr2020-site", ingest_iclr_site) as url:
        catalog = Catalog.open(url)
        yield catalog
        catalog.close()


RL_WORDS = ("reinforcement", "exploration", "policy", "agent", "reward", "q-learning", "bandit", "markov decision")


def is_rl(paper) -> bool:
    text = f"{paper['title']} {paper.get('abstract', '')}".lower()
    return any(w in text for w in RL_WORDS)


def plan_papers(plan):
    return [p for pick in plan.result.picks for p in pick.papers]


@needs_iclr
def test_a_plan_for_rl_exploration_over_all_of_iclr_2020_picks_rl_papers_with_reasons(iclr2020):
    tz = zone("Europe/Berlin")
    plan = make_plan(iclr2020, "ICLR", 2020, [Interest("reinforcement learning exploration", "reinforcement learning exploration")],
                     tz=tz, method="tfidf")
    assert plan.relevance.method == "tf-idf"
    picks = plan_papers(plan)
    assert len(picks) >= 20
    assert len(picks) == len(set(picks)), "every ICLR 2020 poster is shown twice; a plan visits it once"
    assert non_overlapping([(p.start, p.end) for p in plan.result.picks])
    top = sorted(picks, key=lambda p: -plan.relevance.relevance[p])[:20]
    assert sum(is_rl(plan.papers[p]) for p in top) >= 18
    data = plan.as_dict()
    json.dumps(data)
    posters = [p for it in data["items"] for p in it.get("posters", [])]
    assert posters and all("closest to" in p["reason"] and "relevance" in p["reason"] for p in posters)
    assert any("exploration" in p["reason"] for p in posters)
    for it in data["items"]:
        assert it["kind"] == "posters" and len(it["posters"]) <= it["capacity"] == 24


@needs_iclr
def test_a_day_plan_with_embeddings_stays_on_that_day_in_the_chosen_zone(iclr2020):
    """Sunday 26 April in Los Angeles holds one ICLR 2020 poster session (Mon Session 1, 05:00 UTC
    Monday = 22:00 PDT Sunday): planned with the MiniLM embedder, embedding only those 68 posters."""
    pytest.importorskip("onnxruntime")
    tz = zone("America/Los_Angeles")
    day = datetime(2020, 4, 26).date()
    plan = make_plan(iclr2020, "ICLR", 2020, [Interest("reinforcement learning exploration", "reinforcement learning exploration")],
                     tz=tz, day=day, minutes_per_poster=10)
    if plan.relevance.method == "tf-idf":
        pytest.skip(f"the embedding model is unavailable: {plan.relevance.note}")
    assert plan.relevance.method.startswith("embedding")
    assert len(plan.papers) < 80
    (pick,) = plan.result.picks
    assert pick.candidate.ref.name == "Mon Session 1"
    lo, hi = day_bounds(day, tz)
    assert lo <= pick.start < hi and pick.start.astimezone(tz).hour == 22
    assert 5 <= len(pick.papers) <= 12       # 2 hours at 10 minutes a poster
    top = pick.papers[:8]
    assert sum(is_rl(plan.papers[p]) for p in top) >= 7
    assert "explor" in (plan.papers[top[0]]["title"] + plan.papers[top[0]]["abstract"]).lower()
    assert plan.result.proven_optimal


@needs_iclr
def test_the_program_has_candidates_for_every_poster_session(iclr2020):
    program = load_program(iclr2020, "ICLR", 2020)
    cands = plan_candidates(program, 5)
    posters = [c for c in cands if c.kind == "posters"]
    assert len(posters) == 20 and all(c.capacity == 24 for c in posters)
    assert sum(len(c.papers) for c in posters) == 1374


# ------------------------------------------------------------------------------------------------
# Interests and the vectors the catalogue already has
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def small_catalogue(catalog):
    from paperscope.model import Appearance, PaperRecord

    base = datetime(2022, 7, 21, 19, 30, tzinfo=timezone.utc)
    titles = ["Curiosity-driven exploration by self-supervised prediction", "Graph networks that count",
              "Bandits with knapsacks"]
    catalog.ingest("mem:x", "test", "h", [
        PaperRecord(title=t, authors=["A. Author"], abstract=f"We study {t.lower()}.", year=2022,
                    appearance=Appearance(venue="ICML", year=2022, session="S", presentation="talk",
                                          starts_at=base + timedelta(minutes=5 * i), ends_at=base + timedelta(minutes=5 * i + 5)))
        for i, t in enumerate(titles)])
    return catalog


def test_interests_are_read_from_ids_titles_free_text_and_bibtex(small_catalogue, tmp_path):
    from paperscope.schedule import read_interests

    program = load_program(small_catalogue, "ICML", 2022)
    graph_id = next(e.paper_id for e in program.entries() if e.title.startswith("Graph"))
    lines = tmp_path / "interests.txt"
    lines.write_text(f"# my interests\n{graph_id}\nbandits with KNAPSACKS\nintrinsic motivation for agents\n")
    got = read_interests(lines, small_catalogue)
    assert [(i.paper_id is not None, i.title) for i in got] == [
        (True, "Graph networks that count"), (True, "Bandits with knapsacks"), (False, "intrinsic motivation for agents")]
    assert got[1].abstract == "We study bandits with knapsacks."       # a known title brings its abstract
    bib = tmp_path / "mine.bib"
    bib.write_text("@inproceedings{pathak2017,\n  title = {Curiosity-driven {Exploration} by Self-supervised Prediction},\n"
                   "  author = {Pathak, Deepak},\n  abstract = {Agents explore with curiosity.},\n  year = {2017}\n}\n")
    (entry,) = read_interests(bib, small_catalogue)
    assert entry.title == "Curiosity-driven Exploration by Self-supervised Prediction"
    assert entry.abstract == "Agents explore with curiosity."
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(Exception, match="lists no interests"):
        read_interests(empty, small_catalogue)


def test_vectors_stored_by_paperscope_embed_are_used_instead_of_embedding_again(small_catalogue):
    import numpy as np

    from paperscope.index.vectors import to_blob
    from paperscope.schedule import stored_catalogue_vectors
    from paperscope.similarity import Doc

    papers = small_catalogue.papers([e.paper_id for e in load_program(small_catalogue, "ICML", 2022).entries()],
                                    with_appearances=False)
    vec = np.zeros(384, dtype=np.float32)
    vec[0] = 1.0
    small_catalogue.store_vectors("test-model", {papers[0]["content_hash"]: to_blob(vec)})
    docs = [Doc.from_text(p["id"], p["title"], p["abstract"]) for p in papers]
    known = stored_catalogue_vectors(small_catalogue, papers, docs, "test-model")
    assert list(known) == [docs[0].text] and known[docs[0].text][0] == 1.0
    assert stored_catalogue_vectors(small_catalogue, papers, docs, "another-model") == {}


def test_the_plan_command_explains_and_accepts(small_catalogue):
    from typer.testing import CliRunner

    from paperscope.catalog.agenda import list_agenda
    from paperscope.cli import app

    runner = CliRunner()
    args = ["plan", "--venue", "ICML 2022", "--text", "exploration with curiosity", "--method", "tfidf", "--threshold", "0",
            "--tz", "UTC", "--db", small_catalogue.location]
    r = runner.invoke(app, [*args, "--json"])
    data = json.loads(r.output)
    assert data["relevance_method"] == "tf-idf" and data["proven_optimal"]
    assert data["items"][0]["title"].startswith("Curiosity") and "exploration" in data["items"][0]["reason"]
    r = runner.invoke(app, [*args, "--accept"])
    assert r.exit_code == 0 and "Starred" in r.output
    first = [i.title for i in list_agenda(small_catalogue, "local")]
    runner.invoke(app, [*args, "--accept"])                  # accepting again replaces, never duplicates
    assert [i.title for i in list_agenda(small_catalogue, "local")] == first
    r = runner.invoke(app, ["plan", "--venue", "ICML", "--year", "2022", "--db", small_catalogue.location])
    assert r.exit_code == 1 and "what are you interested in" in r.output
