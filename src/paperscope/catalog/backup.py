"""Backing a catalogue up, and restoring it (`paperscope backup` / `paperscope restore`).

SQLite: SQLite's online backup API copies the catalogue page by page while the server and ingests
go on using it. The copy runs inside one read transaction on the source, so it is the catalogue as
of one instant (WAL lets writers carry on meanwhile; without the held transaction every write would
restart the copy). The copy is a plain one-file SQLite catalogue, checked with
``PRAGMA integrity_check`` before it takes the destination's name.

PostgreSQL: ``pg_dump`` in its custom format, from a snapshot exported by a repeatable-read
transaction; the per-table checksums are computed in that same transaction, so they describe exactly
what was dumped. ``pg_restore`` replays it in one transaction (a broken archive changes nothing),
without owners and grants (the restoring role owns what it restores), and without the ``vector``
extension itself, which only a superuser may create: the target must have it already.

Each backup gets a manifest beside it (``<backup>.manifest.json``): the kind, size and SHA-256 of
the file, the schema revision, and per table the rows and checksum of :mod:`paperscope.catalog.copy`.
``restore`` checks the file (against its manifest when there is one) before it touches the target,
and the restored catalogue's checksums against the manifest (or the SQLite backup itself) after.

The derived indexes are not in a backup: restore rebuilds the keyword index and the vector
matrices from the restored catalogue, and drops the other caches beside it (topic maps).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine, create_engine, func, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from paperscope.catalog.copy import TableSummary, summarise, table_names

# progress(stage, done, total); total None: a step whose length is unknown
Progress = Callable[[str, int, "int | None"], None]

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
STEP_PAGES = 1024                 # pages per backup step: 4 MiB at the default page size, a smooth progress bar
TOOL_TIMEOUT_S = 6 * 3600


class BackupError(RuntimeError):
    """The backup or restore cannot be made; the message says why (and which file)."""


@dataclass
class Manifest:
    kind: str                     # "sqlite" or "postgresql"
    bytes: int
    sha256: str
    schema_revision: str | None
    tables: list[TableSummary]
    created: str = ""
    catalogue: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"paperscope_backup": MANIFEST_FORMAT, "kind": self.kind, "created": self.created,
                "catalogue": self.catalogue, "bytes": self.bytes, "sha256": self.sha256,
                "schema_revision": self.schema_revision, "tables": [t.as_dict() for t in self.tables]}

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text())
            return cls(kind=data["kind"], bytes=int(data["bytes"]), sha256=data["sha256"],
                       schema_revision=data.get("schema_revision"), created=data.get("created", ""),
                       catalogue=data.get("catalogue", ""),
                       tables=[TableSummary(t["table"], int(t["rows"]), t["checksum"]) for t in data["tables"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"{path}: not a readable backup manifest ({type(exc).__name__}: {exc})") from None


@dataclass
class RestoreReport:
    backup: str
    catalogue: str
    kind: str
    verified_against: str
    tables: list[dict[str, Any]] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def identical(self) -> bool | None:
        """Whether every table equals the backup's; None when there was nothing to compare with."""
        if any(t["same"] is None for t in self.tables):
            return None
        return all(t["same"] for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {"backup": self.backup, "catalogue": self.catalogue, "kind": self.kind,
                "verified_against": self.verified_against, "identical": self.identical,
                "tables": self.tables, "derived": self.derived, "seconds": round(self.seconds, 2)}


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass


class StageClock:
    """A progress callback that also times each stage (from its first report to the next stage's)."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress or _no_progress
        self.starts: dict[str, float] = {}
        self.created = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        self.starts.setdefault(stage, time.perf_counter())
        self.progress(stage, done, total)

    def seconds(self) -> dict[str, float]:
        marks = sorted(self.starts.items(), key=lambda item: item[1]) + [("", time.perf_counter())]
        return {stage: round(marks[i + 1][1] - at, 2) for i, (stage, at) in enumerate(marks[:-1])}


# ------------------------------------------------------------------------------------ locations
def is_url(db: str) -> bool:
    return "://" in db


def safe_location(db: str) -> str:
    """A catalogue location fit to print: a database URL without its password."""
    if not is_url(db):
        return db
    try:
        return make_url(db).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "<database URL>"


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def backup_destination(db: str, dest: Path) -> Path:
    """``dest`` itself, or inside a folder a name saying which catalogue and when."""
    if not dest.is_dir():
        return dest
    stem = "catalogue" if is_url(db) else Path(db).name.split(".")[0] or "catalogue"
    if is_url(db):
        stem = make_url(db).database or stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return dest / f"{stem}-{stamp}.{'dump' if is_url(db) else 'sqlite'}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------ backup
def backup_catalogue(db: str, dest: Path, overwrite: bool = False, progress: Progress | None = None,
                     step_pages: int = STEP_PAGES) -> tuple[Path, Manifest]:
    """Back the catalogue ``db`` up into the file ``dest`` (or a new file in the folder ``dest``), with
    its manifest beside it; a SQLite catalogue is copied ``step_pages`` pages at a time. Returns the
    backup's path and manifest."""
    progress = progress or _no_progress
    dest = backup_destination(db, Path(dest).expanduser().absolute())
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} already exists; choose a new file, or pass --force to replace it")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a folder")
    partial = dest.with_name(dest.name + ".partial")
    try:
        if is_url(db):
            kind, revision, tables = "postgresql", *_dump_postgres(db, partial, progress)
        else:
            kind, revision, tables = "sqlite", *_copy_sqlite(_existing_sqlite(db), partial, progress, step_pages)
        progress("fingerprinting the backup", 0, None)
        manifest = Manifest(kind, partial.stat().st_size, file_sha256(partial), revision, tables,
                            created=_utc_now(), catalogue=safe_location(db))
        manifest_path(dest).unlink(missing_ok=True)    # a replaced backup's manifest must never describe the new file
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    _write_json(manifest_path(dest), manifest.as_dict())
    return dest, manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _existing_sqlite(db: str) -> Path:
    path = Path(db).expanduser()
    if not path.is_file():
        raise BackupError(f"no catalogue at {db}")
    return path


