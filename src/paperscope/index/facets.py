"""Sentence roles in abstracts: background, method, result (or other).

A multinomial logistic regression over the sentence's MiniLM vector, the vectors of the sentences
before and after it (zeros at the ends), its relative position in the abstract (fraction, first,
last), the TF-IDF of its words (uni- and bigrams, sublinear tf) and a few cue phrases a reader goes
by ("we propose", "results show", "outperforms", percentages, numbers); the words catch what the
vectors blur (79% agreement on held-out abstracts from the vectors alone, 82% with the words). It
is trained on the per-sentence *predicted discourse labels* that ship with CSFCube's
``corpus.jsonl`` (CC BY-NC 4.0; labels: background and objective -> background, method, result,
other); these are discourse labels, not relevance judgements, and the classifier labels any
abstract, with or without labels of its own.

The trained weights ship as ``facet_roles.py`` beside this file (float16 weights, the vocabulary
and its idf in base64, a few hundred kB; a Python module so that it installs with the package
without package-data), written by ``python -m paperscope.index.facets TRAIN_JSONL``; training is
deterministic (L-BFGS from zeros). The module records the embedder it expects and what it was
trained on.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

CLASSES = ("background", "method", "result", "other")
WEIGHTS_FILE = Path(__file__).with_name("facet_roles.py")
LABEL_MAP = {
    "background_label": "background",
    "objective_label": "background",
    "method_label": "method",
    "result_label": "result",
    "other_label": "other",
}


def position_features(n: int) -> np.ndarray:
    """(n, 4): fraction through the abstract, is-first, is-last, bias."""
    if n <= 0:
        return np.zeros((0, 4), dtype=np.float32)
    frac = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    first = np.zeros(n)
    first[0] = 1
    last = np.zeros(n)
    last[-1] = 1 if n > 1 else 0
    return np.stack([frac, first, last, np.ones(n)], axis=1).astype(np.float32)


def sentence_features(vecs: np.ndarray, context: bool = True) -> np.ndarray:
    """Features of the sentences of one abstract, in order: [own, previous, next, position]."""
    vecs = np.asarray(vecs, dtype=np.float32)
    n = len(vecs)
    pos = position_features(n)
    if not context:
        return np.hstack([vecs, pos])
    zero = np.zeros((1, vecs.shape[1]), dtype=np.float32)
    prev = np.vstack([zero, vecs[:-1]])
    nxt = np.vstack([vecs[1:], zero])
    return np.hstack([vecs, prev, nxt, pos])


# sklearn's default token pattern, so that the words read at run time are those counted in training
_WORD = re.compile(r"\b\w\w+\b")
#: phrases that announce a sentence's role; the words alone miss their order and the digits
CUE_PATTERNS = (
    r"\bwe (?:propose|present|introduce|develop|describe|design)\b",
    r"\b(?:our|the proposed) (?:method|approach|model|system|framework|algorithm)\b",
    r"\b(?:results?|experiments?) (?:show|demonstrate|indicate|suggest)",
    r"\boutperform",
    r"%|\bpercent",
    r"\d",
    r"\bstate[- ]of[- ]the[- ]art\b",
    r"\b(?:improv|achiev|significant)",
    r"\b(?:however|although|recent|remains?|challeng|limited)\b",
    r"\bwe (?:show|find|demonstrate|observe)\b",
    r"\bin this (?:paper|work)\b",
)
_CUES = tuple(re.compile(c) for c in CUE_PATTERNS)


def ngrams(sentence: str) -> list[str]:
    """Lower-cased words and word bigrams of a sentence."""
    words = _WORD.findall(sentence.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def cue_features(sentences: Sequence[str]) -> np.ndarray:
    """(n, len(CUE_PATTERNS)): 1 where the sentence contains the cue."""
    low = [s.lower() for s in sentences]
    return np.array([[1.0 if c.search(s) else 0.0 for c in _CUES] for s in low], dtype=np.float32).reshape(
        len(sentences), len(_CUES)
    )


class Vocabulary:
    """The n-grams the classifier reads and their idf (smooth, as sklearn's TfidfVectorizer)."""

    def __init__(self, terms: Sequence[str], idf: np.ndarray) -> None:
        self.terms = list(terms)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.index = {t: i for i, t in enumerate(self.terms)}

    @classmethod
    def fit(cls, sentences: Sequence[str], min_df: int = 5) -> "Vocabulary":
        df = Counter(g for s in sentences for g in set(ngrams(s)))
        terms = sorted(t for t, c in df.items() if c >= min_df)
        n = len(sentences)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in terms])
        return cls(terms, idf)

    def tfidf(self, sentences: Sequence[str]):
        """Sparse (n, len(terms)) TF-IDF rows, sublinear tf, L2-normalised."""
        from scipy import sparse

        rows, cols, vals = [], [], []
        for r, s in enumerate(sentences):
            counts = Counter(self.index[g] for g in ngrams(s) if g in self.index)
            if not counts:
                continue
            cs = np.fromiter(counts.keys(), dtype=np.int64)
            v = (1 + np.log(np.fromiter(counts.values(), dtype=np.float64))) * self.idf[cs]
            rows.extend([r] * len(cs))
            cols.extend(cs.tolist())
            vals.extend((v / np.linalg.norm(v)).tolist())
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(sentences), len(self.terms)), dtype=np.float32)

    def to_b64(self) -> tuple[str, str]:
        terms = base64.b64encode(zlib.compress("\n".join(self.terms).encode("utf-8"), 9)).decode()
        return terms, base64.b64encode(self.idf.astype("<f2").tobytes()).decode()

    @classmethod
    def from_b64(cls, terms_b64: str, idf_b64: str) -> "Vocabulary":
        terms = zlib.decompress(base64.b64decode(terms_b64)).decode("utf-8").split("\n")
        return cls(terms, np.frombuffer(base64.b64decode(idf_b64), dtype="<f2").astype(np.float32))


