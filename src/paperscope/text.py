"""Text normalisation shared by importers, the catalogue and the indexes.

Keys (``title_key``, ``name_key``) decide which records are the same paper or author, so they
must be stable: change them only together with a catalogue migration.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

_WS = re.compile(r"\s+")
_LATEX_CITE = re.compile(r"\\(?:cite[tp]?|citealp|citeauthor|ref|eqref|label)\*?\s*(?:\[[^\]]*\]\s*)*\{[^}]*\}")
_LATEX_CMD_WITH_ARG = re.compile(r"\\(?:textbf|textit|emph|mathrm|mathbf|mathcal|mathbb|text|textsc|texttt|underline|url|operatorname)\s*\{([^{}]*)\}")
_LATEX_CMD = re.compile(r"\\([A-Za-z]+)")
_MATH_DELIMS = re.compile(r"(?<!\\)\$+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")

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


def normalize_unicode(text: str) -> str:
    """NFC, no control characters, no zero-width or replacement garbage, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return collapse_whitespace(text.replace("\ufffd", ""))


def clean_markup(text: str) -> str:
    """Readable text from an abstract or title with LaTeX and HTML markup.

    ``$k$-IGN`` -> ``k-IGN``; ``\\citet{x}`` is dropped; ``&amp;`` -> ``&``; tags removed.
    The raw text stays in the catalogue; this is for display and indexing.
    """
    if not text:
        return ""
    text = html.unescape(text)
    text = _HTML_TAG.sub(" ", text)
    text = _LATEX_CITE.sub("", text)
    for _ in range(3):  # nested \textbf{\emph{x}}
        new = _LATEX_CMD_WITH_ARG.sub(r"\1", text)
        if new == text:
            break
        text = new
    text = _LATEX_CMD.sub(lambda m: _LATEX_SYMBOLS.get(m.group(1), m.group(1)), text)
    text = _MATH_DELIMS.sub("", text)
    text = text.replace("{", "").replace("}", "").replace("~", " ")
    text = re.sub(r"\s+([,.;:)])", r"\1", text)
    return normalize_unicode(text)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def title_key(title: str) -> str:
    """The key two titles share when they are the same title up to case, accents, markup and punctuation."""
    return _NON_ALNUM.sub("", strip_accents(clean_markup(title)).lower())


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