def _copy_sqlite(path: Path, target: Path, progress: Progress,
                 step_pages: int = STEP_PAGES) -> tuple[str | None, list[TableSummary]]:
    """Copy the live catalogue at ``path`` into the new file ``target``; check and sum the copy."""
    snapshot_sqlite(path, target, progress, step_pages)
    return _revision_and_sums(target, progress)


def snapshot_sqlite(path: Path, target: Path, progress: Progress | None = None, step_pages: int = STEP_PAGES) -> None:
    """Copy the SQLite catalogue at ``path``, in use or not, into the new file ``target`` as of one
    instant, and check the copy's integrity."""
    progress = progress or _no_progress
    target.unlink(missing_ok=True)
    try:
        # mode=rw: never create a file where the catalogue was expected
        source = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open the catalogue ({exc})") from None
    try:
        source.execute("BEGIN")
        # the read transaction starts at this first read: the copy is the catalogue as of now
        _require_catalogue_tables(source, path)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy, pages=step_pages,
                          progress=lambda _status, remaining, total: progress("copying pages", total - remaining, total))
            copy.execute("PRAGMA journal_mode=DELETE")   # one self-contained file, no -wal beside it
        finally:
            copy.close()
        source.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: the catalogue could not be copied ({exc})") from None
    finally:
        source.close()
    _check_integrity(target, progress, shown_as=str(path), stage="checking the copy's integrity")


def _require_catalogue_tables(conn: sqlite3.Connection, shown_as: Path | str) -> None:
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{shown_as}: not a SQLite catalogue ({exc})") from None
    if not {"papers", "meta"} <= names:
        raise BackupError(f"{shown_as}: a SQLite database, but not a paperscope catalogue (no papers table)")


