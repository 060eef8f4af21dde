"""Starting inputs for the fuzz targets: small slices of real programs, dumps and sites.

A coverage-guided fuzzer mutates what it is given; started from real formats it reaches the deep
paths of each importer in seconds instead of hours. Each seed is a few kilobytes (the fuzzer's
input limit is ``MAX_SEED_BYTES``): the header and a few blocks of a real page, the first records
of a real dump, a handful of rows of a real table, a few entries of each file of a real Mini-Conf
site. The shared corpora (``../shared``) give most of them; the bundled demo site and the short
examples below keep fuzzing possible without them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any, Iterable

MAX_SEED_BYTES = 7000
SITE_FILE_MARK = "\n##> "   # separates the files of a packed Mini-Conf site: "\n##> papers.csv\n<content>"

# Inputs that need a file or folder name start with one byte choosing it from these (the name
# decides CSV vs TSV, and gives venue and year guesses).
FILE_NAMES = ("papers.csv", "papers.tsv", "papers.jsonl", "papers.json", "iclr2020_papers.csv",
              "iclr2021_paperlist.tsv", "neurips2019.json", "iclr2023.json", "page.txt")
SITE_NAMES = ("iclr2020_virtual_site", "emnlp2020_virtual_site", "acl2020_virtual_site", "site")

# Files of a Mini-Conf site the importer reads, and so the only names a packed site may create.
SITE_FILES = (
    "papers.csv", "papers.json", "main_papers.csv", "findings_papers.csv", "demo_papers.csv", "w1_papers.csv",
    "config.yml", "workshops.yml", "schedule.yml", "speakers.yml", "socials.yml", "poster_schedule.yml",
    "oral_schedule.yml", "paper_sessions.yml", "main_paper_sessions.yml", "demo_paper_sessions.yml",
    "main_calendar.json", "overall_calendar.json", "overall_calendar.yml", "plenary_sessions.yml",
    "tutorials.yml",
)

SESSION_PAGE_EXAMPLE = """Oral 2: Understanding Deep Learning
Room 101
Moderator: Ada Lovelace
Thu 21 July 12:30 - 12:35 PDT
Outstanding Paper
Convergence of Invariant Graph Networks
Chen Cai · Yusu Wang
Although theoretical properties such as expressive power are well understood, $\\mathbb{R}^n$ ...
Thu 21 July 12:35 - 12:40 PDT
Spotlight
A Second Talk Title
Marc A Finzi
An abstract that goes on.
Mon, Jul 18, 2022 9:00 a.m. - noon (UTC+2)
Third Talk
Anna van der Berg · José Müller ·
"""

POSTER_LISTING_EXAMPLE = """Poster Session 3
ICLR 2023
In-Person Poster presentation / top 5% paper
Outstanding Paper
Rethinking the Expressive Power of GNNs via Graph Biconnectivity
Bohang Zhang · Shengjie Luo · Liwei Wang · Di He
Designing expressive Graph Neural Networks (GNNs) is a central topic.
Virtual Oral presentation / poster accept
Another Poster
Jane Doe · John Roe
An abstract.
"""

PAPER_FEED_EXAMPLE = """Get trending papers in your email inbox!
Subscribe
SubscribeVisualizing Deep Networks by Optimizing with Integrated Gradients
""" + "Understanding and interpreting the decisions made by deep learning models is valuable. " * 4 + """
A Short Title
""" + "An abstract that is long enough to be an abstract and not a title of anything at all. " * 4 + "\n"

PAPERLISTS_EXAMPLE = json.dumps([
    {"id": "rJl-b3RcF7", "title": "Deep Learning Generalizes", "track": "main", "status": "Accept (Oral)",
     "author": "Ada Lovelace; Alan Turing", "abstract": "We show it.", "keywords": "deep learning; theory",
     "site": "https://openreview.net/forum?id=rJl-b3RcF7", "award": True, "arxiv": "2101.00001v2",
     "doi": "10.1000/xyz123", "session": "Poster Session 1", "year": 2019},
    {"id": 17, "title": "Another", "status": "Reject", "authors": ["A B", "C D"], "tldr": "short"},
    {"title": "", "author": ""},
    "not an object",
], indent=4)

TABULAR_EXAMPLES = {
    "papers.csv": "title,authors,abstract,year,venue,session,room,date,time,timezone,decision,doi,arxiv,id\n"
                  "\"A, quoted\",Ada Lovelace | Alan Turing,An abstract,2022,ICML,Oral 1,Hall F,2022-07-21,"
                  "12:30 - 12:35,America/Los_Angeles,Accept (Oral),10.1000/x,2101.00001,p1\n"
                  ",No Title Here,,,,,,,,,,,,p2\n",
    "papers.tsv": "title\tstart\tend\tpresentation\taward\turl\n"
                 "Talk One\t2022-07-21T12:30-07:00\t2022-07-21T12:35-07:00\toral\tBest Paper\t"
                 "https://openreview.net/forum?id=abcdEFGH12\n"
                 "Talk Two\t2022-07-21 23:30 PDT\t0:30\tposter\t\thttps://arxiv.org/abs/2101.00001\n"
                 "Talk Three\t12:30 pm AoE\t\tspotlight\t\t\n",
    "papers.jsonl": '{"title": "One", "authors": ["A B", "C D"], "keywords": "x; y", "start": "2022-07-21 12:30Z"}\n'
                    '{"title": "Two", "content": {"abstract": {"value": "wrapped"}}, "status": "Accept (Poster)"}\n'
                    '[1, 2]\n',
    "papers.json": json.dumps({"abc123": {"content": {"title": {"value": "Wrapped"},
                                                     "authors": {"value": ["A B"]}}},
                              "def456": {"title": "Plain", "authors": "C D and E F"}}),
}

QUERY_EXAMPLES = (
    'contrastive "negative samples" venue:ICML year:2022',
    'diffusion OR flow matching -survey -"large language"',
    'title:transformer author:"Yoshua Bengio" venue:"ICLR 2023" year:2020..2022 year:>=2021',
    'type:oral award:any award:outstanding session:"Poster Session 3" decision:"top 5%"',
    'NOT type:poster -venue:icml !survey || a && b AND c',
    'venue: ICML year:<2019 type:posters award:none graph-neural state-of-the-art',
)

SLOT_EXAMPLES = (
    "Thu 21 July 12:30 - 12:35 PDT", "Mon, Jul 18, 2022 9:00 a.m. - noon (UTC+2)",
    "Tuesday 3rd May 23:30 - 0:30 Europe/Berlin", "Dec 5 11:00 - 1:00 pm AoE", "Sat 1 Jan 0:00 - 24:00 GMT",
)


# --------------------------------------------------------------------------- slicing helpers

def _shared_root() -> Path | None:
    """The shared corpora beside the working copy or the source tree, if present."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared"
        if candidate.is_dir():
            return candidate
    return None


