"""The personal agenda: talks, posters and sessions a user starred, stored beside the catalogue.

The table is defined on the catalogue's shared ``metadata``, so ``Catalog.open`` creates it once this
module has been imported; :func:`ensure_agenda_tables` creates it in a catalogue opened before that.
Every function takes a ``user_id`` and every query filters on it: the laptop has one user,
``"local"``; a server has many.

An item references what it stars by a stable key (see :func:`paperscope.schedule.appearance_key` and
:func:`paperscope.schedule.session_key`) and keeps a snapshot of what the user saw (title, room, times),
so the agenda still reads right when a program is re-imported, and a moved slot can be noticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Column, Float, Index, Integer, Table, Text, UniqueConstraint, delete, func, select, update

from paperscope.catalog.schema import metadata, papers

agenda_items = Table(
    "agenda_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("item_key", Text, nullable=False),        # appearance or session key
    Column("kind", Text, nullable=False),            # "paper" or "session"
    Column("paper_id", Text),
    Column("venue", Text),
    Column("year", Integer),
    Column("session", Text),
    Column("room", Text),
    Column("title", Text, nullable=False, default=""),
    Column("authors", Text, nullable=False, default="[]"),   # JSON list
    Column("starts_at", Text),                       # ISO-8601 UTC
    Column("ends_at", Text),
    Column("source_tz", Text),
    Column("url", Text),
    Column("origin", Text, nullable=False, default="manual"),  # "manual" or "plan"
    Column("relevance", Float),
    Column("reason", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("added_at", Text, nullable=False),
    UniqueConstraint("user_id", "item_key", name="uq_agenda_user_item"),
)
Index("ix_agenda_user_start", agenda_items.c.user_id, agenda_items.c.starts_at)

_FIELDS = ("item_key", "kind", "paper_id", "venue", "year", "session", "room", "title", "starts_at", "ends_at",
           "source_tz", "url", "origin", "relevance", "reason", "note")


@dataclass
class AgendaItem:
    id: int
    user_id: str
    item_key: str
    kind: str
    title: str
    paper_id: str | None = None
    venue: str | None = None
    year: int | None = None
    session: str | None = None
    room: str | None = None
    authors: list[str] = field(default_factory=list)
    starts_at: str | None = None
    ends_at: str | None = None
    source_tz: str | None = None
    url: str | None = None
    origin: str = "manual"
    relevance: float | None = None
    reason: str = ""
    note: str = ""
    added_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _item(row) -> AgendaItem:
    d = dict(row)
    d["authors"] = json.loads(d.get("authors") or "[]")
    return AgendaItem(**d)


_READY: "set[int]" = set()


def ensure_agenda_tables(catalog) -> None:
    """Create the agenda table in a catalogue opened before this module was imported (once per engine)."""
    if id(catalog.engine) in _READY:
        return
    agenda_items.create(catalog.engine, checkfirst=True)
    _READY.add(id(catalog.engine))


def add_agenda_item(catalog, user_id: str, item: dict[str, Any]) -> tuple[AgendaItem, bool]:
    """Star an item (``item`` has the columns of the table). Returns (the stored item, whether it is new).

    Starring the same item again changes nothing but may refresh its snapshot (times, room, reason).
    """
    from paperscope.catalog.store import utc_now

    ensure_agenda_tables(catalog)
    row = {k: item.get(k) for k in _FIELDS if k in item}
    row["authors"] = json.dumps(list(item.get("authors") or []), ensure_ascii=False)
    row.setdefault("title", "")
    row["title"] = row["title"] or ""
    row["reason"] = row.get("reason") or ""
    row["note"] = row.get("note") or ""
    row["origin"] = row.get("origin") or "manual"
    if not row.get("item_key") or row.get("kind") not in ("paper", "session"):
        raise ValueError("an agenda item needs an item_key and a kind of 'paper' or 'session'")
    t = agenda_items.c
    with catalog.engine.begin() as conn:
        existing = conn.execute(
            select(t.id, t.origin).where(t.user_id == user_id, t.item_key == row["item_key"])
        ).first()
        if existing is None:
            conn.execute(agenda_items.insert().values(user_id=user_id, added_at=utc_now(), **row))
            created = True
        else:
            changes = {k: v for k, v in row.items() if k not in ("item_key", "origin")}
            if existing.origin == "plan" and row["origin"] == "manual":
                changes["origin"] = "manual"   # starred by hand: a later re-plan must not remove it
            conn.execute(update(agenda_items).where(t.id == existing.id).values(**changes))
            created = False
        stored = conn.execute(
            select(agenda_items).where(t.user_id == user_id, t.item_key == row["item_key"])
        ).mappings().one()
    return _item(stored), created


def list_agenda(catalog, user_id: str, venue: str | None = None, year: int | None = None) -> list[AgendaItem]:
    """The user's items in time order (untimed ones last)."""
    ensure_agenda_tables(catalog)
    t = agenda_items.c
    query = select(agenda_items).where(t.user_id == user_id)
    if venue:
        query = query.where(func.lower(t.venue) == venue.lower())
    if year:
        query = query.where(t.year == year)
    query = query.order_by(t.starts_at.is_(None), t.starts_at, t.ends_at, t.id)
    with catalog.engine.connect() as conn:
        return [_item(r) for r in conn.execute(query).mappings()]


