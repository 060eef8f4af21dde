"""Stand-ins for a missing abstract ("Abstract Unavailable") are dropped at ingest, never stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperscope.model import ImportOptions
from paperscope.ingest.pipeline import ingest_targets
from paperscope.text import is_placeholder_abstract

NIPS_1987 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paperlists" / "head" / "nips" / "nips1987.json.gz"


@pytest.mark.parametrize("text", ["Abstract Unavailable", "(No Abstract)", "Placeholder ", "N/A", "abstract", "TBD."])
def test_stand_ins_are_recognised(text):
    assert is_placeholder_abstract(text)


@pytest.mark.parametrize("text", ["", "Abstracts are hard to write.", "We study unavailable data in RL.",
                                  "Preface to COLT 2015"])
def test_real_text_is_kept(text):
    assert not is_placeholder_abstract(text)


@pytest.mark.skipif(not NIPS_1987.is_file(), reason=f"shared corpora not found at {NIPS_1987}")
def test_real_dump_stores_no_stand_in(catalog):
    assert b"Abstract Unavailable" in __import__("gzip").decompress(NIPS_1987.read_bytes())
    run = ingest_targets(catalog, [str(NIPS_1987)], ImportOptions(), update_index=False)
    assert not run.failures
    with catalog.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT abstract_raw, abstract FROM papers").all()
    assert len(rows) > 50
    assert not [r for r in rows if is_placeholder_abstract(r[0]) or is_placeholder_abstract(r[1])]
    assert sum(1 for r in rows if not r[0]) >= 8   # the 8 stand-ins became empty abstracts