def _check_integrity(path: Path, progress: Progress, shown_as: str, stage: str = "checking integrity") -> None:
    progress(stage, 0, None)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{shown_as}: not a readable SQLite database ({exc})") from None
    if problems != ["ok"]:
        raise BackupError(f"{shown_as}: the integrity check failed: {'; '.join(problems[:3])}")
    progress(stage, 1, 1)


def _sqlite_engine(path: Path) -> Engine:
    """A plain engine on a SQLite file: no migrations, no pragmas (it reads what is there)."""
    return create_engine(f"sqlite:///{path}", future=True)


def _revision_and_sums(path: Path, progress: Progress) -> tuple[str | None, list[TableSummary]]:
    from paperscope.catalog.migrations import current_revision

    progress("computing checksums", 0, None)
    engine = _sqlite_engine(path)
    try:
        with engine.connect() as conn:
            return current_revision(conn), summarise(conn, table_names(conn))
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ PostgreSQL tools
@dataclass
class PgTools:
    bin_dir: Path
    major: int

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


def _tool_major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\) (\d+)", out) or re.search(r"(\d+)", out)
    return int(match.group(1)) if match else None


def find_pg_tools(server_major: int) -> PgTools:
    """pg_dump and pg_restore able to talk to a server of ``server_major``: from ``$PAPERSCOPE_PG_BIN``
    when set, else the oldest installed version not older than the server (newer dump ones read older
    servers, never the reverse)."""
    from paperscope.devpg import candidate_bin_dirs

    explicit = os.environ.get("PAPERSCOPE_PG_BIN")
    found: list[PgTools] = []
    for bin_dir in dict.fromkeys(candidate_bin_dirs()):
        if not ((bin_dir / "pg_dump").exists() and (bin_dir / "pg_restore").exists()):
            continue
        major = _tool_major(bin_dir / "pg_dump")
        if major is not None:
            found.append(PgTools(bin_dir, major))
        if explicit and bin_dir == Path(explicit):
            break
    if explicit:
        chosen = next((t for t in found if t.bin_dir == Path(explicit)), None)
        if chosen is None:
            raise BackupError(f"PAPERSCOPE_PG_BIN={explicit} has no runnable pg_dump and pg_restore")
        return chosen
    usable = sorted((t for t in found if t.major >= server_major), key=lambda t: t.major)
    if usable:
        return usable[0]
    have = ", ".join(f"{t.major} ({t.bin_dir})" for t in found) or "none"
    raise BackupError(f"no pg_dump/pg_restore for a PostgreSQL {server_major} server (found: {have}); install the "
                      f"client tools of PostgreSQL {server_major} or newer, or set PAPERSCOPE_PG_BIN to their bin folder")


def _libpq(db: str) -> tuple[str, dict[str, str]]:
    """The connection string for the PostgreSQL tools, and their environment: the password travels
    in PGPASSWORD, never on a command line others can read."""
    from paperscope.catalog.store import database_url

    url = make_url(database_url(db))
    env = dict(os.environ, PGCONNECT_TIMEOUT="15")
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _pg_engine(db: str) -> Engine:
    from paperscope.catalog.store import database_url

    return create_engine(database_url(db), future=True)


