"""Your library: papers you saved, in tags (which nest like folders), with notes and a read state.

The service the CLI and the web call; storage is :mod:`paperscope.catalog.library`.

- Save any catalogue paper (``save``), or keep a paper the catalogue does not have as a
  *profile-only* entry: it has its own title, authors, abstract and ids, and still tells the
  recommender what you read.
- Import what a reference manager exports: BibTeX (Zotero, JabRef, Mendeley conventions: LaTeX accents
  such as ``{\\"u}`` or ``\\'{e}``, ``and``-joined authors, tags in ``keywords``/``groups``/
  ``mendeley-tags``, notes in ``annote``/``note``, JabRef's ``readstatus``) and CSL JSON (Zotero's
  "CSL JSON" export). Entries are matched to catalogue papers by DOI, arXiv id or OpenReview id
  first, then by normalised title when the authors agree; never on weaker evidence. Unmatched
  entries become profile-only entries. The report says which matched and how.
- "These are my papers" (``add_my_papers``): an author's papers, found by name, tagged ``mine``.
- Export the whole library as JSON (everything, read back exactly by ``import_library``) or BibTeX
  (tags in ``keywords``, note in ``annote``, read state in ``readstatus``, the catalogue id in
  ``paperscope-id``: read back by the same importer).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from paperscope.catalog import library as store
from paperscope.catalog.library import READ_STATES, LibraryEntry

LOCAL_USER = "local"
MINE_TAG = "mine"
EXPORT_FORMAT = "paperscope-library"
EXPORT_VERSION = 1


class LibraryError(ValueError):
    """Something the user asked that cannot be done; the message says what to do instead."""


# =============================================================================================
# The function the planner calls
# =============================================================================================


def library_paper_ids(catalog, user: str = LOCAL_USER, tag: str | None = None) -> list[str]:
    """Catalogue paper ids in ``user``'s library (with ``tag`` or a sub-tag), oldest saved first."""
    return store.library_paper_ids(catalog, user, tag)


# =============================================================================================
# Saving, tagging, notes, read state
# =============================================================================================


def clean_tag(tag: str) -> str:
    """A tag as stored: trimmed, single spaces, ``/`` between folder levels, no commas (BibTeX lists)."""
    parts = [" ".join(p.replace(",", " ").split()) for p in (tag or "").split("/")]
    return "/".join(p for p in parts if p)


def clean_tags(tags: Iterable[str] | None) -> list[str]:
    out = []
    for t in tags or []:
        for piece in str(t).split(","):
            c = clean_tag(piece)
            if c:
                out.append(c)
    return list(dict.fromkeys(out))


def _paper_snapshot(paper: dict[str, Any]) -> dict[str, Any]:
    apps = paper.get("appearances") or []
    venue = next((a.get("venue") for a in apps if a.get("venue")), None)
    year = paper.get("year") or next((a.get("year") for a in apps if a.get("year")), None)
    return {"paper_id": paper["id"], "title": paper.get("title") or "", "authors": list(paper.get("authors") or []),
            "abstract": paper.get("abstract") or "", "year": year, "venue": venue, "ids": dict(paper.get("ids") or {})}


def save(catalog, user: str, paper_id: str, tags: Iterable[str] = (), note: str | None = None,
         read_state: str | None = None, origin: str = "saved") -> tuple[LibraryEntry, bool]:
    """Save a catalogue paper (again: adds tags, keeps the rest). Returns (entry, whether it is new)."""
    paper = catalog.paper(paper_id)
    if paper is None:
        raise LibraryError(f"no paper with id {paper_id!r} in this catalogue (find ids with `paperscope search`)")
    _check_state(read_state)
    entry = _paper_snapshot(paper) | {"entry_key": paper_id, "origin": origin}
    if note is not None:
        entry["note"] = note
    if read_state:
        entry["read_state"] = read_state
    return store.upsert_entry(catalog, user, entry, tags=clean_tags(tags))


def _check_state(read_state: str | None) -> None:
    if read_state and read_state not in READ_STATES:
        raise LibraryError(f"the read state is one of {', '.join(READ_STATES)} (not {read_state!r})")


def resolve(catalog, user: str, refs: Iterable[str]) -> tuple[list[LibraryEntry], list[str]]:
    """Entries named by ``refs``: an entry number (``12`` or ``#12``), a paper id, or an entry key.

    Returns (entries found, refs that name nothing in the library).
    """
    found: dict[int, LibraryEntry] = {}
    missing = []
    for ref in refs:
        ref = str(ref).strip()
        hits: list[LibraryEntry] = []
        number = ref[1:] if ref.startswith("#") else ref
        if number.isdigit():
            hits = store.get_entries(catalog, user, ids=[int(number)])
        if not hits:
            hits = store.get_entries(catalog, user, keys=[ref], paper_ids=[ref])
        if hits:
            for h in hits:
                found[h.id] = h
        else:
            missing.append(ref)
    return list(found.values()), missing


