"""A user's library beside the catalogue: saved papers, tags, notes, read state, feedback, digests.

The tables are defined on the catalogue's shared ``metadata`` (so ``Catalog.open`` creates them once
this module has been imported); :func:`ensure_library_tables` creates them in a catalogue opened
before that. Every function takes a ``user_id`` and every query filters on it: the laptop has one
user, ``"local"``; a server has many.

An entry is either a catalogue paper (``paper_id`` set) or a *profile-only* paper: one imported from a
reference manager that the catalogue does not hold, kept with its own title, authors, abstract and ids
so it still describes the user's interests. ``extra`` keeps what an import carried that paperscope has
no column for (the BibTeX entry type and fields, the CSL item), so an export gives it back.

This module is the only place the library's SQL lives; :mod:`paperscope.library` is the service.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)

from paperscope.catalog.schema import metadata, papers

READ_STATES = ("unread", "reading", "read")

library_entries = Table(
    "library_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("entry_key", Text, nullable=False),       # the paper id, or "ext:<key>" for a profile-only paper
    Column("paper_id", Text),                        # catalogue paper, when there is one
    Column("title", Text, nullable=False, default=""),
    Column("authors", Text, nullable=False, default="[]"),   # JSON list
    Column("abstract", Text, nullable=False, default=""),
    Column("year", Integer),
    Column("venue", Text),
    Column("ids", Text, nullable=False, default="{}"),       # JSON {"doi": .., "arxiv": .., "openreview": ..}
    Column("cite_key", Text),                        # the BibTeX key it was imported with
    Column("note", Text, nullable=False, default=""),
    Column("read_state", Text, nullable=False, default="unread"),
    Column("origin", Text, nullable=False, default="saved"),  # saved | import:<file> | mine:<author>
    Column("extra", Text, nullable=False, default="{}"),     # JSON: what an import carried beyond the columns
    Column("added_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    UniqueConstraint("user_id", "entry_key", name="uq_library_user_entry"),
)
Index("ix_library_user_paper", library_entries.c.user_id, library_entries.c.paper_id)

library_tags = Table(
    "library_tags", metadata,
    Column("entry_id", Integer, ForeignKey("library_entries.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", Text, primary_key=True),           # "folder/sub" names nest like folders
    Column("user_id", Text, nullable=False),
)
Index("ix_library_tags_user_tag", library_tags.c.user_id, library_tags.c.tag)

library_feedback = Table(
    "library_feedback", metadata,
    Column("user_id", Text, primary_key=True),
    Column("paper_id", Text, primary_key=True),
    Column("kind", Text, primary_key=True),          # "not_relevant"
    Column("tag", Text, nullable=False, default=""),  # the list it was given from ("" = the whole library)
    Column("title", Text, nullable=False, default=""),  # what the user saw, for the list of feedback
    Column("created_at", Text, nullable=False),
)

library_seen = Table(
    "library_seen", metadata,
    Column("user_id", Text, primary_key=True),
    Column("paper_id", Text, primary_key=True),
    Column("context", Text, nullable=False, default=""),   # "opened", "digest", "marked"
    Column("seen_at", Text, nullable=False),
)

digest_runs = Table(
    "digest_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("channel", Text, nullable=False),         # "email"
    Column("tag", Text, nullable=False, default=""),  # "" = the whole library
    Column("recipient", Text, nullable=False, default=""),
    Column("window_start", Text),                    # new papers were those added after this ...
    Column("window_end", Text, nullable=False),      # ... and up to this (the next digest starts here)
    Column("papers", Integer, nullable=False, default=0),
    Column("sent_at", Text, nullable=False),
)
Index("ix_digest_runs_user", digest_runs.c.user_id, digest_runs.c.channel, digest_runs.c.tag)

digest_items = Table(
    "digest_items", metadata,
    Column("user_id", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("paper_id", Text, primary_key=True),
    Column("run_id", Integer, ForeignKey("digest_runs.id", ondelete="CASCADE"), nullable=False),
    Column("rank", Integer, nullable=False, default=0),
)

feed_tokens = Table(
    "feed_tokens", metadata,
    Column("token", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("tag", Text, nullable=False, default=""),  # "" = the whole library
    Column("created_at", Text, nullable=False),
    UniqueConstraint("user_id", "tag", name="uq_feed_user_tag"),
)

_TABLES = (library_entries, library_tags, library_feedback, library_seen, digest_runs, digest_items, feed_tokens)
_ENTRY_FIELDS = ("paper_id", "title", "abstract", "year", "venue", "cite_key", "note", "read_state", "origin")


@dataclass
class LibraryEntry:
    id: int
    user_id: str
    entry_key: str
    title: str
    paper_id: str | None = None
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    year: int | None = None
    venue: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    cite_key: str | None = None
    note: str = ""
    read_state: str = "unread"
    origin: str = "saved"
    extra: dict[str, Any] = field(default_factory=dict)
    added_at: str = ""
    updated_at: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def in_catalogue(self) -> bool:
        return self.paper_id is not None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _entry(row, tags: list[str]) -> LibraryEntry:
    d = dict(row)
    d["authors"] = json.loads(d.get("authors") or "[]")
    d["ids"] = json.loads(d.get("ids") or "{}")
    d["extra"] = json.loads(d.get("extra") or "{}")
    return LibraryEntry(**d, tags=sorted(tags))


def _now() -> str:
    from paperscope.catalog.store import utc_now

    return utc_now()


_READY: "set[int]" = set()


def ensure_library_tables(catalog) -> None:
    """Create the library tables in a catalogue opened before this module was imported (once per engine)."""
    if id(catalog.engine) in _READY:
        return
    for table in _TABLES:
        table.create(catalog.engine, checkfirst=True)
    _READY.add(id(catalog.engine))


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ============================================================================================ entries


def upsert_entry(catalog, user_id: str, entry: dict[str, Any], tags: Iterable[str] = (),
                 replace: bool = False) -> tuple[LibraryEntry, bool]:
    """Save one entry (keyed by ``entry["entry_key"]``). Returns (the stored entry, whether it is new).

    Saving an entry again keeps its note, read state and tags unless ``replace`` (an import of an
    export) or the new values are given; ``tags`` are added to the ones it has.
    """
    ensure_library_tables(catalog)
    key = entry.get("entry_key")
    if not key:
        raise ValueError("a library entry needs an entry_key")
    now = _now()
    row = {k: entry[k] for k in _ENTRY_FIELDS if k in entry and entry[k] is not None}
    for name in ("authors", "ids", "extra"):
        if name in entry and entry[name] is not None:
            row[name] = json.dumps(entry[name], ensure_ascii=False, sort_keys=name != "authors")
    if row.get("read_state") and row["read_state"] not in READ_STATES:
        raise ValueError(f"read state is one of {', '.join(READ_STATES)}")
    t = library_entries.c
    with catalog.engine.begin() as conn:
        existing = conn.execute(select(library_entries).where(t.user_id == user_id, t.entry_key == key)).mappings().first()
        if existing is None:
            row.setdefault("title", "")
            conn.execute(library_entries.insert().values(
                user_id=user_id, entry_key=key, added_at=entry.get("added_at") or now,
                updated_at=entry.get("updated_at") or now, **row))
            created = True
        else:
            changes = dict(row)
            if not replace:
                # a second save never wipes what the user wrote, nor a richer description with an empty one
                for k in ("note", "read_state", "origin", "cite_key"):
                    if k in changes and entry.get(k) in ("", None, "unread", "saved"):
                        changes.pop(k)
                for k in ("abstract", "title", "venue"):
                    if k in changes and not changes[k]:
                        changes.pop(k)
                if "extra" in changes:
                    merged = json.loads(existing["extra"] or "{}") | (entry.get("extra") or {})
                    changes["extra"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
            elif entry.get("added_at"):
                changes["added_at"] = entry["added_at"]
            changes["updated_at"] = entry.get("updated_at") if replace and entry.get("updated_at") else now
            conn.execute(update(library_entries).where(t.id == existing["id"]).values(**changes))
            created = False
        entry_id = conn.execute(select(t.id).where(t.user_id == user_id, t.entry_key == key)).scalar_one()
        if replace:
            conn.execute(delete(library_tags).where(library_tags.c.entry_id == entry_id))
        _add_tags(conn, user_id, [entry_id], tags)
    return get_entries(catalog, user_id, ids=[entry_id])[0], created


def _add_tags(conn, user_id: str, entry_ids: list[int], tags: Iterable[str]) -> int:
    tags = [t for t in dict.fromkeys(tags) if t]
    if not tags or not entry_ids:
        return 0
    have = {(r[0], r[1]) for r in conn.execute(
        select(library_tags.c.entry_id, library_tags.c.tag).where(
            library_tags.c.entry_id.in_(entry_ids), library_tags.c.tag.in_(tags)))}
    rows = [{"entry_id": e, "tag": t, "user_id": user_id} for e in entry_ids for t in tags if (e, t) not in have]
    if rows:
        conn.execute(library_tags.insert(), rows)
    return len(rows)


def _tags_of(conn, entry_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for chunk in _chunks(entry_ids):
        for eid, tag in conn.execute(select(library_tags.c.entry_id, library_tags.c.tag).where(library_tags.c.entry_id.in_(chunk))):
            out.setdefault(eid, []).append(tag)
    return out


def _tag_condition(tag: str):
    """Entries with ``tag`` or any tag under it (``ml`` matches ``ml/rl``): tags nest like folders."""
    return (library_tags.c.tag == tag) | (library_tags.c.tag.startswith(tag + "/", autoescape=True))


def list_entries(catalog, user_id: str, tag: str | None = None, read_state: str | None = None,
                 query: str | None = None, untagged: bool = False) -> list[LibraryEntry]:
    """The user's entries, newest first; ``tag`` includes its sub-tags."""
    ensure_library_tables(catalog)
    t = library_entries.c
    stmt = select(library_entries).where(t.user_id == user_id)
    if tag:
        stmt = stmt.where(t.id.in_(select(library_tags.c.entry_id).where(library_tags.c.user_id == user_id, _tag_condition(tag))))
    if untagged:
        stmt = stmt.where(t.id.not_in(select(library_tags.c.entry_id).where(library_tags.c.user_id == user_id)))
    if read_state:
        stmt = stmt.where(t.read_state == read_state)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(func.lower(t.title).like(like) | func.lower(t.authors).like(like) | func.lower(t.note).like(like))
    stmt = stmt.order_by(t.added_at.desc(), t.id.desc())
    with catalog.engine.connect() as conn:
        rows = list(conn.execute(stmt).mappings())
        tags = _tags_of(conn, [r["id"] for r in rows])
    return [_entry(r, tags.get(r["id"], [])) for r in rows]


