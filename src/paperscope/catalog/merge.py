"""One record per real paper: matching a source's records to catalogue papers and storing them.

Matching, strongest evidence first:
1. the record's own earlier appearance (same source, same key): a re-ingest updates in place;
2. a shared strong id (OpenReview id, arXiv id, DOI), unless another strong id of the same kind disagrees;
3. the same title key, confirmed by overlapping author family names when both sides list authors.
Anything weaker makes a new paper: a wrong merge hides a paper, a missed merge only repeats one.
Every field remembers the source it came from (``provenance``); a source updates the fields it gave.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update

from paperscope.catalog import schema as s
from paperscope.model import STRONG_ID_KINDS, PaperRecord
from paperscope.text import (clean_markup, content_hash, family_name_key, is_placeholder_abstract, name_key, short_id,
                             title_key)

if TYPE_CHECKING:
    from paperscope.catalog.store import Catalog, IngestReport

ID_COLUMNS = {"openreview": "openreview_id", "arxiv": "arxiv_id", "doi": "doi"}
# Paper fields a source can give, and the record attribute each comes from.
MERGED_FIELDS = ("title", "abstract_raw", "authors", "year", "keywords", "tldr", *ID_COLUMNS.values())
APPEARANCE_FIELDS = ("venue", "year", "track", "session", "room", "moderator", "presentation", "decision",
                     "mode", "award", "starts_at", "ends_at", "source_tz", "slot_text", "url")


def authors_agree(a: list[str], b: list[str]) -> bool:
    """Two author lists describe the same paper: at least half of the shorter list's family names recur."""
    fa = {family_name_key(n) for n in a} - {""}
    fb = {family_name_key(n) for n in b} - {""}
    if not fa or not fb:
        return True  # one side has no authors: nothing contradicts the title
    shared = len(fa & fb)
    return shared >= 1 and shared * 2 >= min(len(fa), len(fb))


def record_fields(rec: PaperRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": rec.title.strip(),
        "abstract_raw": "" if is_placeholder_abstract(rec.abstract.strip()) else rec.abstract.strip(),
        "authors": [a.strip() for a in rec.authors if a and a.strip()],
        "year": rec.year or rec.appearance.year,
        "keywords": [k.strip() for k in rec.keywords if k and k.strip()],
        "tldr": rec.tldr.strip(),
    }
    for kind, column in ID_COLUMNS.items():
        fields[column] = (rec.ids.get(kind) or "").strip() or None
    return fields