def _entries_or_fail(catalog, user: str, refs: Iterable[str]) -> list[LibraryEntry]:
    entries, missing = resolve(catalog, user, refs)
    if missing:
        raise LibraryError(f"not in your library: {', '.join(missing)} (see `paperscope library list`)")
    return entries


def remove(catalog, user: str, refs: Iterable[str]) -> int:
    return store.remove_entries(catalog, user, [e.id for e in _entries_or_fail(catalog, user, refs)])


def tag(catalog, user: str, refs: Iterable[str], add: Iterable[str] = (), remove_: Iterable[str] = ()) -> list[LibraryEntry]:
    entries = _entries_or_fail(catalog, user, refs)
    ids = [e.id for e in entries]
    store.add_tags(catalog, user, ids, clean_tags(add))
    store.remove_tags(catalog, user, ids, clean_tags(remove_))
    return store.get_entries(catalog, user, ids=ids)


def set_note(catalog, user: str, refs: Iterable[str], note: str) -> list[LibraryEntry]:
    entries = _entries_or_fail(catalog, user, refs)
    store.update_entries(catalog, user, [e.id for e in entries], note=note)
    return store.get_entries(catalog, user, ids=[e.id for e in entries])


def set_read(catalog, user: str, refs: Iterable[str], state: str = "read") -> list[LibraryEntry]:
    _check_state(state)
    entries = _entries_or_fail(catalog, user, refs)
    store.update_entries(catalog, user, [e.id for e in entries], read_state=state)
    return store.get_entries(catalog, user, ids=[e.id for e in entries])


def entries(catalog, user: str, tag: str | None = None, read_state: str | None = None,
            query: str | None = None) -> list[LibraryEntry]:
    _check_state(read_state)
    return store.list_entries(catalog, user, tag=clean_tag(tag) if tag else None, read_state=read_state, query=query)


def tags(catalog, user: str) -> list[tuple[str, int]]:
    return store.tag_counts(catalog, user)


def saved_ids(catalog, user: str, paper_ids: Iterable[str]) -> set[str]:
    """Which of ``paper_ids`` are in the library."""
    return {e.paper_id for e in store.get_entries(catalog, user, paper_ids=list(paper_ids)) if e.paper_id}


# =============================================================================================
# "These are my papers"
# =============================================================================================


@dataclass
class MineResult:
    author: str
    found: list[dict[str, Any]] = field(default_factory=list)   # {id, title, year, new}
    tag: str = MINE_TAG

    def as_dict(self) -> dict[str, Any]:
        return {"author": self.author, "tag": self.tag, "papers": self.found,
                "added": sum(1 for p in self.found if p.get("new"))}


def add_my_papers(catalog, user: str, author: str, tag: str = MINE_TAG, dry_run: bool = False) -> MineResult:
    """Find ``author``'s papers in the catalogue (name folded for case and accents) and save them with
    ``tag``: a profile in one step. ``dry_run`` only lists them."""
    author = " ".join((author or "").split())
    if not author:
        raise LibraryError("give your name as it appears on your papers, e.g. \"Yoshua Bengio\"")
    ids = catalog.author_papers(author)
    result = MineResult(author=author, tag=clean_tag(tag) or MINE_TAG)
    if not ids:
        raise LibraryError(f"no papers by {author!r} in this catalogue; check the spelling "
                           f"(`paperscope search 'author:\"{author}\"'`) or import your papers from a BibTeX file")
    have = saved_ids(catalog, user, ids)
    for paper in sorted(catalog.papers(ids, with_appearances=False), key=lambda p: (-(p.get("year") or 0), p["title"])):
        new = paper["id"] not in have
        if not dry_run:
            save(catalog, user, paper["id"], tags=[result.tag], origin=f"mine:{author}")
        result.found.append({"id": paper["id"], "title": paper["title"], "year": paper.get("year"), "new": new})
    return result


# =============================================================================================
# LaTeX -> text (what reference managers write in BibTeX)
# =============================================================================================