def text_features(sentences: Sequence[str], vocab: Vocabulary):
    """Sparse [TF-IDF of the words, cues] of sentences."""
    from scipy import sparse

    return sparse.hstack([vocab.tfidf(sentences), sparse.csr_matrix(cue_features(sentences))]).tocsr()


def labels_to_probs(roles: Sequence[str | None]) -> np.ndarray:
    """One-hot rows over background/method/result from given roles (None or other -> zeros)."""
    out = np.zeros((len(roles), 3), dtype=np.float32)
    for i, r in enumerate(roles):
        r = LABEL_MAP.get(r, r) if r else r
        if r in CLASSES[:3]:
            out[i, CLASSES.index(r)] = 1.0
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class RoleModel:
    """Weights over [vector features (see :func:`sentence_features`), TF-IDF of the words, cues]."""

    def __init__(self, W: np.ndarray, meta: dict | None = None, vocab: Vocabulary | None = None) -> None:
        self.W = np.asarray(W, dtype=np.float32)
        self.meta = meta or {}
        self.vocab = vocab
        self.context = bool(self.meta.get("context", False))
        n_text = len(vocab.terms) + len(_CUES) if vocab is not None else 0
        #: rows of W that read the vector features
        self.n_vector_rows = self.W.shape[0] - n_text
        #: dimension of the sentence vectors it reads
        self.dim = (self.n_vector_rows - 4) // (3 if self.context else 1)

    def logits(self, sentence_vecs: np.ndarray, sentences: Sequence[str] | None = None) -> np.ndarray:
        vecs = np.asarray(sentence_vecs, dtype=np.float32)
        z = sentence_features(vecs, self.context) @ self.W[: self.n_vector_rows]
        if self.vocab is not None:
            if sentences is None or len(sentences) != len(vecs):
                raise ValueError("this role classifier reads the sentences' words: pass one text per vector")
            z = z + np.asarray(text_features(sentences, self.vocab) @ self.W[self.n_vector_rows :])
        return z

    def predict_proba(self, sentence_vecs: np.ndarray, sentences: Sequence[str] | None = None) -> np.ndarray:
        """(n, 3) probabilities of background/method/result for the sentences of ONE abstract
        (in order: vectors, and their texts when the model reads words); the 'other' class is
        dropped (its mass is simply missing)."""
        if len(sentence_vecs) == 0:
            return np.zeros((0, 3), dtype=np.float32)
        return _softmax(self.logits(sentence_vecs, sentences))[:, :3]

    def predict(self, sentence_vecs: np.ndarray, sentences: Sequence[str] | None = None) -> list[str]:
        if len(sentence_vecs) == 0:
            return []
        return [CLASSES[i] for i in self.logits(sentence_vecs, sentences).argmax(axis=1)]

    def save(self, path: Path = WEIGHTS_FILE) -> None:
        import pprint
        import textwrap

        def wrapped(b64: str) -> str:
            return "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(b64, 96))

        w = self.W.astype("<f2")
        text = (
            '"""Weights of the sentence-role classifier (generated by paperscope.index.facets; do not edit)."""\n\n'
            f"META = {pprint.pformat(self.meta, width=100)}\n\n"
            f"SHAPE = {tuple(w.shape)!r}\n\n"
            f"W_FLOAT16_B64 = (\n{wrapped(base64.b64encode(w.tobytes()).decode())}\n)\n"
        )
        if self.vocab is not None:
            terms, idf = self.vocab.to_b64()
            text += f"\nTERMS_ZLIB_B64 = (\n{wrapped(terms)}\n)\n\nIDF_FLOAT16_B64 = (\n{wrapped(idf)}\n)\n"
        path.write_text(text, encoding="utf-8")

    @classmethod
    def from_namespace(cls, ns) -> "RoleModel":
        """From the names of a weights module (``facet_roles`` or a file written by :meth:`save`)."""
        get = ns.get if isinstance(ns, dict) else lambda k: getattr(ns, k, None)
        w = np.frombuffer(base64.b64decode(get("W_FLOAT16_B64")), dtype="<f2").reshape(get("SHAPE"))
        vocab = Vocabulary.from_b64(get("TERMS_ZLIB_B64"), get("IDF_FLOAT16_B64")) if get("TERMS_ZLIB_B64") else None
        return cls(w.astype(np.float32), dict(get("META")), vocab)

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> "RoleModel":
        ns: dict = {}
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), ns)
        return cls.from_namespace(ns)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights, inverse sqrt of the class frequency, so that rare 'result' is not swamped."""
    freq = np.bincount(y, minlength=len(CLASSES)) / len(y)
    cw = 1 / np.sqrt(np.clip(freq, 1e-6, None))
    cw = cw / (cw * freq).sum()
    return cw[y]


def train(x, y: np.ndarray, C: float = 1.0) -> np.ndarray:
    """Multinomial logistic regression (L-BFGS, L2 with strength 1/C); x may be sparse. The bias is a
    column of x (see :func:`position_features`), so no separate intercept."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=C, fit_intercept=False, max_iter=3000)
    m.fit(x, y, sample_weight=class_weights(y))
    return m.coef_.T.astype(np.float32)


