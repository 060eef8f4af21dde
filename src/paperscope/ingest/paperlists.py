"""Paper Copilot ``paperlists`` JSON: one conference-year per file, a JSON list of paper records.

Files are named ``<venue><year>.json`` (``iclr2018.json``, ``nips2023.json``; ``.json.gz`` is read
transparently). Venue and year come from ``--venue``/``--year`` first, then the file name.

Fields read (others are ignored): ``id`` (the OpenReview forum id on OpenReview venues), ``title``,
``author`` (``;``-joined; a few files join with ``,``) or ``authors`` (``,``-joined), ``abstract``,
``tldr``, ``keywords`` (``;``), ``status``, ``track``, ``session``/``sess``, ``award``, links
(``site``, ``openreview``, ``or``, ``oa``, ``proceeding``, ``pdf``), ``arxiv`` and ``doi``.

``status`` is both the decision and, where it says so, how the paper was presented:

=====================================  ==============  ====================================
status                                 presentation    decision
=====================================  ==============  ====================================
Oral, Talk, Top-5%, Oral Workshop      oral            as written (Top-5%: ICLR 2023 notable)
Spotlight, Top-25%, Highlight(ed)      spotlight       as written
Poster, Poster Workshop, Workshop      poster          as written
Reject / Desk Reject / Withdraw        (none)          Rejected / Desk rejected / Withdrawn
Active (ICLR 2018, never decided)      (none)          No decision
Technical Paper, Long, Main, Findings  paper           as written (accepted, format unknown)
=====================================  ==============  ====================================

Rejected and withdrawn submissions are kept: they are real submissions and searchable, but they
carry no presentation type, so ``type:poster`` never returns them, and their decision says so.

A record with neither title nor authors is a ``Problem`` ("record N"): JSON has no useful line
numbers, so records are numbered from 1 in file order. A file cut short (a truncated download or
gzip) keeps every record before the cut and reports where it stopped.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from paperscope.ingest.base import Source, SourceError, looks_binary
from paperscope.model import Appearance, ImportItem, ImportOptions, Note, PaperRecord, Problem

# File-name stems -> how the venue is written.
VENUE_NAMES = {
    "3dv": "3DV", "aaai": "AAAI", "acl": "ACL", "acml": "ACML", "acmmm": "ACM MM", "ai4x": "AI4X",
    "aistats": "AISTATS", "alt": "ALT", "automl": "AutoML", "coling": "COLING", "colm": "COLM",
    "colt": "COLT", "corl": "CoRL", "cvpr": "CVPR", "eccv": "ECCV", "emnlp": "EMNLP", "iccv": "ICCV",
    "iclr": "ICLR", "icml": "ICML", "icra": "ICRA", "ijcai": "IJCAI", "iros": "IROS", "kdd": "KDD",
    "naacl": "NAACL", "nips": "NeurIPS", "neurips": "NeurIPS", "rss": "RSS", "siggraph": "SIGGRAPH",
    "siggraphasia": "SIGGRAPH Asia", "uai": "UAI", "wacv": "WACV", "www": "WWW", "miniconf": "MiniConf",
}

# status (lower case) -> (presentation, decision); decision None means "the status as written".
STATUS_MAP: dict[str, tuple[str | None, str | None]] = {
    "oral": ("oral", None),
    "talk": ("oral", None),
    "top-5%": ("oral", None),
    "oral workshop": ("oral", None),
    "spotlight": ("spotlight", None),
    "top-25%": ("spotlight", None),
    "highlight": ("spotlight", None),
    "highlighted": ("spotlight", None),
    "poster": ("poster", None),
    "poster workshop": ("poster", None),
    "workshop": ("poster", None),
    "reject": (None, "Rejected"),
    "rejected": (None, "Rejected"),
    "desk reject": (None, "Desk rejected"),
    "desk rejected": (None, "Desk rejected"),
    "withdraw": (None, "Withdrawn"),
    "withdrawn": (None, "Withdrawn"),
    "active": (None, "No decision"),
}
NO_STATUS = {"", "none", "null", "n/a", "unknown"}

_FILE_STEM = re.compile(r"^([a-z][a-z0-9]*?)[_-]?((?:19|20)\d\d)$", re.I)
# OpenReview forum ids: 8-14 url-safe characters, not a hex hash, not a word+number like "paper530".
_OPENREVIEW_ID = re.compile(r"^[A-Za-z0-9_-]{8,14}$")
_NOT_OPENREVIEW_ID = re.compile(r"^(?:[0-9a-f]+|[0-9]+|[A-Za-z]+_?[0-9]+)$")
_OPENREVIEW_LINK = re.compile(r"openreview\.net/(?:forum|pdf)\?(?:[^#\s]*&)?id=([A-Za-z0-9_-]+)")
_ARXIV_NEW = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
_ARXIV_OLD = re.compile(r"\b([a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\b")
_ARXIV_LINK = re.compile(r"arxiv\.org/(?:abs|pdf|html)/([^\s?#]+)", re.I)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)")
_WS = re.compile(r"\s+")


# --------------------------------------------------------------------------- shared helpers
# (tabular and miniconf use these too, so every importer reads ids and names the same way)

def venue_year_from_name(name: str) -> tuple[str | None, int | None]:
    """``iclr2018.json.gz`` -> ("ICLR", 2018); unknown names give (None, None)."""
    stem = name
    for suffix in (".gz", ".json", ".jsonl", ".csv", ".tsv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    m = _FILE_STEM.match(stem)
    if not m:
        return None, None
    return venue_display(m.group(1)), int(m.group(2))


def venue_display(token: str) -> str:
    return VENUE_NAMES.get(token.lower(), token.upper() if token.isalpha() and len(token) <= 6 else token)


def looks_like_openreview_id(value: str) -> bool:
    return bool(_OPENREVIEW_ID.match(value)) and not _NOT_OPENREVIEW_ID.match(value) and not value.startswith("site_")


def openreview_from_url(url: str) -> str | None:
    if "openreview.net" not in url:
        return None
    m = _OPENREVIEW_LINK.search(url)
    return m.group(1) if m else None


def arxiv_id(value: str) -> str | None:
    """A canonical arXiv id (no version) from an id, ``arXiv:...`` or an arxiv.org link."""
    value = value.strip()
    if not value:
        return None
    m = _ARXIV_LINK.search(value)
    if m:
        value = m.group(1)
        if value.lower().endswith(".pdf"):
            value = value[:-4]
    elif value[:6].lower() == "arxiv:":
        value = value[6:].strip()
    m = _ARXIV_NEW.search(value)
    if m:
        return m.group(1)
    m = _ARXIV_OLD.search(value)
    return m.group(1) if m else None


def doi_from(value: str) -> str | None:
    """A DOI from a bare DOI, ``doi:...`` or a URL that contains one (doi.org, publisher links)."""
    if "10." not in value:
        return None
    m = _DOI.search(_WS.sub("", value))
    if not m:
        return None
    return m.group(1).rstrip(".,;)/")


def split_names(value: Any) -> list[str]:
    """Author names from a list or a string joined by ``|``, ``;``, `` · ``, ``,`` or `` and ``."""
    if not value:
        return []
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("name") or item.get("fullname") or " ".join(
                    str(item.get(k, "")) for k in ("first", "last") if item.get(k))
            if item is not None:
                name = _WS.sub(" ", str(item)).strip()
                if name:
                    out.append(name)
        return out
    text = value if isinstance(value, str) else str(value)
    for sep in ("|", ";", "·", ","):
        if sep in text:
            parts = text.split(sep)
            break
    else:
        parts = [text]
    if " and " not in text and "\n" not in text and "  " not in text and "\t" not in text:
        return [p for p in (part.strip() for part in parts) if p]
    out = []
    for part in parts:
        part = " ".join(part.split())
        if not part:
            continue
        if " and " in part:
            out.extend(p.strip() for p in part.split(" and ") if p.strip())
        elif part.startswith("and "):
            out.append(part[4:].strip())
        else:
            out.append(part)
    return out


def split_keywords(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [k for k in (_WS.sub(" ", str(v)).strip() for v in value if v is not None) if k]
    text = value if isinstance(value, str) else str(value)
    for sep in ("|", ";", ","):
        if sep in text:
            return [k for k in (" ".join(p.split()) for p in text.split(sep)) if k]
    text = " ".join(text.split())
    return [text] if text else []


def map_status(status: str) -> tuple[str | None, str | None]:
    """(presentation, decision) for a paperlists-style status / decision string."""
    raw = _WS.sub(" ", status).strip()
    low = raw.lower()
    if low in NO_STATUS:
        return None, None
    if low in STATUS_MAP:
        presentation, decision = STATUS_MAP[low]
        return presentation, decision or raw
    # "Accept (Oral)", "Accept: notable-top-5%", "poster accept", "Reject", ...
    if "withdraw" in low:
        return None, raw
    if "reject" in low:
        return None, raw
    if "oral" in low or "top-5%" in low or "top 5%" in low:
        return "oral", raw
    if "spotlight" in low or "top-25%" in low or "top 25%" in low or "highlight" in low:
        return "spotlight", raw
    if "poster" in low:
        return "poster", raw
    if "talk" in low:
        return "talk", raw
    if low.startswith("accept"):
        return "paper", raw
    return "paper", raw


def record_json(obj: Any, limit: int = 4000) -> str:
    try:
        text = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(obj)
    return text[:limit]


# --------------------------------------------------------------------------- streaming JSON

_WS_CHARS = " \t\n\r"


def iter_json_array(text: str) -> Iterator[tuple[int, Any] | tuple[int, json.JSONDecodeError]]:
    """Elements of a JSON array with their start offset, decoded one at a time.

    For a cut or broken array, the elements before the damage are yielded and then one
    ``(offset, JSONDecodeError)``; iteration stops there. Raises ``ValueError`` if the text does
    not start with ``[``.
    """
    decoder = json.JSONDecoder()
    n = len(text)
    pos = 0
    while pos < n and text[pos] in _WS_CHARS:
        pos += 1
    if pos >= n or text[pos] != "[":
        raise ValueError("not a JSON array")
    pos += 1
    expect_value = True
    first = True
    while True:
        while pos < n and text[pos] in _WS_CHARS:
            pos += 1
        if pos >= n:
            yield pos, json.JSONDecodeError("the list is not closed: the data ends here", text, pos)
            return
        ch = text[pos]
        if ch == "]" and (first or not expect_value):
            return
        if not expect_value:
            if ch != ",":
                yield pos, json.JSONDecodeError("expected ',' or ']' between records", text, pos)
                return
            pos += 1
            expect_value = True
            continue
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield pos, exc
            return
        yield pos, value
        pos = end
        expect_value = False
        first = False


def read_text(source: Source) -> str:
    """The source's text, where a file cut inside a multi-byte character loses only that character.

    (``Source.text`` would read the whole file as Windows-1252 because its last bytes are not
    valid UTF-8; for a truncated download the cut is reported by the parser instead.)
    """
    data = source.data
    if looks_binary(data):
        raise SourceError("binary data, not a text page, feed or data file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return source.text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            try:
                return data[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
        return source.text


def json_reason(exc: json.JSONDecodeError) -> str:
    reason = re.sub(r"\s+(?:starting )?at$", "", exc.msg).rstrip(":").strip() or "malformed JSON"
    return reason[0].lower() + reason[1:]


def cut_problem(text: str, cut: tuple[int, json.JSONDecodeError], read: int, noun: str) -> Problem:
    """The Problem for a JSON array that breaks off after ``read`` good elements."""
    start, exc = cut
    what = "the data ends" if not text.rstrip().endswith("]") else "the JSON is broken"
    return Problem(
        message=(f"{what} inside {noun} {read + 1}, which starts at {where(text, start)} "
                 f"({json_reason(exc)} at {where(text, exc.pos)}): the {read:,} {noun}s before it were read, "
                 "anything after it is lost"),
        line=None,
        raw=text[start: start + 2000],
    )


def where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}, character {pos:,}"


# --------------------------------------------------------------------------- the importer

_KEYS = ("title", "status", "track")


class PaperlistsImporter:
    name = "paperlists"
    description = "Paper Copilot paperlists JSON (<venue><year>.json[.gz]): titles, authors, abstracts, decisions"

    def sniff(self, source: Source) -> float:
        if source.is_dir:
            return 0.0
        head = source.head(8000).lstrip()
        if not head.startswith("["):
            return 0.0
        body = head[1:].lstrip()
        if not body.startswith("{"):
            return 0.0
        score = 0.0
        if '"title"' in head:
            score = 0.3
            if '"status"' in head and '"track"' in head:
                score = 0.9
            elif '"status"' in head or '"track"' in head:
                score = 0.6
        venue, year = venue_year_from_name(source.name)
        if score and year:
            score = min(0.95, score + 0.05)
        return score

    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]:
        text = read_text(source)
        venue_opt, year_opt = options.venue, options.year
        file_venue, file_year = venue_year_from_name(source.name)
        venue = venue_opt or file_venue
        year = year_opt or file_year
        if not venue or not year:
            missing = " and ".join(w for w, v in (("venue", venue), ("year", year)) if not v)
            yield Note(f"the file name {source.name!r} does not say the {missing}; pass --venue/--year "
                       "(records that carry their own year keep it)")

        cut: tuple[int, json.JSONDecodeError] | None = None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            data, cut = self._salvage(text, exc)
        if not isinstance(data, list):
            kind = _json_kind(type(data).__name__)
            raise SourceError(f"expected a JSON list of paper records, found a JSON {kind}")
        build = self._builder(venue, year, options.session)
        for number, rec in enumerate(data, start=1):
            item = build(number, rec)
            yield item if item is not None else _problem_for(number, rec)
        if cut is not None:
            yield cut_problem(text, cut, len(data), "record")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _salvage(text: str, first_error: json.JSONDecodeError) -> tuple[list, tuple[int, json.JSONDecodeError]]:
        records: list = []
        try:
            for pos, value in iter_json_array(text):
                if isinstance(value, json.JSONDecodeError):
                    if not records:
                        raise SourceError(f"not readable JSON: {json_reason(value)} at {where(text, value.pos)}; "
                                          "no record could be read")
                    return records, (pos, value)
                records.append(value)
        except ValueError:
            raise SourceError(f"not a JSON list: {json_reason(first_error)} at {where(text, first_error.pos)}") from None
        # The element scan found no damage: the error lies after the closing bracket (trailing junk).
        return records, (first_error.pos, first_error)

    @staticmethod
    def _builder(venue: str | None, year: int | None, default_session: str | None = None):
        status_cache: dict[str, tuple[str | None, str | None]] = {}
        looks_or = looks_like_openreview_id

        def build(number: int, rec: Any) -> PaperRecord | None:
            if not isinstance(rec, dict):
                return None
            get = rec.get
            title = get("title")
            title = title.strip() if isinstance(title, str) else ("" if title is None else str(title).strip())
            raw_authors = get("author")
            if raw_authors is None or raw_authors == "":
                raw_authors = get("authors")
            authors = split_names(raw_authors) if raw_authors else []
            if not title and not authors:
                return None

            ids: dict[str, str] = {}
            rid = get("id")
            rid = rid.strip() if isinstance(rid, str) else ("" if rid is None else str(rid))
            site = get("site")
            site = site.strip() if isinstance(site, str) else ""
            pdf = get("pdf")
            pdf = pdf if isinstance(pdf, str) else ""
            url = site or None
            # OpenReview: a link names the forum; otherwise the id itself on OpenReview venues.
            forum = None
            or_link = get("openreview") or get("or")
            if isinstance(or_link, str) and "openreview.net" in or_link:
                forum = openreview_from_url(or_link)
            if forum is None and "openreview.net" in site:
                forum = openreview_from_url(site)
            if forum is None and "openreview.net" in pdf:
                forum = openreview_from_url(pdf)
            if forum:
                ids["openreview"] = forum
                url = url or f"https://openreview.net/forum?id={forum}"
            elif rid and looks_or(rid):
                ids["openreview"] = rid
            ax = get("arxiv")
            found = arxiv_id(ax) if isinstance(ax, str) and ax else None
            if found is None:
                oa = get("oa")
                for link in (site, pdf, oa if isinstance(oa, str) else ""):
                    if "arxiv.org" in link:
                        found = arxiv_id(link)
                        if found:
                            break
            if found:
                ids["arxiv"] = found
            doi = get("doi")
            found = None
            if isinstance(doi, str) and doi:
                found = doi_from(doi)
            elif "doi.org/" in site:
                found = doi_from(site)
            if found:
                ids["doi"] = found

            status = get("status")
            presentation = decision = None
            if isinstance(status, str) and status:
                mapped = status_cache.get(status)
                if mapped is None:
                    mapped = status_cache[status] = map_status(status)
                presentation, decision = mapped

            session = get("session") or get("sess") or default_session
            award = get("award")
            if award is not None:
                award = _award(award)
            if not url:
                for field_name in ("oa", "proceeding", "url_paper", "pdf"):
                    link = get(field_name)
                    if isinstance(link, str) and link.startswith("http"):
                        url = link.strip()
                        break
            track = get("track")
            rec_year = year
            if rec_year is None:
                ry = get("year")
                if isinstance(ry, int) or (isinstance(ry, str) and ry.isdigit()):
                    rec_year = int(ry)
            abstract = get("abstract")
            tldr = get("tldr")
            keywords = get("keywords")
            paper = PaperRecord(
                title=title,
                authors=authors,
                abstract=abstract.strip() if isinstance(abstract, str) else "",
                ids=ids,
                keywords=split_keywords(keywords) if keywords else [],
                tldr=tldr.strip() if isinstance(tldr, str) else "",
                year=rec_year,
                flags=[] if title else ["missing_title"],
                appearance=Appearance(
                    venue=venue,
                    year=rec_year,
                    track=track.strip() or None if isinstance(track, str) else None,
                    session=session.strip() or None if isinstance(session, str) else None,
                    presentation=presentation,
                    decision=decision,
                    award=award,
                    url=url,
                ),
                key=f"id:{rid}" if rid else "",
                line=number,
            )
            return paper

        return build


def _award(value: Any) -> str | None:
    """paperlists marks awards with ``true``; a string names the award itself."""
    if value is True:
        return "Award"
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in ("false", "0", "no", "none"):
            return None
        return "Award" if text.lower() == "true" else text
    return None


def _json_kind(python_type: str) -> str:
    return {"dict": "object", "str": "string", "int": "number", "float": "number", "bool": "boolean",
            "NoneType": "null"}.get(python_type, python_type)


def _problem_for(number: int, rec: Any) -> Problem:
    if not isinstance(rec, dict):
        what = _json_kind(type(rec).__name__)
        return Problem(message=f"record {number}: expected a JSON object, found a {what}", line=number,
                       raw=record_json(rec))
    return Problem(message=f"record {number}: no title and no authors, so there is no paper to keep",
                   line=number, raw=record_json(rec))


IMPORTER = PaperlistsImporter()