_ESCAPED = {"\\&": "&", "\\%": "%", "\\$": "$", "\\#": "#", "\\_": "_", "\\{": "{", "\\}": "}"}
_TEXT_COMMANDS = {
    "textbackslash": "\\", "textless": "<", "textgreater": ">", "textasciitilde": "~", "textasciicircum": "^",
    "textbar": "|", "textbraceleft": "{", "textbraceright": "}", "textendash": "–", "textemdash": "—",
    "textquoteleft": "‘", "textquoteright": "’",
    "textquotedblleft": "“", "textquotedblright": "”", "textdollar": "$", "textunderscore": "_",
    "ss": "ß", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "l": "ł", "L": "Ł",
    "i": "ı", "j": "ȷ", "aa": "å", "AA": "Å", "dj": "đ", "DJ": "Đ", "th": "þ", "TH": "Þ", "ldots": "…", "dots": "…",
}
_ACCENT_MARKS = {
    "`": "\u0300", "'": "\u0301", "^": "\u0302", "~": "\u0303", "=": "\u0304", "u": "\u0306", ".": "\u0307",
    '"': "\u0308", "r": "\u030a", "H": "\u030b", "v": "\u030c", "c": "\u0327", "k": "\u0328", "d": "\u0323",
}
# \'e  \'{e}  {\'e}  \'{\i}  \"\i  \c{c}  \v r
_ACCENT = re.compile(r"""\\(?P<cmd>[`'^~=."]|[uHvckrd](?=[\s{\\]))\s*(?:\{\s*(?P<a>\\[ij]|[A-Za-z])\s*\}|(?P<b>\\[ij](?![A-Za-z])|[A-Za-z]))""")
_COMMAND = re.compile(r"\\([A-Za-z]+)(?:\{\})?")
_FORMAT_COMMAND = re.compile(r"\\(?:textbf|textit|emph|textsc|texttt|textrm|textsf|mathrm|mathbf|mathit|mathcal|mathbb|text|url|href\{[^{}]*\}|underline|uppercase|MakeUppercase|NoCaseChange)\s*\{")


def latex_to_text(value: str, keep_lines: bool = False) -> str:
    """Readable Unicode from a BibTeX field: accents and escapes decoded, grouping braces and math
    delimiters dropped, ``--``/``---`` as dashes. ``keep_lines`` keeps line breaks (notes)."""
    if not value:
        return ""
    text = value
    holds: list[str] = []

    def hold(s: str) -> str:
        holds.append(s)
        return f"\ue000{len(holds) - 1}\ue001"

    text = text.replace("\\\\", hold("\n") if keep_lines else " ")
    for esc, ch in _ESCAPED.items():
        text = text.replace(esc, hold(ch))

    def accent(m: re.Match) -> str:
        base = m.group("a") or m.group("b")
        base = {"\\i": "i", "\\j": "j"}.get(base, base)
        return hold(unicodedata.normalize("NFC", base + _ACCENT_MARKS[m.group("cmd")]))

    text = _ACCENT.sub(accent, text)
    text = _FORMAT_COMMAND.sub("{", text)

    def command(m: re.Match) -> str:
        name = m.group(1)
        if name in _TEXT_COMMANDS:
            return hold(_TEXT_COMMANDS[name])
        from paperscope.text import _LATEX_SYMBOLS

        return hold(_LATEX_SYMBOLS[name]) if name in _LATEX_SYMBOLS else ""

    text = _COMMAND.sub(command, text)
    text = text.replace("{", "").replace("}", "").replace("$", "")
    text = text.replace("---", "—").replace("--", "–").replace("``", "“").replace("''", "”")
    text = re.sub(r"(?<!\\)~", " ", text)
    if keep_lines:
        text = "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()
    else:
        text = " ".join(text.split())
    for _ in range(2):  # placeholders inside placeholders (an accent over \i)
        text = re.sub("\ue000(\\d+)\ue001", lambda m: holds[int(m.group(1))], text)
    return unicodedata.normalize("NFC", text)