class PaperMerger:
    """Merges one source's records into the catalogue inside the caller's transaction."""

    def __init__(self, conn, catalog: "Catalog", source_id: int, locator: str, now: str):
        self.conn = conn
        self.catalog = catalog
        self.source_id = source_id
        self.locator = locator
        self.now = now
        self.papers: dict[str, dict[str, Any]] = {}        # id -> row (decoded), loaded or new
        self.new_ids: set[str] = set()
        self.changed_ids: set[str] = set()
        self.authors_changed: set[str] = set()
        self.by_strong_id: dict[tuple[str, str], str] = {}
        self.by_title: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ main
    def merge(self, records: list[PaperRecord], report: "IngestReport") -> None:
        existing = self._existing_appearances()
        self._load_candidates(records, {pid for _, pid in existing.values()})
        self._load_taken_ids(records)
        appearance_rows: list[tuple[PaperRecord, str]] = []
        for rec in records:
            fields = record_fields(rec)
            paper_id = existing[rec.key][1] if rec.key in existing else self._match(fields)
            if paper_id is None:
                paper_id = self._create(fields, rec)
                report.new_papers += 1
            else:
                if rec.key not in existing:
                    report.merged += 1
                self._update(paper_id, fields, rec)
            appearance_rows.append((rec, paper_id))
        report.records = len(records)
        report.updated = len(self.changed_ids - self.new_ids)
        self._write_papers()
        kept_keys = self._write_appearances(appearance_rows, existing)
        report.removed_appearances, report.removed_paper_ids = self._remove_vanished(existing, kept_keys)
        report.touched_paper_ids = (self.new_ids | self.changed_ids | {pid for _, pid in appearance_rows}) - report.removed_paper_ids

    # ------------------------------------------------------------------ loading
    def _existing_appearances(self) -> dict[str, tuple[int, str]]:
        rows = self.conn.execute(
            select(s.appearances.c.source_key, s.appearances.c.id, s.appearances.c.paper_id)
            .where(s.appearances.c.source_id == self.source_id)
        )
        return {key: (aid, pid) for key, aid, pid in rows}

    def _load_candidates(self, records: list[PaperRecord], paper_ids: set[str]) -> None:
        keys = {title_key(r.title) for r in records} - {""}
        strong: dict[str, set[str]] = {kind: set() for kind in STRONG_ID_KINDS}
        for rec in records:
            for kind in STRONG_ID_KINDS:
                if rec.ids.get(kind):
                    strong[kind].add(rec.ids[kind].strip())
        conditions = [(s.papers.c.title_key, sorted(keys)), (s.papers.c.id, sorted(paper_ids))]
        conditions += [(s.papers.c[ID_COLUMNS[kind]], sorted(values)) for kind, values in strong.items()]
        for column, values in conditions:
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                for row in self.conn.execute(select(s.papers).where(column.in_(chunk))).mappings():
                    self._remember(dict(row))

    def _remember(self, row: dict[str, Any]) -> None:
        if row["id"] in self.papers:
            return
        for key in ("authors", "keywords", "provenance"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
        self.papers[row["id"]] = row
        for kind, column in ID_COLUMNS.items():
            if row.get(column):
                self.by_strong_id.setdefault((kind, row[column]), row["id"])
        if row["title_key"]:
            self.by_title.setdefault(row["title_key"], []).append(row["id"])

    # ------------------------------------------------------------------ matching
    def _match(self, fields: dict[str, Any]) -> str | None:
        for kind, column in ID_COLUMNS.items():
            value = fields[column]
            if value and (kind, value) in self.by_strong_id:
                return self.by_strong_id[(kind, value)]
        key = title_key(fields["title"])
        for candidate_id in self.by_title.get(key, []) if key else []:
            candidate = self.papers[candidate_id]
            if self._ids_conflict(candidate, fields):
                continue
            if authors_agree(candidate["authors"], fields["authors"]):
                return candidate_id
        return None

    @staticmethod
    def _ids_conflict(paper: dict[str, Any], fields: dict[str, Any]) -> bool:
        return any(paper.get(c) and fields[c] and paper[c] != fields[c] for c in ID_COLUMNS.values())

    # ------------------------------------------------------------------ changes
    def _create(self, fields: dict[str, Any], rec: PaperRecord) -> str:
        paper_id = self._new_id(fields, rec)
        row = {
            "id": paper_id, "provenance": {}, "flags": ",".join(sorted(set(rec.flags))),
            "added_at": self.now, "updated_at": self.now,
            **{f: ([] if f in ("authors", "keywords") else ("" if f in ("title", "abstract_raw", "tldr") else None))
               for f in MERGED_FIELDS},
        }
        self._apply(row, fields)
        self._derive(row)
        self.new_ids.add(paper_id)
        self.authors_changed.add(paper_id)
        self._remember(row)
        return paper_id

    def _id_seed(self, fields: dict[str, Any], rec: PaperRecord) -> str:
        strong = next((f"{k}:{fields[c]}" for k, c in ID_COLUMNS.items() if fields[c]), None)
        key = title_key(fields["title"])
        first_author = family_name_key(fields["authors"][0]) if fields["authors"] else ""
        return strong or (f"title:{key}|{first_author}" if key else f"src:{self.locator}|{rec.key}")

    def _load_taken_ids(self, records: list[PaperRecord]) -> None:
        """Which of the ids new papers would get are already used, in a few queries instead of one per record."""
        wanted = sorted({short_id(self._id_seed(record_fields(r), r)) for r in records})
        self.taken: set[str] = set()
        for start in range(0, len(wanted), 500):
            query = select(s.papers.c.id).where(s.papers.c.id.in_(wanted[start:start + 500]))
            self.taken.update(r[0] for r in self.conn.execute(query))

    def _new_id(self, fields: dict[str, Any], rec: PaperRecord) -> str:
        seed = self._id_seed(fields, rec)
        candidate, n = short_id(seed), 1
        while candidate in self.papers or candidate in self.taken or (n > 1 and self._id_in_catalogue(candidate)):
            n += 1
            candidate = short_id(f"{seed}#{n}")
        return candidate

    def _id_in_catalogue(self, paper_id: str) -> bool:
        return self.conn.execute(select(s.papers.c.id).where(s.papers.c.id == paper_id)).first() is not None

    def _update(self, paper_id: str, fields: dict[str, Any], rec: PaperRecord) -> None:
        row = self.papers[paper_id]
        before = {f: row[f] for f in MERGED_FIELDS}
        flags_before = row["flags"]
        self._apply(row, fields)
        flags = set(filter(None, row["flags"].split(",")))
        if row["title"]:
            flags.discard("missing_title")
        row["flags"] = ",".join(sorted(flags))
        if before != {f: row[f] for f in MERGED_FIELDS} or flags_before != row["flags"]:
            if before["authors"] != row["authors"]:
                self.authors_changed.add(paper_id)
            self._derive(row)
            row["updated_at"] = self.now
            self.changed_ids.add(paper_id)
            self._remember(row)

    def _apply(self, row: dict[str, Any], fields: dict[str, Any]) -> None:
        """Fill empty fields; overwrite a field only with a newer version of the source that gave it."""
        provenance = row["provenance"]
        for name in MERGED_FIELDS:
            value = fields[name]
            if value in (None, "", []):
                continue
            if row[name] in (None, "", []) or provenance.get(name) == self.locator:
                row[name] = value
                provenance[name] = self.locator

    @staticmethod
    def _derive(row: dict[str, Any]) -> None:
        if is_placeholder_abstract(row["abstract_raw"]):  # stored by versions that kept stand-ins
            row["abstract_raw"] = ""
        row["title_key"] = title_key(row["title"])
        row["abstract"] = clean_markup(row["abstract_raw"])
        row["content_hash"] = content_hash(clean_markup(row["title"]), row["abstract"])

    # ------------------------------------------------------------------ writing
    def _write_papers(self) -> None:
        def encoded(pid: str) -> dict[str, Any]:
            row = dict(self.papers[pid])
            for key in ("authors", "keywords", "provenance"):
                row[key] = json.dumps(row[key], ensure_ascii=False)
            return row

        new_rows = [encoded(pid) for pid in self.new_ids]
        if new_rows:
            self.conn.execute(s.papers.insert(), new_rows)
        changed = [encoded(pid) for pid in self.changed_ids - self.new_ids]
        if changed:
            columns = [c.name for c in s.papers.columns if c.name not in ("id", "added_at")]
            stmt = update(s.papers).where(s.papers.c.id == bindparam("pid")).values(
                {c: bindparam(f"v_{c}") for c in columns})
            self.conn.execute(stmt, [{"pid": r["id"], **{f"v_{c}": r[c] for c in columns}} for r in changed])
        self._write_paper_authors()

    def _write_paper_authors(self) -> None:
        ids = sorted(self.authors_changed)
        if not ids:
            return
        for start in range(0, len(ids), 500):
            self.conn.execute(delete(s.paper_authors).where(s.paper_authors.c.paper_id.in_(ids[start:start + 500])))
        names: dict[str, str] = {}
        for pid in ids:
            for name in self.papers[pid]["authors"]:
                names.setdefault(name_key(name), name)
        names.pop("", None)
        if not names:
            return
        self.conn.execute(self.catalog._insert_ignore(s.authors), [{"name": n, "name_key": k} for k, n in names.items()])
        author_ids: dict[str, int] = {}
        keys = sorted(names)
        for start in range(0, len(keys), 500):
            query = select(s.authors.c.name_key, s.authors.c.id).where(s.authors.c.name_key.in_(keys[start:start + 500]))
            author_ids.update({k: i for k, i in self.conn.execute(query)})
        rows = []
        for pid in ids:
            seen: set[int] = set()
            for position, name in enumerate(self.papers[pid]["authors"]):
                author_id = author_ids.get(name_key(name))
                if author_id is not None and author_id not in seen:
                    seen.add(author_id)
                    rows.append({"paper_id": pid, "position": position, "author_id": author_id})
        if rows:
            self.conn.execute(s.paper_authors.insert(), rows)

    def _write_appearances(self, pairs: list[tuple[PaperRecord, str]], existing: dict[str, tuple[int, str]]) -> set[str]:
        from paperscope.catalog.store import iso

        inserts, updates = [], []
        for rec, paper_id in pairs:
            app = rec.appearance
            values = {f: getattr(app, f) for f in APPEARANCE_FIELDS}
            values["starts_at"], values["ends_at"] = iso(app.starts_at), iso(app.ends_at)
            values.update(paper_id=paper_id, line=rec.line)
            if rec.key in existing:
                updates.append({"aid": existing[rec.key][0], **{f"v_{k}": v for k, v in values.items()}})
            else:
                inserts.append({"source_id": self.source_id, "source_key": rec.key, **values})
        if inserts:
            self.conn.execute(s.appearances.insert(), inserts)
        if updates:
            columns = [*APPEARANCE_FIELDS, "paper_id", "line"]
            stmt = update(s.appearances).where(s.appearances.c.id == bindparam("aid")).values(
                {c: bindparam(f"v_{c}") for c in columns})
            self.conn.execute(stmt, updates)
        return {rec.key for rec, _ in pairs}

    def _remove_vanished(self, existing: dict[str, tuple[int, str]], kept: set[str]) -> tuple[int, set[str]]:
        """Appearances the new version of the source no longer lists go; papers left with none go too."""
        vanished = [(aid, pid) for key, (aid, pid) in existing.items() if key not in kept]
        if not vanished:
            return 0, set()
        aids = [aid for aid, _ in vanished]
        for start in range(0, len(aids), 500):
            self.conn.execute(delete(s.appearances).where(s.appearances.c.id.in_(aids[start:start + 500])))
        orphans = set()
        for _, pid in vanished:
            left = self.conn.execute(select(s.appearances.c.id).where(s.appearances.c.paper_id == pid).limit(1)).first()
            if left is None:
                orphans.add(pid)
        for pid in orphans:
            self.conn.execute(delete(s.paper_authors).where(s.paper_authors.c.paper_id == pid))
            self.conn.execute(delete(s.papers).where(s.papers.c.id == pid))
        return len(vanished), orphans