def get_entries(catalog, user_id: str, ids: Iterable[int] = (), keys: Iterable[str] = (),
                paper_ids: Iterable[str] = ()) -> list[LibraryEntry]:
    """Entries by id, entry key or catalogue paper id (only this user's)."""
    ensure_library_tables(catalog)
    t = library_entries.c
    ids, keys, paper_ids = list(ids), list(keys), list(paper_ids)
    conds = []
    if ids:
        conds.append(t.id.in_(ids))
    if keys:
        conds.append(t.entry_key.in_(keys))
    if paper_ids:
        conds.append(t.paper_id.in_(paper_ids))
    if not conds:
        return []
    cond = conds[0]
    for c in conds[1:]:
        cond = cond | c
    with catalog.engine.connect() as conn:
        rows = list(conn.execute(select(library_entries).where(t.user_id == user_id, cond).order_by(t.id)).mappings())
        tags = _tags_of(conn, [r["id"] for r in rows])
    return [_entry(r, tags.get(r["id"], [])) for r in rows]


def remove_entries(catalog, user_id: str, ids: Iterable[int]) -> int:
    ensure_library_tables(catalog)
    ids = list(ids)
    if not ids:
        return 0
    with catalog.engine.begin() as conn:
        conn.execute(delete(library_tags).where(library_tags.c.entry_id.in_(ids), library_tags.c.user_id == user_id))
        t = library_entries.c
        return conn.execute(delete(library_entries).where(t.user_id == user_id, t.id.in_(ids))).rowcount or 0