def _split_top(value: str, sep: re.Pattern) -> list[str]:
    """Split on ``sep`` outside braces."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(value):
        ch = value[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            m = sep.match(value, i)
            if m:
                parts.append(value[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_COMMA = re.compile(r"\s*,\s*")


def bibtex_names(value: str) -> list[str]:
    """``Müller, Jörg and {van der Berg}, Anna and Ada Lovelace and others`` -> display names."""
    names = []
    for raw in _split_top(" ".join((value or "").split()), _AND):
        if raw.lower() == "others":
            continue
        parts = _split_top(raw, _COMMA)
        if len(parts) == 1:
            name = parts[0]
        elif len(parts) == 2:      # von Last, First
            name = f"{parts[1]} {parts[0]}"
        else:                      # von Last, Jr, First
            name = f"{parts[2]} {parts[0]} {parts[1]}"
        name = latex_to_text(name)
        if name:
            names.append(name)
    return names


# =============================================================================================
# Importing
# =============================================================================================


@dataclass
class ImportedEntry:
    """One record of an imported file, before it is matched to the catalogue."""

    title: str
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    year: int | None = None
    venue: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    note: str = ""
    read_state: str | None = None
    cite_key: str | None = None
    paperscope_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class ImportReport:
    source: str
    format: str
    matched: list[dict[str, Any]] = field(default_factory=list)       # {title, paper_id, how, new}
    profile_only: list[dict[str, Any]] = field(default_factory=list)  # {title, entry_key, new}
    problems: list[dict[str, Any]] = field(default_factory=list)      # {line, problem}
    feedback: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "entries": len(self.matched) + len(self.profile_only),
                "matched": len(self.matched), "profile_only": len(self.profile_only),
                "new": sum(1 for x in self.matched + self.profile_only if x.get("new")),
                "matched_by": _count(x["how"] for x in self.matched),
                "matched_papers": self.matched, "profile_only_papers": self.profile_only,
                "problems": self.problems, "feedback": self.feedback}


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


_ARXIV_NEW = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
_ARXIV_OLD = re.compile(r"\b([a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\b")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}]+)", re.IGNORECASE)
_OPENREVIEW = re.compile(r"openreview\.net/(?:forum|pdf)\?id=([A-Za-z0-9_\-]+)")


def _arxiv_from(*values: str | None) -> str | None:
    for v in values:
        if not v:
            continue
        if "arxiv" in v.lower() or re.fullmatch(r"\s*\d{4}\.\d{4,5}(v\d+)?\s*", v):
            m = _ARXIV_NEW.search(v) or _ARXIV_OLD.search(v)
            if m:
                return m.group(1)
    return None


def _doi_from(*values: str | None) -> str | None:
    for v in values:
        if v:
            m = _DOI.search(v)
            if m:
                doi = m.group(1).rstrip(".,;")
                if "arxiv" in doi.lower():   # 10.48550/arXiv.2101.00001: the arXiv id says it better
                    continue
                return doi
    return None


def _year(value: Any) -> int | None:
    m = re.search(r"\b(1[89]\d\d|2[01]\d\d)\b", str(value or ""))
    return int(m.group(1)) if m else None


# BibTeX fields paperscope keeps in its own columns (the rest travel in ``extra``).
_BIB_MAPPED = {"title", "author", "abstract", "year", "doi", "eprint", "archiveprefix", "keywords", "groups",
               "mendeley-tags", "annote", "readstatus", "paperscope-id", "paperscope-origin", "paperscope-added"}


def parse_bibtex(text: str) -> tuple[list[ImportedEntry], list[dict[str, Any]]]:
    """Entries of a BibTeX file and the problems met (an entry without a title is a problem)."""
    import bibtexparser
    from bibtexparser.bparser import BibTexParser

    parser = BibTexParser(common_strings=True)
    parser.ignore_nonstandard_types = False
    parser.homogenize_fields = False
    try:
        db = bibtexparser.loads(text, parser=parser)
    except Exception as exc:  # noqa: BLE001 - a file the parser cannot read is reported, not raised
        return [], [{"line": None, "problem": f"not readable as BibTeX: {exc}"}]
    lines = _entry_lines(text)
    out: list[ImportedEntry] = []
    problems = []
    for raw in db.entries:
        f = {k.lower(): v for k, v in raw.items() if k not in ("ENTRYTYPE", "ID")}
        line = lines.get(raw.get("ID"))
        title = latex_to_text(f.get("title", ""))
        if not title:
            problems.append({"line": line, "problem": f"entry {raw.get('ID')!r} has no title; skipped"})
            continue
        ids: dict[str, str] = {}
        arxiv = _arxiv_from(f.get("eprint") if "arxiv" in (f.get("archiveprefix", "") + f.get("eprinttype", "")).lower() or
                            re.fullmatch(r"\s*\d{4}\.\d{4,5}(v\d+)?\s*", f.get("eprint", "")) else None,
                            f.get("url"), f.get("journal"), f.get("note"), f.get("howpublished"))
        if arxiv:
            ids["arxiv"] = arxiv
        doi = _doi_from(_unescape(f.get("doi")), f.get("url") if "doi.org" in f.get("url", "") else None)
        if doi:
            ids["doi"] = doi
        m = _OPENREVIEW.search(f.get("url", "") + " " + f.get("howpublished", "") + " " + f.get("note", ""))
        if m:
            ids["openreview"] = m.group(1)
        tags: list[str] = []
        for name in ("keywords", "groups", "mendeley-tags"):
            if f.get(name):
                tags += [latex_to_text(t) for t in re.split(r"[,;]", f[name])]
        state = (f.get("readstatus") or "").strip().lower()
        read_state = {"read": "read", "skimmed": "reading", "reading": "reading", "unread": "unread"}.get(state)
        note = latex_to_text(f.get("annote") or "", keep_lines=True)
        venue = latex_to_text(f.get("booktitle") or f.get("journal") or "") or None
        extra_fields = {k: v for k, v in f.items() if k not in _BIB_MAPPED}
        extra: dict[str, Any] = {"bibtex": {"type": raw.get("ENTRYTYPE", "misc"), "fields": extra_fields}}
        if f.get("paperscope-origin"):
            extra["origin"] = f["paperscope-origin"]
        if f.get("paperscope-added"):
            extra["added_at"] = f["paperscope-added"]
        out.append(ImportedEntry(
            title=title, authors=bibtex_names(f.get("author", "")), abstract=latex_to_text(f.get("abstract", "")),
            year=_year(f.get("year") or f.get("date")), venue=venue, ids=ids, tags=tags, note=note,
            read_state=read_state, cite_key=raw.get("ID"), paperscope_id=(f.get("paperscope-id") or "").strip() or None,
            extra=extra, line=line))
    return out, problems


def _unescape(value: str | None) -> str | None:
    """``10.1000/a\\_b`` -> ``10.1000/a_b``: exporters that escape verbatim fields (DOIs) as text."""
    if not value:
        return value
    for esc, ch in _ESCAPED.items():
        value = value.replace(esc, ch)
    return value


def _entry_lines(text: str) -> dict[str, int]:
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*@\w+\s*[{(]\s*([^,\s]+)\s*,", line)
        if m:
            out.setdefault(m.group(1), n)
    return out


def parse_csl_json(items: list[dict[str, Any]]) -> tuple[list[ImportedEntry], list[dict[str, Any]]]:
    """Entries of a CSL JSON export (Zotero: File > Export Library > CSL JSON)."""
    out: list[ImportedEntry] = []
    problems = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            problems.append({"line": n, "problem": "item is not a JSON object; skipped"})
            continue
        title = " ".join(str(item.get("title") or "").split())
        if not title:
            problems.append({"line": n, "problem": f"item {item.get('id')!r} has no title; skipped"})
            continue
        from paperscope.text import clean_markup

        authors = []
        for a in item.get("author") or []:
            if not isinstance(a, dict):
                continue
            if a.get("literal"):
                authors.append(" ".join(str(a["literal"]).split()))
            else:
                name = " ".join(str(p) for p in (a.get("given"), a.get("non-dropping-particle") or a.get("dropping-particle"),
                                                  a.get("family"), a.get("suffix")) if p)
                if name.strip():
                    authors.append(" ".join(name.split()))
        year = None
        issued = item.get("issued") or {}
        if isinstance(issued, dict):
            parts = issued.get("date-parts") or []
            if parts and parts[0] and str(parts[0][0]).strip():
                year = _year(parts[0][0])
            year = year or _year(issued.get("raw") or issued.get("literal"))
        ids: dict[str, str] = {}
        arxiv = _arxiv_from(item.get("URL"), item.get("note"), item.get("number"), item.get("container-title"),
                            item.get("archive_location"))
        if arxiv:
            ids["arxiv"] = arxiv
        doi = _doi_from(item.get("DOI"))
        if doi:
            ids["doi"] = doi
        m = _OPENREVIEW.search(str(item.get("URL") or ""))
        if m:
            ids["openreview"] = m.group(1)
        tags = [t.strip() for t in re.split(r"[,;]", str(item.get("keyword") or "")) if t.strip()]
        out.append(ImportedEntry(
            title=clean_markup(title), authors=authors, abstract=clean_markup(str(item.get("abstract") or "")),
            year=year, venue=str(item.get("container-title") or "") or None, ids=ids, tags=tags,
            cite_key=str(item.get("citation-key") or item.get("id") or "") or None, extra={"csl": item}, line=n))
    return out, problems


def _match(catalog, records: list[ImportedEntry]) -> list[tuple[str | None, str]]:
    """(catalogue paper id or None, how) for each record: strong ids first, then title + authors."""
    from paperscope.text import family_name_key, title_key

    known_ids = {p["id"] for p in catalog.papers([r.paperscope_id for r in records if r.paperscope_id], with_appearances=False)}
    by_kind = {kind: store.papers_by_strong_ids(catalog, kind, [r.ids.get(kind) for r in records if r.ids.get(kind)])
               for kind in ("openreview", "arxiv", "doi")}
    by_title = store.papers_by_title_keys(catalog, [title_key(r.title) for r in records])
    out: list[tuple[str | None, str]] = []
    for r in records:
        if r.paperscope_id and r.paperscope_id in known_ids:
            out.append((r.paperscope_id, "paperscope id"))
            continue
        hit = None
        for kind in ("openreview", "arxiv", "doi"):
            value = r.ids.get(kind)
            if value:
                pid = by_kind[kind].get(value.lower() if kind == "doi" else value)
                if pid:
                    hit = (pid, kind)
                    break
        if hit is None:
            candidates = by_title.get(title_key(r.title), [])
            mine = {family_name_key(a) for a in r.authors} - {""}
            for c in candidates:
                theirs = {family_name_key(a) for a in c["authors"]} - {""}
                if mine and theirs and mine & theirs:
                    hit = (c["id"], "title and authors")
                    break
            if hit is None and candidates and (not mine or not any(c["authors"] for c in candidates)):
                hit = (candidates[0]["id"], "title (no authors to compare)")
        out.append(hit or (None, "none"))
    return out


def _drop_generated(extra: dict[str, Any], paper: dict[str, Any]) -> None:
    """Forget the BibTeX fields paperscope itself writes for this catalogue paper (they carry nothing
    the catalogue does not), so a library exported to BibTeX and read back is what it was."""
    bib = extra.get("bibtex")
    if not bib:
        return
    from paperscope.export import to_bibtex

    head, body = to_bibtex(paper).split("\n", 1)
    generated = dict(_fields_of(body))
    fields = {k: v for k, v in (bib.get("fields") or {}).items() if generated.get(k) != v}
    if not fields and bib.get("type") == head[1:head.index("{")]:
        extra.pop("bibtex")
    else:
        bib["fields"] = fields


def _promote(catalog, user: str, ext_key: str, paper_id: str) -> None:
    """A profile-only entry whose paper the catalogue now has becomes that paper's entry (note, tags
    and read state kept), instead of a second entry beside it."""
    old = store.get_entries(catalog, user, keys=[ext_key])
    if not old:
        return
    if store.get_entries(catalog, user, keys=[paper_id]):
        current = store.get_entries(catalog, user, keys=[paper_id])[0]
        store.add_tags(catalog, user, [current.id], old[0].tags)
        store.remove_entries(catalog, user, [old[0].id])
    else:
        store.update_entries(catalog, user, [old[0].id], entry_key=paper_id, paper_id=paper_id)


def external_key(record: ImportedEntry) -> str:
    """The entry key of a profile-only paper: its strongest id, else its title key (stable across imports)."""
    from paperscope.text import short_id, title_key

    for kind in ("doi", "arxiv", "openreview"):
        if record.ids.get(kind):
            return f"ext:{kind}:{record.ids[kind].lower() if kind == 'doi' else record.ids[kind]}"
    return f"ext:title:{short_id(title_key(record.title) or record.title, 12)}"


def import_records(catalog, user: str, records: list[ImportedEntry], source: str, fmt: str,
                   tags: Iterable[str] = (), use_file_tags: bool = True) -> ImportReport:
    """Match records to the catalogue and save them (matched or profile-only); report what happened."""
    report = ImportReport(source=source, format=fmt)
    extra_tags = clean_tags(tags)
    matches = _match(catalog, records)
    papers = {p["id"]: p for p in catalog.papers([pid for pid, _ in matches if pid])}
    for record, (pid, how) in zip(records, matches):
        entry_tags = (clean_tags(record.tags) if use_file_tags else []) + extra_tags
        entry: dict[str, Any] = {"note": record.note or None, "read_state": record.read_state, "cite_key": record.cite_key,
                                 "origin": record.extra.pop("origin", None) or f"import:{Path(source).name}",
                                 "extra": record.extra, "added_at": record.extra.pop("added_at", None)}
        if pid:
            _promote(catalog, user, external_key(record), pid)
            entry |= _paper_snapshot(papers[pid]) | {"entry_key": pid}
            if not entry["abstract"] and record.abstract:
                entry["abstract"] = record.abstract
            _drop_generated(record.extra, papers[pid])
            from paperscope.export import bibtex_key

            if record.cite_key == bibtex_key(papers[pid]):
                entry["cite_key"] = None   # the key paperscope makes anyway (the export writes it again)
        else:
            entry |= {"entry_key": external_key(record), "paper_id": None, "title": record.title, "authors": record.authors,
                      "abstract": record.abstract, "year": record.year, "venue": record.venue, "ids": record.ids}
        stored, new = store.upsert_entry(catalog, user, entry, tags=entry_tags)
        item = {"title": stored.title, "entry": stored.id, "new": new}
        if pid:
            report.matched.append(item | {"paper_id": pid, "how": how})
        else:
            report.profile_only.append(item | {"entry_key": stored.entry_key})
    return report


def sniff_format(text: str, name: str = "") -> str:
    """``bibtex``, ``csl-json`` or ``paperscope-json`` from a file's content."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
            return "paperscope-json"
        if isinstance(data, list) or (isinstance(data, dict) and isinstance(data.get("items"), list)):
            return "csl-json"
    if re.search(r"^\s*@\w+\s*[{(]", text, re.MULTILINE):
        return "bibtex"
    raise LibraryError(f"{name or 'this file'} is neither BibTeX, CSL JSON nor a paperscope library export")


