"""Fetching a URL as a source.

``fetch_url`` GETs a page with timeouts, a size limit and redirects. An HTML page is reduced to
text the way a browser's "save as text" gives it (block elements on their own lines, scripts,
styles and navigation dropped), so the page importers read a fetched page exactly as they read a
saved one. JSON, CSV and other text pass through unchanged (gzip is read transparently). The
source's locator is the URL as given, so re-fetching the same URL updates the same source.

Every failure is a ``SourceError`` with a one-line reason: no connection, a timeout, an HTTP error
status, a body over the size limit, or a response that is not text.
"""

from __future__ import annotations

import re

import httpx

from paperscope.ingest.base import Source, SourceError, decompress_if_needed

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
USER_AGENT = "paperscope/0.1 (+https://github.com/paperscope; research catalogue)"

# Elements whose content is never text a reader sees.
DROP = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "head",
        "nav", "button", "select", "map", "audio", "video", "math"}
# Elements that start and end a paragraph-like block (a blank line around them).
PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "figure",
             "section", "article", "header", "footer", "main", "aside", "form", "fieldset", "details", "hr",
             "address"}
# Elements that start and end a line.
LINE = {"div", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "legend", "label", "option",
        "center", "body", "html", "tbody", "thead", "tfoot", "br"}
CELL = {"td", "th"}