def update_entries(catalog, user_id: str, ids: Iterable[int], **values: Any) -> int:
    """Set ``note`` and/or ``read_state`` (or another plain column) on entries."""
    ensure_library_tables(catalog)
    ids = list(ids)
    allowed = {"note", "read_state", "title", "abstract", "paper_id", "entry_key"}
    values = {k: v for k, v in values.items() if k in allowed}
    if values.get("read_state") and values["read_state"] not in READ_STATES:
        raise ValueError(f"read state is one of {', '.join(READ_STATES)}")
    if not ids or not values:
        return 0
    t = library_entries.c
    with catalog.engine.begin() as conn:
        return conn.execute(update(library_entries).where(t.user_id == user_id, t.id.in_(ids))
                            .values(updated_at=_now(), **values)).rowcount or 0


def add_tags(catalog, user_id: str, ids: Iterable[int], tags: Iterable[str]) -> int:
    ensure_library_tables(catalog)
    ids = _own_ids(catalog, user_id, ids)
    with catalog.engine.begin() as conn:
        return _add_tags(conn, user_id, ids, tags)


def remove_tags(catalog, user_id: str, ids: Iterable[int], tags: Iterable[str]) -> int:
    ensure_library_tables(catalog)
    ids, tags = list(ids), list(tags)
    if not ids or not tags:
        return 0
    c = library_tags.c
    with catalog.engine.begin() as conn:
        return conn.execute(delete(library_tags).where(c.user_id == user_id, c.entry_id.in_(ids), c.tag.in_(tags))).rowcount or 0