def import_file(catalog, user: str, path: Path | str, tags: Iterable[str] = (), use_file_tags: bool = True,
                fmt: str | None = None) -> ImportReport:
    """Import a BibTeX file, a CSL JSON file, or a paperscope library export (JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise LibraryError(f"cannot read {path}: {exc.strerror or exc}") from None
    return import_text(catalog, user, text, str(path), tags=tags, use_file_tags=use_file_tags, fmt=fmt)


def import_text(catalog, user: str, text: str, source: str = "import", tags: Iterable[str] = (),
                use_file_tags: bool = True, fmt: str | None = None) -> ImportReport:
    fmt = fmt or sniff_format(text, source)
    if fmt == "paperscope-json":
        return import_library(catalog, user, json.loads(text), source)
    if fmt == "csl-json":
        data = json.loads(text)
        records, problems = parse_csl_json(data["items"] if isinstance(data, dict) else data)
    elif fmt == "bibtex":
        records, problems = parse_bibtex(text)
    else:
        raise LibraryError(f"unknown format {fmt!r}: bibtex, csl-json or paperscope-json")
    report = import_records(catalog, user, records, source, fmt, tags=tags, use_file_tags=use_file_tags)
    report.problems = problems
    return report


# =============================================================================================
# Export and import of the whole library
# =============================================================================================


def export_library(catalog, user: str) -> dict[str, Any]:
    """Everything in the library as JSON: entries (with tags, notes, read state, dates, what their
    import carried), the "not relevant" feedback, the tag list. ``import_library`` reads it back."""
    from paperscope.catalog.store import utc_now

    items = []
    for e in sorted(store.list_entries(catalog, user), key=lambda e: e.id):
        d = e.as_dict()
        d.pop("id")
        d.pop("user_id")
        items.append(d)
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": utc_now(), "user": user,
            "tags": [t for t, _ in store.tag_counts(catalog, user)], "entries": items,
            "feedback": [{k: f[k] for k in ("paper_id", "kind", "tag", "title", "created_at")}
                         for f in store.list_feedback(catalog, user)]}


def import_library(catalog, user: str, data: dict[str, Any], source: str = "library.json") -> ImportReport:
    """Read back an ``export_library`` JSON: entries replace the ones with the same key (with their
    tags, note, read state and dates); papers the catalogue lacks stay as profile-only entries."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise LibraryError(f"{source} is not a paperscope library export")
    if int(data.get("version") or 0) > EXPORT_VERSION:
        raise LibraryError(f"{source} was written by a newer paperscope (version {data.get('version')})")
    report = ImportReport(source=source, format="paperscope-json")
    rows = [r for r in data.get("entries") or [] if isinstance(r, dict) and r.get("entry_key")]
    def linked(row: dict[str, Any]) -> str | None:
        return row.get("paper_id") or (row.get("extra") or {}).get("catalogue_paper_id")

    present = {p["id"] for p in catalog.papers([linked(r) for r in rows if linked(r)], with_appearances=False)}
    for n, row in enumerate(rows, 1):
        entry = {k: row.get(k) for k in ("entry_key", "paper_id", "title", "authors", "abstract", "year", "venue", "ids",
                                         "cite_key", "note", "read_state", "origin", "extra", "added_at", "updated_at")}
        entry["note"] = entry.get("note") or ""
        entry["read_state"] = entry.get("read_state") or "unread"
        extra = dict(entry.get("extra") or {})
        pid = linked(row)
        if pid and pid in present:
            entry["paper_id"] = pid
            extra.pop("catalogue_paper_id", None)
        elif pid:
            # the paper is not in this catalogue: keep it as a profile-only paper under the same key,
            # remembering its id so that an import where the paper is links it again
            entry["paper_id"] = None
            extra["catalogue_paper_id"] = pid
        entry["extra"] = extra
        try:
            stored, new = store.upsert_entry(catalog, user, entry, tags=clean_tags(row.get("tags") or []), replace=True)
        except ValueError as exc:
            report.problems.append({"line": n, "problem": str(exc)})
            continue
        item = {"title": stored.title, "entry": stored.id, "new": new}
        if stored.paper_id:
            report.matched.append(item | {"paper_id": stored.paper_id, "how": "paperscope id"})
        else:
            report.profile_only.append(item | {"entry_key": stored.entry_key})
    for f in data.get("feedback") or []:
        if isinstance(f, dict) and f.get("paper_id"):
            report.feedback += store.add_feedback(catalog, user, f["paper_id"], f.get("kind") or "not_relevant",
                                                  f.get("tag") or "", f.get("title") or "")
    return report


