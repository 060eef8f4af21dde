"""Text normalisation shared by importers, the catalogue and the indexes.

Keys (``title_key``, ``name_key``) decide which records are the same paper or author, so they
must be stable: change them only together with a catalogue migration.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from functools import lru_cache

_WS = re.compile(r"\s+")
_LATEX_CITE = re.compile(r"\\(?:cite[tp]?|citealp|citeauthor|ref|eqref|label)\*?\s*(?:\[[^\]]*\]\s*)*\{[^}]*\}")
_LATEX_CMD_WITH_ARG = re.compile(r"\\(?:textbf|textit|emph|mathrm|mathbf|mathcal|mathbb|text|textsc|texttt|underline|url|operatorname)\s*\{([^{}]*)\}")
_LATEX_CMD = re.compile(r"\\([A-Za-z]+)")
_MATH_DELIMS = re.compile(r"(?<!\\)\$+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:)])")

# LaTeX commands that stand for a symbol a reader knows; everything else loses its backslash.
_LATEX_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "kappa": "κ", "nu": "ν", "xi": "ξ", "rho": "ρ", "chi": "χ",
    "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "lambda": "λ", "mu": "μ", "pi": "π", "sigma": "σ", "tau": "τ", "phi": "φ",
    "ell": "ℓ", "infty": "∞", "times": "×", "cdot": "·", "leq": "≤", "le": "≤", "geq": "≥",
    "ge": "≥", "neq": "≠", "approx": "≈", "sim": "~", "to": "→", "rightarrow": "→", "log": "log",
    "sqrt": "√", "sum": "Σ", "partial": "∂", "nabla": "∇", "in": "∈", "ldots": "…", "dots": "…",
}


def collapse_whitespace(text: str) -> str:
    return _WS.sub(" ", text).strip()


# Control and format characters (Unicode category C: C0/C1 controls, zero-width and bidi marks,
# BOM, private use, surrogates) and the replacement character; a regex is ~50x faster than a
# per-character category check on 100k abstracts.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffd\ue000-\uf8ff\ud800-\udfff]"
)


def normalize_unicode(text: str) -> str:
    """NFC, no control characters, no zero-width or replacement garbage, single spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return collapse_whitespace(_INVISIBLE.sub("", text))


def clean_markup(text: str) -> str:
    """Readable text from an abstract or title with LaTeX and HTML markup.

    ``$k$-IGN`` -> ``k-IGN``; ``\\citet{x}`` is dropped; ``&amp;`` -> ``&``; tags removed.
    The raw text stays in the catalogue; this is for display and indexing.
    """
    if not text:
        return ""
    # Each step runs only when its trigger character is present: most abstracts have no markup.
    original = text
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    if "\\" in text:
        text = _LATEX_CITE.sub("", text)
        for _ in range(3):  # nested \textbf{\emph{x}}
            new = _LATEX_CMD_WITH_ARG.sub(r"\1", text)
            if new == text:
                break
            text = new
        text = _LATEX_CMD.sub(lambda m: _LATEX_SYMBOLS.get(m.group(1), m.group(1)), text)
    if "$" in text:
        text = _MATH_DELIMS.sub("", text)
    if "{" in text or "}" in text or "~" in text:
        text = text.replace("{", "").replace("}", "").replace("~", " ")
    if text is not original:  # removed markup can leave "word ." behind
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return normalize_unicode(text)


# What some sources put where they have no abstract (paperlists: "Abstract Unavailable" on 55
# papers, "(No Abstract)", "Placeholder"). Kept, they would be searched, embedded and shown as if
# they were the paper's abstract, and would make unrelated papers look alike.
_PLACEHOLDER_ABSTRACTS = frozenset({
    "abstract", "abstract unavailable", "abstract not available", "no abstract", "no abstract available",
    "not available", "unavailable", "placeholder", "n a", "na", "none", "null", "tbd", "tba", "to be announced",
    "coming soon", "abstract coming soon", "paper was withdrawn", "withdrawn",
})


def is_placeholder_abstract(text: str) -> bool:
    """True when an abstract field holds a stand-in for a missing abstract, not an abstract."""
    if not text or len(text) > 40:
        return False
    return _NON_ALNUM.sub(" ", text.lower()).strip() in _PLACEHOLDER_ABSTRACTS


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def title_key(title: str) -> str:
    """The key two titles share when they are the same title up to case, accents, markup and punctuation."""
    return _NON_ALNUM.sub("", strip_accents(clean_markup(title)).lower())


@lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """Key of an author name: case, accents, dots and hyphens folded ("Léon Bottou" == "leon bottou")."""
    return " ".join(_NON_ALNUM.sub(" ", strip_accents(name).lower()).split())


def family_name_key(name: str) -> str:
    """The last word of a name's key; used to confirm that two author lists overlap."""
    parts = name_key(name).split()
    return parts[-1] if parts else ""


def content_hash(*parts: str) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def short_id(seed: str, length: int = 10) -> str:
    """A short, URL-safe, stable id derived from a seed string."""
    digest = hashlib.sha1(seed.encode("utf-8", "surrogatepass")).digest()
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, no ambiguous letters
    value = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(alphabet[rem])
    return "".join(chars)
