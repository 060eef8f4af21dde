"""Keeping the derived indexes in step with the catalogue: one small dispatcher.

The ingest pipeline calls :func:`update_indexes` after each run with the ids it touched and
removed; searches call :func:`ensure_indexes`, which rebuilds an index that is missing, from
another version, or out of step with the catalogue; ``paperscope reindex`` calls
:func:`rebuild_indexes`. Each index is registered in ``_INDEXES`` (the vector index joins here).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog

# progress(index_name, done, total)
Progress = Callable[[str, int, int], None]


def index_root(catalog: "Catalog") -> Path:
    """The folder of a catalogue's derived indexes: beside a SQLite file, else in the user cache dir."""
    path = catalog.sqlite_path
    if path is not None and str(path) not in ("", ":memory:"):
        return path.with_name(path.name + ".index")
    from platformdirs import user_cache_dir

    url = str(catalog.engine.url.render_as_string(hide_password=True))
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]
    return Path(user_cache_dir("paperscope")) / "indexes" / digest


def _lexical(catalog: "Catalog"):
    from paperscope.index.lexical import LexicalIndex

    return LexicalIndex.for_catalog(catalog)


_INDEXES: dict[str, Callable[["Catalog"], Any]] = {"lexical": _lexical}


def _bind(progress: Progress | None, name: str):
    return (lambda done, total: progress(name, done, total)) if progress else None


def mark_pending(catalog: "Catalog") -> dict[str, Path]:
    """Before an ingest first changes the catalogue: mark every index as owing an update.

    A process killed between its first change and its index update leaves the marks, so the
    indexes are rebuilt rather than taken as complete (a re-run would not list the changes
    it finds already stored). Give the marks to :func:`update_indexes`.
    """
    return {name: make(catalog).mark_pending() for name, make in _INDEXES.items()}


def update_indexes(catalog: "Catalog", touched_ids, removed_ids, progress: Progress | None = None,
                   marks: dict[str, Path] | None = None) -> dict[str, Any]:
    """Bring every index up to date after an ingest run. Never fails the ingest.

    ``marks`` are those :func:`mark_pending` made before the run's first change. Returns, per
    index, the number of papers re-indexed or a message (e.g. when another process holds the
    index: the index is then left stale and the next search rebuilds it).
    """
    from paperscope.index.lexical import IndexBusy

    touched, removed = set(touched_ids or ()), set(removed_ids or ())
    marks = marks or {}
    report: dict[str, Any] = {}
    for name, make in _INDEXES.items():
        try:
            report[name] = make(catalog).update(catalog, touched, removed, progress=_bind(progress, name),
                                                mark=marks.get(name))
        except IndexBusy as exc:
            report[name] = f"not updated: {exc}; it will be rebuilt by the next search"
    return report


def ensure_indexes(catalog: "Catalog", progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild any index that cannot be served for the catalogue as it is. Returns what was done.

    An index another process is writing is left to it when a complete earlier version exists
    (searches serve that one meanwhile); with nothing to serve, :class:`IndexBusy` is raised.
    """
    from paperscope.index.lexical import IndexBusy

    report: dict[str, Any] = {}
    for name, make in _INDEXES.items():
        index = make(catalog)
        state = index.state(catalog)
        if state.fresh:
            report[name] = "fresh"
            continue
        try:
            report[name] = {"rebuilt": index.rebuild(catalog, progress=_bind(progress, name)), "reason": state.reason}
        except IndexBusy as exc:
            if not state.exists:
                raise
            report[name] = f"not rebuilt: {exc}; the last complete index is served meanwhile"
    return report


def rebuild_indexes(catalog: "Catalog", progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild every index from the catalogue (``paperscope reindex``), and the vector search
    graphs of a large catalogue (``vectors``: derived from the stored vectors, not from text)."""
    from paperscope.index.ann import rebuild_graphs

    report: dict[str, Any] = {name: make(catalog).rebuild(catalog, progress=_bind(progress, name))
                              for name, make in _INDEXES.items()}
    report["vectors"] = rebuild_graphs(catalog, progress=_bind(progress, "vectors"))
    return report