def _fit(text: str, limit: int = MAX_SEED_BYTES) -> bytes:
    """The text cut at a line boundary so that it fits the input limit."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return data
    cut = data[:limit]
    newline = cut.rfind(b"\n")
    return cut[:newline + 1] if newline > 0 else cut.decode("utf-8", "ignore").encode("utf-8")


def page_slices(text: str, header_lines: int = 8, count: int = 3) -> list[bytes]:
    """The start of a page, and slices from its middle and end with the page's header in front."""
    lines = text.splitlines(keepends=True)
    header = "".join(lines[:header_lines])
    slices = [_fit(text)]
    for k in range(1, count):
        start = len(lines) * k // count
        slices.append(_fit(header + "".join(lines[start:])))
    return slices


def _json_head(data: Any, count: int) -> Any:
    if isinstance(data, list):
        return data[:count]
    if isinstance(data, dict):
        return dict(list(data.items())[:count])
    return data


def _shorten(value: Any, limit: int = 300) -> Any:
    """Long strings (abstracts) cut short so that several records fit in one seed."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


def json_slice(data: Any, count: int, indent: int | None = 4) -> bytes:
    return _fit(json.dumps(_shorten(_json_head(data, count)), indent=indent, ensure_ascii=False, default=str))


def csv_slice(text: str, rows: int, delimiter: str = ",") -> bytes:
    """The header and the first rows of a table, written back as the same kind of table."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    for n, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
        if n > rows:
            break
        writer.writerow([cell[:600] for cell in row])
    return _fit(out.getvalue())


def yaml_slice(text: str, count: int) -> bytes:
    import yaml

    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if isinstance(data, dict) and len(data) <= 3:  # {"speakers": [...]}: keep the key, slice the list
        data = {k: _json_head(v, count) for k, v in data.items()}
    else:
        data = _json_head(data, count)
    return _fit(yaml.safe_dump(_shorten(data), allow_unicode=True, sort_keys=False))


def with_name(name: str, content: bytes, names: tuple[str, ...] = FILE_NAMES) -> bytes:
    """A fuzz input: the byte choosing ``name``, then the content."""
    return bytes([names.index(name)]) + content


def split_name(data: bytes, names: tuple[str, ...] = FILE_NAMES) -> tuple[str, bytes]:
    """(name, content) of a fuzz input made by ``with_name`` (any first byte chooses some name)."""
    if not data:
        return names[0], b""
    return names[data[0] % len(names)], data[1:]


def pack_site(files: dict[str, bytes]) -> bytes:
    """Files of a Mini-Conf site as one fuzz input (see ``unpack_site``)."""
    return b"".join(SITE_FILE_MARK.encode() + name.encode() + b"\n" + content for name, content in files.items())


def unpack_site(data: bytes) -> dict[str, bytes]:
    """The files of a packed site; sections naming a file the importer does not read are dropped."""
    files: dict[str, bytes] = {}
    for section in (b"\n" + data).split(SITE_FILE_MARK.encode())[1:]:
        name, _, content = section.partition(b"\n")
        name_text = name.decode("utf-8", "replace").strip()
        if name_text in SITE_FILES:
            files[name_text] = content
    return files


def _first_records(text: str, count: int) -> list:
    """The first records of a JSON list, without decoding the megabytes after them."""
    from paperscope.ingest.paperlists import iter_json_array

    records = []
    for _, value in iter_json_array(text):
        if isinstance(value, json.JSONDecodeError) or len(records) == count:
            break
        records.append(value)
    return records


