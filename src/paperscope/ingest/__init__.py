"""Importers: one module per source format, plus sniffing.

Each importer module exposes an ``IMPORTER`` object (see ``base.Importer``). ``sniff`` picks the
format with the highest confidence; ``--format`` forces one.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from paperscope.ingest.base import Importer, Source, SourceError

# Order matters only for ties in sniffing confidence: more specific formats first.
IMPORTER_MODULES = (
    "miniconf",
    "paperlists",
    "session_page",
    "poster_listing",
    "paper_feed",
    "tabular",
)

# Files inside a folder that are never sources (licences, provenance notes, our own outputs).
IGNORED_SUFFIXES = {".md", ".txt.license", ".py", ".pyc", ".ics", ".yml", ".yaml", ".png", ".jpg", ".pdf"}
IGNORED_NAMES = {"LICENSE", "LICENSE.upstream", "INDEX.tsv", "FALLBACK_COMMITS.tsv", "croissant.upstream.json"}


@lru_cache(maxsize=1)
def importers() -> dict[str, Importer]:
    found: dict[str, Importer] = {}
    for module_name in IMPORTER_MODULES:
        module = importlib.import_module(f"paperscope.ingest.{module_name}")
        importer = module.IMPORTER
        found[importer.name] = importer
    return found


def sniff(source: Source) -> tuple[Importer, float]:
    """The importer most confident it can read the source. Raises SourceError when none can."""
    best: tuple[Importer | None, float] = (None, 0.0)
    for importer in importers().values():
        try:
            score = importer.sniff(source)
        except SourceError:
            raise
        except Exception:  # a sniffer that trips on odd input simply does not claim it
            score = 0.0
        if score > best[1]:
            best = (importer, score)
    importer, score = best
    if importer is None or score < 0.2:
        raise SourceError("format not recognised (use --format to choose one; `paperscope formats` lists them)")
    return importer, score


def importer_named(name: str) -> Importer:
    try:
        return importers()[name]
    except KeyError:
        known = ", ".join(sorted(importers()))
        raise SourceError(f"unknown format {name!r}; known formats: {known}") from None


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files and folders to ingest, in a stable order.

    A folder that an importer reads as a whole (a Mini-Conf site) is one source, at any depth;
    any other folder is walked for files.
    """
    for path in paths:
        if path.is_dir() and not _is_site(path):
            yield from _walk(path)
        else:
            yield path


def _walk(folder: Path) -> Iterator[Path]:
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if _is_site(child):
                yield child
            else:
                yield from _walk(child)
        elif child.is_file() and not _ignored(child):
            yield child


def _is_site(folder: Path) -> bool:
    miniconf = importers().get("miniconf")
    return bool(miniconf) and miniconf.sniff(Source(locator=str(folder), path=folder, is_dir=True)) > 0.5


def _ignored(path: Path) -> bool:
    if path.name in IGNORED_NAMES or path.name.startswith("."):
        return True
    return any(path.name.endswith(suffix) for suffix in IGNORED_SUFFIXES)
