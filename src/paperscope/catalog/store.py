"""The catalogue: the one place papers, appearances and sources are stored and read.

No SQL outside ``catalog/``. The rest of paperscope talks to ``Catalog`` in domain terms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from paperscope.catalog import schema as s
from paperscope.catalog.merge import PaperMerger
from paperscope.model import ImportItem, Note, PaperRecord, Problem, SessionRecord


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


@dataclass
class IngestReport:
    """What one source did to the catalogue."""

    locator: str
    format: str
    unchanged: bool = False
    records: int = 0
    new_papers: int = 0
    merged: int = 0          # records that joined a paper already in the catalogue
    updated: int = 0         # papers whose fields changed
    removed_appearances: int = 0
    sessions: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    touched_paper_ids: set[str] = field(default_factory=set)
    removed_paper_ids: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.locator, "format": self.format, "unchanged": self.unchanged,
            "records": self.records, "new_papers": self.new_papers, "merged": self.merged,
            "updated": self.updated, "removed_appearances": self.removed_appearances,
            "sessions": self.sessions, "notes": self.notes,
            "problems": [{"line": p.line, "problem": p.message} for p in self.problems],
        }


def database_url(db: str) -> str:
    """A SQLAlchemy URL from a path or URL given by the user."""
    if "://" in db:
        if db.startswith("postgres://"):
            db = "postgresql://" + db[len("postgres://"):]
        if db.startswith("postgresql://"):
            db = "postgresql+psycopg://" + db[len("postgresql://"):]
        return db
    path = Path(db).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")      # readers never block the writer (serve while ingesting)
    cursor.execute("PRAGMA synchronous=NORMAL")    # durable at checkpoints; WAL keeps it consistent on crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


class Catalog:
    """The catalogue of papers. Open with ``Catalog.open(path_or_url)``."""

    def __init__(self, engine: Engine, location: str):
        self.engine = engine
        self.location = location

    @classmethod
    def open(cls, db: str) -> "Catalog":
        url = database_url(db)
        # a server's connections may outlive a database restart: test each before use
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        from paperscope.catalog.migrations import upgrade_to_head

        upgrade_to_head(engine)        # the schema, by its Alembic migrations (one query when up to date)
        s.metadata.create_all(engine)  # tables a module declares before its migration is written
        catalog = cls(engine, db)
        catalog._ensure_schema_version()
        return catalog

    @property
    def display_location(self) -> str:
        """Where the catalogue is, safe to print: a database URL without its password."""
        return self.location if self.is_sqlite else self.engine.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.engine.url.database) if self.is_sqlite and self.engine.url.database else None

    def close(self) -> None:
        self.engine.dispose()

    def _ensure_schema_version(self) -> None:
        with self.engine.begin() as conn:
            # insert-or-nothing: workers opening a new catalogue together must not collide here
            conn.execute(self._insert_ignore(s.meta).values(key="schema_version", value=str(s.SCHEMA_VERSION)))

    # ---------------------------------------------------------------- metadata
    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(s.meta.c.value).where(s.meta.c.key == key)).scalar()

    def get_meta_prefix(self, prefix: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.meta.c.key, s.meta.c.value).where(s.meta.c.key.startswith(prefix)))
            return {k: v for k, v in rows}

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, s.meta, {"key": key, "value": value}, ["key"])

    def _upsert(self, conn, table, row: dict, keys: list[str]) -> None:
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        stmt = dialect_insert(table).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: v for k, v in row.items() if k not in keys})
        conn.execute(stmt)

    def _insert_ignore(self, table):
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        return dialect_insert(table).on_conflict_do_nothing()

    # ---------------------------------------------------------------- ingest
    def source_hash(self, locator: str) -> tuple[str, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.sources.c.content_hash, s.sources.c.format).where(s.sources.c.locator == locator)
            ).first()
            return (row[0], row[1]) if row else None

    def ingest(self, locator: str, fmt: str, content_hash: str, items: Iterable[ImportItem]) -> IngestReport:
        """Store one source's records in one transaction: all of it lands, or none of it.

        Re-ingesting an unchanged source changes nothing; a changed source updates its papers in
        place and removes the appearances it no longer lists.
        """
        report = IngestReport(locator=locator, format=fmt)
        previous = self.source_hash(locator)
        if previous == (content_hash, fmt):
            report.unchanged = True
            return report
        records: list[PaperRecord] = []
        session_records: list[SessionRecord] = []
        for item in items:
            if isinstance(item, PaperRecord):
                records.append(item)
            elif isinstance(item, SessionRecord):
                session_records.append(item)
            elif isinstance(item, Problem):
                report.problems.append(item)
            elif isinstance(item, Note):
                report.notes.append(item.message)
        _give_unique_keys(records)
        now = utc_now()
        with self.engine.begin() as conn:
            source_id = self._upsert_source(conn, locator, fmt, content_hash, now, len(records), report)
            merger = PaperMerger(conn, self, source_id, locator, now)
            merger.merge(records, report)
            self._store_sessions(conn, source_id, session_records, report)
            self._store_quarantine(conn, locator, report.problems, now)
        return report

    def _upsert_source(self, conn, locator, fmt, content_hash, now, count, report) -> int:
        row = {"locator": locator, "format": fmt, "content_hash": content_hash, "ingested_at": now,
               "records": count, "problems": len(report.problems), "notes": json.dumps(report.notes)}
        self._upsert(conn, s.sources, row, ["locator"])
        return conn.execute(select(s.sources.c.id).where(s.sources.c.locator == locator)).scalar_one()

    def _store_sessions(self, conn, source_id: int, records: list[SessionRecord], report: IngestReport) -> None:
        conn.execute(delete(s.sessions).where(s.sessions.c.source_id == source_id))
        rows = []
        seen: set[str] = set()
        for rec in records:
            key = rec.key or f"{rec.name}|{iso(rec.starts_at)}|{rec.room}"
            if key in seen:
                continue
            seen.add(key)
            rows.append({
                "source_id": source_id, "key": key, "name": rec.name, "venue": rec.venue, "year": rec.year,
                "kind": rec.kind, "room": rec.room, "starts_at": iso(rec.starts_at), "ends_at": iso(rec.ends_at),
                "source_tz": rec.source_tz, "url": rec.url,
            })
        if rows:
            conn.execute(s.sessions.insert(), rows)
        report.sessions = len(rows)

    def _store_quarantine(self, conn, locator: str, problems: list[Problem], now: str) -> None:
        rows = [{"source_locator": locator, "line": p.line, "problem": p.message, "raw": p.raw[:20000],
                 "first_seen": now} for p in problems]
        if rows:
            conn.execute(self._insert_ignore(s.quarantine), rows)

    def record_unreadable_source(self, locator: str, problem: str, raw: str = "") -> None:
        """A source that could not be read at all is kept in quarantine too, so `quarantine` lists it."""
        with self.engine.begin() as conn:
            self._store_quarantine(conn, locator, [Problem(message=problem, line=None, raw=raw)], utc_now())

    # ---------------------------------------------------------------- reading
    def paper(self, paper_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.papers).where(s.papers.c.id == paper_id)).mappings().first()
            if row is None:
                return None
            paper = paper_from_row(row)
            paper["appearances"] = self._appearances(conn, [paper_id]).get(paper_id, [])
            return paper

    def papers(self, paper_ids: list[str], with_appearances: bool = True) -> list[dict[str, Any]]:
        """Papers in the order of ``paper_ids`` (unknown ids are skipped)."""
        if not paper_ids:
            return []
        found: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(paper_ids, 500):
                for row in conn.execute(select(s.papers).where(s.papers.c.id.in_(chunk))).mappings():
                    found[row["id"]] = paper_from_row(row)
            if with_appearances:
                apps = self._appearances(conn, list(found))
                for pid, paper in found.items():
                    paper["appearances"] = apps.get(pid, [])
        return [found[pid] for pid in paper_ids if pid in found]

    def _appearances(self, conn, paper_ids: list[str]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for chunk in _chunks(paper_ids, 500):
            query = (
                select(s.appearances, s.sources.c.locator.label("source"), s.sources.c.format.label("source_format"))
                .join(s.sources, s.sources.c.id == s.appearances.c.source_id)
                .where(s.appearances.c.paper_id.in_(chunk))
                .order_by(s.appearances.c.starts_at, s.appearances.c.id)
            )
            for row in conn.execute(query).mappings():
                item = {k: v for k, v in row.items() if k not in ("id", "source_id", "paper_id")}
                out.setdefault(row["paper_id"], []).append(item)
        return out

    def iter_papers(self, batch_size: int = 2000, paper_ids: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every paper with its appearances, for building indexes (streamed in batches)."""
        if paper_ids is not None:
            ids = list(paper_ids)
            for chunk in _chunks(ids, batch_size):
                yield from self.papers(chunk)
            return
        with self.engine.connect() as conn:
            all_ids = [r[0] for r in conn.execute(select(s.papers.c.id).order_by(s.papers.c.id))]
        for chunk in _chunks(all_ids, batch_size):
            yield from self.papers(chunk)

    def paper_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(s.papers)).scalar_one()

    def stats(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            count = lambda table: conn.execute(select(func.count()).select_from(table)).scalar_one()  # noqa: E731
            by_venue = self._venue_counts(conn)
            by_type = conn.execute(
                select(s.appearances.c.presentation, func.count()).group_by(s.appearances.c.presentation)
            ).all()
            flagged = conn.execute(
                select(s.papers.c.id, s.papers.c.flags, s.papers.c.title).where(s.papers.c.flags != "")
                .order_by(s.papers.c.id)
            ).all()
            flagged_list = []
            apps_by_paper = self._appearances(conn, [pid for pid, _, _ in flagged])
            for pid, flags, title in flagged:
                apps = apps_by_paper.get(pid, [])
                first = apps[0] if apps else {}
                flagged_list.append({
                    "id": pid, "flags": flags.split(","), "title": title,
                    "venue": first.get("venue"), "session": first.get("session"), "slot": first.get("slot_text"),
                    "source": first.get("source"), "line": first.get("line"),
                })
            return {
                "catalogue": self.display_location,
                "papers": count(s.papers),
                "appearances": count(s.appearances),
                "authors": count(s.authors),
                "sources": count(s.sources),
                "sessions": count(s.sessions),
                "quarantined": count(s.quarantine),
                "embedded": count(s.embeddings),
                "by_venue": by_venue,
                "by_type": {str(t or "unknown"): n for t, n in by_type},
                "flagged": flagged_list,
            }

    def venue_counts(self) -> list[dict[str, Any]]:
        """Papers per (venue, year), for the home page and `stats`."""
        with self.engine.connect() as conn:
            return self._venue_counts(conn)

    @staticmethod
    def _venue_counts(conn) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(s.appearances.c.venue, s.appearances.c.year, func.count(func.distinct(s.appearances.c.paper_id)))
            .group_by(s.appearances.c.venue, s.appearances.c.year)
            .order_by(s.appearances.c.venue, s.appearances.c.year)
        ).all()
        return [{"venue": v, "year": y, "papers": n} for v, y, n in rows]

    def quarantined(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = select(s.quarantine).order_by(s.quarantine.c.source_locator, s.quarantine.c.line)
            if limit:
                query = query.limit(limit)
            return [dict(r) for r in conn.execute(query).mappings()]

    def source_list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.sources).order_by(s.sources.c.locator)).mappings()
            return [dict(r) | {"notes": json.loads(r["notes"])} for r in rows]

    def sessions(self, venue: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            query = select(s.sessions).order_by(s.sessions.c.starts_at, s.sessions.c.room, s.sessions.c.name)
            if venue:
                query = query.where(func.lower(s.sessions.c.venue) == venue.lower())
            if year:
                query = query.where(s.sessions.c.year == year)
            return [dict(r) for r in conn.execute(query).mappings()]

    def appearances_where(self, venue: str | None = None, year: int | None = None,
                          session: str | None = None) -> list[dict[str, Any]]:
        """Appearances (with paper title and authors) of a venue/session, in slot order."""
        with self.engine.connect() as conn:
            query = (
                select(s.appearances, s.papers.c.title, s.papers.c.authors)
                .join(s.papers, s.papers.c.id == s.appearances.c.paper_id)
                .order_by(s.appearances.c.starts_at, s.appearances.c.session, s.appearances.c.id)
            )
            if venue:
                query = query.where(func.lower(s.appearances.c.venue) == venue.lower())
            if year:
                query = query.where(s.appearances.c.year == year)
            if session:
                query = query.where(s.appearances.c.session == session)
            return [dict(r) | {"authors": json.loads(r["authors"])} for r in conn.execute(query).mappings()]

    def author_papers(self, name: str) -> list[str]:
        """Ids of the papers of an author, by name key (case, accents and punctuation folded)."""
        from paperscope.text import name_key

        with self.engine.connect() as conn:
            query = (
                select(s.paper_authors.c.paper_id)
                .join(s.authors, s.authors.c.id == s.paper_authors.c.author_id)
                .where(s.authors.c.name_key == name_key(name))
            )
            return [r[0] for r in conn.execute(query)]

    # ---------------------------------------------------------------- embeddings
    def stored_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(hashes, 500):
                query = select(s.embeddings.c.content_hash, s.embeddings.c.vector).where(
                    s.embeddings.c.model == model, s.embeddings.c.content_hash.in_(chunk))
                out.update({h: v for h, v in conn.execute(query)})
        return out

    def store_vectors(self, model: str, vectors: dict[str, bytes]) -> None:
        rows = [{"content_hash": h, "model": model, "vector": v} for h, v in vectors.items()]
        with self.engine.begin() as conn:
            for chunk in _chunks(rows, 1000):
                conn.execute(self._insert_ignore(s.embeddings), chunk)

    def papers_missing_vectors(self, model: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Papers (id, content hash, clean title and abstract) with no paper-level vector for ``model``."""
        e = s.embeddings
        query = (
            select(s.papers.c.id, s.papers.c.content_hash, s.papers.c.title, s.papers.c.abstract, s.papers.c.year)
            .outerjoin(e, (e.c.content_hash == s.papers.c.content_hash) & (e.c.model == model))
            .where(e.c.content_hash.is_(None))
            .order_by(s.papers.c.id)
        )
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def paper_vectors(self, model: str) -> tuple[list[str], list[bytes]]:
        """Every paper that has a paper-level vector for ``model``: (ids, raw vectors), in id order."""
        e = s.embeddings
        query = (
            select(s.papers.c.id, e.c.vector)
            .join(e, (e.c.content_hash == s.papers.c.content_hash) & (e.c.model == model))
            .order_by(s.papers.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [r[0] for r in rows], [r[1] for r in rows]

    def count_paper_vectors(self, model: str) -> int:
        e = s.embeddings
        query = select(func.count()).select_from(
            s.papers.join(e, (e.c.content_hash == s.papers.c.content_hash) & (e.c.model == model)))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def content_hashes(self) -> list[tuple[str, str]]:
        """(paper id, content hash) for every paper, in id order."""
        with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(select(s.papers.c.id, s.papers.c.content_hash).order_by(s.papers.c.id))]

    def mark_updated(self, paper_ids: Iterable[str]) -> None:
        ids = list(paper_ids)
        with self.engine.begin() as conn:
            for chunk in _chunks(ids, 500):
                conn.execute(update(s.papers).where(s.papers.c.id.in_(chunk)).values(updated_at=utc_now()))


def paper_from_row(row) -> dict[str, Any]:
    paper = dict(row)
    paper["authors"] = json.loads(paper["authors"])
    paper["keywords"] = json.loads(paper["keywords"])
    paper["provenance"] = json.loads(paper["provenance"])
    paper["flags"] = [f for f in paper["flags"].split(",") if f]
    paper["ids"] = {k: paper.pop(f"{k}_id" if k != "doi" else "doi") for k in ("openreview", "arxiv", "doi")}
    paper["ids"] = {k: v for k, v in paper["ids"].items() if v}
    return paper


def _give_unique_keys(records: list[PaperRecord]) -> None:
    """Records without a key get one from their position; duplicate keys get a suffix.

    Keys make re-ingest idempotent, so they are derived from the record's content where the
    importer gave none (title key, else line).
    """
    from paperscope.text import title_key

    seen: dict[str, int] = {}
    for index, rec in enumerate(records):
        base = rec.key or title_key(rec.title) or f"line-{rec.line if rec.line is not None else index}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        rec.key = base if n == 0 else f"{base}#{n + 1}"


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