def export_bibtex(catalog, user: str, tag: str | None = None) -> str:
    """The library (or one tag of it) as BibTeX: catalogue papers as paperscope cites them, profile-only
    papers with the fields they were imported with; tags in ``keywords``, the note in ``annote``, the
    read state in ``readstatus`` (JabRef's field), the catalogue id in ``paperscope-id``."""
    from paperscope.export import bibtex_key, bibtex_name, latex_escape, to_bibtex

    chosen = store.list_entries(catalog, user, tag=clean_tag(tag) if tag else None)
    chosen.sort(key=lambda e: e.id)
    papers = {p["id"]: p for p in catalog.papers([e.paper_id for e in chosen if e.paper_id])}
    used: dict[str, int] = {}
    out = []
    for e in chosen:
        ours: list[tuple[str, str]] = []
        if e.tags:
            ours.append(("keywords", ", ".join(latex_escape(t) for t in e.tags)))
        if e.note:
            ours.append(("annote", latex_escape(e.note)))
        if e.read_state != "unread":
            ours.append(("readstatus", e.read_state))
        ours.append(("paperscope-origin", latex_escape(e.origin)))
        ours.append(("paperscope-added", e.added_at))
        bib = (e.extra or {}).get("bibtex")
        if e.paper_id and e.paper_id in papers and not bib:
            paper = papers[e.paper_id]
            text = to_bibtex(paper)
            head, body = text.split("\n", 1)
            entry_type = head[1:head.index("{")]
            fields = _fields_of(body)
            key = e.cite_key or bibtex_key(paper)
            if paper.get("abstract"):
                fields.append(("abstract", latex_escape(paper["abstract"])))
            fields.append(("paperscope-id", e.paper_id))
        else:
            # a profile-only paper, or one imported from BibTeX: its own entry type and fields come back
            bib = bib or {}
            entry_type = bib.get("type") or "misc"
            fields = [("title", latex_escape(e.title)), ("author", " and ".join(bibtex_name(a) for a in e.authors))]
            if e.year:
                fields.append(("year", str(e.year)))
            if e.ids.get("doi"):
                fields.append(("doi", latex_escape(e.ids["doi"])))
            if e.ids.get("arxiv"):
                fields += [("eprint", e.ids["arxiv"]), ("archiveprefix", "arXiv")]
            if e.abstract:
                fields.append(("abstract", latex_escape(e.abstract)))
            have = {n for n, _ in fields}
            raw = bib.get("fields") or {}
            if not raw and e.venue:
                raw = {"journal": latex_escape(e.venue)}
            if e.ids.get("openreview") and "url" not in raw:
                raw = raw | {"url": f"https://openreview.net/forum?id={e.ids['openreview']}"}
            fields += [(k, v) for k, v in raw.items() if k not in have and k not in _BIB_MAPPED]
            if e.paper_id:
                fields.append(("paperscope-id", e.paper_id))
            key = e.cite_key or bibtex_key({"title": e.title, "authors": e.authors, "year": e.year, "id": e.entry_key})
        n = used.get(key, 0)
        used[key] = n + 1
        if n:
            key = f"{key}{chr(ord('a') + n - 1) if n <= 26 else n}"
        fields += ours
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        out.append(f"@{entry_type}{{{key},\n{body}\n}}\n")
    return "\n".join(out)


def _fields_of(body: str) -> list[tuple[str, str]]:
    """The ``name = {value}`` lines of an entry written by :func:`paperscope.export.to_bibtex`."""
    fields = []
    for line in body.splitlines():
        m = re.match(r"\s+([\w-]+) = \{(.*)\},?$", line)
        if m:
            fields.append((m.group(1), m.group(2)))
    return fields