_TEXT_TYPES = ("text/", "application/json", "application/ld+json", "application/xml", "application/rss+xml",
               "application/atom+xml", "application/x-ndjson", "application/jsonl", "application/csv",
               "application/javascript", "application/gzip", "application/x-gzip", "application/octet-stream")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.I)


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES) -> Source:
    """GET ``url`` and return it as a Source. Raises ``SourceError`` with a clear reason."""
    if not url.lower().startswith(("http://", "https://")):
        raise SourceError(f"not an http(s) URL: {url}")
    limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    try:
        with httpx.Client(follow_redirects=True, timeout=limits, max_redirects=10,
                          headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/json,text/csv,*/*;q=0.5",
                                   "Accept-Encoding": "gzip, deflate"}) as client:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
                    raise SourceError(f"HTTP {response.status_code} {reason} from {response.url}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise SourceError(f"the response is {_size(int(declared))}; the limit is {_size(max_bytes)}")
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise SourceError(f"the response is larger than the {_size(max_bytes)} limit")
                    chunks.append(chunk)
                body = b"".join(chunks)
                content_type = response.headers.get("content-type", "")
    except SourceError:
        raise
    except httpx.TimeoutException as exc:
        raise SourceError(f"timed out after {timeout:g} s ({_kind(exc)}) fetching {url}") from None
    except httpx.TooManyRedirects:
        raise SourceError(f"too many redirects fetching {url}") from None
    except httpx.ConnectError as exc:
        raise SourceError(f"could not connect to {_host(url)}: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"network error fetching {url}: {_reason(exc)}") from None
    return source_from_response(url, body, content_type)


def source_from_response(url: str, body: bytes, content_type: str) -> Source:
    """The Source for a response body: HTML as text, anything else textual as it came."""
    if not body.strip():
        raise SourceError(f"the response from {url} is empty")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith(("image/", "audio/", "video/", "font/")) or mime in ("application/pdf", "application/zip"):
        raise SourceError(f"{url} is {mime}, not a page, feed or data file")
    if mime in _HTML_TYPES or (not mime.startswith(("application/json", "text/csv")) and _looks_html(body)):
        text = html_to_text(decode_html(body, content_type))
        if not text.strip():
            raise SourceError(f"the page at {url} has no text")
        return Source(locator=url, data=text.encode("utf-8"))
    return Source(locator=url, data=decompress_if_needed(body))


def decode_html(body: bytes, content_type: str = "") -> str:
    charset = None
    m = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_\-]+)", content_type, re.I)
    if m:
        charset = m.group(1)
    else:
        meta = _META_CHARSET.search(body[:4096])
        if meta:
            charset = meta.group(1).decode("ascii", "ignore")
    for encoding in (charset, "utf-8"):
        if not encoding:
            continue
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("cp1252", errors="replace")


def html_to_text(html: str) -> str:
    """Text of an HTML page as a browser's "save as text" gives it.

    Block elements start new lines (paragraph-like ones leave a blank line), ``<br>`` breaks a
    line, table cells are separated by tabs, whitespace inside a line collapses to single spaces
    (except in ``<pre>``), and scripts, styles, navigation, forms' buttons and hidden elements are
    dropped.
    """
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    root = tree.root
    if root is None:
        return ""
    out: list[str] = []
    _walk(root, out)
    return _tidy("".join(out))


_BREAK = "\x00"      # a line break
_PARA = "\x01"       # a paragraph break (blank line)
_PRE_OPEN, _PRE_CLOSE = "\x02", "\x03"
_CELL = "\x04"      # between table cells (a tab in the text)
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")


def _walk(root, out: list[str]) -> None:
    # Iterative depth-first walk (pages nest deeply; recursion could overflow).
    stack: list[tuple[object, bool]] = [(root, False)]
    pre_depth = 0
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if leaving:
            if tag == "pre":
                pre_depth -= 1
                out.append(_PRE_CLOSE)
            if tag in PARAGRAPH:
                out.append(_PARA)
            elif tag in LINE and tag != "br":
                out.append(_BREAK)
            elif tag in CELL:
                out.append(_CELL)
            continue
        if tag == "-text":
            text = node.text_content or ""
            if text:
                out.append(text)
            continue
        if tag in ("-comment", "!doctype") or tag in DROP:
            continue
        attrs = node.attributes or {}
        if "hidden" in attrs or attrs.get("aria-hidden") == "true" or _display_none(attrs.get("style")):
            continue
        if tag == "br":
            out.append(_BREAK)
            continue
        if tag == "img":
            alt = (attrs.get("alt") or "").strip()
            if alt:
                out.append(f" {alt} ")
            continue
        if tag in PARAGRAPH:
            out.append(_PARA)
        elif tag in LINE:
            out.append(_BREAK)
        if tag == "pre":
            pre_depth += 1
            out.append(_PRE_OPEN)
        stack.append((node, True))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        for child in reversed(children):
            stack.append((child, False))


def _display_none(style: str | None) -> bool:
    return bool(style) and re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", style, re.I) is not None


_MARKER_RUN = re.compile(f"[ {_BREAK}{_PARA}]*[{_BREAK}{_PARA}][ {_BREAK}{_PARA}]*")


def _tidy(raw: str) -> str:
    pieces: list[str] = []
    for i, part in enumerate(re.split(f"[{_PRE_OPEN}{_PRE_CLOSE}]", raw)):
        if i % 2 == 1:  # inside <pre>: lines as written
            pieces.append("\n\n" + part.replace("\r\n", "\n").replace(_BREAK, "\n").replace(_PARA, "\n\n") + "\n\n")
        else:
            # Neighbouring block boundaries make one line break, or a blank line if any is a paragraph.
            part = _SPACE.sub(" ", part)
            pieces.append(_MARKER_RUN.sub(lambda m: "\n\n" if _PARA in m.group(0) else "\n", part))
    text = "".join(pieces).replace(_CELL, "\t")
    result: list[str] = []
    blank = True
    for line in text.split("\n"):
        line = re.sub(r" *\t *", "\t", line).strip(" \t")
        if not line:
            if not blank:
                result.append("")
            blank = True
            continue
        result.append(line)
        blank = False
    while result and not result[-1]:
        result.pop()
    return "\n".join(result) + "\n" if result else ""


def _looks_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        head.startswith(b"<") and b"<html" in body[:4096].lower())


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except Exception:
        return url


def _kind(exc: Exception) -> str:
    return {"ConnectTimeout": "connecting", "ReadTimeout": "waiting for data", "WriteTimeout": "sending",
            "PoolTimeout": "waiting for a connection"}.get(type(exc).__name__, "timeout")


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
