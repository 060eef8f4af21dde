"""The library: saving papers into tags with notes and read state, importing what reference managers
export (BibTeX with LaTeX accents, CSL JSON from Zotero), "these are my papers", and export/import
round trips that lose nothing. A real catalogue of real papers on both backends (a SQLite file and a
PostgreSQL database); no model needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperscope import library as lib
from paperscope.catalog import library as store
from paperscope.catalog.store import Catalog
from paperscope.model import Appearance, PaperRecord

USER = "local"


def paper(title, authors, abstract, venue, year, **ids):
    return PaperRecord(title=title, authors=authors, abstract=abstract, ids=ids, year=year,
                       appearance=Appearance(venue=venue, year=year, presentation="poster"))


PAPERS = [
    paper("Attention Is All You Need",
          ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit", "Llion Jones", "Aidan N. Gomez",
           "Łukasz Kaiser", "Illia Polosukhin"],
          "The dominant sequence transduction models are based on complex recurrent or convolutional neural networks. "
          "We propose a new simple network architecture, the Transformer, based solely on attention mechanisms.",
          "NeurIPS", 2017, arxiv="1706.03762"),
    paper("Deep Residual Learning for Image Recognition", ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"],
          "Deeper neural networks are more difficult to train. We present a residual learning framework to ease the "
          "training of networks that are substantially deeper than those used previously.",
          "CVPR", 2016, doi="10.1109/CVPR.2016.90"),
    paper("BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
          ["Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"],
          "We introduce a new language representation model called BERT, which stands for Bidirectional Encoder "
          "Representations from Transformers.", "NAACL", 2019, arxiv="1810.04805"),
    paper("Adam: A Method for Stochastic Optimization", ["Diederik P. Kingma", "Jimmy Ba"],
          "We introduce Adam, an algorithm for first-order gradient-based optimization of stochastic objective "
          "functions, based on adaptive estimates of lower-order moments.", "ICLR", 2015, arxiv="1412.6980"),
    paper("Generative Adversarial Nets",
          ["Ian Goodfellow", "Jean Pouget-Abadie", "Mehdi Mirza", "Bing Xu", "David Warde-Farley", "Sherjil Ozair",
           "Aaron Courville", "Yoshua Bengio"],
          "We propose a new framework for estimating generative models via an adversarial process, in which we "
          "simultaneously train two models.", "NeurIPS", 2014),
    paper("Optimization Methods for Large-Scale Machine Learning", ["Léon Bottou", "Frank E. Curtis", "Jorge Nocedal"],
          "This paper provides a review and commentary on the past, present, and future of numerical optimization "
          "algorithms in the context of machine learning applications.", "SIAM Review", 2018, arxiv="1606.04838"),
    paper("Decoupled Weight Decay Regularization", ["Ilya Loshchilov", "Frank Hutter"],
          "L2 regularization and weight decay regularization are equivalent for standard stochastic gradient descent, "
          "but as we demonstrate this is not the case for adaptive gradient algorithms, such as Adam.",
          "ICLR", 2019, openreview="Bkg6RiCqY7"),
    paper("Long Short-Term Memory", ["Sepp Hochreiter", "Jürgen Schmidhuber"],
          "Learning to store information over extended time intervals by recurrent backpropagation takes a very long "
          "time, mostly because of insufficient, decaying error backflow.", "Neural Computation", 1997,
          doi="10.1162/neco.1997.9.8.1735"),
]

# As Zotero writes it (tabs, braces protecting capitals, {\L}, tags in keywords, notes in annote),
# with a Google Scholar entry (arXiv id in `journal`), a JabRef one (eprint + readstatus + groups),
# entries the catalogue does not have (LaTeX accents \'{e} and {\"o}), a title that matches a
# catalogue paper by other authors (must not be merged), and an entry without a title.
ZOTERO_BIB = r"""
@inproceedings{vaswani_attention_2017,
	title = {Attention is {All} you {Need}},
	url = {https://arxiv.org/abs/1706.03762},
	booktitle = {Advances in {Neural} {Information} {Processing} {Systems}},
	author = {Vaswani, Ashish and Shazeer, Noam and Parmar, Niki and Uszkoreit, Jakob and Jones, Llion and Gomez, Aidan N and Kaiser, {\L}ukasz and Polosukhin, Illia},
	year = {2017},
	keywords = {nlp/attention, transformers},
	annote = {Read for the reading group.
Section 3.2 explains multi-head attention.},
}

@inproceedings{he_deep_2016,
	title = {Deep {Residual} {Learning} for {Image} {Recognition}},
	doi = {10.1109/CVPR.2016.90},
	booktitle = {2016 {IEEE} {Conference} on {Computer} {Vision} and {Pattern} {Recognition} ({CVPR})},
	author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
	month = jun,
	year = {2016},
	pages = {770--778},
	keywords = {vision},
}

@article{bottou2018optimization,
  title={Optimization methods for large-scale machine learning},
  author={Bottou, L{\'e}on and Curtis, Frank E and Nocedal, Jorge},
  journal={arXiv preprint arXiv:1606.04838},
  year={2016}
}

@misc{kingma2014adam,
  author        = {Diederik P. Kingma and Jimmy Ba},
  title         = {Adam: A Method for Stochastic Optimization},
  eprint        = {1412.6980},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG},
  year          = {2014},
  groups        = {optimisation},
  readstatus    = {read},
}

@inproceedings{goodfellow2014generative,
  title={Generative adversarial nets},
  author={Goodfellow, Ian and Pouget-Abadie, Jean and Mirza, Mehdi and Xu, Bing and Warde-Farley, David and Ozair, Sherjil and Courville, Aaron and Bengio, Yoshua},
  booktitle={Advances in neural information processing systems},
  pages={2672--2680},
  year={2014}
}

@inproceedings{loshchilov2018decoupled,
  title={Decoupled Weight Decay Regularization},
  author={Ilya Loshchilov and Frank Hutter},
  booktitle={International Conference on Learning Representations},
  year={2019},
  url={https://openreview.net/forum?id=Bkg6RiCqY7},
}

@article{lecun_gradient-based_1998,
	title = {Gradient-based learning applied to document recognition},
	volume = {86},
	doi = {10.1109/5.726791},
	number = {11},
	journal = {Proceedings of the IEEE},
	author = {LeCun, Yann and Bottou, L\'{e}on and Bengio, Yoshua and Haffner, Patrick},
	year = {1998},
	pages = {2278--2324},
	keywords = {vision, classics},
}

@book{scholkopf_learning_2002,
	address = {Cambridge, MA},
	title = {Learning with {Kernels}: {Support} {Vector} {Machines}, {Regularization}, {Optimization}, and {Beyond}},
	publisher = {MIT Press},
	author = {Sch{\"o}lkopf, Bernhard and Smola, Alexander J.},
	year = {2002},
	abstract = {A comprehensive introduction to Support Vector Machines and related kernel methods; 50\% theory \& 50\% practice.},
}

@article{other_lstm_2020,
  title = {Long Short-Term Memory},
  author = {Doe, Jane and Roe, Richard},
  journal = {A Journal That Reuses Titles},
  year = {2020},
}

@misc{broken_entry,
  author = {Nobody, Anne},
  year = {2021},
}
"""

# What Zotero's "CSL JSON" export writes.
ZOTERO_CSL = [
    {"id": "http://zotero.org/users/1/items/AAA", "type": "article", "title": "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
     "URL": "http://arxiv.org/abs/1810.04805", "number": "arXiv:1810.04805", "publisher": "arXiv",
     "author": [{"family": "Devlin", "given": "Jacob"}, {"family": "Chang", "given": "Ming-Wei"},
                {"family": "Lee", "given": "Kenton"}, {"family": "Toutanova", "given": "Kristina"}],
     "issued": {"date-parts": [["2019", 5, 24]]}, "keyword": "Computer Science - Computation and Language"},
    {"id": "http://zotero.org/users/1/items/BBB", "type": "article-journal", "title": "Long Short-Term Memory",
     "container-title": "Neural Computation", "DOI": "10.1162/neco.1997.9.8.1735",
     "author": [{"family": "Hochreiter", "given": "Sepp"}, {"family": "Schmidhuber", "given": "Jürgen"}],
     "issued": {"date-parts": [[1997, 11, 15]]}},
    {"id": "http://zotero.org/users/1/items/CCC", "type": "book",
     "title": "Learning with Kernels: Support Vector Machines, Regularization, Optimization, and Beyond",
     "publisher": "MIT Press", "author": [{"family": "Schölkopf", "given": "Bernhard"}, {"family": "Smola", "given": "Alexander J."}],
     "issued": {"date-parts": [[2002]]}},
    {"id": "http://zotero.org/users/1/items/DDD", "type": "report", "title": "A Report by a Committee",
     "author": [{"literal": "The Machine Learning Reproducibility Committee"}], "issued": {"raw": "2021"}},
    {"id": "http://zotero.org/users/1/items/EEE", "type": "article", "author": [{"family": "Untitled", "given": "Item"}]},
]


@pytest.fixture()
def catalog(catalog_url) -> Catalog:
    """The classics in a real catalogue: a SQLite file, then a PostgreSQL database."""
    catalog = Catalog.open(catalog_url)
    catalog.ingest("classics.json", "tabular", "h1", list(PAPERS))
    yield catalog
    catalog.close()


def pid(catalog: Catalog, title: str) -> str:
    from paperscope.text import title_key

    return store.papers_by_title_keys(catalog, [title_key(title)])[title_key(title)][0]["id"]


def by_title(entries) -> dict:
    return {e.title: e for e in entries}


# ============================================================================================ operations


def test_save_tag_note_read_and_remove(catalog):
    adam = pid(catalog, "Adam: A Method for Stochastic Optimization")
    entry, new = lib.save(catalog, USER, adam, tags=["optimisation"], note="The default optimiser.")
    assert new and entry.paper_id == adam and entry.tags == ["optimisation"] and entry.read_state == "unread"
    assert entry.authors == ["Diederik P. Kingma", "Jimmy Ba"] and entry.year == 2015 and entry.venue == "ICLR"

    again, new = lib.save(catalog, USER, adam, tags=["deep learning/training"])
    assert not new and again.note == "The default optimiser."          # saving again keeps the note
    assert again.tags == ["deep learning/training", "optimisation"]

    lib.set_read(catalog, USER, [f"#{entry.id}"], "reading")
    lib.set_note(catalog, USER, [adam], "Check the bias correction.")
    got = lib.entries(catalog, USER)[0]
    assert got.read_state == "reading" and got.note == "Check the bias correction."
    with pytest.raises(lib.LibraryError, match="read state"):
        lib.set_read(catalog, USER, [adam], "skimmed")
    with pytest.raises(lib.LibraryError, match="no paper with id"):
        lib.save(catalog, USER, "no-such-paper")
    with pytest.raises(lib.LibraryError, match="not in your library"):
        lib.set_note(catalog, USER, ["#999"], "x")

    assert lib.remove(catalog, USER, [adam]) == 1
    assert lib.entries(catalog, USER) == []


def test_tags_nest_like_folders_and_rename_moves_them(catalog):
    ids = {t: pid(catalog, t) for t in ("Attention Is All You Need", "Deep Residual Learning for Image Recognition",
                                        "Generative Adversarial Nets")}
    lib.save(catalog, USER, ids["Attention Is All You Need"], tags=["ml/nlp"])
    lib.save(catalog, USER, ids["Deep Residual Learning for Image Recognition"], tags=["ml/vision", "classics"])
    lib.save(catalog, USER, ids["Generative Adversarial Nets"], tags=[" ml / generative , classics "])
    assert dict(lib.tags(catalog, USER)) == {"classics": 2, "ml/generative": 1, "ml/nlp": 1, "ml/vision": 1}
    assert len(lib.entries(catalog, USER, tag="ml")) == 3                 # a folder holds its sub-tags
    assert [e.title for e in lib.entries(catalog, USER, tag="ml/nlp")] == ["Attention Is All You Need"]
    assert len(lib.entries(catalog, USER, tag="m")) == 0                  # a prefix is not a folder
    store.rename_tag(catalog, USER, "ml", "research")
    assert dict(lib.tags(catalog, USER)) == {"classics": 2, "research/generative": 1, "research/nlp": 1, "research/vision": 1}
    # the planner's entry point: catalogue ids of the library (or of a tag)
    assert set(lib.library_paper_ids(catalog, USER)) == set(ids.values())
    assert lib.library_paper_ids(catalog, USER, tag="classics") == [ids["Deep Residual Learning for Image Recognition"],
                                                                  ids["Generative Adversarial Nets"]]


def test_each_user_has_their_own_library(catalog):
    gan = pid(catalog, "Generative Adversarial Nets")
    lib.save(catalog, "alice", gan, tags=["gans"], note="alice's note")
    lib.save(catalog, USER, gan)
    assert lib.entries(catalog, USER)[0].note == "" and lib.tags(catalog, USER) == []
    assert lib.entries(catalog, "alice")[0].note == "alice's note"
    with pytest.raises(lib.LibraryError):
        lib.remove(catalog, "bob", [gan])
    assert len(lib.entries(catalog, "alice")) == 1


def test_these_are_my_papers_adds_an_authors_papers_in_one_step(catalog):
    preview = lib.add_my_papers(catalog, USER, "leon bottou", dry_run=True)   # accents and case folded
    assert [p["title"] for p in preview.found] == ["Optimization Methods for Large-Scale Machine Learning"]
    assert lib.entries(catalog, USER) == []
    result = lib.add_my_papers(catalog, USER, "Léon Bottou")
    assert result.as_dict()["added"] == 1
    assert [e.tags for e in lib.entries(catalog, USER)] == [["mine"]]
    assert lib.entries(catalog, USER)[0].origin == "mine:Léon Bottou"
    assert lib.add_my_papers(catalog, USER, "Léon Bottou").as_dict()["added"] == 0
    with pytest.raises(lib.LibraryError, match="no papers by"):
        lib.add_my_papers(catalog, USER, "Nobody Atall")


# ============================================================================================ import


def test_bibtex_import_matches_by_ids_then_title_and_authors(catalog):
    report = lib.import_text(catalog, USER, ZOTERO_BIB, "My Library.bib")
    data = report.as_dict()
    matched = {m["title"]: m["how"] for m in report.matched}
    assert matched == {
        "Attention Is All You Need": "arxiv",                         # from the URL
        "Deep Residual Learning for Image Recognition": "doi",
        "Optimization Methods for Large-Scale Machine Learning": "arxiv",   # Google Scholar's journal field
        "Adam: A Method for Stochastic Optimization": "arxiv",        # eprint + archivePrefix
        "Generative Adversarial Nets": "title and authors",
        "Decoupled Weight Decay Regularization": "openreview",
    }
    assert data["matched_by"] == {"arxiv": 3, "doi": 1, "title and authors": 1, "openreview": 1}
    profile_only = {p["title"] for p in report.profile_only}
    assert profile_only == {"Gradient-based learning applied to document recognition",
                            "Learning with Kernels: Support Vector Machines, Regularization, Optimization, and Beyond",
                            "Long Short-Term Memory"}                  # same title, other authors: not merged
    line = ZOTERO_BIB.splitlines().index("@misc{broken_entry,") + 1
    assert report.problems == [{"line": line, "problem": "entry 'broken_entry' has no title; skipped"}]

    entries = by_title(lib.entries(catalog, USER))
    attention = entries["Attention Is All You Need"]
    assert attention.tags == ["nlp/attention", "transformers"]
    assert attention.note == "Read for the reading group.\nSection 3.2 explains multi-head attention."
    assert attention.cite_key == "vaswani_attention_2017"
    assert "Łukasz Kaiser" in attention.authors                     # the catalogue's record, saved
    adam = entries["Adam: A Method for Stochastic Optimization"]
    assert adam.read_state == "read" and adam.tags == ["optimisation"]   # JabRef readstatus and groups
    lecun = entries["Gradient-based learning applied to document recognition"]
    assert lecun.paper_id is None and lecun.authors == ["Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"]
    assert lecun.ids == {"doi": "10.1109/5.726791"} and lecun.year == 1998 and lecun.venue == "Proceedings of the IEEE"
    assert lecun.tags == ["classics", "vision"]
    kernels = entries["Learning with Kernels: Support Vector Machines, Regularization, Optimization, and Beyond"]
    assert kernels.authors == ["Bernhard Schölkopf", "Alexander J. Smola"]
    assert kernels.abstract == ("A comprehensive introduction to Support Vector Machines and related kernel methods; "
                                "50% theory & 50% practice.")
    assert kernels.extra["bibtex"]["type"] == "book" and kernels.extra["bibtex"]["fields"]["publisher"] == "MIT Press"

    # importing the same file again changes nothing
    again = lib.import_text(catalog, USER, ZOTERO_BIB, "My Library.bib").as_dict()
    assert again["new"] == 0 and len(lib.entries(catalog, USER)) == 9


def test_csl_json_import_from_zotero(catalog, tmp_path):
    path = tmp_path / "Exported Items.json"
    path.write_text(json.dumps(ZOTERO_CSL, ensure_ascii=False), encoding="utf-8")
    report = lib.import_file(catalog, USER, path, tags=["from zotero"])
    assert report.format == "csl-json"
    assert {m["title"]: m["how"] for m in report.matched} == {
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding": "arxiv",
        "Long Short-Term Memory": "doi"}
    assert {p["title"] for p in report.profile_only} == {
        "Learning with Kernels: Support Vector Machines, Regularization, Optimization, and Beyond", "A Report by a Committee"}
    assert report.problems and report.problems[0]["line"] == 5
    entries = by_title(lib.entries(catalog, USER))
    bert = entries["BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"]
    assert bert.tags == ["Computer Science - Computation and Language", "from zotero"]
    kernels = entries["Learning with Kernels: Support Vector Machines, Regularization, Optimization, and Beyond"]
    assert kernels.authors == ["Bernhard Schölkopf", "Alexander J. Smola"] and kernels.year == 2002
    committee = entries["A Report by a Committee"]
    assert committee.authors == ["The Machine Learning Reproducibility Committee"] and committee.year == 2021


def test_latex_names_and_text_as_reference_managers_write_them():
    assert lib.bibtex_names(r"M{\"u}ller, J{\"o}rg and {van der Berg}, Anna and Caf\'{e}, Ren\'e and Ada Lovelace and others") == \
        ["Jörg Müller", "Anna van der Berg", "René Café", "Ada Lovelace"]
    assert lib.bibtex_names(r"Ford, Jr., Henry and {Google DeepMind}") == ["Henry Ford Jr.", "Google DeepMind"]
    assert lib.latex_to_text(r"{\r{A}}ngstr{\"o}m na{\"\i}ve fa{\c{c}}ade {\L}ukasz Dvo{\v{r}}{\'a}k {\ss}") == \
        "Ångström naïve façade Łukasz Dvořák ß"
    assert lib.latex_to_text(r"\emph{Deep} $k$-means on 50\% of \{sets\} --- \textbf{fast}") == "Deep k-means on 50% of {sets} — fast"


# ============================================================================================ round trips


def _comparable(catalog, user):
    out = []
    for e in lib.entries(catalog, user):
        d = e.as_dict()
        for k in ("id", "user_id", "updated_at"):
            d.pop(k)
        out.append(d)
    return sorted(out, key=lambda d: d["entry_key"])


def test_json_export_reads_back_without_loss(catalog, tmp_path):
    lib.import_text(catalog, USER, ZOTERO_BIB, "refs.bib")
    lib.save(catalog, USER, pid(catalog, "Long Short-Term Memory"), tags=["rnn"], note="Ünïcode & {braces} 100%",
             read_state="reading")
    from paperscope.recommend import mark_not_relevant

    mark_not_relevant(catalog, USER, pid(catalog, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"))
    exported = lib.export_library(catalog, USER)
    text = json.dumps(exported, ensure_ascii=False)

    # into a fresh library of another user, and of another catalogue that has the same papers
    other = Catalog.open(str(tmp_path / "other.sqlite"))
    other.ingest("classics.json", "tabular", "h1", list(PAPERS))
    for target, user in ((catalog, "copy"), (other, USER)):
        report = lib.import_text(target, user, text, "library.json")
        assert report.format == "paperscope-json" and report.feedback == 1
        assert _comparable(target, user) == _comparable(catalog, USER)
        assert lib.export_library(target, user)["entries"] == exported["entries"]
        assert [f["paper_id"] for f in store.list_feedback(target, user)] == [f["paper_id"] for f in exported["feedback"]]

    # into a catalogue without those papers: they are kept as profile-only papers, and come back
    # linked once imported where the papers are
    empty = Catalog.open(str(tmp_path / "empty.sqlite"))
    lib.import_text(empty, USER, text, "library.json")
    assert all(e.paper_id is None for e in lib.entries(empty, USER))
    assert len(lib.entries(empty, USER)) == 10
    relinked = json.dumps(lib.export_library(empty, USER))
    lib.import_text(catalog, "relinked", relinked, "library.json")
    assert _comparable(catalog, "relinked") == _comparable(catalog, USER)
    other.close()
    empty.close()


def test_bibtex_export_reads_back_without_loss(catalog):
    lib.import_text(catalog, USER, ZOTERO_BIB, "refs.bib")
    lib.set_note(catalog, USER, [pid(catalog, "Generative Adversarial Nets")], "Min-max game; see §4 — “mode collapse”.\nTwo lines.")
    lib.save(catalog, USER, pid(catalog, "Long Short-Term Memory"), tags=["rnn", "classics"], read_state="read")
    text = lib.export_bibtex(catalog, USER)
    assert r"{\L}ukasz" in text and r"Sch{\"o}lkopf" in text            # classic-BibTeX safe
    assert "keywords = {nlp/attention, transformers}" in text
    import bibtexparser

    assert len(bibtexparser.loads(text).entries) == 10                     # a reference manager reads it
    lib.import_text(catalog, "roundtrip", text, "export.bib")
    assert _comparable(catalog, "roundtrip") == _comparable(catalog, USER)
    # and only a tag
    assert lib.export_bibtex(catalog, USER, tag="vision").count("@") == 2


def test_cli_import_list_export(catalog, tmp_path, monkeypatch):
    from paperscope.cli import app

    bib = tmp_path / "refs.bib"
    bib.write_text(ZOTERO_BIB, encoding="utf-8")
    runner = CliRunner()
    db = ["--db", catalog.location]
    res = runner.invoke(app, ["library", "import", str(bib), "--tag", "imported", "--json", *db])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["matched"] == 6
    res = runner.invoke(app, ["library", "list", "--tag", "vision", "--json", *db])
    assert {e["title"] for e in json.loads(res.stdout)} == {"Deep Residual Learning for Image Recognition",
                                                           "Gradient-based learning applied to document recognition"}
    out = tmp_path / "lib.json"
    res = runner.invoke(app, ["library", "export", "--output", str(out), *db])
    assert res.exit_code == 0 and json.loads(out.read_text())["format"] == "paperscope-library"
    res = runner.invoke(app, ["library", "read", "#1", "--state", "sideways", *db])
    assert res.exit_code == 1 and "read state" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["library", "mine", "Jürgen Schmidhuber", "--json", *db])
    assert json.loads(res.stdout)["added"] == 1


def test_a_profile_only_paper_joins_its_catalogue_record_when_the_catalogue_gets_it(catalog):
    lecun = [e for e in lib.import_text(catalog, USER, ZOTERO_BIB, "refs.bib").profile_only
             if e["title"].startswith("Gradient-based")][0]
    lib.set_note(catalog, USER, [f"#{lecun['entry']}"], "The LeNet paper.")
    catalog.ingest("more.json", "tabular", "h2", [paper(
        "Gradient-Based Learning Applied to Document Recognition", ["Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"],
        "Multilayer neural networks trained with the back-propagation algorithm constitute the best example of a "
        "successful gradient based learning technique.", "Proceedings of the IEEE", 1998, doi="10.1109/5.726791")])
    report = lib.import_text(catalog, USER, ZOTERO_BIB, "refs.bib")     # the same file again, later
    assert {m["title"]: m["how"] for m in report.matched}["Gradient-Based Learning Applied to Document Recognition"] == "doi"
    entries = [e for e in lib.entries(catalog, USER) if e.title.lower().startswith("gradient-based")]
    assert len(entries) == 1 and entries[0].paper_id and entries[0].note == "The LeNet paper."
    assert entries[0].tags == ["classics", "vision"]