def rename_tag(catalog, user_id: str, old: str, new: str) -> int:
    """Rename a tag and its sub-tags (moves a folder)."""
    ensure_library_tables(catalog)
    c = library_tags.c
    with catalog.engine.begin() as conn:
        rows = conn.execute(select(c.entry_id, c.tag).where(c.user_id == user_id, _tag_condition(old))).all()
        conn.execute(delete(library_tags).where(c.user_id == user_id, _tag_condition(old)))
        moved = {(e, new + t[len(old):]) for e, t in rows}
        have = {(r[0], r[1]) for r in conn.execute(select(c.entry_id, c.tag).where(c.user_id == user_id))}
        fresh = [{"entry_id": e, "tag": t, "user_id": user_id} for e, t in sorted(moved) if (e, t) not in have]
        if fresh:
            conn.execute(library_tags.insert(), fresh)
        return len(rows)


def _own_ids(catalog, user_id: str, ids: Iterable[int]) -> list[int]:
    ids = list(ids)
    if not ids:
        return []
    t = library_entries.c
    with catalog.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.id).where(t.user_id == user_id, t.id.in_(ids)))]


def tag_counts(catalog, user_id: str) -> list[tuple[str, int]]:
    """Every tag of the user with its number of entries, by name."""
    ensure_library_tables(catalog)
    c = library_tags.c
    with catalog.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(
            select(c.tag, func.count()).where(c.user_id == user_id).group_by(c.tag).order_by(c.tag))]


def entry_count(catalog, user_id: str) -> int:
    ensure_library_tables(catalog)
    with catalog.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(library_entries)
                            .where(library_entries.c.user_id == user_id)).scalar_one()


def profile_rows(catalog, user_id: str, tag: str | None = None) -> list[dict[str, Any]]:
    """What the recommender reads of a library, in one query: each entry's id, and the title, abstract
    and content hash of its catalogue paper (or, for a profile-only entry, its own title and abstract)."""
    ensure_library_tables(catalog)
    e = library_entries.c
    stmt = (select(e.id, e.entry_key, e.paper_id, e.title, e.abstract, papers.c.title.label("p_title"),
                   papers.c.abstract.label("p_abstract"), papers.c.content_hash)
            .select_from(library_entries.outerjoin(papers, papers.c.id == e.paper_id))
            .where(e.user_id == user_id))
    if tag:
        stmt = stmt.where(e.id.in_(select(library_tags.c.entry_id).where(library_tags.c.user_id == user_id, _tag_condition(tag))))
    out = []
    with catalog.engine.connect() as conn:
        for r in conn.execute(stmt.order_by(e.added_at.desc(), e.id.desc())).mappings():
            if r["paper_id"] and r["p_title"] is not None:
                out.append({"id": r["paper_id"], "title": r["p_title"], "abstract": r["p_abstract"] or "",
                            "content_hash": r["content_hash"], "entry": r["id"]})
            elif r["title"]:
                out.append({"id": r["entry_key"], "title": r["title"], "abstract": r["abstract"] or "",
                            "content_hash": None, "entry": r["id"]})
    return out


