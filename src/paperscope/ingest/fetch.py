"""Fetching a URL as a source.

``fetch_url`` GETs a page with timeouts, a size limit and redirects. An HTML page is reduced to
text the way a browser's "save as text" gives it (block elements on their own lines, scripts,
styles and navigation dropped), so the page importers read a fetched page exactly as they read a
saved one. JSON, CSV and other text pass through unchanged (gzip is read transparently). The
source's locator is the URL as given, so re-fetching the same URL updates the same source.

Every failure is a ``SourceError`` with a one-line reason: no connection, a timeout, an HTTP error
status, a body over the size limit, or a response that is not text.

Time is bounded three ways (``paperscope.limits``): connecting, each wait for data, and the whole
fetch. The last matters for a server that drips a byte every few seconds: no single wait times out,
so the fetch runs under one deadline for everything, redirects, headers and body included.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from paperscope import limits
from paperscope.ingest.base import Source, SourceError, decompress_if_needed

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
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "text/html,application/json,text/csv,*/*;q=0.5",
            "Accept-Encoding": "gzip, deflate"}


def fetch_url(url: str, timeout: float | None = None, max_bytes: int | None = None) -> Source:
    """GET ``url`` and return it as a Source. Raises ``SourceError`` with a clear reason.

    ``timeout`` bounds the whole fetch in seconds and ``max_bytes`` the body; by default both come
    from ``paperscope.limits`` (``fetch_total_s``, ``fetch_max_bytes``), as do the bounds on
    connecting and on each wait for data.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise SourceError(f"not an http(s) URL: {url}")
    bounds = limits.current()
    total = bounds.fetch_total_s if timeout is None else timeout
    size_hint = _raises_it("fetch_max_bytes") if max_bytes is None else ""
    max_bytes = bounds.fetch_max_bytes if max_bytes is None else max_bytes
    waits = httpx.Timeout(min(bounds.fetch_read_s, total), connect=min(bounds.fetch_connect_s, total))
    try:
        body, content_type = _run(_download(url, waits, total, max_bytes, size_hint))
    except SourceError:
        raise
    except TimeoutError:
        time_hint = _raises_it("fetch_total_s") if timeout is None else ""
        raise SourceError(f"timed out after {total:g} s (the whole fetch{time_hint}) fetching {url}") from None
    except httpx.TimeoutException as exc:
        raise SourceError(f"timed out after {_wait_of(exc, waits):g} s ({_kind(exc)}) fetching {url}") from None
    except httpx.TooManyRedirects:
        raise SourceError(f"too many redirects fetching {url}") from None
    except httpx.ConnectError as exc:
        raise SourceError(f"could not connect to {_host(url)}: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"network error fetching {url}: {_reason(exc)}") from None
    return source_from_response(url, body, content_type)


async def _download(url: str, waits: httpx.Timeout, total: float, max_bytes: int,
                    size_hint: str) -> tuple[bytes, str]:
    """(body, content type) of a GET, all of it within ``total`` seconds."""
    async with asyncio.timeout(total):
        async with httpx.AsyncClient(follow_redirects=True, timeout=waits, max_redirects=10,
                                     headers=_HEADERS) as client:
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
                    raise SourceError(f"HTTP {response.status_code} {reason} from {response.url}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise SourceError(f"the response is {limits.size_text(int(declared))}; "
                                      f"the limit is {limits.size_text(max_bytes)}{size_hint}")
                chunks: list[bytes] = []
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise SourceError(f"the response is larger than the {limits.size_text(max_bytes)} limit"
                                          f"{size_hint}")
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type", "")


def _run(download):
    """Run the download coroutine to its end from synchronous code, inside an event loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(download)
    with ThreadPoolExecutor(max_workers=1) as pool:  # asyncio.run cannot nest in a running loop
        return pool.submit(asyncio.run, download).result()


def _raises_it(field: str) -> str:
    """Where a limit from the settings can be raised (nothing to say for one the caller chose)."""
    return f"; {limits.setting_name(field)} raises it"


def _wait_of(exc: Exception, waits: httpx.Timeout) -> float:
    return (waits.connect if isinstance(exc, httpx.ConnectTimeout) else waits.read) or 0.0


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