def features_for(abstracts: list[np.ndarray], context: bool = True) -> np.ndarray:
    return np.vstack([sentence_features(v, context) for v in abstracts if len(v)])


def all_features(abstracts: list[np.ndarray], texts: list[list[str]], vocab: Vocabulary):
    """Sparse training rows: vector features, then text features, sentence by sentence."""
    from scipy import sparse

    flat = [s for t in texts for s in t]
    return sparse.hstack([sparse.csr_matrix(features_for(abstracts)), text_features(flat, vocab)]).tocsr()


_DEFAULT: RoleModel | None = None


def default_role_model() -> RoleModel | None:
    """The shipped classifier (None if its weights are missing)."""
    global _DEFAULT
    if _DEFAULT is None:
        try:
            from paperscope.index import facet_roles
        except ImportError:
            return None
        _DEFAULT = RoleModel.from_namespace(facet_roles)
    return _DEFAULT


def train_from_jsonl(path: Path, embedder, holdout_every: int = 5, C: float = 1.0, min_df: int = 5) -> tuple[RoleModel, dict]:
    """Train on a CSFCube-style corpus.jsonl (abstract sentences + pred_labels)."""
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    rows = [r for r in rows if r.get("abstract") and len(r.get("pred_labels") or []) == len(r["abstract"])]
    rows.sort(key=lambda r: str(r["paper_id"]))
    sent_vecs = []
    flat = [s for r in rows for s in r["abstract"]]
    vecs = embedder.embed(flat)
    i = 0
    ys = []
    for r in rows:
        n = len(r["abstract"])
        sent_vecs.append(vecs[i : i + n])
        ys.append(np.array([CLASSES.index(LABEL_MAP.get(l, "other")) for l in r["pred_labels"]]))
        i += n
    texts = [r["abstract"] for r in rows]
    test = [j % holdout_every == 0 for j in range(len(rows))]

    def part(items, held_out):
        return [x for x, t in zip(items, test) if t == held_out]

    # the held-out abstracts' words stay out of the vocabulary too, as they would for a new paper
    vocab = Vocabulary.fit([s for t in part(texts, False) for s in t], min_df)
    ytr = np.concatenate(part(ys, False))
    yte = np.concatenate(part(ys, True))
    W = train(all_features(part(sent_vecs, False), part(texts, False), vocab), ytr, C)
    xte = all_features(part(sent_vecs, True), part(texts, True), vocab)
    acc_holdout = float((np.asarray(xte @ W.astype("<f2").astype(np.float32)).argmax(1) == yte).mean())
    vocab = Vocabulary.fit(flat, min_df)
    W = train(all_features(sent_vecs, texts, vocab), np.concatenate(ys), C)
    meta = {
        "classes": list(CLASSES),
        "features": "sentence vector, previous and next sentence vectors (L2-normalised, zeros at the ends) + "
        "[fraction, is_first, is_last, bias] + TF-IDF of the sentence's words and word bigrams (sublinear tf, "
        f"L2-normalised, terms in >= {min_df} sentences) + cue phrases (CUE_PATTERNS)",
        "context": True,
        "embedder": getattr(embedder, "name", "?"),
        "trained_on": f"{Path(path).resolve().parent.name}/{Path(path).name}: {len(rows)} abstracts, {sum(len(y) for y in ys)} sentences, their pred_labels, no relevance judgements",
        "C": C,
        "min_df": min_df,
        "holdout_accuracy": round(acc_holdout, 4),
    }
    return RoleModel(W, meta, vocab), meta


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m paperscope.index.facets CORPUS_JSONL [OUT.py]")
        raise SystemExit(2)
    from paperscope.index.embedder import EmbeddingCache, MiniLMEmbedder, cache_dir
    from paperscope.similarity import CachedEmbedder

    e = MiniLMEmbedder()
    emb = CachedEmbedder(e, EmbeddingCache(cache_dir() / "eval", e.name), batch_size=64)
    model, meta = train_from_jsonl(Path(argv[0]), emb)
    out = Path(argv[1]) if len(argv) > 1 else WEIGHTS_FILE
    model.save(out)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