def users_with_library(catalog) -> list[str]:
    """The ids of the users who have at least one library entry."""
    ensure_library_tables(catalog)
    e = library_entries.c
    with catalog.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(e.user_id).distinct().order_by(e.user_id))]


def library_paper_ids(catalog, user_id: str, tag: str | None = None) -> list[str]:
    """Catalogue paper ids in the user's library (with ``tag`` or a sub-tag of it), oldest saved first."""
    ensure_library_tables(catalog)
    t = library_entries.c
    stmt = select(t.paper_id).where(t.user_id == user_id, t.paper_id.is_not(None))
    if tag:
        stmt = stmt.where(t.id.in_(select(library_tags.c.entry_id).where(library_tags.c.user_id == user_id, _tag_condition(tag))))
    with catalog.engine.connect() as conn:
        return list(dict.fromkeys(r[0] for r in conn.execute(stmt.order_by(t.added_at, t.id))))


# ============================================================================================ matching


def papers_by_strong_ids(catalog, kind: str, values: list[str]) -> dict[str, str]:
    """Catalogue paper id for each value of a strong id (``doi`` compared case-insensitively)."""
    column = {"openreview": papers.c.openreview_id, "arxiv": papers.c.arxiv_id, "doi": papers.c.doi}[kind]
    out: dict[str, str] = {}
    values = list(dict.fromkeys(v for v in values if v))
    with catalog.engine.connect() as conn:
        for chunk in _chunks(values):
            if kind == "doi":
                stmt = select(func.lower(column), papers.c.id).where(func.lower(column).in_([v.lower() for v in chunk]))
            else:
                stmt = select(column, papers.c.id).where(column.in_(chunk))
            for value, pid in conn.execute(stmt.order_by(papers.c.id)):
                out.setdefault(value, pid)
    return out