def _read(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- seeds per target

def page_seeds(page_names: Iterable[str], example: str) -> list[bytes]:
    seeds = [example.encode()]
    shared = _shared_root()
    pages = shared / "samples" / "pages" if shared else None
    for name in page_names:
        if pages and (pages / name).is_file():
            seeds += page_slices(_read(pages / name))
    return seeds


def session_page_seeds() -> list[bytes]:
    return page_seeds(("icml2022-session-deep-learning-hall-f.txt", "icml2022-session-deep-learning-ballroom-1-2.txt",
                       "iclr2022-oral-2-understanding-deep-learning.txt"), SESSION_PAGE_EXAMPLE)


def poster_listing_seeds() -> list[bytes]:
    return page_seeds(("iclr2023-poster-session-3.txt",), POSTER_LISTING_EXAMPLE)


def paper_feed_seeds() -> list[bytes]:
    return page_seeds(("hf-papers-listing.txt",), PAPER_FEED_EXAMPLE)


def paperlists_seeds() -> list[bytes]:
    seeds = [PAPERLISTS_EXAMPLE.encode()]
    shared = _shared_root()
    head = shared / "data" / "paperlists" / "head" if shared else None
    if head and head.is_dir():
        for folder in ("iclr", "icml", "nips", "cvpr", "acl", "aaai", "corl"):
            dumps = sorted((head / folder).glob("*.json.gz")) if (head / folder).is_dir() else []
            if dumps:
                seeds.append(json_slice(_first_records(_read(dumps[-1]), 4), 4))
    return seeds


def tabular_seeds() -> list[tuple[str, bytes]]:
    """(file name, content); ``with_name`` makes them inputs."""
    seeds = [(name, text.encode()) for name, text in TABULAR_EXAMPLES.items()]
    shared = _shared_root()
    demo = Path(__file__).resolve().parents[1] / "demo" / "miniconf_iclr2020" / "sitedata" / "papers.csv"
    if demo.is_file():
        seeds.append(("iclr2020_papers.csv", csv_slice(_read(demo), 4)))
    if shared is None:
        return seeds
    iclr2021 = shared / "data" / "iclr2021_openreview_evanzd"
    for name in ("paperlist.tsv", "ratings.tsv"):
        if (iclr2021 / name).is_file():
            seeds.append(("iclr2021_paperlist.tsv", csv_slice(_read(iclr2021 / name), 6, "\t")))
    neurips = shared / "data" / "neurips_1987_2019_akshaypithadiya" / "papers"
    for name in ("1987.json", "2019.json"):
        if (neurips / name).is_file():
            seeds.append(("neurips2019.json", json_slice(_first_records(_read(neurips / name), 4), 4)))
    return seeds


def miniconf_seeds() -> list[tuple[str, bytes]]:
    """(site folder name, packed site); ``with_name(..., SITE_NAMES)`` makes them inputs."""
    seeds: list[tuple[str, bytes]] = []
    demo = Path(__file__).resolve().parents[1] / "demo" / "miniconf_iclr2020" / "sitedata"
    if demo.is_dir():
        seeds.append(("iclr2020_virtual_site", pack_site(_site_slice(demo))))
    shared = _shared_root()
    for name in ("iclr2020_virtual_site", "emnlp2020_virtual_site", "acl2020_virtual_site"):
        site = shared / "data" / name if shared else None
        if site and site.is_dir():
            sitedata = next(p for p in sorted(site.iterdir()) if p.name.startswith("sitedata"))
            seeds.append((name, pack_site(_site_slice(sitedata))))
    return seeds


def _site_slice(sitedata: Path) -> dict[str, bytes]:
    """A few entries of each file the importer reads, small enough that the site fits one input."""
    files: dict[str, bytes] = {}
    budget = MAX_SEED_BYTES
    for name in SITE_FILES:
        path = sitedata / name
        if not path.is_file():
            continue
        text = _read(path)
        if name.endswith(".csv"):
            content = csv_slice(text, 2)
        elif name.endswith(".json"):
            data = _first_records(text, 2) if text.lstrip().startswith("[") else json.loads(text)
            content = json_slice(data, 2, indent=1)
        else:
            content = yaml_slice(text, 2)
        # a file cut at a line is still worth a start; the importer reports the cut
        content = _fit(content.decode("utf-8"), max(200, min(budget // 3, 1600)))
        files[name] = content
        budget -= len(content)
    return files


def sniff_seeds() -> list[tuple[str, bytes]]:
    """Every single-file seed under the name it would have on disk."""
    seeds = [("page.txt", s) for s in session_page_seeds() + poster_listing_seeds() + paper_feed_seeds()]
    seeds += [("iclr2023.json", s) for s in paperlists_seeds()]
    return seeds + tabular_seeds()


def query_seeds() -> list[bytes]:
    return [q.encode() for q in QUERY_EXAMPLES]


def slot_seeds() -> list[bytes]:
    return [s.encode() for s in SLOT_EXAMPLES]
