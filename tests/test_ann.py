"""The HNSW graph of large catalogues: recall against exact search on real vectors, stale files,
fallback to exact search, and the size threshold, on real catalogues of real papers."""

from __future__ import annotations

import glob
import gzip
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paperscope.catalog.store import Catalog
from paperscope.index import ann
from paperscope.index.embedder import cache_dir
from paperscope.index.vectors import VectorIndex, embed_catalog, load_vector_index

pytest.importorskip("faiss", reason="the HNSW graph needs faiss-cpu")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPERLISTS = SHARED / "data" / "paperlists" / "head"
# two real conference dumps: ~1,500 papers with abstracts
DUMPS = [PAPERLISTS / "wacv" / "wacv2025.json.gz", PAPERLISTS / "aistats" / "aistats2025.json.gz"]
K = 10
RECALL_TARGET = 0.98


def static_embedder():
    """The fast tier (real vectors of real texts in seconds), distilled once if model2vec is here."""
    from paperscope.index.embedder import StaticEmbedder, distill_static

    try:
        return StaticEmbedder()
    except FileNotFoundError:
        pass
    try:
        distill_static()
    except RuntimeError as exc:
        pytest.skip(f"no static embedding model and it cannot be distilled here: {exc}")
    return StaticEmbedder()


def paperlists_texts(limit: int) -> list[tuple[str, str]]:
    """(title, title + abstract) of real papers from the paperlists dumps, each text once."""
    if not PAPERLISTS.is_dir():
        pytest.skip(f"needs the paperlists dumps in {PAPERLISTS}")
    seen, out = set(), []
    for path in sorted(glob.glob(str(PAPERLISTS / "*" / "*.json.gz"))):
        for record in json.load(gzip.open(path)):
            title, abstract = (record.get("title") or "").strip(), (record.get("abstract") or "").strip()
            text = f"{title}. {abstract}"
            if len(abstract) < 200 or text in seen:
                continue
            seen.add(text)
            out.append((title, text))
            if len(out) == limit:
                return out
    return out


def title_queries(titles: list[str], count: int, seed: int = 5) -> list[str]:
    """2-4 word spans of real titles: what people type into the search box."""
    rng = random.Random(seed)
    out = []
    for title in rng.sample(titles, count):
        words = title.split()
        size = rng.randint(min(2, len(words)), min(4, len(words)))
        start = rng.randint(0, len(words) - size)
        out.append(" ".join(words[start:start + size]))
    return out


def minilm_cached_vectors() -> np.ndarray:
    """Real all-MiniLM-L6-v2 vectors of the evaluation corpora, as `paperscope eval` cached them."""
    from paperscope.index.embedder import minilm_spaces

    folders = [cache_dir() / "eval" / name.replace("/", "__") for name in minilm_spaces()]
    shards = next((found for found in (sorted(f.glob("*.npz")) for f in folders) if found), [])
    if not shards:
        pytest.skip("no cached MiniLM vectors (run `paperscope eval csfcube ../shared/eval/csfcube` once)")
    return np.concatenate([np.load(s)["vecs"] for s in shards]).astype(np.float32)


def index_of(matrix: np.ndarray, model: str = "test-model", generation: str = "1") -> VectorIndex:
    return VectorIndex(model, [f"p{i:06d}" for i in range(len(matrix))], matrix, generation)


def recall_at_k(index: VectorIndex, graph: ann.AnnIndex, queries: np.ndarray) -> float:
    found = 0
    for query in queries:
        exact = {pid for pid, _ in index.exact_search(query, K)}
        found += len(exact & {pid for pid, _ in graph.search(index, query, K)})
    return found / (K * len(queries))


# ------------------------------------------------------------------------------------ recall
def test_recall_at_10_on_real_static_vectors_of_real_papers():
    embedder = static_embedder()
    texts = paperlists_texts(5000)
    matrix = embedder.embed([t for _, t in texts])
    queries = embedder.embed(title_queries([title for title, _ in texts], 300))
    index = index_of(matrix)
    recall = recall_at_k(index, ann.build_graph(index), queries)
    print(f"static tier: {len(matrix)} papers, recall@10 {recall:.4f}")
    assert recall >= RECALL_TARGET


