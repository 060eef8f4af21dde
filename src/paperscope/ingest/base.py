"""What every importer shares: reading a source safely and the importer protocol.

A source is a file (plain or gzip-compressed), a folder (a Mini-Conf site) or a fetched URL.
Reading never raises on bad bytes: undecodable text becomes a ``Problem`` naming the line, and
the rest is decoded as well as it can be, so one bad byte does not lose a whole program.
"""

from __future__ import annotations

import codecs
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from paperscope import limits
from paperscope.model import ImportItem, ImportOptions, Problem

# A single line longer than this is not a record of any format we read (a 10 MB minified blob).
MAX_LINE_CHARS = 1_000_000


class SourceError(Exception):
    """The source as a whole cannot be read (missing, empty, binary). The message names the problem."""


@dataclass
class Source:
    """A source's identity and decoded content."""

    locator: str                      # absolute path or URL: the identity used for idempotent re-ingest
    path: Path | None = None
    data: bytes = b""
    is_dir: bool = False
    problems: list[Problem] = field(default_factory=list)
    _text: str | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path else self.locator.rstrip("/").rsplit("/", 1)[-1]

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = decode_text(self.data, self.problems)
        return self._text

    def head(self, chars: int = 20_000) -> str:
        """The beginning of the text, for sniffing, without decoding a whole large file twice."""
        if self._text is not None:
            return self._text[:chars]
        return decode_text(self.data[: chars * 4], [])[:chars]


class Importer(Protocol):
    """One source format. ``sniff`` returns a confidence in [0, 1]; ``parse`` yields records."""

    name: str
    description: str

    def sniff(self, source: Source) -> float: ...

    def parse(self, source: Source, options: ImportOptions) -> Iterator[ImportItem]: ...


def read_source(path: Path) -> Source:
    """Read a file or folder from disk. Raises ``SourceError`` with a one-line reason."""
    path = path.expanduser()
    if not path.exists():
        raise SourceError("no such file or folder")
    locator = str(path.resolve())
    if path.is_dir():
        return Source(locator=locator, path=path, is_dir=True)
    size = path.stat().st_size
    if size == 0:
        raise SourceError("the file is empty")
    limit = limits.current().max_source_bytes
    if size > limit:  # refused before reading: a file over the limit never enters memory
        raise SourceError(f"the file is {limits.size_text(size)}; the limit is {limits.size_text(limit)}{_HINT}")
    raw = path.read_bytes()
    return Source(locator=locator, path=path, data=decompress_if_needed(raw))


def source_from_bytes(locator: str, raw: bytes) -> Source:
    if not raw:
        raise SourceError("the source is empty")
    return Source(locator=locator, data=decompress_if_needed(raw))


def decompress_if_needed(raw: bytes) -> bytes:
    """Gzip is read transparently; a truncated gzip keeps what could be decompressed.

    Sources over the size limit (``limits.max_source_bytes``, decompressed) are refused: a few
    megabytes of gzip can expand to gigabytes, so decompression stops one byte past the limit.
    """
    limit = limits.current().max_source_bytes
    if raw[:2] != b"\x1f\x8b":
        return _check_size(raw, limit)
    return _check_size(_gunzip(raw, limit), limit, " once decompressed")


def _gunzip(raw: bytes, limit: int) -> bytes:
    """The gzip members of ``raw`` decompressed, at most ``limit + 1`` bytes of them."""
    parts: list[bytes] = []
    size = 0
    rest = raw
    while rest[:2] == b"\x1f\x8b" and size <= limit:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            part = member.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            if not parts:
                raise SourceError(f"corrupt gzip data ({exc})") from None
            break  # a damaged later member: keep the members before it
        parts.append(part)
        size += len(part)
        if not member.eof:
            break  # truncated (the format's parser reports the cut), or over the limit
        rest = member.unused_data
    if not size:
        raise SourceError("corrupt gzip data: nothing could be decompressed")
    return b"".join(parts)


def _check_size(data: bytes, limit: int, how: str = "") -> bytes:
    if len(data) > limit:
        raise SourceError(f"the source is larger than the {limits.size_text(limit)} limit{how}{_HINT}")
    if not data.strip():
        raise SourceError("the source has no content (only whitespace)")
    return data


_HINT = f" ({limits.setting_name('max_source_bytes')} raises it)"


def looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text has NULs
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > len(sample) * 0.1


def decode_text(data: bytes, problems: list[Problem]) -> str:
    """Decode bytes to text. Invalid UTF-8 is reported with its line and decoded as Windows-1252."""
    if looks_binary(data):
        raise SourceError("binary data, not a text page, feed or data file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(Problem(
            message=f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); those bytes were read as Windows-1252",
            line=line,
            raw=data[max(0, exc.start - 80): exc.start + 80].decode("utf-8", errors="replace"),
        ))
        # Only the bad bytes are read as Windows-1252: the valid UTF-8 around them ("·", "é") stays right.
        return data.decode("utf-8", errors=_CP1252_FALLBACK)


def _cp1252_for_bad_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    bad = exc.object[exc.start:exc.end]
    return bad.decode("cp1252", errors="replace"), exc.end


_CP1252_FALLBACK = "paperscope-cp1252-fallback"
codecs.register_error(_CP1252_FALLBACK, _cp1252_for_bad_bytes)


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) pairs; overlong lines are yielded empty so numbering stays right."""
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, ("" if len(line) > MAX_LINE_CHARS else line)


def overlong_line_problems(text: str) -> Iterator[Problem]:
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE_CHARS:
            yield Problem(
                message=f"line is {len(line):,} characters long; no record of this format is, so it was skipped",
                line=number,
                raw=line[:2000],
            )
