"""Writers for what leaves paperscope: BibTeX entries (more formats join here).

BibTeX is read by tools that predate Unicode (classic ``bibtex``) and by tools that do not
(biber): entries are written so both read them right. Characters special to LaTeX are escaped,
accented Latin letters become LaTeX accent commands (``é`` -> ``{\\'e}``), and capitals inside
words of the title (``BERT``, ``GANs``) are braced so styles that lower-case titles keep them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable

from paperscope.text import clean_markup, strip_accents

# Combining marks -> LaTeX accent commands.
_ACCENTS = {
    "\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u",
    "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0327": "c",
    "\u0328": "k", "\u0323": "d",
}
# Letters with no decomposition that classic BibTeX still needs spelled in LaTeX.
_LETTERS = {
    "ß": r"{\ss}", "ø": r"{\o}", "Ø": r"{\O}", "æ": r"{\ae}", "Æ": r"{\AE}", "œ": r"{\oe}",
    "Œ": r"{\OE}", "ł": r"{\l}", "Ł": r"{\L}", "ı": r"{\i}", "đ": r"{\dj}", "Đ": r"{\DJ}",
    "þ": r"{\th}", "Þ": r"{\TH}", "–": "--", "—": "---", "“": "``", "”": "''", "‘": "`", "’": "'",
}
# Braces are written as commands, not ``\{``: BibTeX counts every brace, escaped or not, so one
# unmatched ``\{`` in a name ends the entry in the wrong place and the reader loses it.
_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}", "&": r"\&", "%": r"\%",
    "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}",
}
_STOPWORDS = frozenset("a an the on of in for to and with from by at as is are".split())  # as Google Scholar keys
_ASCII_LETTERS = {"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L",
                  "ı": "i", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th"}
_WORD = re.compile(r"[A-Za-z0-9]+")
# Venues that are feeds or preprint servers, not proceedings.
_NOT_PROCEEDINGS = ("hugging face", "arxiv", "papers with code", "openreview")


def latex_escape(text: str) -> str:
    """Text as LaTeX: special characters escaped, accented letters as accent commands."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _LETTERS:
            out.append(_LETTERS[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(_accented(ch))
    return "".join(out)


def _accented(ch: str) -> str:
    decomposed = unicodedata.normalize("NFD", ch)
    base, marks = decomposed[0], decomposed[1:]
    if not marks or ord(base) >= 128 or any(m not in _ACCENTS for m in marks):
        return ch  # Greek, CJK, symbols: left as UTF-8 (biber and modern LaTeX read them)
    if base == "i":
        base = r"\i"  # dotless i under an accent, as LaTeX expects
    for mark in marks:
        cmd = _ACCENTS[mark]
        base = f"\\{cmd}{base}" if not cmd.isalpha() else f"\\{cmd}{{{base}}}"
    return "{" + base + "}"


def bibtex_name(name: str) -> str:
    """An author for a BibTeX ``author`` list. A name holding a comma or the word "and" is braced,
    else BibTeX reads "King, Jr." as family name and given name, and "Anders And Ng" as two people."""
    escaped = latex_escape(" ".join(name.split()))
    return "{" + escaped + "}" if "," in name or _AND_WORD.search(name) else escaped


_AND_WORD = re.compile(r"(?:^|\s)and(?:\s|$)", re.IGNORECASE)


def _protect_capitals(title: str) -> str:
    """Brace words with a capital after their first letter (BERT, GANs, ImageNet) so styles keep them."""
    def protect(match: re.Match) -> str:
        word = match.group(0)
        return "{" + word + "}" if any(c.isupper() for c in word[1:]) else word
    return re.sub(r"(?<![\\A-Za-z])[A-Za-z][A-Za-z0-9]*", protect, title)


def bibtex_key(paper: dict[str, Any]) -> str:
    """``lastname2022firstword``: first author's family name, year, first significant title word."""
    authors = paper.get("authors") or []
    family = _ascii_word(authors[0].split()[-1]) if authors and authors[0].split() else ""
    year = paper.get("year") or _first(a.get("year") for a in paper.get("appearances") or []) or ""
    words = [w.lower() for w in _WORD.findall(_ascii_word_text(clean_markup(paper.get("title") or "")))]
    first = next((w for w in words if w not in _STOPWORDS), words[0] if words else "")
    key = f"{family.lower()}{year}{first}"
    return key or f"paper{paper.get('id', '')}"


def _ascii_word(text: str) -> str:
    text = "".join(_ASCII_LETTERS.get(ch, ch) for ch in text)
    return "".join(_WORD.findall(strip_accents(text)))


def _ascii_word_text(text: str) -> str:
    return strip_accents("".join(_ASCII_LETTERS.get(ch, ch) for ch in text))


def _first(values: Iterable) -> Any:
    return next((v for v in values if v), None)


def to_bibtex(paper: dict[str, Any]) -> str:
    """A BibTeX entry for a catalogue paper (as ``Catalog.paper`` returns it).

    A paper that appeared at a conference is ``@inproceedings`` with the venue as booktitle;
    one known only from feeds or preprint servers is ``@misc`` (with its arXiv eprint when known).
    """
    appearances = paper.get("appearances") or []
    proceedings = [a for a in appearances if a.get("venue") and not a["venue"].lower().startswith(_NOT_PROCEEDINGS)]
    ids = paper.get("ids") or {}
    year = paper.get("year") or _first(a.get("year") for a in proceedings) or _first(a.get("year") for a in appearances)
    fields: list[tuple[str, str]] = [
        ("title", _protect_capitals(latex_escape(clean_markup(paper.get("title") or "")))),
        ("author", " and ".join(bibtex_name(a) for a in paper.get("authors") or [] if a.split())),
    ]
    if proceedings:
        venue = proceedings[0]["venue"]
        booktitle = f"{venue} {proceedings[0].get('year') or year or ''}".strip()
        fields.append(("booktitle", latex_escape(booktitle)))
    if year:
        fields.append(("year", str(year)))
    if ids.get("doi"):
        fields.append(("doi", latex_escape(ids["doi"])))
    if ids.get("arxiv"):
        fields += [("eprint", ids["arxiv"]), ("archivePrefix", "arXiv")]
    url = paper_url(paper)
    if url:
        fields.append(("url", url.replace("%", r"\%").replace("#", r"\#")))
    entry_type = "inproceedings" if proceedings else "misc"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{entry_type}{{{bibtex_key(paper)},\n{body}\n}}\n"


def paper_links(paper: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, url) of the places a paper can be read: OpenReview, arXiv, DOI, source pages."""
    ids = paper.get("ids") or {}
    links: list[tuple[str, str]] = []
    if ids.get("openreview"):
        links.append(("OpenReview", f"https://openreview.net/forum?id={ids['openreview']}"))
    if ids.get("arxiv"):
        links.append(("arXiv", f"https://arxiv.org/abs/{ids['arxiv']}"))
    if ids.get("doi"):
        links.append(("DOI", f"https://doi.org/{ids['doi']}"))
    seen = {url for _, url in links}
    for appearance in paper.get("appearances") or []:
        url = appearance.get("url")
        if url and url not in seen and url.startswith(("http://", "https://")):
            seen.add(url)
            links.append((appearance.get("venue") or "page", url))
    return links


def paper_url(paper: dict[str, Any]) -> str | None:
    links = paper_links(paper)
    return links[0][1] if links else None