def get_agenda_items(catalog, user_id: str, ids: Iterable[int] = (), keys: Iterable[str] = ()) -> list[AgendaItem]:
    ensure_agenda_tables(catalog)
    t = agenda_items.c
    ids, keys = list(ids), list(keys)
    if not ids and not keys:
        return []
    cond = t.id.in_(ids) if ids else None
    if keys:
        cond = t.item_key.in_(keys) if cond is None else (cond | t.item_key.in_(keys))
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(agenda_items).where(t.user_id == user_id, cond).order_by(t.starts_at, t.id)).mappings()
        return [_item(r) for r in rows]


def remove_agenda_items(catalog, user_id: str, ids: Iterable[int] = (), keys: Iterable[str] = ()) -> int:
    """Unstar items by id or key; returns how many were removed (only this user's)."""
    ensure_agenda_tables(catalog)
    t = agenda_items.c
    ids, keys = list(ids), list(keys)
    if not ids and not keys:
        return 0
    cond = t.id.in_(ids) if ids else None
    if keys:
        cond = t.item_key.in_(keys) if cond is None else (cond | t.item_key.in_(keys))
    with catalog.engine.begin() as conn:
        return conn.execute(delete(agenda_items).where(t.user_id == user_id, cond)).rowcount or 0


def remove_plan_items(catalog, user_id: str, venue: str | None, year: int | None,
                      starts_from: str | None = None, starts_before: str | None = None) -> int:
    """Remove the items an earlier accepted plan put in (never the ones starred by hand)."""
    ensure_agenda_tables(catalog)
    t = agenda_items.c
    cond = (t.user_id == user_id) & (t.origin == "plan")
    if venue:
        cond = cond & (func.lower(t.venue) == venue.lower())
    if year:
        cond = cond & (t.year == year)
    if starts_from:
        cond = cond & (t.starts_at >= starts_from)
    if starts_before:
        cond = cond & (t.starts_at < starts_before)
    with catalog.engine.begin() as conn:
        return conn.execute(delete(agenda_items).where(cond)).rowcount or 0


def clear_agenda(catalog, user_id: str) -> int:
    ensure_agenda_tables(catalog)
    with catalog.engine.begin() as conn:
        return conn.execute(delete(agenda_items).where(agenda_items.c.user_id == user_id)).rowcount or 0


def papers_by_title_keys(catalog, keys: list[str]) -> list[dict[str, Any]]:
    """Papers whose normalised title is one of ``keys`` (to read an interests file of titles)."""
    out: list[dict[str, Any]] = []
    keys = list(dict.fromkeys(k for k in keys if k))
    with catalog.engine.connect() as conn:
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            query = select(papers.c.id, papers.c.title, papers.c.title_key, papers.c.abstract).where(
                papers.c.title_key.in_(chunk)).order_by(papers.c.id)
            out.extend(dict(r) for r in conn.execute(query).mappings())
    return out
