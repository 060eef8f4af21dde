"""ICLR 2020 as catalogues for the tests: the 687 papers bundled with the demo (and the model's vectors
of them, see cached_model.py), and the whole virtual site in ../shared.
"""

from __future__ import annotations

from pathlib import Path

from cached_model import add_cached_vectors, cached_embedder

from paperscope.catalog.store import Catalog

DEMO_SITE = Path(__file__).resolve().parents[1] / "src" / "paperscope" / "demo" / "miniconf_iclr2020"
SHARED_SITE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iclr2020_virtual_site"


def ingest_iclr(url: str) -> Catalog:
    """The demo's ICLR 2020 site ingested as a user would, into the catalogue at ``url``."""
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    catalog = Catalog.open(url)
    run = ingest_targets(catalog, [str(DEMO_SITE)], ImportOptions(venue="ICLR", year=2020))
    assert run.anything_read
    return catalog


def ingest_iclr_site(url: str) -> Catalog:
    """The ICLR 2020 virtual site in ../shared (its whole program), without the keyword index."""
    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    catalog = Catalog.open(url)
    run = ingest_targets(catalog, [str(SHARED_SITE)], ImportOptions(), update_index=False)
    assert not run.failures, run.problem_lines()
    return catalog


def ingest_iclr_with_vectors(url: str) -> Catalog:
    """ICLR 2020 with every paper's vector (none when the model is not installed: callers check ``has_vectors``)."""
    catalog = ingest_iclr(url)
    add_cached_vectors(catalog)
    return catalog


def has_vectors(catalog: Catalog) -> str | None:
    """The model whose vectors every paper has, or None."""
    try:
        name = cached_embedder().name
    except Exception:  # noqa: BLE001 - no model package
        return None
    return name if catalog.count_paper_vectors(name) == catalog.paper_count() else None