def papers_by_title_keys(catalog, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Catalogue papers (id, title, authors, year) by normalised title key."""
    out: dict[str, list[dict[str, Any]]] = {}
    keys = list(dict.fromkeys(k for k in keys if k))
    with catalog.engine.connect() as conn:
        for chunk in _chunks(keys):
            stmt = select(papers.c.id, papers.c.title, papers.c.title_key, papers.c.authors, papers.c.year).where(
                papers.c.title_key.in_(chunk)).order_by(papers.c.id)
            for r in conn.execute(stmt).mappings():
                out.setdefault(r["title_key"], []).append(dict(r) | {"authors": json.loads(r["authors"])})
    return out


def paper_ids_added_between(catalog, start: str | None, end: str | None) -> list[str]:
    """Catalogue papers first added (ingested) after ``start`` and at or before ``end`` (ISO UTC)."""
    stmt = select(papers.c.id)
    if start:
        stmt = stmt.where(papers.c.added_at > start)
    if end:
        stmt = stmt.where(papers.c.added_at <= end)
    with catalog.engine.connect() as conn:
        return [r[0] for r in conn.execute(stmt.order_by(papers.c.id))]


def paper_ids_of_years(catalog, since_year: int) -> list[str]:
    with catalog.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(papers.c.id).where(papers.c.year >= since_year))]


def paper_texts(catalog, paper_ids: list[str]) -> dict[str, dict[str, Any]]:
    """id -> {id, title, abstract, content_hash} of the given papers: what ranking reads (fast)."""
    out: dict[str, dict[str, Any]] = {}
    cols = (papers.c.id, papers.c.title, papers.c.abstract, papers.c.content_hash)
    with catalog.engine.connect() as conn:
        for chunk in _chunks(list(dict.fromkeys(paper_ids)), 900):
            for pid, title, abstract, chash in conn.execute(select(*cols).where(papers.c.id.in_(chunk))):
                out[pid] = {"id": pid, "title": title, "abstract": abstract, "content_hash": chash}
    return out


def content_hashes_of(catalog, paper_ids: list[str]) -> dict[str, str]:
    """id -> content hash of the given papers (what tells whether stored features are of the current text)."""
    out: dict[str, str] = {}
    with catalog.engine.connect() as conn:
        for chunk in _chunks(list(dict.fromkeys(paper_ids)), 900):
            out.update({pid: chash for pid, chash in conn.execute(
                select(papers.c.id, papers.c.content_hash).where(papers.c.id.in_(chunk)))})
    return out


def stored_vector_count(catalog, model: str) -> int:
    """How many vectors of ``model`` the catalogue stores (paper or sentence vectors, by model name)."""
    from paperscope.catalog.schema import embeddings

    with catalog.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(embeddings).where(embeddings.c.model == model)).scalar_one()


def sample_paper_texts(catalog, size: int, seed: int = 7) -> list[str]:
    """Titles + abstracts of a reproducible sample of ``size`` catalogue papers (for term statistics)."""
    import random

    with catalog.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(papers.c.id).order_by(papers.c.id))]
    if len(ids) > size:
        ids = random.Random(seed).sample(ids, size)
    texts = paper_texts(catalog, ids)
    return [f"{t['title']}. {t['abstract']}" for t in texts.values()]


# ============================================================================================ feedback & seen


def add_feedback(catalog, user_id: str, paper_id: str, kind: str = "not_relevant", tag: str = "",
                 title: str = "") -> bool:
    ensure_library_tables(catalog)
    f = library_feedback.c
    with catalog.engine.begin() as conn:
        exists = conn.execute(select(f.paper_id).where(f.user_id == user_id, f.paper_id == paper_id, f.kind == kind)).first()
        if exists:
            return False
        conn.execute(library_feedback.insert().values(user_id=user_id, paper_id=paper_id, kind=kind, tag=tag or "",
                                                      title=title or "", created_at=_now()))
        return True


def remove_feedback(catalog, user_id: str, paper_id: str, kind: str = "not_relevant") -> int:
    ensure_library_tables(catalog)
    f = library_feedback.c
    with catalog.engine.begin() as conn:
        return conn.execute(delete(library_feedback).where(f.user_id == user_id, f.paper_id == paper_id, f.kind == kind)).rowcount or 0


def list_feedback(catalog, user_id: str, kind: str = "not_relevant") -> list[dict[str, Any]]:
    ensure_library_tables(catalog)
    f = library_feedback.c
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(library_feedback).where(f.user_id == user_id, f.kind == kind).order_by(f.created_at, f.paper_id))
        return [dict(r) for r in rows.mappings()]


def mark_seen(catalog, user_id: str, paper_ids: Iterable[str], context: str = "marked") -> int:
    ensure_library_tables(catalog)
    ids = list(dict.fromkeys(paper_ids))
    if not ids:
        return 0
    s = library_seen.c
    now = _now()
    with catalog.engine.begin() as conn:
        have = set()
        for chunk in _chunks(ids):
            have |= {r[0] for r in conn.execute(select(s.paper_id).where(s.user_id == user_id, s.paper_id.in_(chunk)))}
        rows = [{"user_id": user_id, "paper_id": p, "context": context, "seen_at": now} for p in ids if p not in have]
        if rows:
            conn.execute(library_seen.insert(), rows)
        return len(rows)


def seen_ids(catalog, user_id: str) -> set[str]:
    ensure_library_tables(catalog)
    s = library_seen.c
    with catalog.engine.connect() as conn:
        return {r[0] for r in conn.execute(select(s.paper_id).where(s.user_id == user_id))}


def clear_seen(catalog, user_id: str) -> int:
    ensure_library_tables(catalog)
    with catalog.engine.begin() as conn:
        return conn.execute(delete(library_seen).where(library_seen.c.user_id == user_id)).rowcount or 0


# ============================================================================================ digests


def last_digest(catalog, user_id: str, channel: str, tag: str = "") -> dict[str, Any] | None:
    """The latest recorded digest of this user, channel and tag, or None."""
    ensure_library_tables(catalog)
    d = digest_runs.c
    with catalog.engine.connect() as conn:
        row = conn.execute(select(digest_runs).where(d.user_id == user_id, d.channel == channel, d.tag == (tag or ""))
                           .order_by(d.window_end.desc(), d.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None


def digested_ids(catalog, user_id: str, channel: str, paper_ids: Iterable[str] | None = None) -> set[str]:
    """Papers already sent to this user on this channel (any tag)."""
    ensure_library_tables(catalog)
    i = digest_items.c
    with catalog.engine.connect() as conn:
        stmt = select(i.paper_id).where(i.user_id == user_id, i.channel == channel)
        if paper_ids is None:
            return {r[0] for r in conn.execute(stmt)}
        out: set[str] = set()
        for chunk in _chunks(list(paper_ids)):
            out |= {r[0] for r in conn.execute(stmt.where(i.paper_id.in_(chunk)))}
        return out


def record_digest(catalog, user_id: str, channel: str, tag: str, recipient: str, window_start: str | None,
                  window_end: str, paper_ids: list[str]) -> int:
    """Record a sent digest and its papers (in one transaction); returns the run id.

    A paper already recorded for this user and channel is not recorded again (it was never sent twice).
    """
    ensure_library_tables(catalog)
    now = _now()
    with catalog.engine.begin() as conn:
        run_id = conn.execute(digest_runs.insert().values(
            user_id=user_id, channel=channel, tag=tag or "", recipient=recipient or "", window_start=window_start,
            window_end=window_end, papers=len(paper_ids), sent_at=now)).inserted_primary_key[0]
        i = digest_items.c
        have: set[str] = set()
        for chunk in _chunks(list(paper_ids)):
            have |= {r[0] for r in conn.execute(select(i.paper_id).where(i.user_id == user_id, i.channel == channel, i.paper_id.in_(chunk)))}
        rows = [{"user_id": user_id, "channel": channel, "paper_id": p, "run_id": run_id, "rank": n}
                for n, p in enumerate(paper_ids) if p not in have]
        if rows:
            conn.execute(digest_items.insert(), rows)
    return int(run_id)


def digest_history(catalog, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    ensure_library_tables(catalog)
    d = digest_runs.c
    with catalog.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(digest_runs).where(d.user_id == user_id)
                                              .order_by(d.sent_at.desc(), d.id.desc()).limit(limit)).mappings()]


# ============================================================================================ feed tokens


def feed_token(catalog, user_id: str, tag: str = "", create: bool = True) -> str | None:
    """The secret token of the user's feed for ``tag`` ("" = whole library); made on first use."""
    ensure_library_tables(catalog)
    f = feed_tokens.c
    with catalog.engine.begin() as conn:
        token = conn.execute(select(f.token).where(f.user_id == user_id, f.tag == (tag or ""))).scalar()
        if token or not create:
            return token
        token = secrets.token_urlsafe(24)
        conn.execute(feed_tokens.insert().values(token=token, user_id=user_id, tag=tag or "", created_at=_now()))
        return token


def feed_owner(catalog, token: str) -> tuple[str, str] | None:
    """(user, tag) of a feed token, or None when it is unknown (or revoked)."""
    ensure_library_tables(catalog)
    f = feed_tokens.c
    if not token:
        return None
    with catalog.engine.connect() as conn:
        row = conn.execute(select(f.user_id, f.tag).where(f.token == token)).first()
    return (row[0], row[1]) if row else None


def revoke_feed_token(catalog, user_id: str, tag: str = "") -> int:
    ensure_library_tables(catalog)
    f = feed_tokens.c
    with catalog.engine.begin() as conn:
        return conn.execute(delete(feed_tokens).where(f.user_id == user_id, f.tag == (tag or ""))).rowcount or 0