def _server_major(conn) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _run_tool(args: list[str], env: dict[str, str], progress: Progress, stage: str,
              marker: str, total: int | None) -> None:
    """Run a PostgreSQL tool with --verbose, advancing ``stage`` on each stderr line holding ``marker``."""
    name = Path(args[0]).name
    try:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace", cwd="/")
    except OSError as exc:
        raise BackupError(f"{name} could not be started: {exc}") from None
    done, errors = 0, []
    progress(stage, 0, total)
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            done += 1
            progress(stage, done, total)
        elif "error" in line.lower() or "fatal" in line.lower() or "detail:" in line.lower():
            errors.append(line.strip())
    try:
        code = proc.wait(timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise BackupError(f"{name} did not finish within {TOOL_TIMEOUT_S // 3600} hours") from None
    if code != 0:
        raise BackupError(f"{name} failed: {' | '.join(errors[:3]) or f'exit status {code}'}")


# ------------------------------------------------------------------------------------ PostgreSQL backup
def _dump_postgres(db: str, target: Path, progress: Progress) -> tuple[str | None, list[TableSummary]]:
    from paperscope.catalog.migrations import current_revision

    conninfo, env = _libpq(db)
    engine = _pg_engine(db)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            tools = find_pg_tools(_server_major(conn))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")).scalar_one()
            _run_tool([tools.path("pg_dump"), "--format=custom", "--verbose", f"--snapshot={snapshot}",
                       f"--file={target}", f"--dbname={conninfo}"],
                      env, progress, "dumping tables", "dumping contents of table", tables)
            progress("computing checksums", 0, None)
            return current_revision(conn), summarise(conn, table_names(conn))
    except SQLAlchemyError as exc:
        raise BackupError(f"{safe_location(db)}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ checking a backup
def inspect_backup(src: Path, progress: Progress | None = None) -> tuple[str, Manifest | None]:
    """The kind of backup at ``src`` ("sqlite" or "postgresql") and its manifest, after checking the
    file: against its manifest when there is one, else by reading it through."""
    progress = progress or _no_progress
    if not src.is_file():
        raise BackupError(f"no backup at {src}")
    with open(src, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    kind = "sqlite" if head.startswith(SQLITE_MAGIC) else "postgresql" if head.startswith(PGDUMP_MAGIC) else None
    if kind is None:
        raise BackupError(f"{src}: not a paperscope backup (neither a SQLite catalogue nor a pg_dump custom-format archive)")
    manifest = Manifest.read(manifest_path(src)) if manifest_path(src).exists() else None
    if manifest is not None:
        _match_manifest(src, kind, manifest, progress)
    if kind == "sqlite":
        _check_integrity(src, progress, shown_as=str(src), stage="checking the backup's integrity")
        conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            _require_catalogue_tables(conn, src)
        finally:
            conn.close()
    return kind, manifest


def _match_manifest(src: Path, kind: str, manifest: Manifest, progress: Progress) -> None:
    if manifest.kind != kind:
        raise BackupError(f"{src}: its manifest describes a {manifest.kind} backup, but the file is a {kind} one")
    size = src.stat().st_size
    if size != manifest.bytes:
        raise BackupError(f"{src}: {size} bytes where its manifest says {manifest.bytes}: the file is truncated or was changed")
    progress("checking the checksum", 0, None)
    if file_sha256(src) != manifest.sha256:
        raise BackupError(f"{src}: its SHA-256 differs from its manifest's: the file is damaged or was changed")


def _pg_listing(src: Path, tools: PgTools) -> list[str]:
    done = subprocess.run([tools.path("pg_restore"), "--list", str(src)], capture_output=True, text=True,
                          errors="replace", timeout=600)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupError(f"{src}: not a readable pg_dump archive ({reason})")
    return done.stdout.splitlines()


# ------------------------------------------------------------------------------------ restore
def restore_catalogue(src: Path, db: str, force: bool = False, progress: Progress | None = None) -> RestoreReport:
    """Restore the backup ``src`` into the catalogue ``db`` (a new or empty one, or any with ``force``),
    prove it equal to the backup, and rebuild the derived indexes."""
    progress = progress or _no_progress
    src = Path(src).expanduser().absolute()
    started = time.perf_counter()
    kind, manifest = inspect_backup(src, progress)
    target_kind = "postgresql" if is_url(db) else "sqlite"
    if kind != target_kind:
        raise BackupError(f"{src} is a {kind} backup and {safe_location(db)} a {target_kind} catalogue: restore it into "
                          f"a {kind} catalogue, then `paperscope migrate` it across")
    if kind == "sqlite" and Path(db).expanduser().absolute() == src:
        raise BackupError(f"{src} is both the backup and the catalogue to restore into")
    _require_known_revision(src, _backup_revision(src, kind, manifest))
    if kind == "sqlite":
        expected, against = _expected_sqlite(src, manifest, progress)
        actual = _restore_sqlite(src, Path(db).expanduser(), force, progress)
    else:
        expected, against = (manifest.tables, "manifest") if manifest else (None, "nothing (the backup has no manifest)")
        actual = _restore_postgres(src, db, force, progress)
    report = RestoreReport(str(src), safe_location(db), kind, against, _compare(expected, actual))
    report.derived = rebuild_derived(db, progress)
    report.seconds = time.perf_counter() - started
    return report


def _backup_revision(src: Path, kind: str, manifest: Manifest | None) -> str | None:
    if manifest is not None or kind != "sqlite":
        return manifest.schema_revision if manifest else None
    from paperscope.catalog.migrations import current_revision

    engine = _sqlite_engine(src)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def _require_known_revision(src: Path, revision: str | None) -> None:
    """An older backup is brought up to date when restored; a newer one cannot be read by this version."""
    from paperscope.catalog.migrations import HEAD, HERE

    known = {p.name.split("_")[0] for p in (HERE / "versions").glob("[0-9]*_*.py")}
    if revision is not None and revision not in known:
        raise BackupError(f"{src} was made by a newer paperscope (schema revision {revision}; this one knows up to "
                          f"{HEAD}): restore it with that version")


def _expected_sqlite(src: Path, manifest: Manifest | None, progress: Progress) -> tuple[list[TableSummary], str]:
    if manifest is not None:
        return manifest.tables, "manifest"
    return _revision_and_sums(src, progress)[1], "backup file"


def _compare(expected: list[TableSummary] | None, actual: list[TableSummary]) -> list[dict[str, Any]]:
    wanted = {t.table: t for t in expected or []}
    rows = []
    for t in actual:
        e = wanted.pop(t.table, None)
        same = None if expected is None else e is not None and (e.rows, e.checksum) == (t.rows, t.checksum)
        rows.append({"table": t.table, "rows": t.rows, "checksum": t.checksum,
                     "expected_rows": e.rows if e else None, "expected_checksum": e.checksum if e else None,
                     "same": same})
    for e in wanted.values():   # in the backup, missing from the restored catalogue
        rows.append({"table": e.table, "rows": None, "checksum": None, "expected_rows": e.rows,
                     "expected_checksum": e.checksum, "same": False})
    return rows


def occupied_tables(engine: Engine) -> dict[str, int]:
    """Tables of a catalogue holding rows (but ``meta``, which every opened catalogue has), with counts."""
    out = {}
    with engine.connect() as conn:
        for name in table_names(conn):
            if name == "meta":
                continue
            count = conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            if count:
                out[name] = count
    return out


def _refuse_occupied(shown_as: str, occupied: dict[str, int]) -> None:
    papers = occupied.get("papers", 0)
    tables = ", ".join(f"{n} ({c})" for n, c in list(occupied.items())[:4])
    raise BackupError(f"{shown_as} is not empty ({papers} papers; rows in {tables}); restore into a new catalogue, "
                      "or pass --force to replace it")


def _sqlite_target_state(target: Path) -> dict[str, int] | None:
    """Rows in the SQLite file ``target`` per table; None when it is not a SQLite database at all."""
    if not target.exists() or target.stat().st_size == 0:
        return {}
    engine = _sqlite_engine(target)
    try:
        return occupied_tables(engine)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _restore_sqlite(src: Path, target: Path, force: bool, progress: Progress) -> list[TableSummary]:
    occupied = _sqlite_target_state(target)
    if occupied is None and not force:
        raise BackupError(f"{target} exists and is not a SQLite catalogue; pass --force to replace it")
    if occupied and not force:
        _refuse_occupied(str(target), occupied)
    if occupied is None:
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        # into the target through SQLite, not by replacing the file: a process that has it open sees the
        # restored catalogue rather than a deleted file
        dest = sqlite3.connect(target, timeout=30)
        try:
            source.backup(dest, pages=STEP_PAGES,
                          progress=lambda _status, remaining, total: progress("restoring pages", total - remaining, total))
            dest.execute("PRAGMA journal_mode=WAL")
        finally:
            dest.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{target}: the backup could not be written into it ({exc})") from None
    finally:
        source.close()
    _check_integrity(target, progress, shown_as=str(target), stage="checking the restored catalogue's integrity")
    return _revision_and_sums(target, progress)[1]


def _restore_postgres(src: Path, db: str, force: bool, progress: Progress) -> list[TableSummary]:
    conninfo, env = _libpq(db)
    engine = _pg_engine(db)
    try:
        with engine.connect() as conn:
            tools = find_pg_tools(_server_major(conn))
        listing = _pg_listing(src, tools)
        occupied = occupied_tables(engine)
        if occupied and not force:
            _refuse_occupied(safe_location(db), occupied)
        if any(" EXTENSION - vector" in line for line in listing):
            _require_pgvector(engine, db)
        entries = [line for line in listing if " EXTENSION " not in line]
        data_entries = sum(" TABLE DATA " in line for line in entries)
        with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
            fh.write("\n".join(entries) + "\n")
        try:
            _run_tool([tools.path("pg_restore"), "--verbose", "--single-transaction", "--exit-on-error", "--clean",
                       "--if-exists", "--no-owner", "--no-privileges", f"--use-list={fh.name}", f"--dbname={conninfo}",
                       str(src)], env, progress, "restoring tables", "processing data for table", data_entries)
        finally:
            os.unlink(fh.name)
        progress("computing checksums", 0, None)
        return summarise(engine)
    except SQLAlchemyError as exc:
        raise BackupError(f"{safe_location(db)}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _require_pgvector(engine: Engine, db: str) -> None:
    """The archive's tables use pgvector: the target must have the extension (only a superuser adds it)."""
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except SQLAlchemyError:
        raise BackupError(f"{safe_location(db)} lacks the pgvector extension the backup uses, and this role may not "
                          "add it: as a superuser, run CREATE EXTENSION vector in that database") from None


# ------------------------------------------------------------------------------------ derived indexes
def rebuild_derived(db: str, progress: Progress | None = None) -> dict[str, Any]:
    """After a restore: open the catalogue (which brings an older backup up to this schema), drop the
    caches beside it, and rebuild the keyword index and the vector matrices."""
    from paperscope.catalog.copy import vector_models
    from paperscope.catalog.store import Catalog
    from paperscope.index.lexical import IndexBusy
    from paperscope.index.maintain import index_root, rebuild_indexes

    progress = progress or _no_progress
    catalog = Catalog.open(db)
    try:
        _drop_caches(index_root(catalog))
        try:
            indexes: dict[str, Any] = rebuild_indexes(catalog, progress=lambda name, done, total: progress(
                f"indexing ({name})", done, total))
        except IndexBusy as exc:
            indexes = {"lexical": f"not rebuilt: {exc}; the next search rebuilds it"}
        return {"indexes": indexes, "vectors": _rebuild_vectors(catalog, vector_models(catalog.engine))}
    finally:
        catalog.close()


def _drop_caches(root: Path) -> None:
    """Everything beside the catalogue but the keyword index (rebuilt under its own lock) describes the
    catalogue that was there before."""
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.name != "lexical":
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def _rebuild_vectors(catalog, models: list[str]) -> dict[str, int]:
    if not models:
        return {}
    if not catalog.is_sqlite:
        from paperscope.index.pgvector import available, sync_paper_vectors

        if available(catalog):
            for model in models:
                sync_paper_vectors(catalog, model)
        return {model: catalog.count_paper_vectors(model) for model in models}
    from paperscope.index.vectors import load_vector_index

    return {model: len(load_vector_index(catalog, model) or ()) for model in models}
