"""Ranking by example (and by facet) and scoring against a profile, on small real texts."""

from __future__ import annotations

import numpy as np
import pytest

from paperscope.index.embedder import default_embedder
from paperscope.index.facets import RoleModel, cue_features, default_role_model, labels_to_probs, ngrams, position_features
from paperscope.similarity import (
    CachedEmbedder,
    Doc,
    bm25_scores,
    coverage,
    fuse,
    maxsim,
    rank_by_example,
    score_against_profile,
    split_sentences,
    tokenize,
)

QUERY = Doc.from_text(
    "q",
    "Bootstrapped patterns for sarcasm detection in tweets",
    "Sarcasm is common in social media and hard for sentiment analysis. "
    "We learn lexico-syntactic patterns with a bootstrapping algorithm that starts from a few seed phrases. "
    "The learned patterns improve recall of sarcasm detection by 20 points over a supervised baseline.",
)
SAME_METHOD = Doc.from_text(
    "same-method",
    "Learning subjective nouns with extraction pattern bootstrapping",
    "Subjectivity analysis needs lexicons of subjective words. "
    "We use a bootstrapping algorithm that iteratively learns extraction patterns from seed nouns in unannotated text. "
    "The resulting lexicon improves a subjectivity classifier.",
)
SAME_RESULT = Doc.from_text(
    "same-result",
    "A neural network for irony and sarcasm in tweets",
    "Irony and sarcasm in tweets mislead sentiment classifiers. "
    "We train a convolutional neural network on a large labelled corpus. "
    "Sarcasm detection recall improves by 20 points over a supervised baseline on Twitter.",
)
UNRELATED = Doc.from_text(
    "unrelated",
    "Crystal structure of a bacterial membrane transporter",
    "Membrane transporters move solutes across the cell envelope. "
    "We solved the structure by X-ray crystallography at 2.1 angstrom resolution. "
    "The structure reveals a gating mechanism.",
)
CANDS = [UNRELATED, SAME_RESULT, SAME_METHOD]


@pytest.fixture(scope="module")
def emb():
    return CachedEmbedder(default_embedder())


def test_split_sentences_and_doc_text():
    s = split_sentences("We follow Smith et al. 2020 closely. Results improve by 3% on all benchmarks, e.g. GLUE. Code is released.")
    assert s == ["We follow Smith et al. 2020 closely.", "Results improve by 3% on all benchmarks, e.g. GLUE.", "Code is released."]
    d = Doc.from_text("x", "A title", "One sentence here. Another one follows.")
    assert d.text == "A title. One sentence here. Another one follows."
    assert Doc(id="e").is_empty and not d.is_empty


def test_tokenize_and_bm25():
    assert tokenize("The Networks are learning graphs") == ["network", "learn", "graph"]
    s = bm25_scores(tokenize("graph networks"), [tokenize("graph neural networks"), tokenize("protein folding")])
    assert s[0] > 0 and s[1] == 0


def test_fuse_and_maxsim_units():
    a = np.array([1.0, 2.0, 3.0])
    assert np.allclose(fuse([(1.0, a), (0.0, -a)]), (a - 2) / a.std())
    q = np.eye(3, dtype=np.float32)[:2]
    c = np.eye(3, dtype=np.float32)[[0]]
    assert maxsim(q, c) == pytest.approx(0.5)
    assert maxsim(q, c, q_weights=np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert coverage(c, q) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["cosine", "lexical", "hybrid", "fusion"])
def test_rank_by_example_puts_unrelated_last(emb, method):
    ranked = rank_by_example(QUERY, CANDS + [Doc(id="empty"), QUERY], embedder=emb, method=method)
    ids = [i for i, _ in ranked]
    assert ids.index("unrelated") > ids.index("same-method") and ids.index("unrelated") > ids.index("same-result")
    assert ids[-2:] == ["empty", "q"]  # no text, and the query itself, go last
    kept = rank_by_example(QUERY, [UNRELATED, QUERY], embedder=emb, method=method, exclude_query=False)
    assert kept[0][0] == "q"


def test_facets_move_the_matching_candidate_up(emb):
    """The whole-paper signals weigh most (as measured on CSFCube), so a facet shifts scores rather
    than overturning them: the method-sharing paper gains on the result-sharing one under 'method'."""

    def gap(facet):  # score of same-result minus score of same-method
        s = dict(rank_by_example(QUERY, CANDS, facet=facet, embedder=emb))
        return s["same-result"] - s["same-method"]

    assert gap("method") < gap("result") - 0.5
    assert gap("method") < gap("background")
    assert gap("method") < gap(None)
    with pytest.raises(ValueError):
        rank_by_example(QUERY, CANDS, facet="nonsense", embedder=emb)


def test_role_classifier_on_an_unlabelled_abstract(emb):
    model = default_role_model()
    assert model is not None and model.meta["embedder"].startswith("all-MiniLM-L6-v2")
    probs = model.predict_proba(emb.embed(QUERY.sentences), QUERY.sentences)
    assert probs.shape == (3, 3)
    assert probs[0].argmax() == 0  # "Sarcasm is common ..." -> background
    assert probs[1].argmax() == 1  # "We learn ... patterns with a bootstrapping algorithm" -> method
    assert probs[2].argmax() == 2  # "... improve recall ... by 20 points" -> result
    assert labels_to_probs(["method_label", None, "result"]).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert position_features(3)[:, 0].tolist() == [0.0, 0.5, 1.0]


def test_role_classifier_reads_words_and_round_trips(emb, tmp_path):
    model = default_role_model()
    vecs = emb.embed(QUERY.sentences)
    # a model that reads words must be given them: guessing without would silently shift roles
    with pytest.raises(ValueError):
        model.predict_proba(vecs)
    assert ngrams("Our model outperforms BERT") == ["our", "model", "outperforms", "bert", "our model", "model outperforms", "outperforms bert"]
    cues = cue_features(["We propose a parser.", "It improves accuracy by 3%."])
    assert cues[0, 0] == 1 and cues[1, 4] == 1 and cues[1, 5] == 1
    model.save(tmp_path / "roles.py")
    again = RoleModel.load(tmp_path / "roles.py")
    assert again.vocab.terms == model.vocab.terms and again.dim == model.dim == vecs.shape[1]
    assert np.allclose(again.predict_proba(vecs, QUERY.sentences), model.predict_proba(vecs, QUERY.sentences))


@pytest.mark.parametrize("method", ["mean", "centroid", "topk", "softmax", "hybrid", "coverage"])
def test_profile_scoring_prefers_the_researchers_area(emb, method):
    profile = [
        Doc.from_text("p1", "Detecting sarcasm on Twitter", "We study sarcastic tweets and build a classifier for them."),
        Doc.from_text("p2", "Sentiment lexicons from bootstrapping", "Seed words and patterns grow a sentiment lexicon."),
        Doc.from_text("p3", "Emotion in online debates", "We analyse emotional and factual arguments in forums."),
    ]
    scores = score_against_profile(profile, CANDS + [Doc(id="empty")], embedder=emb, method=method)
    assert set(scores) == {"unrelated", "same-result", "same-method", "empty"}
    assert scores["same-result"] > scores["unrelated"] and scores["same-method"] > scores["unrelated"]
    assert scores["empty"] == float("-inf")
    assert score_against_profile([], CANDS, embedder=emb, method=method) == {c.id: 0.0 for c in CANDS}
    assert score_against_profile(profile, [], embedder=emb, method=method) == {}