def test_recall_at_10_on_real_minilm_vectors():
    vectors = minilm_cached_vectors()
    picked = vectors[np.random.default_rng(3).permutation(len(vectors))[:6300]]
    picked = np.unique(picked, axis=0)  # a text cached twice would be its own neighbour
    queries, matrix = picked[:300], picked[300:]  # held-out texts as queries
    index = index_of(matrix)
    recall = recall_at_k(index, ann.build_graph(index), queries)
    print(f"MiniLM: {len(matrix)} texts, recall@10 {recall:.4f}")
    assert recall >= RECALL_TARGET


def test_graph_search_scores_exactly_and_honours_exclusions():
    vectors = static_embedder().embed([t for _, t in paperlists_texts(1500)])
    index = index_of(vectors)
    graph = ann.build_graph(index)
    query = vectors[7]
    hits = graph.search(index, query, K, exclude=["p000007"])
    assert "p000007" not in {pid for pid, _ in hits}
    assert len(hits) == K
    for pid, score in hits:
        assert score == pytest.approx(float(index.vector(pid) @ query), abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


# ------------------------------------------------------------------------------------ catalogue
@pytest.fixture(scope="module")
def embedded_catalogue(tmp_path_factory):
    """A real SQLite catalogue of ~1,500 real papers with static-tier vectors."""
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    if not all(d.is_file() for d in DUMPS):
        pytest.skip(f"needs the paperlists dumps {', '.join(str(d) for d in DUMPS)}")
    embedder = static_embedder()
    path = tmp_path_factory.mktemp("ann") / "catalogue.sqlite"
    catalog = Catalog.open(str(path))
    ingest_targets(catalog, [str(d) for d in DUMPS], ImportOptions())
    embed_catalog(catalog, embedder, with_sentences=False)
    yield catalog, embedder
    catalog.close()


@pytest.fixture
def small_threshold(monkeypatch, embedded_catalogue):
    """The graph threshold just below the test catalogue's size; each test starts with no graph."""
    from paperscope.index import vectors

    catalog, embedder = embedded_catalogue
    monkeypatch.setattr(ann, "ANN_MIN_PAPERS", 1000)
    vectors._LOADED.clear()
    for old in (Path(str(catalog.sqlite_path) + ".index") / "vectors").glob("*.hnsw"):
        old.unlink()
    yield catalog, embedder
    vectors._LOADED.clear()


def wait_for_graph(index: VectorIndex, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while index.ann is None and time.monotonic() < deadline:
        time.sleep(0.1)


def test_below_the_threshold_search_is_exact_and_no_graph_is_built(embedded_catalogue, monkeypatch):
    from paperscope.index import vectors

    catalog, embedder = embedded_catalogue
    vectors._LOADED.clear()
    index = load_vector_index(catalog, embedder.name)
    assert len(index) < ann.ANN_MIN_PAPERS
    assert index.ann is None and not ann._BUILDING
    assert ann.ensure_graph(catalog, index)["graph"] is None
    assert not list(ann.graph_path(catalog, index).parent.glob("*.hnsw"))


def test_above_the_threshold_a_missing_graph_falls_back_to_exact_then_is_built_in_the_background(small_threshold):
    catalog, embedder = small_threshold
    index = load_vector_index(catalog, embedder.name)
    assert len(index) >= ann.ANN_MIN_PAPERS
    query = embedder.embed(["learning from few labelled examples"])[0]
    assert index.ann is None  # no graph yet: exact search answers meanwhile
    assert index.search(query, K) == index.exact_search(query, K)
    wait_for_graph(index)
    assert index.ann is not None, "the background build did not finish"
    assert ann.graph_path(catalog, index).is_file()
    hits = index.search(query, K)
    assert len({p for p, _ in hits} & {p for p, _ in index.exact_search(query, K)}) >= 9


def test_a_fresh_graph_file_is_served_by_a_new_process(small_threshold):
    from paperscope.index import vectors

    catalog, embedder = small_threshold
    index = load_vector_index(catalog, embedder.name, graph=False)
    report = ann.ensure_graph(catalog, index)
    assert report["built"] and Path(report["graph"]).is_file()
    vectors._LOADED.clear()  # what a new process sees
    again = load_vector_index(catalog, embedder.name)
    assert again is not index and again.ann is not None and again.ann.path == Path(report["graph"])
    assert not ann._BUILDING


def test_a_graph_of_other_vectors_is_stale_and_replaced(small_threshold):
    catalog, embedder = small_threshold
    index = load_vector_index(catalog, embedder.name, graph=False)
    old = ann.ensure_graph(catalog, index)["graph"]
    newer = VectorIndex(index.model, index.ids, index.matrix, generation=index.generation + "-next")
    fewer = VectorIndex(index.model, index.ids[1:], index.matrix[1:], generation=index.generation)
    for changed in (newer, fewer):
        assert ann.graph_digest(changed) != ann.graph_digest(index)
        assert ann.read_graph(ann.graph_path(catalog, changed), changed, ann.graph_digest(changed)) is None
    report = ann.ensure_graph(catalog, newer)
    assert report["built"] and report["graph"] != old
    assert not Path(old).exists(), "the graph of the earlier vectors is removed"


def test_a_damaged_graph_file_is_ignored_and_search_stays_exact(small_threshold):
    from paperscope.index import vectors

    catalog, embedder = small_threshold
    index = load_vector_index(catalog, embedder.name, graph=False)
    path = Path(ann.ensure_graph(catalog, index)["graph"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # a half-copied file
    vectors._LOADED.clear()
    reopened = load_vector_index(catalog, embedder.name, graph=False)
    assert ann.attach_graph(catalog, reopened, background=False) is None
    query = embedder.embed(["robot grasping"])[0]
    assert reopened.search(query, K) == reopened.exact_search(query, K)


def test_embed_and_reindex_build_the_graph(small_threshold):
    from paperscope.cli.app import app

    catalog, _ = small_threshold
    runner = CliRunner()
    result = runner.invoke(app, ["reindex", "--db", str(catalog.sqlite_path), "--json"])
    assert result.exit_code == 0, result.output
    graphs = json.loads(result.output)["indexes"]["vectors"]
    assert graphs and graphs[0]["built"] and Path(graphs[0]["graph"]).is_file()
    result = runner.invoke(app, ["embed", "--db", str(catalog.sqlite_path), "--model", "static", "--no-sentences", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["graph"]
    assert report["graph"] == graphs[0]["graph"] and report["built"] is False  # nothing changed: kept


def test_a_build_stopped_between_steps_writes_nothing(small_threshold):
    import threading

    catalog, embedder = small_threshold
    index = load_vector_index(catalog, embedder.name, graph=False)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ann.BuildStopped):
        ann.build_graph(index, stop=stop)
    assert not ann.graph_path(catalog, index).exists()


def test_a_command_exiting_during_a_background_build_exits_cleanly(small_threshold, tmp_path):
    """A one-shot search on a large catalogue with no graph starts a build, then exits at once."""
    import subprocess
    import sys

    catalog, embedder = small_threshold
    script = (
        "import sys; from paperscope.index import ann; ann.ANN_MIN_PAPERS = 1000\n"
        "from paperscope.catalog.store import Catalog\n"
        "from paperscope.index.vectors import load_vector_index\n"
        f"index = load_vector_index(Catalog.open({str(catalog.sqlite_path)!r}), {embedder.name!r})\n"
        "assert index.ann is None and ann._BUILDING, 'a background build should have started'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(ann.graph_path(catalog, load_vector_index(catalog, embedder.name, graph=False)).parent.glob(".*.tmp"))
