"""Ingest: sources in, catalogue updated, indexes kept in step.

Each source is read, sniffed, parsed and stored in its own transaction, so one bad file never
costs the others, and a crash mid-run leaves every finished source in and the current one out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from paperscope.catalog.store import Catalog, IngestReport
from paperscope.ingest import expand_paths, importer_named, sniff
from paperscope.ingest.base import Source, SourceError, read_source
from paperscope.model import ImportOptions, Note, Problem

# Called after each source with (sources done, sources total, report or None, error or None).
ProgressCallback = Callable[[int, int, "IngestReport | None", "SourceFailure | None"], None]


@dataclass
class SourceFailure:
    """A source that could not be read at all."""

    locator: str
    problem: str

    def line(self) -> str:
        return f"{self.locator}: {self.problem}"


@dataclass
class IngestRun:
    reports: list[IngestReport] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)
    index_message: str | None = None

    @property
    def anything_read(self) -> bool:
        return bool(self.reports)

    def totals(self) -> dict[str, int]:
        keys = ("records", "new_papers", "merged", "updated", "removed_appearances", "sessions")
        totals = {k: sum(getattr(r, k) for r in self.reports) for k in keys}
        totals["problems"] = sum(len(r.problems) for r in self.reports)
        totals["unchanged_sources"] = sum(r.unchanged for r in self.reports)
        totals["failed_sources"] = len(self.failures)
        return totals

    def problem_lines(self) -> list[str]:
        """One line per problem: `file:line: problem`, the way compilers report, so editors can jump there."""
        lines = [f.line() for f in self.failures]
        for report in self.reports:
            for p in report.problems:
                where = f"{report.locator}:{p.line}" if p.line is not None else report.locator
                lines.append(f"{where}: {p.message}")
        return lines


def is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def source_fingerprint(source: Source, fmt: str, options: ImportOptions) -> str:
    """What decides whether a re-ingest has anything to do: the bytes, the format and the user's options."""
    digest = hashlib.sha1()
    if source.is_dir and source.path is not None:
        for child in sorted(p for p in source.path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(source.path)).encode())
            digest.update(child.read_bytes())
    else:
        digest.update(source.data)
    digest.update(f"|{fmt}|{options.venue}|{options.year}|{options.session}".encode())
    if options.columns:  # only then, so that sources ingested without --map keep their fingerprints
        digest.update(f"|{sorted(options.columns.items())}".encode())
    return digest.hexdigest()


def list_sources(targets: list[str]) -> list[str]:
    """Targets (files, folders, URLs) expanded to the sources to read, in order."""
    out: list[str] = []
    for target in targets:
        if is_url(target):
            out.append(target)
        else:
            out.extend(str(p) for p in expand_paths([Path(target)]))
    return out


def load_source(target: str) -> Source:
    if is_url(target):
        from paperscope.ingest.fetch import fetch_url

        return fetch_url(target)
    return read_source(Path(target))


def parse_source(source: Source, options: ImportOptions) -> tuple[str, list]:
    """(format name, items) for a source; a failing importer becomes a Problem, never a crash."""
    importer = importer_named(options.format) if options.format else sniff(source)[0]
    items: list = []
    try:
        for item in importer.parse(source, options):
            items.append(item)
    except SourceError:
        raise
    except Exception as exc:  # an importer bug must not lose the records read so far
        items.append(Problem(message=f"{importer.name} importer stopped: {type(exc).__name__}: {exc}", line=None))
    items.extend(source.problems)
    return importer.name, items


def ingest_one(catalog: Catalog, target: str, options: ImportOptions,
               before_change: Callable[[], None] | None = None) -> IngestReport:
    """Read, parse and store one source; ``before_change`` is called first when the source is new or changed."""
    source = load_source(target)
    fmt, items = parse_source(source, options)
    fingerprint = source_fingerprint(source, fmt, options)
    if before_change is not None and catalog.source_hash(source.locator) != (fingerprint, fmt):
        before_change()
    report = catalog.ingest(source.locator, fmt, fingerprint, items)
    if not report.unchanged and not any(isinstance(i, Note) for i in items) and report.records == 0 and not report.sessions:
        report.notes.append("no papers found in this source")
    return report


def ingest_targets(
    catalog: Catalog,
    targets: list[str],
    options: ImportOptions,
    progress: ProgressCallback | None = None,
    update_index: bool = True,
) -> IngestRun:
    run = IngestRun()
    sources = list_sources(targets)
    marks: dict = {}

    def mark_indexes() -> None:
        if update_index and not marks:
            from paperscope.index.maintain import mark_pending

            marks.update(mark_pending(catalog))

    for done, target in enumerate(sources, start=1):
        report, failure = None, None
        try:
            report = ingest_one(catalog, target, options, before_change=mark_indexes)
            run.reports.append(report)
        except SourceError as exc:
            locator = target if is_url(target) else str(Path(target).expanduser().resolve())
            failure = SourceFailure(locator=locator, problem=str(exc))
            run.failures.append(failure)
            catalog.record_unreadable_source(locator, str(exc))
        if progress:
            progress(done, len(sources), report, failure)
    if update_index:
        run.index_message = refresh_indexes(catalog, run, marks)
    return run


def refresh_indexes(catalog: Catalog, run: IngestRun, marks: dict | None = None) -> str | None:
    """Bring the derived indexes up to date with what this run changed.

    ``marks`` (from ``maintain.mark_pending``) say the run changed the catalogue: the indexes then
    record its new state even when no paper changed (only sessions, say), so no search rebuilds them.
    """
    touched: set[str] = set()
    removed: set[str] = set()
    for report in run.reports:
        touched |= report.touched_paper_ids
        removed |= report.removed_paper_ids
    if not touched and not removed and not marks:
        return None
    from paperscope.index.maintain import update_indexes

    update_indexes(catalog, touched - removed, removed, marks=marks)
    return f"index updated: {len(touched - removed)} papers, {len(removed)} removed"
